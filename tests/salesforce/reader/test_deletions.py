"""Deletions and records that leave the filter reach the copy, as flags, never by silently
keeping the record current: through queryAll, through getDeleted, and through a comparison of
every key once neither can tell (after the org's window, or after a purge or hard delete)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import polars as pl
import pytest

from sf_assets.salesforce.errors import OutcomeUnknown
from sf_assets.salesforce.reader.read import stream_name
from tests.salesforce.reader.conftest import ingest_spec, settle
from tests.salesforce.reader.test_read import REPO, wait_for

STREAM = stream_name("crm", "Contact")
MONTHS = 24 * 90  # periodic key comparisons far apart, so a test sees the other triggers


def seeded_copy(org, reading, spec, count: int = 10) -> list[str]:  # type: ignore[no-untyped-def]
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(count)])
    settle()
    reading.read(spec, "Contact")
    settle()
    return ids


def flagged(reading, column: str) -> list[str]:  # type: ignore[no-untyped-def]
    copy = reading.copy("Contact")
    return sorted(copy.filter(pl.col(column))["Id"])


def hard_delete(sf, ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Records removed without the recycle bin: neither queryAll nor getDeleted sees them."""
    (result,) = sf.bulk2.Contact.hard_delete(records=[{"Id": i} for i in ids], wait=0.05)
    assert result["numberRecordsProcessed"] == len(ids) and not result["numberRecordsFailed"]


def test_deleted_records_arrive_with_the_changes_through_query_all(org, reading, sf):
    spec = ingest_spec({"Contact": {"fields": ["LastName"]}})
    ids = seeded_copy(org, reading, spec)
    for record_id in ids[:3]:
        sf.Contact.delete(record_id)
    report = reading.read(spec, "Contact")
    assert (report.mode, report.records, report.deleted) == ("incremental", 3, 3)
    assert sorted(report.deleted_ids) == sorted(ids[:3])
    assert flagged(reading, "IsDeleted") == sorted(ids[:3])
    assert reading.warehouse.current_count("Contact") == 7


def test_deleted_records_arrive_through_get_deleted(org, reading, sf):
    spec = ingest_spec({"Contact": {"fields": ["LastName"]}}, deletions={"source": "get_deleted"})
    ids = seeded_copy(org, reading, spec)
    sf.Contact.delete(ids[0])
    sf.Contact.delete(ids[5])
    report = reading.read(spec, "Contact")
    assert (report.records, report.deleted, report.reconciled) == (0, 2, False)
    assert flagged(reading, "IsDeleted") == sorted([ids[0], ids[5]])


def test_a_deletion_survives_a_read_that_failed_at_get_deleted(org, reading, sf):
    """The changes are committed, then getDeleted goes unanswered: the next read still asks
    getDeleted from before those changes, so the deletion made before them arrives."""
    spec = ingest_spec({"Contact": {"fields": ["LastName"]}}, deletions={"source": "get_deleted"})
    ids = seeded_copy(org, reading, spec)
    sf.Contact.delete(ids[0])
    settle()
    sf.Contact.update(ids[1], {"LastName": "Changed"})
    org.faults(lose_responses={"path_contains": "/deleted", "method": "GET", "count": 1000})
    with pytest.raises(OutcomeUnknown, match="sobjects/Contact/deleted/: the answer was lost"):
        reading.read(spec, "Contact")
    assert reading.copy("Contact").filter(pl.col("Id") == ids[1])["LastName"].to_list() == [
        "Changed"
    ]
    org.faults(lose_responses=None)
    report = reading.read(spec, "Contact")
    assert (report.records, report.deleted) == (1, 1)
    assert flagged(reading, "IsDeleted") == [ids[0]]


def test_hard_deleted_records_are_found_by_comparing_every_key(org, reading, sf):
    spec = ingest_spec({"Contact": {"fields": ["LastName"]}})
    ids = seeded_copy(org, reading, spec)
    hard_delete(sf, ids[:2])
    unnoticed = reading.read(spec, "Contact")
    assert (unnoticed.deleted, unnoticed.reconciled) == (0, False)
    report = reading.read(spec, "Contact", reconcile=True)
    assert report.reconciled and report.deleted == 2
    assert flagged(reading, "IsDeleted") == sorted(ids[:2])
    assert report.cursor.count.passed and report.cursor.count.org == 8


def test_after_the_deletion_window_the_read_compares_every_key_by_itself(org, reading, sf):
    spec = ingest_spec(
        {"Contact": {"fields": ["LastName"]}}, deletions={"reconcile_every_hours": MONTHS}
    )
    ids = seeded_copy(org, reading, spec)
    age_last_read(reading, days=20)  # the last read finished twenty days ago
    hard_delete(sf, ids[4:5])
    report = reading.read(spec, "Contact")
    assert report.reconciled and "15-day deletion window" in report.reason
    assert flagged(reading, "IsDeleted") == [ids[4]]


