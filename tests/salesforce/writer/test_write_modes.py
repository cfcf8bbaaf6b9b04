"""Write modes that look ids up before writing, against the sandbox org over HTTPS: Contacts
identified by Email (a ticketing integration), update-only writes (a fulfilment service) and
deletes with their guard."""

from __future__ import annotations

import uuid
from typing import Any

import polars as pl
import pytest

from sf_assets.salesforce.bulk2 import query
from sf_assets.salesforce.writer import WriteError, WriteJob, WriteReport, lookup, write_batch
from sf_assets.specs import SyncSpec
from sf_assets.state import DuckDBStateStore, StateStore
from tests.salesforce.writer.test_writer import (
    APIS,
    CONTACT_FIELDS,
    FAST,
    LOG,
    calls_used,
    contacts,
    emails,
    mapped,
    salesforce,
    seed,
)

BATCH = "20261122-0930"
EXTERNAL_IDS = frozenset({"External_Id__c"})


@pytest.fixture
def staging(state_store: StateStore) -> StateStore:
    return state_store


@pytest.fixture
def info(sandbox: Any) -> dict[str, Any]:
    return sandbox.info()


def spec(operation: str = "upsert", api: str = "rest", **target: Any) -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": "fans",
            "source": {"duckdb": "warehouse.duckdb", "table": "crm.fans"},
            "target": {"object": "Contact", "operation": operation, "match_on": "Email", **target},
            "mapping": {"Email": "email", "LastName": "last_name"},
            "api": api,
        }
    )


def write(
    org: dict[str, Any], store: StateStore, sync: SyncSpec, frame: pl.DataFrame
) -> WriteReport:
    job = WriteJob(
        spec=sync,
        batch=BATCH,
        mapped=frame,
        salesforce=salesforce(org),
        staging=store,
        run_id=f"run-{uuid.uuid4().hex[:8]}",
        log=LOG,
        object_fields=CONTACT_FIELDS,
        options=FAST,
        external_ids=EXTERNAL_IDS,
    )
    return write_batch(job)


def by_email(keys: list[str], **columns: list[Any]) -> pl.DataFrame:
    return mapped(keys, match_on="Email", **columns)


def statuses(store: StateStore) -> dict[str, str]:
    return dict(store.latest_outcomes("fans", BATCH).select("source_key", "status").rows())


def names_by_email(http: Any) -> dict[str, str]:
    return {r["Email"]: r["LastName"] for r in contacts(http)}


@pytest.mark.parametrize("api", APIS)
def test_email_matches_update_and_new_emails_create(info, http, staging, api) -> None:
    seed(http, [{"LastName": "Old", "Email": e} for e in emails(5)])
    report = write(info, staging, spec(api=api), by_email(emails(8)))
    assert (report.created, report.updated, report.failed, report.not_found) == (3, 5, 0, 0)
    assert len(contacts(http)) == 8
    assert names_by_email(http)["fan0@example.com"] == "Last fan0@example.com"
    ledger = staging.latest_outcomes("fans", BATCH)
    assert set(ledger.filter(pl.col("status") == "updated")["operation"]) == {"update"}
    assert set(ledger.filter(pl.col("status") == "created")["operation"]) == {"insert"}


def test_email_differing_in_case_matches(info, http, staging) -> None:
    [record_id] = seed(http, [{"LastName": "Old", "Email": "fan@example.com"}])
    report = write(info, staging, spec(), by_email(["Fan@Example.COM"]))
    assert (report.created, report.updated) == (0, 1)
    assert len(contacts(http)) == 1
    assert staging.latest_outcomes("fans", BATCH)["target_id"].to_list() == [record_id]


@pytest.mark.parametrize("api", APIS)
def test_several_matches_fail_and_nothing_is_written_for_that_key(info, http, staging, api) -> None:
    twins = seed(http, [{"LastName": "Twin", "Email": "twin@example.com"}] * 2)
    seed(http, [{"LastName": "Old", "Email": "solo@example.com"}])
    report = write(info, staging, spec(api=api), by_email(["twin@example.com", "solo@example.com"]))
    assert (report.created, report.updated, report.failed) == (0, 1, 1)
    failure = report.failures.row(0, named=True)
    assert failure["error_code"] == "MULTIPLE_MATCHES"
    assert all(record_id in failure["error_message"] for record_id in twins)
    assert "duplicates" in failure["hint"]
    twin_names = [r["LastName"] for r in contacts(http) if r["Email"] == "twin@example.com"]
    assert twin_names == ["Twin", "Twin"]


@pytest.mark.parametrize("api", APIS)
def test_update_only_never_creates(info, http, staging, api) -> None:
    seed(http, [{"LastName": "Old", "Email": e} for e in emails(3)])
    report = write(info, staging, spec("update", api), by_email(emails(5)))
    assert (report.created, report.updated, report.not_found, report.failed) == (0, 3, 2, 0)
    assert len(contacts(http)) == 3
    assert statuses(staging)["fan4@example.com"] == "not_found"
    assert staging.batch_statuses("fans").select("batch", "status").rows() == [(BATCH, "written")]


