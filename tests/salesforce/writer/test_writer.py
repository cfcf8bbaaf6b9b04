"""The writer against the sandbox org over HTTPS: REST and Bulk, every operation, per-row
failures, null handling, value formatting, and the faults a production org throws at it."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from resources.salesforce import SalesforceResource
from sf_assets.cli.local_org import salesforce_resource
from sf_assets.salesforce.writer import (
    BulkJobFailed,
    DailyApiLimitExceeded,
    WriteError,
    WriteJob,
    WriteOptions,
    WriteReport,
    write_batch,
)
from sf_assets.specs import SyncSpec
from sf_assets.state import DuckDBStateStore, StateStore
from tests.state.backends import every_value

APIS = ["rest", "bulk"]
CONTACT_FIELDS = {
    "Id": "id",
    "LastName": "string",
    "FirstName": "string",
    "Email": "email",
    "Title": "string",
    "Phone": "phone",
    "Birthdate": "date",
    "HasOptedOutOfEmail": "boolean",
    "External_Id__c": "string",
    "Ticket_Count__c": "double",
    "Lifetime_Value__c": "currency",
    "Last_Purchase__c": "datetime",
    "Fan_Tier__c": "picklist",
    "Account.External_Id__c": "reference",
}
FAST = WriteOptions(
    poll_seconds=0.05,
    max_poll_seconds=0.05,
    retry_attempts=8,
    retry_seconds=30,
    retry_initial_seconds=0.05,
    retry_max_seconds=0.3,
    lock_retries=6,
)
LOG = logging.getLogger("sf_assets.test.writer")


# -- helpers (the exactly-once tests use them too) ------------------------------------------------


def salesforce(info: dict[str, Any]) -> SalesforceResource:
    return salesforce_resource(info)


def spec(
    operation: str = "upsert",
    api: str = "rest",
    match_on: str = "External_Id__c",
    null_values: str = "clear",
    name: str = "fans",
    parallel_calls: int = 5,
) -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": name,
            "source": {"duckdb": "warehouse.duckdb", "table": "crm.fans"},
            "target": {"object": "Contact", "operation": operation, "match_on": match_on},
            "mapping": {match_on: "key", "LastName": "last_name"},
            "api": api,
            "null_values": null_values,
            "rest_parallel_calls": parallel_calls,
        }
    )


def mapped(keys: list[str], match_on: str = "External_Id__c", **columns: list[Any]) -> pl.DataFrame:
    """A mapped frame keyed by `keys`; LastName defaults to one per key."""
    data: dict[str, Any] = {
        "_row": list(range(1, len(keys) + 1)),
        "_key": keys,
        "_hash": [f"h-{k}" for k in keys],
        match_on: keys,
        "LastName": [f"Last {k}" for k in keys],
        **columns,
    }
    return pl.DataFrame(data, schema_overrides={"_row": pl.Int64})


def keys(n: int, prefix: str = "k") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def emails(n: int) -> list[str]:
    return [f"fan{i}@example.com" for i in range(n)]


def write(
    info: dict[str, Any],
    staging: StateStore,
    sync: SyncSpec,
    frame: pl.DataFrame,
    *,
    batch: str = "20261122-0930",
    options: WriteOptions = FAST,
    resource: SalesforceResource | None = None,
) -> WriteReport:
    job = WriteJob(
        spec=sync,
        batch=batch,
        mapped=frame,
        salesforce=resource or salesforce(info),
        staging=staging,
        run_id=f"run-{uuid.uuid4().hex[:8]}",
        log=LOG,
        object_fields=CONTACT_FIELDS,
        options=options,
    )
    return write_batch(job)


def contacts(http: Any) -> list[dict[str, Any]]:
    return http.admin("GET", "records/Contact")


def seed(http: Any, records: list[dict[str, Any]]) -> list[str]:
    """Records created without spending API calls; returns their ids."""
    return [row["id"] for row in http.admin("POST", "records/Contact", json=records)]


def calls_used(http: Any) -> int:
    return http.admin("GET", "calls")["total"]


def status(staging: StateStore, batch: str = "20261122-0930") -> tuple[str, int] | None:
    """The batch's recorded status and its count of unwritten rows, if its write finished."""
    found = staging.batch_statuses("fans").filter(pl.col("batch") == batch)
    return (found["status"][0], found["refused"][0]) if found.height else None


