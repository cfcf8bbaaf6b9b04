"""Reading Salesforce objects into DuckDB against the sandbox org over HTTPS: the first read,
incremental reads by a (SystemModstamp, Id) keyset, records sharing one SystemModstamp, a
record updated during a read, a crash mid-read, an expired session, and a failed login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from sf_assets.cli.local_org import salesforce_resource
from sf_assets.salesforce.bulk2 import query
from sf_assets.salesforce.reader.read import stream_name
from tests.salesforce.reader.conftest import ingest_spec, logger_acting, settle

REPO = Path(__file__).resolve().parents[3]
PEOPLE = [
    {
        "LastName": "Ng",
        "Email": "ng@example.com",
        "Birthdate": "1990-05-01",
        "Ticket_Count__c": 3,
        "HasOptedOutOfEmail": True,
        "Last_Purchase__c": "2026-01-31T09:00:00.000Z",
    },
    {"LastName": "Okafor", "Email": "okafor@example.com", "Ticket_Count__c": 12.5},
    {"LastName": "Silva", "HasOptedOutOfEmail": False},
]


@pytest.mark.parametrize("api", ["rest", "bulk"])
def test_the_first_read_copies_every_record_in_its_field_types(org, reading, api):
    ids = org.seed("Contact", PEOPLE)
    report = reading.read(ingest_spec({"Contact": {"api": api}}), "Contact")
    assert (report.mode, report.reason, report.apis) == ("full", "first read", [api])
    assert report.records == 3 and report.cursor.count.passed
    copy = reading.copy("Contact")
    assert sorted(copy["Id"]) == sorted(ids)
    assert copy.schema["Birthdate"] == pl.Date
    assert copy.schema["Ticket_Count__c"] == pl.Float64
    assert copy.schema["HasOptedOutOfEmail"] == pl.Boolean
    assert copy.schema["Last_Purchase__c"] == pl.Datetime("us", "UTC")
    ng = copy.row(by_predicate=pl.col("LastName") == "Ng", named=True)
    assert ng["Birthdate"] == date(1990, 5, 1) and ng["Ticket_Count__c"] == 3.0
    assert ng["HasOptedOutOfEmail"] is True and ng["Email"] == "ng@example.com"
    assert ng["Last_Purchase__c"].replace(tzinfo=None) == datetime(2026, 1, 31, 9, 0)
    silva = copy.row(by_predicate=pl.col("LastName") == "Silva", named=True)
    assert silva["Email"] is None and silva["Birthdate"] is None
    assert not copy["IsDeleted"].any() and not copy["_sf_archived"].any()


def test_rest_and_bulk_reads_give_the_same_copy(org, reading, tmp_path):
    org.seed("Contact", PEOPLE)
    reading.read(ingest_spec({"Contact": {"api": "rest"}}), "Contact")
    via_rest = reading.copy("Contact")
    other = type(reading)(tmp_path / "bulk", org)
    other.read(ingest_spec({"Contact": {"api": "bulk"}}), "Contact")
    via_bulk = other.copy("Contact")
    fields = [c for c in via_rest.columns if not c.startswith("_sf_")]
    assert via_rest.select(fields).equals(via_bulk.select(fields))


def test_the_next_read_takes_only_what_changed(org, reading, sf):
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(30)])
    spec = ingest_spec({"Contact": {"fields": ["LastName", "Email"]}})
    settle()
    reading.read(spec, "Contact")
    settle()
    for record_id in ids[:4]:
        sf.Contact.update(record_id, {"Email": f"{record_id}@example.com"})
    before = org.calls()
    report = reading.read(spec, "Contact")
    assert (report.mode, report.records, report.apis) == ("incremental", 4, ["rest"])
    assert org.calls() - before == 1  # one query page: the describe is kept with the cursor
    copy = reading.copy("Contact")
    changed = copy.filter(pl.col("Email").is_not_null())
    assert sorted(changed["Id"]) == sorted(ids[:4])
    assert copy.height == 30


def test_2500_records_sharing_one_systemmodstamp_all_arrive_when_a_read_resumes_among_them(
    org, reading, sandbox
):
    """The first REST page ends inside the group: the process is killed after that page is
    committed, while the org holds back its answer to the next page (queryMore), and the next
    run resumes at (SystemModstamp, Id) within the group."""
    ids = org.seed("Contact", [{"LastName": f"Same {i}"} for i in range(2500)])
    stamps = {r["SystemModstamp"] for r in org.records("Contact")}
    assert len(stamps) == 1
    spec = ingest_spec({"Contact": {"fields": ["LastName"], "api": "rest"}})
    info_file = reading.root / "org.json"
    info_file.write_text(json.dumps(org.info))
    org.faults(hold_answers={"path_contains": "/query/"})  # queryMore pages, not the first
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.salesforce.reader.child",
            str(info_file),
            str(reading.root),
            spec.model_dump_json(by_alias=True),
            "Contact",
            json.dumps({"commit_records": 1000}),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        committed = wait_for(lambda: position_of(reading, "Contact"), child)
    finally:
        child.kill()
        child.wait()
    org.faults(hold_answers=None)
    assert committed[1] == sorted(ids)[1999]  # the first page's last record, inside the group
    assert reading.warehouse.current_count("Contact") == 2000
    report = reading.read(spec, "Contact")
    assert report.reason == "resuming an unfinished full read"
    assert report.records == 500
    copy = reading.copy("Contact")
    assert sorted(copy["Id"]) == sorted(ids) and copy["Id"].n_unique() == 2500


def test_a_record_updated_during_a_read_arrives_on_the_next_one(org, reading, sf):
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(2500)])
    spec = ingest_spec({"Contact": {"fields": ["LastName"], "api": "rest"}})
    early = sorted(ids)[10]  # on the first page, already committed when it changes

    def change() -> None:
        sf.Contact.update(early, {"LastName": "Changed mid-read"})

    log = logger_acting("mid_read", "records committed", change)
    reading.read(spec, "Contact", log=log, commit_records=1000)
    assert log.handlers[0].action is None  # the change happened between two pages
    second = reading.read(spec, "Contact")
    assert second.mode == "incremental"
    copy = reading.copy("Contact")
    assert copy.filter(pl.col("Id") == early)["LastName"].item() == "Changed mid-read"
    assert sorted(copy["Id"]) == sorted(ids)


def test_a_record_updated_while_a_bulk_job_runs_arrives_on_the_next_read(org, reading, sf):
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(50)])
    spec = ingest_spec({"Contact": {"fields": ["LastName"], "api": "bulk"}})
    target = ids[7]
    log = logger_acting(
        "bulk", "Bulk query job", lambda: sf.Contact.update(target, {"LastName": "During job"})
    )
    first = reading.read(spec, "Contact", log=log)
    assert first.apis == ["bulk"] and log.handlers[0].action is None
    reading.read(spec, "Contact")
    assert reading.copy("Contact").filter(pl.col("Id") == target)["LastName"].item() == (
        "During job"
    )


def test_a_bulk_read_tells_its_polls_how_many_records_its_job_holds(org, reading, sf, monkeypatch):
    """Without the count the polls cannot follow the job's progress and ask every 5 s."""
    told: list[int | None] = []
    real_poll = query.poll

    def poll(api, job_id, if_late, *, rows=None):
        told.append(rows)
        return real_poll(api, job_id, if_late, rows=rows)

    monkeypatch.setattr(query, "poll", poll)
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(40)])
    spec = ingest_spec({"Contact": {"fields": ["LastName"], "api": "bulk"}})
    assert reading.read(spec, "Contact").records == 40
    settle()
    for changed in ids[:3]:
        sf.Contact.update(changed, {"LastName": "Changed"})
    report = reading.read(spec, "Contact")
    assert (report.mode, report.records, report.apis) == ("incremental", 3, ["bulk"])
    assert told == [40, 3]


