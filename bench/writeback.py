"""How fast sf-assets writes a batch into Salesforce, against what a user would write by hand.

    uv run python bench/writeback.py [--rows 100000 1000000] [--rest-rows 100000 1000000]

Each measurement runs in its own process with its own sandbox org (started as a separate
process, as in the demo), so that peak memory is that measurement's alone:
- baseline: simple-salesforce's `sf.bulk2.Contact.upsert(records=...)` sending the same rows;
- sf-assets through Bulk API 2.0, then an unchanged re-run of the same batch;
- sf-assets through sObject Collections (REST).
The REST/Bulk crossover for `api: auto` is `bench/crossover.py`.
Figures are printed as ratios against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from memory import client_mib, peak_mib

from sf_assets.cli.local_org import local_org, salesforce_resource
from sf_assets.salesforce.writer import WriteJob, WriteReport, write_batch
from sf_assets.specs import SyncSpec
from sf_assets.state import DuckDBStateStore

FIELDS = {
    "External_Id__c": "string",
    "LastName": "string",
    "FirstName": "string",
    "Email": "email",
    "Ticket_Count__c": "double",
    "Birthdate": "date",
}
LOG = logging.getLogger("bench.writeback")


def mapped(rows: int, prefix: str) -> pl.DataFrame:
    """Contacts shaped like a ticketing export, as the mapping step hands them over."""
    n = pl.int_range(0, rows, eager=True)
    key = prefix + n.cast(pl.Utf8)
    return pl.DataFrame(
        {
            "_row": n + 1,
            "_key": key,
            "_hash": key,
            "External_Id__c": key,
            "LastName": "Buyer" + (n % 997).cast(pl.Utf8),
            "FirstName": "Fan" + n.cast(pl.Utf8),
            "Email": "fan" + n.cast(pl.Utf8) + "@example.com",
            "Ticket_Count__c": (n % 9 + 1).cast(pl.Float64),
            "Birthdate": pl.Series([date(1990, 1, 1)]).new_from_index(0, rows),
        }
    ).with_columns(pl.col("_row").cast(pl.Int64))


def sync(api: str) -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": "bench_contacts",
            "source": {"duckdb": "warehouse.duckdb", "table": "crm.contacts"},
            "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"},
            "mapping": {field: field.lower() for field in FIELDS},
            "api": api,
        }
    )


def write(
    info: dict[str, Any], staging: DuckDBStateStore, api: str, frame: pl.DataFrame, batch: str
) -> WriteReport:
    return write_batch(
        WriteJob(
            spec=sync(api),
            batch=batch,
            mapped=frame,
            salesforce=salesforce_resource(info),
            staging=staging,
            run_id=uuid.uuid4().hex,
            log=LOG,
            object_fields=FIELDS,
        )
    )


# -- one measurement per process -----------------------------------------------------------


def measure_baseline(rows: int, workdir: Path) -> dict[str, Any]:
    """What a user would write: format the values, then hand records to simple-salesforce."""
    frame = mapped(rows, "base")
    records = frame.select(
        pl.col(list(FIELDS)).exclude("Birthdate"), pl.col("Birthdate").dt.strftime("%Y-%m-%d")
    ).to_dicts()
    with local_org(workdir) as info:
        sf = salesforce_resource(info).client()
        calls = [0]
        sf.session.hooks["response"].append(lambda *_, **__: calls.__setitem__(0, calls[0] + 1))
        started = time.perf_counter()
        result = sf.bulk2.Contact.upsert(
            records=records, external_id_field="External_Id__c", wait=0.5
        )
        seconds = time.perf_counter() - started
        sandbox = peak_mib(info["pid"])
    processed = sum(job["numberRecordsProcessed"] for job in result)
    assert processed == rows, result
    return {
        "seconds": seconds,
        "calls": calls[0],
        "client_mib": client_mib(),
        "sandbox_mib": sandbox,
    }


def measure_sf_assets(rows: int, workdir: Path, api: str) -> dict[str, Any]:
    frame = mapped(rows, api)
    with local_org(workdir) as info:
        staging = DuckDBStateStore(path=str(workdir / "staging.duckdb"))
        started = time.perf_counter()
        report = write(info, staging, api, frame, "b1")
        seconds = time.perf_counter() - started
        sandbox = peak_mib(info["pid"])
        rerun_started = time.perf_counter()
        rerun = write(info, staging, api, frame, "b1")
        rerun_seconds = time.perf_counter() - rerun_started
    assert report.created == rows and report.failed == 0, report
    assert rerun.sent == 0, rerun
    return {
        "seconds": seconds,
        "calls": report.api_calls,
        "jobs": len(report.bulk_job_ids),
        "client_mib": client_mib(),
        "sandbox_mib": sandbox,
        "rerun_seconds": rerun_seconds,
        "rerun_sent": rerun.sent,
        "rerun_calls": rerun.api_calls,
    }


def child(scenario: str, rows: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        if scenario == "baseline":
            result = measure_baseline(rows, workdir)
        else:
            result = measure_sf_assets(rows, workdir, scenario)
    print(json.dumps(result))


# -- the run ------------------------------------------------------------------------------------


def run(scenario: str, rows: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--scenario", scenario, "--rows", str(rows)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{scenario} {rows} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(label: str, rows: int, result: dict[str, Any], baseline: dict[str, Any]) -> None:
    seconds = result["seconds"]
    print(
        f"  {label:<24} {seconds:8.2f} s  {rows / seconds:10,.0f} rows/s  "
        f"{seconds / baseline['seconds']:6.2f}x baseline time  {result['calls']:6,} calls  "
        f"client {result['client_mib']:6,.0f} MiB  sandbox {result['sandbox_mib']:6,.0f} MiB"
    )
    if "rerun_seconds" in result:
        print(
            f"  {label + ' unchanged re-run':<24} {result['rerun_seconds']:8.2f} s  "
            f"sent {result['rerun_sent']}  {result['rerun_calls']} calls"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--rest-rows", type=int, nargs="*", default=[100_000])
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        child(args.scenario, args.rows[0] if args.rows else 0)
        return
    for rows in args.rows:
        print(f"rows: {rows:,}")
        baseline = run("baseline", rows)
        show("baseline (bulk2.upsert)", rows, baseline, baseline)
        show("sf-assets bulk", rows, run("bulk", rows), baseline)
        if rows in args.rest_rows:
            show("sf-assets rest", rows, run("rest", rows), baseline)


if __name__ == "__main__":
    main()
