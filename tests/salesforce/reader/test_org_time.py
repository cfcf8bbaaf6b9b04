"""Reads against an org whose time and recycle bin behave like a real one: records given one
SystemModstamp by an administrator, query locators that expire while a read pauses, deletions
older than the recycle bin's retention, an emptied recycle bin, and activities outside a
retention window. These use the sandbox's administrator patch, cursor timeouts and purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.salesforce.reader.conftest import ingest_spec, logger_acting, settle
from tests.salesforce.reader.test_deletions import MONTHS, age_last_read, flagged

ONE_STAMP = "2026-03-01T12:00:00.000Z"


def patch(org, sobject: str, records: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    """Set fields (system fields too) without spending calls or stamping SystemModstamp."""
    response = org.http.patch(f"{org.base}/__admin/records/{sobject}", json=records)
    response.raise_for_status()


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_2500_records_an_administrator_gave_one_systemmodstamp_all_arrive_through_rest_pages(
    org, reading
):
    ids = org.seed("Contact", [{"LastName": f"Same {i}"} for i in range(2500)])
    org.seed("Contact", [{"LastName": "Later"}])
    patch(org, "Contact", [{"Id": i, "SystemModstamp": ONE_STAMP} for i in ids])
    spec = ingest_spec({"Contact": {"fields": ["LastName"], "api": "rest"}})
    # every call waits 1.5 s before the org looks at it, so page two's locator has been idle
    # longer than its 1 s timeout by then
    org.faults(query_cursor_timeout_seconds=1, latency_ms=1500)
    log = logger_acting("locator", "never", lambda: None)
    report = reading.read(spec, "Contact", log=log, commit_records=1000)
    org.faults(latency_ms=0)
    assert any("query locator expired" in m for m in log.handlers[0].messages)
    assert report.records == 2501  # nothing twice: the second query starts after page one
    assert report.api_calls == 4  # page one, the refused page two, the query again, COUNT()
    copy = reading.copy("Contact")
    assert copy["Id"].n_unique() == 2501 and set(ids) <= set(copy["Id"])


def test_records_sharing_one_systemmodstamp_all_arrive_through_a_bulk_job(org, reading):
    ids = org.seed("Contact", [{"LastName": f"Same {i}"} for i in range(2500)])
    patch(org, "Contact", [{"Id": i, "SystemModstamp": ONE_STAMP} for i in ids])
    spec = ingest_spec({"Contact": {"fields": ["LastName"], "api": "bulk"}})
    report = reading.read(spec, "Contact")
    assert report.records == 2500 and report.cursor.count.passed
    later = org.seed("Contact", [{"LastName": "After the read"}])
    settle()
    again = reading.read(spec, "Contact")
    assert again.mode == "incremental" and again.records == 1
    assert set(reading.copy("Contact")["Id"]) == {*ids, *later}


def test_a_deletion_older_than_the_recycle_bin_keeps_arrives_by_comparing_keys(org, reading):
    spec = ingest_spec(
        {"Contact": {"fields": ["LastName"]}}, deletions={"reconcile_every_hours": MONTHS}
    )
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(6)])
    settle()
    reading.read(spec, "Contact")
    age_last_read(reading, days=20)  # we last read twenty days ago...
    eighteen_days_ago = stamp(datetime.now(UTC) - timedelta(days=18))
    patch(org, "Contact", [{"Id": ids[2], "IsDeleted": True, "SystemModstamp": eighteen_days_ago}])
    report = reading.read(spec, "Contact")  # ...and the bin kept it 15 days only
    assert report.reconciled and "deletion window" in report.reason
    assert flagged(reading, "IsDeleted") == [ids[2]]


def test_an_emptied_recycle_bin_makes_get_deleted_ask_for_a_key_comparison(org, reading, sf):
    spec = ingest_spec(
        {"Contact": {"fields": ["LastName"]}},
        deletions={"source": "get_deleted", "reconcile_every_hours": MONTHS},
    )
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(5)])
    settle()
    reading.read(spec, "Contact")
    sf.Contact.delete(ids[1])
    org.http.post(f"{org.base}/__admin/records/Contact/purge").raise_for_status()
    report = reading.read(spec, "Contact")
    assert report.reconciled and report.reason == "getDeleted's window has passed"
    assert flagged(reading, "IsDeleted") == [ids[1]]


def test_a_shorter_retention_in_the_org_than_in_the_spec_is_noticed_by_get_deleted(org, reading):
    spec = ingest_spec(
        {"Contact": {"fields": ["LastName"]}},
        deletions={"source": "get_deleted", "window_days": 30, "reconcile_every_hours": MONTHS},
    )
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(3)])
    settle()
    reading.read(spec, "Contact")
    age_last_read(reading, days=5)
    org.faults(deleted_retention_days=2)
    patch(org, "Contact", [{"Id": ids[0], "IsDeleted": True}])
    org.http.post(f"{org.base}/__admin/records/Contact/purge").raise_for_status()
    report = reading.read(spec, "Contact")
    assert report.reconciled and report.reason == "getDeleted's window has passed"
    assert flagged(reading, "IsDeleted") == [ids[0]]


def test_activities_outside_the_retention_window_are_not_read_and_leave_the_copy(
    org, reading, tmp_path
):
    recent, old = org.seed(
        "Task",
        [
            {"Subject": "Call", "Status": "Completed", "Priority": "Normal"},
            {"Subject": "Visit", "Status": "Completed", "Priority": "Normal"},
        ],
    )
    four_months_ago = stamp(datetime.now(UTC) - timedelta(days=120))
    patch(org, "Task", [{"Id": old, "CreatedDate": four_months_ago}])
    kept = ingest_spec({"Task": {"fields": ["Subject"], "retention_days": 90}})
    assert reading.read(kept, "Task").records == 1
    assert reading.copy("Task")["Id"].to_list() == [recent]
    everything = type(reading)(tmp_path / "everything", org)
    everything.read(ingest_spec({"Task": {"fields": ["Subject"]}}), "Task")
    assert everything.copy("Task").height == 2
    report = everything.read(kept, "Task")  # a retention window added later prunes the copy
    assert report.pruned == 1 and everything.copy("Task")["Id"].to_list() == [recent]