def test_an_expired_session_mid_read_logs_in_again_and_reads_nothing_twice(org, reading):
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(5000)])
    spec = ingest_spec({"Contact": {"fields": ["LastName"], "api": "rest"}})
    org.faults(expire_sessions_after_calls=3)  # describe and two pages, then 401
    report = reading.read(spec, "Contact", commit_records=2000)
    assert report.records == 5000  # three pages, each received once
    # 3 pages and COUNT(); the page refused with INVALID_SESSION_ID is asked once more
    assert report.api_calls == 5
    assert sorted(reading.copy("Contact")["Id"]) == sorted(ids)


def test_after_a_failed_login_the_next_read_takes_only_what_changed_since_the_cursor(
    org, reading, sf
):
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(40)])
    spec = ingest_spec({"Contact": {"fields": ["LastName"]}})
    settle()
    reading.read(spec, "Contact")
    before = reading.cursors.read(stream_name("crm", "Contact"))
    settle()
    sf.Contact.update(ids[3], {"LastName": "Renamed"})
    wrong = salesforce_resource({**org.info, "password": "not-the-password"})
    with pytest.raises(Exception, match="Salesforce refused the password login"):
        reading.read(spec, "Contact", salesforce=wrong)
    assert reading.cursors.read(stream_name("crm", "Contact")) == before
    report = reading.read(spec, "Contact")
    assert (report.mode, report.records) == ("incremental", 1)


