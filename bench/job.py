"""The job a user runs, end to end, against the script a user would write instead.

    uv run python bench/job.py [--rows 2000 100000 1000000] [--repeat 5] [--timing realistic]

Contacts upserted on `External_Id__c` with six fields (external id, first and last name,
email, a number, a date) from a DuckDB table with a batch column. Three contenders, in turns
(the order reverses each round), each round in fresh processes with a fresh sandbox org:

- job: the sync's definitions built from its YAML, then `dg.materialize` of source → mapped →
  written → rejects for the batch in one process, on a SQLite Dagster instance; then the same
  materialization again (the unchanged re-run: nothing should be sent and no call made);
- script: what a user writes with simple-salesforce alone: read the table from DuckDB, build
  the records, log in, `sf.bulk2.Contact.upsert(records=..., external_id_field=...)`;
- floor: Dagster's own cost, `dg.materialize` of four no-op assets chained and partitioned
  like the sync's on the same kind of instance: what no sync code can take away.

Timed from after the imports (both pay those alike) to the last row settled. API calls are the
org's own count; peak memory is each process's. The sandbox runs as its own process and is
asked for its realistic timing model (see `org.py`); the output says which was in force.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import yaml
from memory import client_mib, peak_mib
from org import Org
from timing import Samples

from sf_assets.cli.local_org import local_org, salesforce_resource

SYNC = "bench_contacts"
BATCH = "20261122-0930"
TABLE = "crm.contacts"
MAPPING = {
    "External_Id__c": "contact_id",
    "FirstName": "first_name",
    "LastName": "last_name",
    "Email": "email",
    "Ticket_Count__c": "tickets",
    "Birthdate": "birthdate",
}


def write_warehouse(path: Path, rows: int) -> None:
    """A ticketing export: one batch of `rows` distinct contacts."""
    n = pl.int_range(0, rows, eager=True)
    frame = pl.DataFrame(
        {
            "contact_id": "fan-" + n.cast(pl.Utf8),
            "first_name": "Fan" + n.cast(pl.Utf8),
            "last_name": "Buyer" + (n % 997).cast(pl.Utf8),
            "email": "fan" + n.cast(pl.Utf8) + "@example.com",
            "tickets": (n % 9 + 1).cast(pl.Float64),
            "birthdate": pl.date_range(
                pl.date(1950, 1, 1), pl.date(2005, 12, 31), eager=True
            ).gather(n % 20_000),
            "_BATCH_ID_": pl.repeat(BATCH, rows, eager=True),
        }
    )
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA crm")
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM frame")


def sync_spec(warehouse: Path) -> dict[str, Any]:
    return {
        "name": SYNC,
        "source": {"duckdb": str(warehouse), "table": TABLE, "batch_column": "_BATCH_ID_"},
        "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"},
        "mapping": MAPPING,
        "api": "auto",
    }


# -- one contender per process --------------------------------------------------------------


def run_job(rows: int, workdir: Path, timing: str) -> dict[str, Any]:
    """`dg.materialize` of the sync's four assets, then the same again unchanged."""
    warehouse = workdir / "warehouse.duckdb"
    write_warehouse(warehouse, rows)
    (workdir / "syncs").mkdir()
    (workdir / "syncs" / f"{SYNC}.yaml").write_text(yaml.safe_dump(sync_spec(warehouse)))
    with local_org(workdir / "org") as info:
        org = Org(info)
        in_force = org.use_timing(timing)
        os.environ.update(
            {
                "SF_LOGIN_URL": info["login_url"],
                "SF_USERNAME": info["username"],
                "SF_PASSWORD": info["password"],
                "SF_SECURITY_TOKEN": info["security_token"],
                "SF_CA_BUNDLE": info["ca_bundle"],
                "SF_ASSETS_STAGING": str(workdir / "state" / "staging.duckdb"),
                "SF_ASSETS_SYNCS_DIR": str(workdir / "syncs"),
            }
        )
        # imported here: the module builds the code location's definitions from the
        # environment when it is imported
        from sf_assets.definitions import build_definitions
        from sf_assets.specs import load_specs

        (workdir / "dagster").mkdir()
        with dg.DagsterInstance.local_temp(str(workdir / "dagster")) as instance:
            instance.add_dynamic_partitions(f"{SYNC}_batches", [BATCH])

            def materialize() -> tuple[float, int]:
                calls = org.calls()
                started = time.perf_counter()
                defs = build_definitions(load_specs(workdir / "syncs"))
                result = dg.materialize(
                    list(defs.assets or []),
                    instance=instance,
                    partition_key=BATCH,
                    resources=defs.resources,
                )
                seconds = time.perf_counter() - started
                assert result.success, "the job failed"
                return seconds, org.calls() - calls

            seconds, calls = materialize()
            written = org.count("Contact")
            rerun_seconds, rerun_calls = materialize()
        sandbox = peak_mib(info["pid"])
    assert written == rows, f"{written} of {rows} rows in the org"
    return {
        "seconds": seconds,
        "calls": calls,
        "rerun_seconds": rerun_seconds,
        "rerun_calls": rerun_calls,
        "client_mib": client_mib(),
        "sandbox_mib": sandbox,
        "timing": in_force,
    }


