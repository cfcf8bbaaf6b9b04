"""A write killed (SIGKILL, from outside) at any step is finished by the next run exactly once,
and a third run sends nothing: for inserts, upserts by external id, updates and deletes by
lookup, through REST and Bulk.

The first write runs in a worker process (tests/worker.py) against the sandbox org over HTTPS,
with latency on every call so that each step lasts long enough to be caught. The test watches
the org (calls arriving, job states) and kills the process at the step; for a kill while the
ledger is committed it holds the state file itself, so the worker is stuck at the commit when
it dies. The next runs happen in this process. Inserts match on Email, which is not unique, so
a row sent twice shows up as a duplicate record.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from sf_assets.specs import SyncSpec
from sf_assets.state import StateStore
from tests.salesforce.writer.test_writer import (
    CONTACT_FIELDS,
    FAST,
    contacts,
    emails,
    keys,
    mapped,
    seed,
    write,
)
from tests.state.backends import store_spec, writes_held
from tests.worker import Worker, WorkerPool

BATCH = "20261122-0930"
LATENCY_MS = 300
ROWS = {"rest": 450, "bulk": 300}  # REST: three collections calls (200, 200, 50)
REST_STEPS = ["job_created", "during_upload", "after_close", "ledger_commit"]
BULK_STEPS = ["job_created", "during_upload", "after_close", "before_results", "ledger_commit"]
OPERATIONS = ["insert", "upsert", "update", "delete"]


def sync(operation: str, api: str) -> SyncSpec:
    match_on = "External_Id__c" if operation == "upsert" else "Email"
    target: dict[str, Any] = {"object": "Contact", "operation": operation, "match_on": match_on}
    if operation == "delete":
        target["max_delete_share"] = 1.0
    return SyncSpec.model_validate(
        {
            "name": "fans",
            "source": {"duckdb": "warehouse.duckdb", "table": "crm.fans"},
            "target": target,
            "mapping": {match_on: "key", "LastName": "last_name"},
            "api": api,
        }
    )


@dataclass
class Case:
    """One operation: the batch, what the org holds before, and what it must hold after."""

    spec: SyncSpec
    frame: pl.DataFrame
    expect: Callable[[list[dict[str, Any]]], None]
    external_ids: list[str] | None = None


def case(operation: str, api: str, http: Any) -> Case:
    n = ROWS[api]
    spec = sync(operation, api)
    if operation == "insert":
        frame = mapped(emails(n), match_on="Email")

        def expect(records: list[dict[str, Any]]) -> None:
            assert sorted(r["Email"] for r in records) == sorted(emails(n))

        return Case(spec, frame, expect)
    if operation == "upsert":
        seed(http, [{"LastName": "Old", "External_Id__c": k} for k in keys(n)[::2]])
        frame = mapped(keys(n))

        def expect(records: list[dict[str, Any]]) -> None:
            assert sorted(r["External_Id__c"] for r in records) == keys(n)
            assert {r["LastName"] for r in records} == {f"Last {k}" for k in keys(n)}

        return Case(spec, frame, expect, external_ids=["External_Id__c"])
    seed(http, [{"LastName": "Old", "Email": e} for e in emails(n)])
    seed(http, [{"LastName": "Keep", "Email": f"keep{i}@example.com"} for i in range(5)])
    frame = mapped(emails(n), match_on="Email")
    if operation == "update":

        def expect(records: list[dict[str, Any]]) -> None:
            names = collections.Counter((r["Email"], r["LastName"]) for r in records)
            assert names == collections.Counter(
                [(e, f"Last {e}") for e in emails(n)]
                + [(f"keep{i}@example.com", "Keep") for i in range(5)]
            )

        return Case(spec, frame, expect)

    def expect_deleted(records: list[dict[str, Any]]) -> None:
        assert sorted(r["Email"] for r in records) == [f"keep{i}@example.com" for i in range(5)]

    return Case(spec, frame, expect_deleted)


# -- watching the org and the state file from outside --------------------------------------------


def calls(http: Any, resource: str) -> int:
    return http.admin("GET", "calls")["by_resource"].get(resource, 0)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the write never reached {what}")
        time.sleep(0.01)


def ingest_job_complete(http: Any) -> bool:
    jobs = http.call("GET", "jobs/ingest").json()["records"]
    return any(job["state"] == "JobComplete" for job in jobs)


def kill_at(step: str, api: str, worker: Worker, http: Any, state: StateStore) -> None:
    """Wait until the write reaches `step`, then SIGKILL it."""
    resource = "jobs" if api == "bulk" else "composite"
    base = calls(http, resource)
    latency = LATENCY_MS / 1000
    arrived = {"job_created": 1, "during_upload": 2, "after_close": 3 if api == "rest" else 4}
    if step in arrived:
        # REST: the first, second or last collections call is in flight. Bulk: the job's
        # create is in flight, its upload is in flight, or it was closed (first poll arrived).
        wait_for(lambda: calls(http, resource) >= base + arrived[step], step)
        worker.kill()
        return
    if api == "rest":  # ledger_commit: every call answered, the commit waits for the store
        wait_for(lambda: calls(http, resource) >= base + 3, "the last call")
        with writes_held(state):
            time.sleep(latency + 1.0)
            worker.kill()
        return
    wait_for(lambda: ingest_job_complete(http), "a completed Bulk job")
    if step == "before_results":
        worker.kill()
        return
    with writes_held(state):  # results read, the commit waits for the store
        time.sleep(3 * latency + 1.0)
        worker.kill()


def crash_while_writing(
    tmp_path: Path, workers: WorkerPool, info: dict[str, Any], state: StateStore, case: Case
) -> Worker:
    frame_file = tmp_path / f"mapped-{uuid.uuid4().hex}.parquet"
    case.frame.write_parquet(frame_file)
    worker = workers.take()
    worker.start(
        "write",
        spec=case.spec.model_dump(),
        batch=BATCH,
        frame=str(frame_file),
        state=store_spec(state),
        info=info,
        options=FAST.__dict__,
        object_fields=CONTACT_FIELDS,
        run_id=f"crashed-{uuid.uuid4().hex[:8]}",
        external_ids=case.external_ids,
    )
    return worker


def assert_settled(staging: StateStore, case: Case) -> None:
    latest = staging.latest_outcomes("fans", BATCH)
    assert sorted(latest["source_key"]) == sorted(case.frame["_key"])
    assert not latest["status"].is_in(["failed", "not_sent"]).any(), latest
    assert staging.open_jobs("fans", BATCH) == []
    statuses = staging.batch_statuses("fans")
    assert statuses.select("batch", "status").rows() == [(BATCH, "written")]
    assert staging.current_lease("fans", BATCH) is None


# Every case on the DuckDB file; on PostgreSQL the most telling ones: an insert (what a lost
# answer would duplicate) killed while its data is in flight and while its commit waits, by REST
# and by Bulk.
POSTGRES_CRASHES = [
    ("insert", "rest", "during_upload"),
    ("insert", "rest", "ledger_commit"),
    ("insert", "bulk", "after_close"),
    ("insert", "bulk", "ledger_commit"),
]
CRASHES = [
    (operation, api, step, "duckdb")
    for operation in OPERATIONS
    for api, steps in (("rest", REST_STEPS), ("bulk", BULK_STEPS))
    for step in steps
] + [(*crash, "postgres") for crash in POSTGRES_CRASHES]


@pytest.mark.parametrize(
    ("operation", "api", "step", "state_store"), CRASHES, indirect=["state_store"]
)
def test_a_write_killed_at_any_step_is_finished_exactly_once(
    tmp_path, sandbox, http, state_store, workers, operation, api, step
) -> None:
    info = sandbox.info()
    written = case(operation, api, http)
    http.admin("PATCH", "faults", json={"latency_ms": LATENCY_MS})
    worker = crash_while_writing(tmp_path, workers, info, state_store, written)
    kill_at(step, api, worker, http, state_store)
    http.admin("PATCH", "faults", json={"latency_ms": 0})

    rerun = write(info, state_store, written.spec, written.frame, batch=BATCH)
    assert rerun.status == "written"
    written.expect(contacts(http))
    assert_settled(state_store, written)

    before = {r: calls(http, r) for r in ("composite", "jobs", "sobjects")}
    third = write(info, state_store, written.spec, written.frame, batch=BATCH)
    assert (third.sent, third.api_calls) == (0, 0)
    assert {r: calls(http, r) for r in before} == before
    written.expect(contacts(http))


def test_a_key_reused_from_an_earlier_batch_is_not_lost_after_a_crash(
    tmp_path, sandbox, http, state_store, workers
) -> None:
    """Batch 2 holds the 1,500 e-mail addresses batch 1 created, under new keys (a second
    ticket each). The write of batch 2 is killed after its first 200 rows: the next run must
    not take batch 1's records for batch 2's, and ends with both batches in the org."""
    info = sandbox.info()
    addresses = emails(1500)
    insert = sync("insert", "rest")
    first = mapped([f"t1-{i}" for i in range(1500)], match_on="Email").with_columns(
        pl.Series("Email", addresses)
    )
    assert write(info, state_store, insert, first, batch="b1").created == 1500
    second = first.with_columns(pl.Series("_key", [f"t2-{i}" for i in range(1500)]))
    http.admin("PATCH", "faults", json={"latency_ms": LATENCY_MS})
    frame_file = tmp_path / "second.parquet"
    second.write_parquet(frame_file)
    worker = workers.take()
    worker.start(
        "write",
        spec=insert.model_dump(),
        batch="b2",
        frame=str(frame_file),
        state=store_spec(state_store),
        info=info,
        options=FAST.__dict__,
        object_fields=CONTACT_FIELDS,
        run_id="killed-after-200",
    )
    wait_for(lambda: http.admin("GET", "records/Contact/count")["count"] >= 1700, "200 rows")
    worker.kill()
    http.admin("PATCH", "faults", json={"latency_ms": 0})
    assert 1700 <= len(contacts(http)) < 3000

    rerun = write(info, state_store, insert, second, batch="b2")
    records = contacts(http)
    assert len(records) == 3000
    assert set(collections.Counter(r["Email"] for r in records).values()) == {2}
    b1 = state_store.latest_outcomes("fans", "b1")
    b2 = state_store.latest_outcomes("fans", "b2")
    assert b2.height == 1500 and set(b2["status"]) == {"created"}
    assert set(b1["target_id"]).isdisjoint(b2["target_id"])
    assert set(b1["target_id"]) | set(b2["target_id"]) == {r["Id"] for r in records}
    assert rerun.status == "written"


def test_a_key_in_two_batches_creates_one_record(sandbox, http, state_store) -> None:
    info = sandbox.info()
    insert = sync("insert", "rest")
    first = write(info, state_store, insert, mapped(emails(3), match_on="Email"), batch="b1")
    both = emails(5)[2:]  # fan2 is in both batches
    second = write(info, state_store, insert, mapped(both, match_on="Email"), batch="b2")
    assert (first.created, second.created, second.skipped) == (3, 2, 1)
    assert sorted(r["Email"] for r in contacts(http)) == sorted(emails(5))
    [skipped] = (
        state_store.latest_outcomes("fans", "b2").filter(pl.col("status") == "skipped").to_dicts()
    )
    created = state_store.latest_outcomes("fans", "b1").filter(
        pl.col("source_key") == "fan2@example.com"
    )
    assert skipped["source_key"] == "fan2@example.com"
    assert skipped["target_id"] == created["target_id"][0]
    assert skipped["error_code"] == "ALREADY_CREATED" and "batch b1" in skipped["error_message"]
    assert state_store.batch_statuses("fans").sort("batch")["status"].to_list() == [
        "written",
        "written",
    ]
