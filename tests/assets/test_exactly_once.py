"""Every batch written exactly once, whatever runs at the same time: runs of whole jobs in real
processes (tests/worker.py) against one Dagster instance, one state file and the sandbox org
over HTTPS.

- Two processes materialize the same partition at once (the second 0.1, 0.5 or 2 s later):
  every source row reaches the org once, and the run that lost the batch's lease fails naming
  the run that holds it. The org answers slowly (latency on every call) so that the writes
  overlap; the Emarsys endpoint has no latency, so its upload is held by a relay in front of
  it until the other run has met the lease.
- A run killed (SIGKILL) while staging, mapping or writing is finished by the next run, and a
  third run sends nothing.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef

from sf_assets.definitions import build_definitions
from sf_assets.specs import load_specs
from sf_assets.state import DuckDBStateStore, PostgresStateStore, StateStore
from tests.salesforce.writer.test_exactly_once import calls, wait_for
from tests.state.backends import writes_held
from tests.worker import Worker, WorkerPool

SYNC = "fans"
BATCH = "b1"
COLUMNS = ["key", "last_name", "_BATCH_ID_"]


@dataclass
class Project:
    root: Path
    env: dict[str, str]
    instance: dg.DagsterInstance
    home: Path

    def store(self) -> StateStore:
        """The state store the runs use: the PostgreSQL database when the project has one."""
        if "SF_ASSETS_STATE_URL" in self.env:
            return PostgresStateStore(url=self.env["SF_ASSETS_STATE_URL"])
        return DuckDBStateStore(path=self.env["SF_ASSETS_STAGING"])


@pytest.fixture
def project(
    request: pytest.FixtureRequest, tmp_path: Path, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A project folder on the sandbox org; its state in a DuckDB file, or in PostgreSQL when
    the test asks for `project` with the parameter "postgres"."""
    info = sandbox.info()
    (tmp_path / "syncs").mkdir()
    env = {
        "SF_LOGIN_URL": info["login_url"],
        "SF_USERNAME": info["username"],
        "SF_PASSWORD": info["password"],
        "SF_SECURITY_TOKEN": info["security_token"],
        "SF_CA_BUNDLE": info["ca_bundle"],
        "EMARSYS_URL": info["emarsys_url"],
        "EMARSYS_TOKEN": info["emarsys_token"],
        "EMARSYS_MERCHANT_ID": info["merchant_id"],
        "EMARSYS_CA_BUNDLE": info["ca_bundle"],
        "SF_ASSETS_STAGING": str(tmp_path / "staging.duckdb"),
        "SF_ASSETS_SYNCS_DIR": str(tmp_path / "syncs"),
        "SF_ASSETS_LEASE_WAIT_SECONDS": "0",  # the loser fails at once, naming the holder
    }
    if getattr(request, "param", "duckdb") == "postgres":
        env["SF_ASSETS_STATE_URL"] = request.getfixturevalue("postgres_url")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    # Dagster's SQLite instance must not be created by two processes at once: make it here.
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        yield Project(tmp_path, env, instance, home)


def salesforce_sync(operation: str, api: str, match_on: str = "Email") -> dict[str, Any]:
    target: dict[str, Any] = {"object": "Contact", "operation": operation, "match_on": match_on}
    if operation == "delete":
        target["max_delete_share"] = 1.0
    return {
        "name": SYNC,
        "source": {"duckdb": "warehouse.duckdb", "table": "crm.fans"},
        "target": target,
        "mapping": {match_on: "key", "LastName": "last_name"},
        "api": api,
    }


def stage(project: Project, body: dict[str, Any], table: str, frame: pl.DataFrame) -> None:
    """The sync's spec file and its source table in the project's warehouse."""
    (project.root / "syncs" / f"{body['name']}.yaml").write_text(yaml.safe_dump(body))
    schema = table.rpartition(".")[0]
    with duckdb.connect(str(project.root / "warehouse.duckdb")) as connection:
        if schema:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        connection.register("rows", frame)
        connection.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM rows")
    partitions = f"{body['name']}_batches"
    if not project.instance.has_dynamic_partition(partitions, BATCH):
        project.instance.add_dynamic_partitions(partitions, [BATCH])


def rows_of(keys: list[str], prefix: str = "Last") -> pl.DataFrame:
    return pl.DataFrame(
        {"key": keys, "last_name": [f"{prefix} {k}" for k in keys], "_BATCH_ID_": BATCH}
    )


def addresses(n: int) -> list[str]:
    return [f"fan{i}@example.com" for i in range(n)]