def faults(http: Any, **settings: Any) -> None:
    http.admin("PATCH", "faults", json=settings)


@pytest.fixture
def staging(state_store: StateStore) -> StateStore:
    return state_store


@pytest.fixture
def info(sandbox: Any) -> dict[str, Any]:
    return sandbox.info()


# -- operations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_insert_creates_every_row_and_records_target_ids(info, http, staging, api) -> None:
    frame = mapped(keys(450))
    report = write(info, staging, spec("insert", api), frame)
    assert (report.api, report.rows_in, report.sent) == (api, 450, 450)
    assert (report.created, report.updated, report.failed) == (450, 0, 0)
    stored = {r["External_Id__c"]: r["Id"] for r in contacts(http)}
    ledger = staging.latest_outcomes("fans", "20261122-0930")
    assert dict(ledger.select("source_key", "target_id").rows()) == stored
    assert set(ledger["status"]) == {"created"}
    assert set(ledger["content_hash"]) == {f"h-{k}" for k in keys(450)}
    assert status(staging) == ("written", 0) and report.status == "written"
    assert (report.bulk_job_ids != []) == (api == "bulk")


@pytest.mark.parametrize("api", APIS)
def test_update_matches_on_id(info, http, staging, api) -> None:
    ids = seed(http, [{"LastName": f"Old {i}"} for i in range(30)])
    frame = mapped(ids, match_on="Id").with_columns(pl.lit("Renamed").alias("LastName"))
    report = write(info, staging, spec("update", api, match_on="Id"), frame)
    assert (report.created, report.updated, report.failed) == (0, 30, 0)
    assert {r["LastName"] for r in contacts(http)} == {"Renamed"}
    ledger = staging.latest_outcomes("fans", "20261122-0930")
    assert sorted(ledger["target_id"]) == sorted(ids)


@pytest.mark.parametrize("api", APIS)
def test_upsert_tells_created_from_updated(info, http, staging, api) -> None:
    seed(http, [{"LastName": "Seeded", "External_Id__c": k} for k in keys(20)])
    report = write(info, staging, spec("upsert", api), mapped(keys(50)))
    assert (report.created, report.updated, report.failed) == (30, 20, 0)
    assert len(contacts(http)) == 50
    outcomes = staging.latest_outcomes("fans", "20261122-0930")
    updated = outcomes.filter(pl.col("status") == "updated")["source_key"].to_list()
    assert sorted(updated) == keys(20)


@pytest.mark.parametrize("api", APIS)
def test_a_rerun_sends_nothing_and_calls_nothing(info, http, staging, api) -> None:
    sync = spec("insert", api)
    write(info, staging, sync, mapped(keys(60)))
    before = calls_used(http)
    again = write(info, staging, sync, mapped(keys(60)))
    assert (again.sent, again.created, again.api_calls) == (0, 0, 0)
    assert again.already_written == 60
    assert calls_used(http) == before
    assert len(contacts(http)) == 60


@pytest.mark.parametrize("api", APIS)
def test_only_rows_not_yet_written_are_sent(info, http, staging, api) -> None:
    sync = spec("insert", api)
    first = write(info, staging, sync, mapped(keys(30)))
    assert first.created == 30
    report = write(info, staging, sync, mapped(keys(50)))
    assert (report.already_written, report.sent, report.created) == (30, 20, 20)
    assert len(contacts(http)) == 50