def test_a_changed_field_list_reads_everything_again_and_adds_the_column(org, reading):
    org.seed("Contact", [{"LastName": "Ng", "Title": "Buyer"}])
    reading.read(ingest_spec({"Contact": {"fields": ["LastName"]}}), "Contact")
    report = reading.read(ingest_spec({"Contact": {"fields": ["LastName", "Title"]}}), "Contact")
    assert (report.mode, report.reason) == ("full", "the fields read changed")
    assert reading.copy("Contact")["Title"].to_list() == ["Buyer"]


def test_a_backfill_re_reads_a_period_and_leaves_the_cursor(org, reading):
    org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(5)])
    spec = ingest_spec({"Contact": {"fields": ["LastName"]}})
    reading.read(spec, "Contact")
    with reading.warehouse.transaction() as con:  # someone damaged the copy
        con.execute("UPDATE salesforce.contact SET LastName = 'broken'")
    cursor = reading.cursors.read(stream_name("crm", "Contact"))
    since = datetime.fromisoformat(cursor["position"][0])
    report = reading.read(spec, "Contact", since=since)
    assert (report.mode, report.records) == ("backfill", 5)
    assert "broken" not in reading.copy("Contact")["LastName"].to_list()
    assert reading.cursors.read(stream_name("crm", "Contact")) == cursor


def wait_for(found, child: subprocess.Popen, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        if child.poll() is not None:
            raise AssertionError(f"the read ended (code {child.returncode}) before the step")
        time.sleep(0.02)
    raise AssertionError("the step was not reached")


def position_of(reading, sobject: str) -> list[str] | None:  # type: ignore[no-untyped-def]
    cursor = reading.cursors.read(stream_name("crm", sobject))
    return cursor and cursor.get("position")


def test_a_kept_describe_the_org_no_longer_matches_is_described_again(org, reading, caplog):
    org.seed("Contact", [{"LastName": "Ng"}])
    spec = ingest_spec({"Contact": {"fields": ["LastName"]}})
    reading.read(spec, "Contact")
    cursor = reading.cursors.read(stream_name("crm", "Contact"))
    cursor["plan"]["fields"].append(["Gone__c", "string"])  # a field deleted in the org since
    reading.cursors.commit({stream_name("crm", "Contact"): cursor}, run_id="test")
    report = reading.read(spec, "Contact")
    assert "describing again" in caplog.text and report.mode == "full"
    plan = reading.cursors.read(stream_name("crm", "Contact"))["plan"]
    assert "Gone__c" not in [name for name, _ in plan["fields"]]