def start(worker: Worker, project: Project, job: str) -> str:
    run_id = str(uuid.uuid4())
    worker.start(
        "materialize",
        env=project.env,
        syncs=str(project.root / "syncs"),
        dagster_home=str(project.home),
        job=job,
        partition=BATCH,
        run_id=run_id,
    )
    return run_id


def run_here(project: Project, job: str = f"{SYNC}_writeback") -> dg.ExecuteInProcessResult:
    defs = build_definitions(load_specs(project.root / "syncs"))
    return defs.resolve_job_def(job).execute_in_process(
        instance=project.instance, partition_key=BATCH, raise_on_error=False
    )


def written(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == [SYNC, "written"]:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError("S/written was not materialized")


def contacts(http: Any) -> list[dict[str, Any]]:
    return http.admin("GET", "records/Contact")


# -- two runs of one batch at once ---------------------------------------------------------------


@dataclass
class Race:
    """A sync whose batch two runs write at once, and what the org must hold afterwards."""

    job: str
    latency_ms: int
    expect: Callable[[Any], None]
    hold: dict[str, str] | None = None  # the sandbox keeps these answers back until released


def salesforce_race(kind: str, project: Project, http: Any) -> Race:
    n = 5000
    if kind == "rest_insert":
        stage(project, salesforce_sync("insert", "rest"), "crm.fans", rows_of(addresses(n)))
        latency = 250
    elif kind == "bulk_insert":
        stage(project, salesforce_sync("insert", "bulk"), "crm.fans", rows_of(addresses(n)))
        latency = 700
    else:  # update by Email lookup, above the Bulk threshold (api: auto chooses Bulk)
        http.admin("POST", "records/Contact", json=[
            {"LastName": "Old", "Email": e} for e in addresses(n)
        ])  # fmt: skip
        stage(project, salesforce_sync("update", "auto"), "crm.fans", rows_of(addresses(n)))
        latency = 500

    def expect(http: Any) -> None:
        records = contacts(http)
        assert collections.Counter(r["Email"] for r in records) == collections.Counter(
            addresses(n)
        ), "every source row in the org exactly once"
        assert {r["LastName"] for r in records} == {f"Last {e}" for e in addresses(n)}

    # The winner's first write call is acted on and its answer held until the loser has
    # ended, so the loser always meets a lease whose holder is still writing.
    sends = "composite/sobjects" if kind == "rest_insert" else "jobs/ingest"
    return Race(f"{SYNC}_writeback", latency, expect, {"path_contains": sends, "method": "POST"})


class HeldRelay:
    """A TCP relay in front of the sandbox that holds the first connection's request until
    released: the run that got there first is paused inside its upload, holding the lease."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.released = threading.Event()
        self.connections = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            held = self.connections == 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            threading.Thread(target=self.pipe, args=(client, upstream, held), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client, False), daemon=True).start()

    def pipe(self, source: socket.socket, sink: socket.socket, held: bool) -> None:
        first = True
        try:
            while data := source.recv(65536):
                if held and first:
                    sink.sendall(data)  # the TLS handshake goes through; the request waits
                    first = False
                    continue
                if held:
                    self.released.wait(60)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.released.set()
        self.server.close()
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.close()


def emarsys_race(project: Project, sandbox: Any) -> tuple[Race, HeldRelay]:
    n = 2000
    lines = pl.DataFrame(
        {
            "order_id": [f"o-{i // 2}" for i in range(n)],
            "at": ["2026-11-21 10:00:00"] * n,
            "customer_id": [f"c-{i}" for i in range(n)],
            "sku": [f"sku-{i % 2}" for i in range(n)],
            "unit_price": [10.0] * n,
            "qty": [1] * n,
            "_BATCH_ID_": [BATCH] * n,
        }
    )
    body = {
        "name": SYNC,
        "source": {"duckdb": "warehouse.duckdb", "table": "order_lines"},
        "target": {
            "emarsys": "default",
            "sales_data": True,
            "columns": ["order", "timestamp", "customer", "item", "price", "quantity"],
            "price": "unit_price",
        },
        "mapping": {
            "order": "order_id",
            "timestamp": "at",
            "customer": "customer_id",
            "item": "sku",
            "price": "unit_price",
            "quantity": "qty",
        },
    }
    stage(project, body, "order_lines", lines)
    relay = HeldRelay(sandbox.port)
    project.env["EMARSYS_URL"] = f"https://127.0.0.1:{relay.port}"

    def expect(http: Any) -> None:
        received = http.admin("GET", "emarsys/lines")
        assert len(http.admin("GET", "emarsys/uploads")) == 1
        assert collections.Counter(
            (r["order"], r["item"]) for r in received
        ) == collections.Counter((f"o-{i // 2}", f"sku-{i % 2}") for i in range(n)), (
            "every line uploaded once"
        )

    return Race(f"{SYNC}_upload", 0, expect), relay


# Every race on the DuckDB file; on PostgreSQL one of each writer, the second run half a
# second behind the first (both are well inside the first's write).
RACES = [
    (kind, delay, "duckdb")
    for kind in ("rest_insert", "bulk_insert", "update_by_lookup", "emarsys")
    for delay in (0.1, 0.5, 2.0)
] + [(kind, 0.5, "postgres") for kind in ("rest_insert", "bulk_insert", "emarsys")]


@pytest.mark.parametrize(("kind", "delay", "project"), RACES, indirect=["project"])
def test_two_runs_of_one_batch_at_once_write_it_exactly_once(
    project, sandbox, http, workers: WorkerPool, kind, delay
) -> None:
    relay = None
    if kind == "emarsys":
        race, relay = emarsys_race(project, sandbox)
        release = relay.released.set
    else:
        race = salesforce_race(kind, project, http)

        def release() -> None:
            http.admin("PATCH", "faults", json={"hold_answers": None})

    http.admin("PATCH", "faults", json={"latency_ms": race.latency_ms, "hold_answers": race.hold})
    first, second = workers.take(), workers.take()
    try:
        runs = {start(first, project, race.job): first}
        time.sleep(delay)
        runs[start(second, project, race.job)] = second
        results = finish_race(runs, release)
    finally:
        http.admin("PATCH", "faults", json={"latency_ms": 0, "hold_answers": None})
        if relay is not None:
            relay.close()
    winners = [run for run, result in results.items() if result["success"]]
    losers = [run for run, result in results.items() if not result["success"]]
    assert len(winners) == 1 and len(losers) == 1, results
    [winner], [loser] = winners, losers
    message = "\n".join(results[loser]["failures"])
    assert f"being written by Dagster run {winner}" in message and "sent nothing" in message
    race.expect(http)
    if kind != "emarsys":
        ledger = project.store().ledger(SYNC, BATCH)
        assert set(ledger["run_id"]) == {winner}
        assert ledger.height == 5000 and ledger["source_key"].n_unique() == 5000
    statuses = project.store().batch_statuses(SYNC)
    assert statuses.select("batch", "status", "run_id").rows() == [(BATCH, "written", winner)]
    for worker in runs.values():
        workers.give_back(worker)


def finish_race(runs: dict[str, Worker], release: Callable[[], None]) -> dict[str, dict[str, Any]]:
    """Both runs' results. The held write is released once the other run has ended (or after
    a minute, so that a run that did not stop at the lease shows up)."""
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while not results and time.monotonic() < deadline:
        for run, worker in runs.items():
            if not worker.answers.empty():
                results[run] = worker.result()
        time.sleep(0.05)
    release()
    for run, worker in runs.items():
        if run not in results:
            results[run] = worker.result(timeout=240)
    return results


def test_a_second_run_waits_for_the_first_and_then_sends_nothing(
    project, http, workers: WorkerPool
) -> None:
    project.env["SF_ASSETS_LEASE_WAIT_SECONDS"] = "120"
    stage(project, salesforce_sync("insert", "rest"), "crm.fans", rows_of(addresses(1000)))
    http.admin("PATCH", "faults", json={"latency_ms": 250})
    first, second = workers.take(), workers.take()
    try:
        a = start(first, project, f"{SYNC}_writeback")
        time.sleep(0.5)
        b = start(second, project, f"{SYNC}_writeback")
        results = {a: first.result(240), b: second.result(240)}
    finally:
        http.admin("PATCH", "faults", json={"latency_ms": 0})
    assert all(result["success"] for result in results.values()), results
    sent = sorted(result["materialized"][f"{SYNC}/written"]["sent"] for result in results.values())
    assert sent == [0, 1000]
    assert sorted(r["Email"] for r in contacts(http)) == sorted(addresses(1000))
    for worker in (first, second):
        workers.give_back(worker)


# -- a run killed before or while it writes -------------------------------------------------------


def started_step(project: Project, run_id: str, step: str) -> bool:
    if project.instance.get_run_by_id(run_id) is None:
        return False
    events = project.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    return any(event.step_key == step for event in events)


def wait_for_step(worker: Worker, project: Project, run_id: str, step: str) -> None:
    """Until the run started `step`; a run that ended before it fails the test with the
    worker's answer and the tail of its log instead of waiting out the timeout."""
    wait_for(lambda: started_step(project, run_id, step) or not worker.answers.empty(), step)
    if not started_step(project, run_id, step):
        log = Path(worker.log_path).read_text()[-3000:]
        raise AssertionError(f"the run ended before {step}: {worker.result(5)}\n{log}")