@pytest.mark.parametrize("api", APIS)
def test_row_failures_are_recorded_with_hints_while_other_rows_are_written(
    info, http, staging, api
) -> None:
    seed(http, [{"LastName": "Taken", "External_Id__c": "taken"}])
    frame = mapped(
        ["ok1", "missing", "long", "taken", "tier", "mail", "ok2"],
        LastName=["A", None, "x" * 81, "D", "E", "F", "G"],
        Fan_Tier__c=[None, None, None, None, "Diamond", None, "Gold"],
        Email=[None, None, None, None, None, "not-an-email", "g@example.com"],
    )
    report = write(info, staging, spec("insert", api), frame)
    assert (report.created, report.failed) == (2, 5)
    failures = {row["_key"]: row for row in report.failures.to_dicts()}
    assert {k: v["error_code"] for k, v in failures.items()} == {
        "missing": "REQUIRED_FIELD_MISSING",
        "long": "STRING_TOO_LONG",
        "taken": "DUPLICATE_VALUE",
        "tier": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "mail": "INVALID_EMAIL_ADDRESS",
    }
    assert failures["long"]["_row"] == 3
    assert all(v["error_message"] and v["hint"] for v in failures.values())
    assert "field-level" not in failures["missing"]["hint"]
    assert {r["External_Id__c"] for r in contacts(http)} == {"taken", "ok1", "ok2"}
    # Refused rows leave the batch incomplete: the sensor asks for it again.
    assert status(staging) == ("incomplete", 5) and (report.status, report.refused) == (
        "incomplete",
        5,
    )


@pytest.mark.parametrize("api", APIS)
def test_null_clears_a_field_or_leaves_it(info, http, staging, api) -> None:
    seed(
        http,
        [
            {"LastName": "L", "Title": "CEO", "Phone": "123", "External_Id__c": k}
            for k in ("a", "b")
        ],
    )
    frame = mapped(["a", "b"], Title=[None, "CFO"], Phone=[None, None])
    write(info, staging, spec("upsert", api, null_values="clear", name="clearing"), frame)
    after_clear = {r["External_Id__c"]: r for r in contacts(http)}
    assert (after_clear["a"]["Title"], after_clear["a"]["Phone"]) == (None, None)
    assert after_clear["b"]["Title"] == "CFO"

    seed(
        http,
        [{"LastName": "L", "Title": "CEO", "Phone": "123", "External_Id__c": k} for k in ("c",)],
    )
    frame = mapped(["c"], Title=[None], Phone=["999"])
    write(info, staging, spec("upsert", api, null_values="ignore", name="ignoring"), frame)
    kept = next(r for r in contacts(http) if r["External_Id__c"] == "c")
    assert (kept["Title"], kept["Phone"]) == ("CEO", "999")


@pytest.mark.parametrize("api", APIS)
def test_values_are_formatted_for_salesforce(info, http, staging, api) -> None:
    http.admin("POST", "records/Account", json=[{"Name": "Parent", "External_Id__c": "acc-1"}])
    frame = mapped(
        ["v1", "v2"],
        HasOptedOutOfEmail=[True, False],
        Birthdate=[date(1990, 1, 31), date(2001, 12, 1)],
        Last_Purchase__c=[
            datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC),
            datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC),
        ],
        Ticket_Count__c=[3.0, 1e15],
        Lifetime_Value__c=[1234.56, 0.1],
        LastName=['Ünïcødé, "quoted"', "line\nbreak"],
        **{"Account.External_Id__c": ["acc-1", None]},
    )
    report = write(info, staging, spec("insert", api), frame)
    assert report.created == 2, report.failures
    account_id = http.admin("GET", "records/Account")[0]["Id"]
    stored = {r["External_Id__c"]: r for r in contacts(http)}
    assert (
        stored["v1"]["HasOptedOutOfEmail"] is True and stored["v2"]["HasOptedOutOfEmail"] is False
    )
    assert (stored["v1"]["Birthdate"], stored["v2"]["Birthdate"]) == ("1990-01-31", "2001-12-01")
    assert stored["v1"]["Last_Purchase__c"] == "2024-05-06T07:08:09.123+0000"
    assert stored["v2"]["Last_Purchase__c"] == "2024-12-31T23:59:59.000+0000"
    assert (stored["v1"]["Ticket_Count__c"], stored["v2"]["Ticket_Count__c"]) == (3.0, 1e15)
    assert (stored["v1"]["Lifetime_Value__c"], stored["v2"]["Lifetime_Value__c"]) == (1234.56, 0.1)
    assert (
        stored["v1"]["LastName"] == 'Ünïcødé, "quoted"'
        and stored["v2"]["LastName"] == "line\nbreak"
    )
    assert stored["v1"]["AccountId"] == account_id and stored["v2"]["AccountId"] is None


