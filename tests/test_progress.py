"""Progress lines come at a steady pace, not per row: rows sent of the total with rate and
time left, a last line when everything is sent, and a Bulk job's state with its counts."""

from __future__ import annotations

import logging

import pytest

from sf_assets.progress import JobProgress, RowProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_rows_are_reported_every_few_seconds_and_at_the_end(caplog, clock):
    log = logging.getLogger("progress-test")
    progress = RowProgress(log, "leads batch b1", every=5, clock=clock)
    progress.start(1000, "rest")
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for _ in range(4):  # 200 rows a second: one line after 5 s, then the last one
            clock.now += 1
            progress.advance(200)
        clock.now += 1
        progress.advance(200)
    assert [r.getMessage() for r in caplog.records] == [
        "leads batch b1: 1000 of 1000 rows sent via rest (100%), 200 rows/s, 5.0 s in all"
    ]


def test_a_long_write_says_how_long_is_left(caplog, clock):
    log = logging.getLogger("progress-test")
    progress = RowProgress(log, "leads batch b1", every=5, clock=clock)
    progress.start(10_000, "rest")
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for _ in range(12):  # 100 rows a second
            clock.now += 2
            progress.advance(200)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "leads batch b1: 600 of 10000 rows sent via rest (6%), 100 rows/s, about 1 min 34 s left",
        "leads batch b1: 1200 of 10000 rows sent via rest (12%), 100 rows/s, about 1 min 28 s left",
        "leads batch b1: 1800 of 10000 rows sent via rest (18%), 100 rows/s, about 1 min 22 s left",
        "leads batch b1: 2400 of 10000 rows sent via rest (24%), 100 rows/s, about 1 min 16 s left",
    ]


def test_a_bulk_job_is_reported_when_its_state_changes_and_at_the_pace(caplog, clock):
    log = logging.getLogger("progress-test")
    progress = JobProgress(log, "Bulk job 750x", every=10, clock=clock)
    polls = [
        (0, {"state": "UploadComplete"}),
        (2, {"state": "InProgress", "numberRecordsProcessed": 0}),
        (2, {"state": "InProgress", "numberRecordsProcessed": 2000}),  # same state, too soon
        (10, {"state": "InProgress", "numberRecordsProcessed": 9000, "numberRecordsFailed": 12}),
        (2, {"state": "JobComplete", "numberRecordsProcessed": 10000, "numberRecordsFailed": 12}),
    ]
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for seconds, info in polls:
            clock.now += seconds
            progress.update(info)
    assert [r.getMessage() for r in caplog.records] == [
        "Bulk job 750x: UploadComplete, 0 records processed, 0 failed (0.0 s, 0 records/s)",
        "Bulk job 750x: InProgress, 0 records processed, 0 failed (2.0 s, 0 records/s)",
        "Bulk job 750x: InProgress, 9000 records processed, 12 failed (14 s, 643 records/s)",
        "Bulk job 750x: JobComplete, 10000 records processed, 12 failed (16 s, 625 records/s)",
    ]
