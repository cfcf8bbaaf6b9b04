"""How long a batch that lands in the warehouse takes to reach Salesforce with Dagster running.

    uv run python bench/latency.py [--batches 10] [--rows 1000] [--sensor-interval 5]
                                   [--dagster-yaml deploy/dagster-low-latency.yaml] [--port 19010]

The user's setup, as processes: the sandbox org on its own, `dagster dev` (webserver, daemon,
code server) on a project whose sync reads a DuckDB table with a batch column, and this script
as the warehouse. It lands a warm-up batch and waits for it (so start-up is not counted),
then lands `--batches` batches one by one, each committed in one DuckDB transaction after a
pause that falls anywhere within the sensor interval, and measures from the commit to the
moment the org holds the batch's last row (the admin count, which spends no API call). It
prints each latency and the p50 and p95.

`--dagster-yaml` is the instance settings to run with (run coordinator, dequeue interval,
run launcher); without it the instance has Dagster's defaults, as a new user's would.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml
from org import Org

from sf_assets.cli.local_org import local_org
from sf_assets.sql import connect_waiting

SYNC = "latency_contacts"
TABLE = "crm.contacts"
REPOSITORY = Path(__file__).resolve().parent.parent
LAND_TIMEOUT_SECONDS = 600


def batch_frame(batch: int, rows: int) -> pl.DataFrame:
    n = pl.int_range(0, rows, eager=True)
    key = f"b{batch:02d}-" + n.cast(pl.Utf8)
    return pl.DataFrame(
        {
            "contact_id": key,
            "last_name": "Buyer" + n.cast(pl.Utf8),
            "email": key + "@example.com",
            "tickets": (n % 9 + 1).cast(pl.Float64),
            "_BATCH_ID_": pl.repeat(f"{batch:04d}", rows, eager=True),
        }
    )


def land(warehouse: Path, frame: pl.DataFrame) -> float:
    """Append one batch in one transaction; returns the moment it was committed. The open waits
    while sf-assets has the file open to read it (DuckDB lets no process write a file another
    one has open), as a pipeline sharing a DuckDB file with readers must."""
    with connect_waiting(str(warehouse), wait_seconds=60) as con:
        con.register("frame", frame)
        con.execute(f"INSERT INTO {TABLE} SELECT * FROM frame")
    return time.monotonic()


def create_project(workdir: Path, sensor_interval: int, settings: Path | None) -> Path:
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA crm")
        con.register("frame", batch_frame(0, 0))
        con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM frame")
    (workdir / "syncs").mkdir()
    spec = {
        "name": SYNC,
        "source": {"duckdb": str(warehouse), "table": TABLE, "batch_column": "_BATCH_ID_"},
        "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"},
        "mapping": {
            "External_Id__c": "contact_id",
            "LastName": "last_name",
            "Email": "email",
            "Ticket_Count__c": "tickets",
        },
        "api": "auto",
        "sensor_interval_seconds": sensor_interval,
        "sensor_status": "running",  # as a user sets it once the first batch looks right
    }
    (workdir / "syncs" / f"{SYNC}.yaml").write_text(yaml.safe_dump(spec))
    home = workdir / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(settings.read_text() if settings else "{}\n")
    return warehouse


def start_dagster(workdir: Path, info: dict[str, Any], port: int) -> subprocess.Popen[bytes]:
    """`dagster dev` in its own session, so that it and its children stop together."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(workdir / "dagster_home"),
        "SF_LOGIN_URL": info["login_url"],
        "SF_USERNAME": info["username"],
        "SF_PASSWORD": info["password"],
        "SF_SECURITY_TOKEN": info["security_token"],
        "SF_CA_BUNDLE": info["ca_bundle"],
        "SF_ASSETS_STAGING": str(workdir / "state" / "staging.duckdb"),
        "SF_ASSETS_SYNCS_DIR": str(workdir / "syncs"),
    }
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPOSITORY / "workspace.yaml")]
    log = (workdir / "dagster.log").open("w")
    return subprocess.Popen(
        [*command, "-p", str(port)],
        cwd=REPOSITORY,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(org: Org, expected: int, dagster: subprocess.Popen[bytes], log: Path) -> float:
    """The moment the org holds `expected` Contacts."""
    deadline = time.monotonic() + LAND_TIMEOUT_SECONDS
    while org.count("Contact") < expected:
        if dagster.poll() is not None:
            raise RuntimeError(f"dagster dev exited; see {log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the batch did not reach the org in {LAND_TIMEOUT_SECONDS} s")
        time.sleep(0.1)
    return time.monotonic()


def percentile(values: list[float], share: float) -> float:
    """Linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--rows", type=int, default=1_000, help="rows per batch")
    parser.add_argument("--sensor-interval", type=int, default=5, help="the spec's seconds")
    parser.add_argument("--dagster-yaml", type=Path, help="instance settings to run with")
    parser.add_argument("--port", type=int, default=19010, help="the webserver's port")
    parser.add_argument("--timing", default="realistic", choices=["realistic", "instant"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-log", type=Path, help="copy dagster dev's log here at the end")
    args = parser.parse_args()
    pauses = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        warehouse = create_project(workdir, args.sensor_interval, args.dagster_yaml)
        with local_org(workdir / "org") as info:
            org = Org(info)
            in_force = org.use_timing(args.timing)
            dagster = start_dagster(workdir, info, args.port)
            log = workdir / "dagster.log"
            try:
                land(warehouse, batch_frame(0, args.rows))
                wait_for(org, args.rows, dagster, log)  # everything is up and warm
                latencies = []
                for batch in range(1, args.batches + 1):
                    time.sleep(pauses.uniform(0, args.sensor_interval))
                    committed = land(warehouse, batch_frame(batch, args.rows))
                    arrived = wait_for(org, args.rows * (batch + 1), dagster, log)
                    latencies.append(arrived - committed)
                    print(f"  batch {batch:>2}: {latencies[-1]:6.2f} s", flush=True)
            finally:
                stop(dagster)
                if args.keep_log:
                    shutil.copy(log, args.keep_log)
    settings = args.dagster_yaml or "Dagster defaults"
    print(
        f"batches: {args.batches} of {args.rows:,} rows  sensor interval: "
        f"{args.sensor_interval} s  instance settings: {settings}  sandbox timing: {in_force}"
    )
    print(
        f"commit to last row in the org: p50 {percentile(latencies, 0.5):.2f} s  "
        f"p95 {percentile(latencies, 0.95):.2f} s  mean {statistics.mean(latencies):.2f} s  "
        f"max {max(latencies):.2f} s"
    )


if __name__ == "__main__":
    main()