def test_auto_picks_rest_for_a_small_batch(info, staging) -> None:
    report = write(info, staging, spec("insert", "auto"), mapped(keys(10)))
    assert report.api == "rest" and report.bulk_job_ids == []


def test_auto_switches_to_bulk_at_the_spec_s_bulk_from_rows(info, staging) -> None:
    sync = spec("insert", "auto").model_copy(update={"bulk_from_rows": 10})
    assert write(info, staging, sync, mapped(keys(9))).api == "rest"
    report = write(info, staging, sync.model_copy(update={"name": "other"}), mapped(keys(10)))
    assert report.api == "bulk" and len(report.bulk_job_ids) == 1


def test_bulk_splits_uploads_larger_than_the_limit(info, http, staging) -> None:
    options = WriteOptions(**{**FAST.__dict__, "bulk_max_bytes": 2_000})
    report = write(info, staging, spec("insert", "bulk"), mapped(keys(300)), options=options)
    assert len(report.bulk_job_ids) >= 3
    assert report.created == 300 and len(contacts(http)) == 300
    assert staging.jobs("fans")["key_count"].sum() == 300


# -- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [1, 3])
def test_collections_calls_go_side_by_side_up_to_the_spec_s_parallel_calls(
    info, http, staging, parallel
) -> None:
    """The org acts on each call and keeps its answer back: the calls the writer has in
    flight at once are exactly the ones held, so the count is not a matter of timing."""
    hold = {"path_contains": "composite/sobjects", "method": "POST"}
    faults(http, hold_answers=hold)
    done: list[WriteReport] = []
    writing = threading.Thread(
        target=lambda: done.append(
            write(
                info, staging, spec("insert", "rest", parallel_calls=parallel), mapped(keys(1000))
            )
        )
    )
    writing.start()
    try:
        deadline = time.monotonic() + 20
        while http.admin("GET", "faults")["hold_answers"]["held"] < parallel:
            assert time.monotonic() < deadline, "the writer never had its calls in flight"
            time.sleep(0.02)
        time.sleep(0.5)  # a call beyond the limit would be held by now too
        in_flight = http.admin("GET", "faults")["hold_answers"]["held"]
    finally:
        faults(http, hold_answers=None)
        writing.join(30)
    assert in_flight == parallel
    [report] = done
    assert report.created == 1000 and report.api_calls == 5  # calls of every thread count
    assert sorted(r["External_Id__c"] for r in contacts(http)) == keys(1000)


def test_concurrent_request_limit_is_retried_until_the_batch_completes(
    info, http, staging, caplog
) -> None:
    faults(http, concurrent_request_limit=1, latency_ms=150)

    def hold_the_slot() -> None:
        """Keep the org's one slot busy until the write has been refused at least once."""
        deadline = time.monotonic() + 30
        while "REQUEST_LIMIT_EXCEEDED" not in caplog.text and time.monotonic() < deadline:
            http.call("GET", "limits")

    with caplog.at_level(logging.WARNING, logger=LOG.name):
        other = threading.Thread(target=hold_the_slot)
        other.start()
        while http.admin("GET", "calls")["in_flight"] == 0:
            time.sleep(0.005)
        report = write(info, staging, spec("insert", "rest"), mapped(keys(400)))
    other.join()
    assert report.created == 400 and len(contacts(http)) == 400
    assert "REQUEST_LIMIT_EXCEEDED" in caplog.text


