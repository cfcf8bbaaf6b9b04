"""sf-assets on Dagster's production topology, as processes: PostgreSQL holds the Dagster
instance and sf-assets' state; the daemon (sensors, the run queue) and a code server run on
their own; every run and every step starts in an empty folder of its own, as on machines that
share nothing but the database and the network.

- With the PostgreSQL state store, the sensor finds three batches, two more runs of one batch
  are launched at the same moment, and the org ends with every source row exactly once, the
  ledger in PostgreSQL showing each of them.
- With the DuckDB state file in the same setup, the first step fails before any call to the
  org, saying to set SF_ASSETS_STATE_URL.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from sf_assets.state import PostgresStateStore
from tests.deploy.topology import failure_messages, topology, wait_for_runs

SYNC = "fans"
BATCHES = ("b1", "b2", "b3")
ROWS_PER_BATCH = 60
JOB = f"{SYNC}_writeback"

# One worker runs the deploy tests one after the other: each starts a daemon, a code server
# and a process per run and step, and side by side on two cores they starve each other.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200), pytest.mark.xdist_group("deploy")]


def project(folder: Path) -> Path:
    """A project whose source is one Parquet file per batch, read by every machine alike."""
    root = folder / "project"
    (root / "syncs").mkdir(parents=True)
    (root / "data").mkdir()
    for batch in BATCHES:
        keys = [f"{batch}-fan{i}@example.com" for i in range(ROWS_PER_BATCH)]
        pl.DataFrame(
            {"email": keys, "last_name": [f"Last {k}" for k in keys], "_BATCH_ID_": batch}
        ).write_parquet(root / "data" / f"{batch}.parquet")
    spec = {
        "name": SYNC,
        "source": {"parquet": "data/*.parquet"},
        "target": {"object": "Contact", "operation": "insert", "match_on": "Email"},
        "mapping": {"Email": "email", "LastName": "last_name"},
        "api": "rest",
        "sensor_status": "running",
        "sensor_interval_seconds": 5,
    }
    (root / "syncs" / f"{SYNC}.yaml").write_text(yaml.safe_dump(spec))
    return root


def environment(root: Path, info: dict[str, Any]) -> dict[str, str]:
    """What every machine gets (a container's env_vars): the org, the project, no state."""
    return {
        "PATH": str(Path(__import__("sys").executable).parent) + ":/usr/bin:/bin",
        "HOME": str(root.parent),
        "SF_LOGIN_URL": info["login_url"],
        "SF_USERNAME": info["username"],
        "SF_PASSWORD": info["password"],
        "SF_SECURITY_TOKEN": info["security_token"],
        "SF_CA_BUNDLE": info["ca_bundle"],
        "SF_ASSETS_PROJECT_DIR": str(root),
        "SF_ASSETS_LEASE_WAIT_SECONDS": "60",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }


def test_many_machines_share_one_state_and_write_each_row_once(
    tmp_path: Path, sandbox: Any, http: Any, postgres_url: str
) -> None:
    root = project(tmp_path)
    env = {**environment(root, sandbox.info()), "SF_ASSETS_STATE_URL": postgres_url}
    http.admin("PATCH", "faults", json={"latency_ms": 150})  # the forced runs overlap
    with topology(tmp_path, env, postgres_url) as running, running.instance() as instance:
        deadline = time.monotonic() + 300
        while not instance.has_dynamic_partition(f"{SYNC}_batches", "b3"):
            assert time.monotonic() < deadline, "the sensor never found the batches"
            time.sleep(0.5)
        forced = [running.launch(JOB, "b2") for _ in range(2)]  # at the same moment
        for launch in forced:
            output = launch.communicate(timeout=120)[0].decode()
            assert launch.returncode == 0, output
        runs = wait_for_runs(running, instance, 5, timeout=600)
        statuses = {run.run_id: run.status for run in runs}
        failures = {run.run_id: failure_messages(instance, run.run_id) for run in runs}
        folders = [
            record.dagster_event.engine_event_data.metadata["folder"].value
            for run in runs
            for record in instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTING
            )
        ]
        sensor_runs = [run for run in runs if run.tags.get("sf_assets/sync_batch")]
    http.admin("PATCH", "faults", json={"latency_ms": 0})

    source_keys = [f"{b}-fan{i}@example.com" for b in BATCHES for i in range(ROWS_PER_BATCH)]
    in_the_org = collections.Counter(r["Email"] for r in http.admin("GET", "records/Contact"))
    assert in_the_org == collections.Counter(source_keys), "every source row exactly once"

    # Each run's batch, run key, status and the run it retries (Dagster's run retries are on
    # in the shipped settings, and a retry carries the sensor's tags), so that a wrong set of
    # runs says which run came from where.
    asked = [
        (
            run.tags["dagster/partition"],
            run.tags.get("dagster/run_key"),
            statuses[run.run_id].value,
            run.tags.get("dagster/parent_run_id"),
        )
        for run in runs
    ]
    for run in runs:  # a run of a batch another run holds waits for it, then sends nothing
        assert statuses[run.run_id] == dg.DagsterRunStatus.SUCCESS, (failures[run.run_id], asked)
    assert sorted(run.tags["dagster/partition"] for run in sensor_runs) == list(BATCHES), asked
    assert len(folders) == len(set(folders)) >= 5 * 3, "every step in a folder of its own"

    store = PostgresStateStore(url=postgres_url)
    ledger = store.ledger(SYNC)
    assert sorted(ledger["source_key"]) == sorted(source_keys)
    assert set(ledger["status"]) == {"created"}
    assert ledger["target_id"].n_unique() == len(source_keys)
    written = store.batch_statuses(SYNC).select("batch", "status").sort("batch").rows()
    assert written == [(b, "written") for b in BATCHES]


def test_the_duckdb_state_on_many_machines_fails_before_calling_the_org(
    tmp_path: Path, sandbox: Any, http: Any, postgres_url: str
) -> None:
    root = project(tmp_path)
    env = environment(root, sandbox.info())  # no SF_ASSETS_STATE_URL: the DuckDB file
    before = http.admin("GET", "calls")
    with topology(tmp_path, env, postgres_url) as running, running.instance() as instance:
        deadline = time.monotonic() + 300
        failed: list[dg.DagsterRun] = []
        while not failed:
            assert time.monotonic() < deadline, "no run of the sensor ever failed"
            failed = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
            time.sleep(0.5)
        message = failure_messages(instance, failed[0].run_id)
        source = failed[0].tags
    assert "set SF_ASSETS_STATE_URL" in message.replace("Set", "set"), message
    assert "TempFolderRunLauncher starts runs elsewhere" in message
    assert "Nothing was sent" in message
    assert source["dagster/partition"] in BATCHES
    after = http.admin("GET", "calls")
    assert after["total"] == before["total"] and after["by_resource"] == before["by_resource"]
    assert http.admin("GET", "records/Contact") == []