def test_update_with_create_missing_creates(info, http, staging) -> None:
    seed(http, [{"LastName": "Old", "Email": "fan0@example.com"}])
    report = write(info, staging, spec("update", create_missing=True), by_email(emails(2)))
    assert (report.created, report.updated, report.not_found) == (1, 1, 0)


def test_upsert_on_an_external_id_stays_native(info, http, staging) -> None:
    sync = SyncSpec.model_validate(
        {
            "name": "fans",
            "source": {"duckdb": "warehouse.duckdb", "table": "crm.fans"},
            "target": {"object": "Contact", "match_on": "External_Id__c"},
            "mapping": {"External_Id__c": "key", "LastName": "last_name"},
            "api": "rest",
        }
    )
    before = calls_used(http)
    report = write(info, staging, sync, mapped(["a", "b"]))
    assert (report.created, calls_used(http) - before) == (2, 1)  # one upsert call, no lookup


@pytest.mark.parametrize("api", APIS)
def test_delete_removes_matches_and_records_missing_keys(info, http, staging, api) -> None:
    seed(http, [{"LastName": "Keep", "Email": f"keep{i}@example.com"} for i in range(30)])
    seed(http, [{"LastName": "Gone", "Email": e} for e in emails(2)])
    report = write(info, staging, spec("delete", api), by_email(emails(3)))
    assert (report.deleted, report.not_found, report.failed) == (2, 1, 0)
    assert {r["LastName"] for r in contacts(http)} == {"Keep"}
    assert sorted(statuses(staging).values()) == ["deleted", "deleted", "not_found"]


def test_delete_guard_refuses_above_the_share_before_deleting(info, http, staging) -> None:
    seed(http, [{"LastName": "Keep", "Email": f"keep{i}@example.com"} for i in range(8)])
    seed(http, [{"LastName": "Gone", "Email": e} for e in emails(2)])
    with pytest.raises(WriteError) as refused:
        write(info, staging, spec("delete"), by_email(emails(2)))
    message = str(refused.value)
    assert "would delete 2 of the 10 Contact records (20.0%)" in message
    assert "max_delete_share" in message
    assert len(contacts(http)) == 10
    report = write(info, staging, spec("delete", max_delete_share=0.2), by_email(emails(2)))
    assert report.deleted == 2
    assert len(contacts(http)) == 8


@pytest.mark.parametrize("operation", ["upsert", "update", "delete"])
def test_a_rerun_sends_nothing_and_calls_nothing(info, http, staging, operation) -> None:
    seed(http, [{"LastName": "Keep", "Email": f"keep{i}@example.com"} for i in range(40)])
    seed(http, [{"LastName": "Old", "Email": e} for e in emails(2)])
    frame = by_email(emails(3))
    write(info, staging, spec(operation), frame)
    count = len(contacts(http))
    before = calls_used(http)
    report = write(info, staging, spec(operation), frame)
    assert (report.already_written, report.sent, calls_used(http) - before) == (3, 0, 0)
    assert len(contacts(http)) == count


def test_a_bulk_query_lookup_matches_like_in_lists(info, http, tmp_path, monkeypatch) -> None:
    """Large key sets are looked up with one Bulk query job reading the object: the same
    records must match (case-insensitively), twins must fail and missing keys stay not found."""
    seed(http, [{"LastName": "Old", "Email": e} for e in emails(6)])
    seed(http, [{"LastName": "Twin", "Email": "twin@example.com"}] * 2)
    seed(http, [{"LastName": "Other", "Email": f"other{i}@example.com"} for i in range(20)])
    seed(http, [{"LastName": "NoEmail"}])
    keys = ["FAN0@example.com", "Fan1@Example.Com", *emails(8)[2:], "twin@example.com"]
    bulk_jobs: list[int] = []
    spied = lookup.bulk_records

    def counting(*args: Any) -> pl.DataFrame:
        bulk_jobs.append(1)
        return spied(*args)

    monkeypatch.setattr(lookup, "bulk_records", counting)
    monkeypatch.setattr(query, "PAGE_RECORDS", 7)  # several result pages
    results = []
    for threshold in (10**9, 1):
        monkeypatch.setattr(lookup, "BULK_LOOKUP_KEYS", threshold)
        store = DuckDBStateStore(path=str(tmp_path / f"staging-{threshold}.duckdb"))
        report = write(info, store, spec("update"), by_email(keys))
        ledger = store.latest_outcomes("fans", BATCH).sort("source_key")
        outcome = ledger.select("source_key", "status", "target_id", "error_code", "error_message")
        results.append(((report.updated, report.not_found, report.failed), outcome))
    assert bulk_jobs == [1]
    (in_lists, in_list_ledger), (bulk, bulk_ledger) = results
    assert in_lists == bulk == (6, 2, 1)
    assert in_list_ledger.equals(bulk_ledger)
    assert "MULTIPLE_MATCHES" in bulk_ledger["error_code"].to_list()