def test_daily_limit_stops_with_a_clear_error_and_a_later_run_finishes_exactly_once(
    info, http, staging
) -> None:
    sync = spec("insert", "rest")
    frame = mapped(keys(1000))
    faults(http, daily_api_limit=calls_used(http) + 3)
    with pytest.raises(DailyApiLimitExceeded) as stopped:
        write(info, staging, sync, frame)
    text = str(stopped.value)
    assert "daily API allocation" in text and "24-hour" in text
    assert "600 rows were written" in text and "400 rows" in text
    assert stopped.value.report is not None and stopped.value.report.created == 600
    assert len(contacts(http)) == 600
    assert staging.successful_keys("fans", "20261122-0930").len() == 600
    assert status(staging) is None

    faults(http, daily_api_limit=15000)
    report = write(info, staging, sync, frame)
    assert (report.already_written, report.sent, report.created) == (600, 400, 400)
    assert sorted(r["External_Id__c"] for r in contacts(http)) == keys(1000)
    assert status(staging) == ("written", 0)


def test_daily_limit_during_a_bulk_job_is_resumed_from_the_job(info, http, staging) -> None:
    sync = spec("insert", "bulk")
    frame = mapped(keys(200))
    faults(http, daily_api_limit=calls_used(http) + 4)  # create, upload, close, one poll
    with pytest.raises(DailyApiLimitExceeded) as stopped:
        write(info, staging, sync, frame)
    [job] = staging.open_jobs("fans", "20261122-0930")
    # The rows are in the job Salesforce may have processed: not called "not written".
    message = str(stopped.value)
    assert f"200 rows went to Salesforce in bulk write {job.job_id}" in message
    assert "0 rows of batch 20261122-0930 are not sent yet" in message

    faults(http, daily_api_limit=15000)
    report = write(info, staging, sync, frame)
    assert report.bulk_job_ids == [job.job_id] and report.sent == 0
    assert report.created == 200
    assert sorted(r["External_Id__c"] for r in contacts(http)) == keys(200)
    assert staging.open_jobs("fans", "20261122-0930") == []


@pytest.mark.parametrize("api", APIS)
def test_expired_sessions_log_in_again_and_complete(info, http, staging, api, caplog) -> None:
    faults(http, expire_sessions_after_calls=2)
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        report = write(info, staging, spec("insert", api), mapped(keys(700)))
    assert report.created == 700 and len(contacts(http)) == 700
    assert "logging in again" in caplog.text


@pytest.mark.parametrize("api", APIS)
def test_server_unavailable_is_retried(info, http, staging, api) -> None:
    faults(http, server_unavailable_next=3)
    report = write(info, staging, spec("insert", api), mapped(keys(250)))
    assert report.created == 250 and len(contacts(http)) == 250


@pytest.mark.parametrize("api", APIS)
def test_locked_rows_are_retried_alone(info, http, staging, api) -> None:
    faults(http, lock_row_rate=0.2, seed=5)
    report = write(info, staging, spec("insert", api), mapped(keys(300)))
    assert report.created == 300 and len(contacts(http)) == 300
    assert report.failed == 0  # a locked key's later success is its outcome in the report
    ledger = staging.ledger("fans", "20261122-0930")
    locked = ledger.filter(pl.col("error_code") == "UNABLE_TO_LOCK_ROW")
    assert 20 < locked["source_key"].n_unique() < 120
    retried = ledger.filter(pl.col("attempt") > 1)
    assert set(retried["source_key"]) == set(locked["source_key"])  # only those were resent
    assert set(staging.latest_outcomes("fans", "20261122-0930")["status"]) == {"created"}


def test_a_lost_insert_answer_creates_no_duplicates(info, http, staging) -> None:
    """Email is not unique, so a blind resend would create every record of the chunk twice."""
    faults(
        http, lose_responses={"path_contains": "composite/sobjects", "method": "POST", "count": 1}
    )
    frame = mapped(emails(450), match_on="Email")
    report = write(info, staging, spec("insert", "rest", match_on="Email"), frame)
    stored = [r["Email"] for r in contacts(http)]
    assert sorted(stored) == sorted(emails(450))
    assert report.created == 450
    assert http.admin("GET", "faults")["lose_responses"]["count"] == 0  # the answer was lost