def crash_case(operation: str, project: Project, http: Any) -> Callable[[], None]:
    """Stage a 300-row batch for the operation; returns the check of the org afterwards."""
    n = 300
    if operation == "upsert":
        keys = [f"k{i:04d}" for i in range(n)]
        http.admin("POST", "records/Contact", json=[
            {"LastName": "Old", "External_Id__c": k} for k in keys[::2]
        ])  # fmt: skip
        stage(
            project, salesforce_sync("upsert", "auto", "External_Id__c"), "crm.fans", rows_of(keys)
        )

        def expect() -> None:
            records = contacts(http)
            assert sorted(r["External_Id__c"] for r in records) == keys
            assert {r["LastName"] for r in records} == {f"Last {k}" for k in keys}

        return expect
    if operation != "insert":
        http.admin("POST", "records/Contact", json=[
            {"LastName": "Old", "Email": e} for e in addresses(n)
        ] + [{"LastName": "Keep", "Email": "keep@example.com"}])  # fmt: skip
    stage(project, salesforce_sync(operation, "auto"), "crm.fans", rows_of(addresses(n)))

    def expect_rows() -> None:
        records = contacts(http)
        emails = sorted(r["Email"] for r in records)
        if operation == "delete":
            assert emails == ["keep@example.com"]
            return
        expected = addresses(n) + (["keep@example.com"] if operation == "update" else [])
        assert emails == sorted(expected)
        assert all(
            r["LastName"] == f"Last {r['Email']}" for r in records if r["LastName"] != "Keep"
        )

    return expect_rows


