"""Bulk job polling against a simulated job on a simulated clock: how late a finished job is
noticed, and how many calls the waiting costs (unit tests: the clock and the API are fakes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from sf_assets.salesforce.bulk2 import polling
from sf_assets.salesforce.errors import BulkJobTimedOut
from sf_assets.salesforce.options import ApiOptions


@dataclass
class Clock:
    now: float = 0.0
    waits: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@dataclass
class Job:
    """A Bulk job as a real org runs it: queued, then processing at a steady rate, its count
    of processed records rising a `step` at a time (Salesforce's internal batches of 10,000
    for an ingest job)."""

    clock: Clock
    rows: int
    queue_seconds: float
    rows_per_second: float
    step: int = 1

    @property
    def done_at(self) -> float:
        return self.queue_seconds + self.rows / self.rows_per_second

    def info(self) -> dict[str, Any]:
        running = max(0.0, self.clock.now - self.queue_seconds)
        processed = min(self.rows, int(running * self.rows_per_second))
        if processed < self.rows:
            processed -= processed % self.step
        if processed >= self.rows:
            state = "JobComplete"
        elif self.clock.now < self.queue_seconds:
            state = "UploadComplete"
        else:
            state = "InProgress"
        return {"state": state, "numberRecordsProcessed": processed}


class Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def json(self) -> dict[str, Any]:
        return self.body


class FakeApi:
    def __init__(self, job: Job, options: ApiOptions) -> None:
        self.job, self.options = job, options
        self.log = logging.getLogger("test")
        self.polls: list[float] = []

    def call(self, method: str, path: str, **kwargs: Any) -> Response:
        self.polls.append(self.job.clock.now)
        return Response(self.job.info())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(polling.time, "monotonic", lambda: fake.now)
    monkeypatch.setattr(polling.time, "sleep", fake.sleep)
    return fake


def poll(clock: Clock, job: Job, *, rows: int | None, **options: float) -> FakeApi:
    api = FakeApi(job, ApiOptions(**options))
    final = polling.poll_job(api, "/jobs/1", "Bulk job 1", "try later", rows=rows)  # type: ignore[arg-type]
    assert final["state"] == "JobComplete"
    return api


def test_a_job_of_a_few_thousand_rows_is_noticed_within_a_fraction_of_a_second(clock):
    """The common small batch: done about a second after it was closed."""
    job = Job(clock, rows=2_000, queue_seconds=0.5, rows_per_second=4_000)
    api = poll(clock, job, rows=2_000)
    assert clock.waits[:3] == pytest.approx([0.2, 0.3, 0.45])
    assert clock.now - job.done_at < 0.7
    assert len(api.polls) <= 5


@pytest.mark.parametrize("rows", [100_000, 1_000_000])
def test_a_long_job_ends_on_its_rate_after_a_few_polls(clock, rows):
    """100,000 or 1,000,000 rows at 2,000 rows/s after a 2 s queue (52 s, 502 s): once the job
    reports progress, it is asked again at 90 % of the time the rate says it has left (at most
    a minute later), and the last wait ends when it is done."""
    job = Job(clock, rows=rows, queue_seconds=2.0, rows_per_second=2_000)
    api = poll(clock, job, rows=rows)
    assert clock.now - job.done_at < 0.25
    assert max(clock.waits) <= polling.LONGEST_WAIT
    # the short first polls, one a minute, then three to close in: not one per 5 s (21, 101)
    assert len(api.polls) <= 8 + job.done_at / polling.LONGEST_WAIT + 3


@pytest.mark.parametrize("rows", [50_000, 100_000, 1_000_000])
@pytest.mark.parametrize("rows_per_second", [370, 2_000, 5_500])
@pytest.mark.parametrize("queue_seconds", [1.5, 1.9, 2.0, 2.3])
def test_a_job_counted_in_steps_of_10000_is_noticed_within_a_second(
    clock, rows, rows_per_second, queue_seconds
):
    """A count that rises 10,000 at a time lags the job by up to one step, so a rate read from
    it at face value is too slow: a 100,000-row job at 2,000 rows/s was asked again a minute
    after its 20,000th record, 25 s after its end. The rates span one internal batch at a time
    to a tuned org (the sandbox's timing model), the queues move the steps against the polls."""
    job = Job(clock, rows, queue_seconds, rows_per_second, step=10_000)
    api = poll(clock, job, rows=rows)
    assert clock.now - job.done_at <= polling.CLOSING_WAIT
    step_seconds = 10_000 / rows_per_second
    # the short first polls, at most one a minute and one per step (when the rate is read
    # anew), and the last step's closing polls, one a second
    most = 8 + job.done_at / polling.LONGEST_WAIT + job.done_at / step_seconds
    assert len(api.polls) <= most + step_seconds / polling.CLOSING_WAIT + 3


def test_without_the_row_count_the_waits_only_grow(clock):
    """A query job does not know its rows: it is noticed at most one 5 s wait late."""
    job = Job(clock, rows=100_000, queue_seconds=2.0, rows_per_second=2_000)
    poll(clock, job, rows=None)
    expected = [min(0.2 * 1.5**i, 5.0) for i in range(len(clock.waits))]
    assert clock.waits == pytest.approx(expected)
    assert clock.now - job.done_at <= 5.0


def test_no_wait_is_shorter_than_the_first_poll_interval(clock):
    """A rate that says 'done in 1 ms' still waits the first interval, so a wrong estimate
    cannot turn into a burst of calls."""
    job = Job(clock, rows=10_000, queue_seconds=0.0, rows_per_second=100_000)
    poll(clock, job, rows=10_000)
    assert min(clock.waits) >= 0.2


def test_a_job_past_the_timeout_names_what_is_left(clock):
    job = Job(clock, rows=1_000_000, queue_seconds=0.0, rows_per_second=10)
    api = FakeApi(job, ApiOptions(bulk_timeout_seconds=30))
    with pytest.raises(
        BulkJobTimedOut, match="Bulk job 1 is still InProgress after 30 s; try later"
    ):
        polling.poll_job(api, "/jobs/1", "Bulk job 1", "try later", rows=1_000_000)  # type: ignore[arg-type]