def test_a_lost_insert_answer_sends_only_rows_not_created(info, http, staging) -> None:
    """The lost call failed some rows: those are sent again, the created ones are not."""
    faults(
        http, lose_responses={"path_contains": "composite/sobjects", "method": "POST", "count": 1}
    )
    frame = mapped(emails(5), match_on="Email", LastName=["A", None, "C", "D", "E"])
    report = write(info, staging, spec("insert", "rest", match_on="Email"), frame)
    assert sorted(r["Email"] for r in contacts(http)) == sorted(
        e for i, e in enumerate(emails(5)) if i != 1
    )
    assert (report.created, report.failed) == (4, 1)
    assert report.failures["error_code"].to_list() == ["REQUIRED_FIELD_MISSING"]


def test_a_lost_upsert_answer_is_sent_again_safely(info, http, staging) -> None:
    faults(
        http,
        lose_responses={
            "path_contains": "composite/sobjects/Contact",
            "method": "PATCH",
            "count": 1,
        },
    )
    report = write(info, staging, spec("upsert", "rest"), mapped(keys(300)))
    assert sorted(r["External_Id__c"] for r in contacts(http)) == keys(300)
    assert report.created + report.updated == 300 and report.failed == 0


def test_a_failed_bulk_job_is_recorded_and_its_rows_are_not_marked_written(
    info, http, staging
) -> None:
    faults(http, fail_bulk_jobs="InvalidBatch : simulated outage")
    sync = spec("insert", "bulk")
    with pytest.raises(BulkJobFailed, match="simulated outage") as failed:
        write(info, staging, sync, mapped(keys(40)))
    assert failed.value.report is not None and failed.value.report.created == 0
    ledger = staging.latest_outcomes("fans", "20261122-0930")
    assert set(ledger["status"]) == {"not_sent"} and ledger.height == 40
    assert set(ledger["error_code"]) == {"BULK_JOB_FAILED"}
    assert staging.successful_keys("fans", "20261122-0930").len() == 0
    assert status(staging) is None and contacts(http) == []

    faults(http, fail_bulk_jobs=None)
    report = write(info, staging, sync, mapped(keys(40)))
    assert report.created == 40 and len(contacts(http)) == 40


def test_a_broken_upload_goes_to_a_new_job_never_twice_into_one(info, http, staging) -> None:
    faults(http, drop_upload_after_bytes=500)
    sync = spec("insert", "bulk")
    with pytest.raises(WriteError, match="broke off"):
        write(info, staging, sync, mapped(keys(100)))
    jobs = staging.jobs("fans")
    assert len(jobs) == 3 and set(jobs["state"]) == {"Aborted"}
    assert contacts(http) == []

    faults(http, drop_upload_after_bytes=None)
    report = write(info, staging, sync, mapped(keys(100)))
    assert report.created == 100 and len(contacts(http)) == 100


# -- secrets --------------------------------------------------------------------------------------


def test_no_secret_reaches_staging_logs_or_errors(info, http, staging, caplog) -> None:
    resource = salesforce(info)
    first_session = resource.client().session_id
    faults(http, expire_sessions_after_calls=2)
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        write(info, staging, spec("insert", "rest"), mapped(keys(500)), resource=resource)
        write(
            info,
            staging,
            spec("insert", "bulk", name="bulky"),
            mapped(keys(50), LastName=[None] * 50),
            resource=resource,
        )
        faults(http, daily_api_limit=calls_used(http) + 1)
        with pytest.raises(DailyApiLimitExceeded) as stopped:
            write(
                info,
                staging,
                spec("upsert", "rest", name="late"),
                mapped(keys(500)),
                resource=resource,
            )
        texts += [str(stopped.value), repr(stopped.value)]
    secrets = {
        "password": info["password"],
        "security token": info["security_token"],
        "first session id": first_session,
        "last session id": resource.client().session_id,
    }
    assert secrets["first session id"] != secrets["last session id"]  # it logged in again
    texts.append(caplog.text)
    texts += every_value(staging)
    for name, secret in secrets.items():
        assert all(secret not in text for text in texts), f"the {name} leaked"
    if isinstance(staging, DuckDBStateStore):
        raw = Path(staging.path).read_bytes()
        for name, secret in secrets.items():
            assert secret.encode() not in raw, f"the {name} is in the staging file"