def run_script(rows: int, workdir: Path, timing: str) -> dict[str, Any]:
    """The hand-written script: DuckDB → records → login → `bulk2.upsert`."""
    warehouse = workdir / "warehouse.duckdb"
    write_warehouse(warehouse, rows)
    with local_org(workdir / "org") as info:
        org = Org(info)
        in_force = org.use_timing(timing)
        calls = org.calls()
        started = time.perf_counter()
        with duckdb.connect(str(warehouse), read_only=True) as con:
            columns = ", ".join(f"{column} AS {field}" for field, column in MAPPING.items())
            table = con.sql(f"SELECT {columns} FROM {TABLE} WHERE _BATCH_ID_ = ?", params=[BATCH])
            records = table.pl().to_dicts()
        sf = salesforce_resource(info).client()
        result = sf.bulk2.Contact.upsert(
            records=records, external_id_field="External_Id__c", wait=0.5
        )
        seconds = time.perf_counter() - started
        used = org.calls() - calls
        written = org.count("Contact")
        sandbox = peak_mib(info["pid"])
    processed = sum(job["numberRecordsProcessed"] for job in result)
    assert processed == written == rows, (processed, written, rows)
    return {
        "seconds": seconds,
        "calls": used,
        "client_mib": client_mib(),
        "sandbox_mib": sandbox,
        "timing": in_force,
    }


def run_floor(rows: int, workdir: Path, timing: str) -> dict[str, Any]:
    """Dagster's own share: `dg.materialize` of four assets that do nothing, chained and
    partitioned like the sync's, on the same kind of instance. No org, no rows."""
    del rows, timing  # the floor is the same at every size
    batches = dg.DynamicPartitionsDefinition(name="batches")
    steps: list[dg.AssetsDefinition] = []
    for name in ("source", "mapped", "written", "rejects"):
        steps.append(no_op_asset(name, batches, steps[-1:]))

    (workdir / "dagster").mkdir()
    with dg.DagsterInstance.local_temp(str(workdir / "dagster")) as instance:
        instance.add_dynamic_partitions("batches", [BATCH])
        started = time.perf_counter()
        result = dg.materialize(steps, instance=instance, partition_key=BATCH)
        seconds = time.perf_counter() - started
    assert result.success
    return {"seconds": seconds, "timing": "none"}


def no_op_asset(
    name: str, partitions: dg.PartitionsDefinition, upstream: list[dg.AssetsDefinition]
) -> dg.AssetsDefinition:
    @dg.asset(name=name, partitions_def=partitions, deps=upstream)
    def step() -> None:
        return None

    return step


CONTENDERS = {"job": run_job, "script": run_script, "floor": run_floor}


def child(contender: str, rows: int, timing: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(CONTENDERS[contender](rows, Path(folder), timing)))


# -- the run -----------------------------------------------------------------------------------


def measure(contender: str, rows: int, timing: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", contender, "--rows", str(rows)]
    done = subprocess.run(
        [*command, "--timing", timing], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{contender} at {rows:,} rows failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[2_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--timing", default="realistic", choices=["realistic", "instant"])
    parser.add_argument("--child", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows[0], args.timing)
        return
    for rows in args.rows:
        samples: dict[str, dict[str, Samples]] = {name: {} for name in CONTENDERS}
        timings = set()
        for round_number in range(args.repeat):
            order = list(CONTENDERS) if round_number % 2 == 0 else list(CONTENDERS)[::-1]
            for contender in order:
                result = measure(contender, rows, args.timing)
                timings.add(result.pop("timing"))
                for key, value in result.items():
                    samples[contender].setdefault(key, Samples()).add(value)
        timings.discard("none")
        print(f"rows: {rows:,}  rounds: {args.repeat}  sandbox timing: {', '.join(timings)}")
        script_median = samples["script"]["seconds"].median
        for contender, label in (("script", "simple-salesforce script"), ("job", "sf-assets job")):
            got = samples[contender]
            ratio = got["seconds"].median / script_median
            print(
                f"  {label:<26} {got['seconds'].spread():<24} {ratio:5.2f}x  "
                f"calls {got['calls'].spread('', 0):<14} "
                f"client {got['client_mib'].spread('MiB', 0):<22} "
                f"sandbox {got['sandbox_mib'].spread('MiB', 0)}"
            )
        floor = samples["floor"]["seconds"]
        print(
            f"  {'Dagster floor (no-op job)':<26} {floor.spread():<24} "
            f"{floor.median / script_median:5.2f}x  of it in the job: "
            f"{floor.median / samples['job']['seconds'].median:.0%}"
        )
        rerun = samples["job"]
        share = rerun["rerun_seconds"].median / rerun["seconds"].median
        print(
            f"  {'job, unchanged re-run':<26} {rerun['rerun_seconds'].spread():<24} "
            f"{share:5.0%} of the first run  calls {rerun['rerun_calls'].spread('', 0)}"
        )


if __name__ == "__main__":
    main()