def test_when_get_deleted_no_longer_covers_the_last_read_every_key_is_compared(org, reading, sf):
    """The org keeps deleted records for less time than the spec assumes (30 days here):
    Salesforce refuses the start (INVALID_REPLICATION_DATE) or says it keeps deletions from a
    later date only; either way the read falls back to comparing keys."""
    spec = ingest_spec(
        {"Contact": {"fields": ["LastName"]}},
        deletions={"source": "get_deleted", "window_days": 30, "reconcile_every_hours": MONTHS},
    )
    ids = seeded_copy(org, reading, spec)
    age_last_read(reading, days=20)
    hard_delete(sf, ids[:1])
    report = reading.read(spec, "Contact")
    assert report.reconciled and report.reason == "getDeleted's window has passed"
    assert flagged(reading, "IsDeleted") == [ids[0]]


def test_records_that_leave_the_filter_are_flagged_and_come_back_when_they_match_again(
    org, reading, sf
):
    spec = ingest_spec(
        {
            "Contact": {
                "fields": ["LastName", "LeadSource"],
                "filter": [{"field": "LeadSource", "value": "Web"}],
            }
        }
    )
    web = org.seed("Contact", [{"LastName": f"Web {i}", "LeadSource": "Web"} for i in range(3)])
    org.seed("Contact", [{"LastName": "Phone", "LeadSource": "Phone Inquiry"}])
    settle()
    assert reading.read(spec, "Contact").records == 3
    settle()
    sf.Contact.update(web[1], {"LeadSource": "Partner Referral"})
    report = reading.read(spec, "Contact")
    assert report.archived == 1 and flagged(reading, "_sf_archived") == [web[1]]
    assert reading.warehouse.current_count("Contact") == 2
    settle()
    sf.Contact.update(web[1], {"LeadSource": "Web"})
    reading.read(spec, "Contact")
    assert flagged(reading, "_sf_archived") == []


def test_a_key_comparison_tells_deleted_records_from_ones_outside_the_filter(org, reading, sf):
    spec = ingest_spec(
        {
            "Contact": {
                "fields": ["LastName", "LeadSource"],
                "filter": [{"field": "LeadSource", "value": "Web"}],
            }
        }
    )
    web = org.seed("Contact", [{"LastName": f"Web {i}", "LeadSource": "Web"} for i in range(4)])
    reading.read(spec, "Contact")
    sf.Contact.update(web[0], {"LeadSource": "Other"})
    hard_delete(sf, web[1:2])
    report = reading.read(spec, "Contact", full_refresh=True)
    assert (report.mode, report.records, report.reconciled) == ("full", 2, True)
    assert flagged(reading, "IsDeleted") == [web[1]]
    assert flagged(reading, "_sf_archived") == [web[0]]
    assert report.cursor.count.passed and report.cursor.count.org == 2


def test_a_bulk_job_left_by_a_killed_read_is_resumed_not_run_again(org, reading, http):
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(300)])
    spec = ingest_spec({"Contact": {"fields": ["LastName"], "api": "bulk"}})
    info_file = reading.root / "org.json"
    info_file.write_text(json.dumps(org.info))
    org.faults(hold_answers={"path_contains": "/jobs/query/"})  # its polls and results
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.salesforce.reader.child",
            str(info_file),
            str(reading.root),
            spec.model_dump_json(by_alias=True),
            "Contact",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        job = wait_for(lambda: (reading.cursors.read(STREAM) or {}).get("bulk"), child)
    finally:
        child.kill()
        child.wait()
    org.faults(hold_answers=None)
    assert reading.warehouse.current_count("Contact") == 0
    report = reading.read(spec, "Contact")
    assert report.bulk_job_ids == [job["job_id"]]
    assert report.records == 300 and sorted(reading.copy("Contact")["Id"]) == sorted(ids)
    jobs = http.call("GET", "jobs/query").json()["records"]
    assert [j["id"] for j in jobs] == [job["job_id"]]
    assert reading.cursors.read(STREAM)["bulk"] is None


def age_last_read(reading, *, days: int) -> None:  # type: ignore[no-untyped-def]
    """The state a pause leaves: the last read (and everything it knew) `days` in the past."""
    cursor = reading.cursors.read(STREAM)
    shift = timedelta(days=days)
    for key in ("settled", "completed_at", "reconciled_at"):
        if cursor[key]:
            cursor[key] = (datetime.fromisoformat(cursor[key]) - shift).isoformat()
    moment, record_id = cursor["position"]
    cursor["position"] = [(datetime.fromisoformat(moment) - shift).isoformat(), record_id]
    reading.cursors.commit({STREAM: cursor}, run_id="test")