KILLED_EARLY = [
    (operation, step, "duckdb")
    for operation in ("insert", "upsert", "update", "delete")
    for step in ("staging", "mapping")
] + [("insert", "staging", "postgres")]


@pytest.mark.parametrize(("operation", "step", "project"), KILLED_EARLY, indirect=["project"])
def test_a_run_killed_before_it_writes_is_finished_by_the_next_one(
    project, http, workers: WorkerPool, operation, step
) -> None:
    expect = crash_case(operation, project, http)
    http.admin("PATCH", "faults", json={"latency_ms": 500})
    worker = workers.take()
    if step == "staging":
        with writes_held(project.store()):  # the run waits in S/source, with its batch half staged
            run_id = start(worker, project, f"{SYNC}_writeback")
            wait_for_step(worker, project, run_id, f"{SYNC}__source")
            time.sleep(0.5)
            worker.kill()
    else:  # killed while S/mapped describes the object and maps the batch
        run_id = start(worker, project, f"{SYNC}_writeback")
        wait_for_step(worker, project, run_id, f"{SYNC}__mapped")
        worker.kill()
    http.admin("PATCH", "faults", json={"latency_ms": 0})
    assert calls(http, "composite") == calls(http, "jobs") == 0  # nothing was sent

    rerun = run_here(project)
    assert rerun.success
    expect()
    third = run_here(project)
    assert third.success and written(third)["sent"] == 0
    expect()


@pytest.mark.parametrize("project", ["duckdb", "postgres"], indirect=True)
def test_a_run_killed_while_its_bulk_upload_is_in_flight_is_taken_over(
    project, http, workers: WorkerPool
) -> None:
    """The killed run stays STARTED in the Dagster instance for ever; its process is gone, so
    the next run takes the lease over at once and finishes the open job from Salesforce."""
    stage(project, salesforce_sync("insert", "bulk"), "crm.fans", rows_of(addresses(300)))
    http.admin("PATCH", "faults", json={"latency_ms": 400})
    worker = workers.take()
    run_id = start(worker, project, f"{SYNC}_writeback")
    wait_for(lambda: calls(http, "jobs") >= 2, "the Bulk upload")
    worker.kill()
    http.admin("PATCH", "faults", json={"latency_ms": 0})
    assert project.instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    holder = project.store().current_lease(SYNC, BATCH)
    assert holder is not None and holder.run_id == run_id

    started = time.monotonic()
    rerun = run_here(project)
    assert rerun.success and time.monotonic() - started < 60  # no heartbeat to wait out
    assert sorted(r["Email"] for r in contacts(http)) == sorted(addresses(300))
    third = run_here(project)
    assert written(third)["sent"] == 0
    assert sorted(r["Email"] for r in contacts(http)) == sorted(addresses(300))
