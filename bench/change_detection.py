"""What change detection costs and saves on a dataset without a batch column.

    uv run python bench/change_detection.py [--rows 1000000] [--changed 0.01]

One sandbox org (a separate process, as in the demo) and one staging store. The baseline is the
first full write of every row; then the same dataset with a share of the rows changed is written
with change detection (the writer's "changed" mode, as an unbatched sync's `written` asset runs
it), and finally the dataset unchanged. The writer and the staging store are driven directly;
rows carry their real content hash, computed as the mapping step computes it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import polars as pl
from writeback import FIELDS, LOG, mapped

from sf_assets.cli.local_org import local_org, salesforce_resource
from sf_assets.rows import content_hash
from sf_assets.salesforce.writer import WriteJob, WriteReport, write_batch
from sf_assets.specs import SyncSpec
from sf_assets.state import DuckDBStateStore

BATCH = "all"  # the batch id of a sync without a batch column


def dataset(rows: int) -> pl.DataFrame:
    frame = mapped(rows, "cd")
    return frame.with_columns(content_hash(frame, list(FIELDS)))


def changed(frame: pl.DataFrame, share: float) -> pl.DataFrame:
    """Every (1/share)-th row gets a new ticket count, and so a new hash."""
    step = max(1, round(1 / share))
    edited = frame.with_columns(
        pl.when(pl.col("_row") % step == 0)
        .then(pl.col("Ticket_Count__c") + 100)
        .otherwise(pl.col("Ticket_Count__c"))
        .alias("Ticket_Count__c")
    )
    return edited.with_columns(content_hash(edited, list(FIELDS)))


def sync() -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": "bench_changes",
            "source": {"duckdb": "warehouse.duckdb", "table": "crm.contacts", "batch_column": None},
            "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"},
            "mapping": {field: field.lower() for field in FIELDS},
        }
    )


def write(info: dict[str, Any], staging: DuckDBStateStore, frame: pl.DataFrame) -> WriteReport:
    return write_batch(
        WriteJob(
            spec=sync(),
            batch=BATCH,
            mapped=frame,
            salesforce=salesforce_resource(info),
            staging=staging,
            run_id=uuid.uuid4().hex,
            log=LOG,
            object_fields=FIELDS,
            resend="changed",
        )
    )


def timed(info: dict[str, Any], staging: DuckDBStateStore, frame: pl.DataFrame) -> dict[str, Any]:
    started = time.perf_counter()
    report = write(info, staging, frame)
    seconds = time.perf_counter() - started
    assert report.failed == 0, report
    return {"seconds": seconds, "sent": report.sent, "calls": report.api_calls, "api": report.api}


def run(rows: int, share: float) -> dict[str, dict[str, Any]]:
    first = dataset(rows)
    second = changed(first, share)
    with tempfile.TemporaryDirectory() as tmp, local_org(Path(tmp)) as info:
        staging = DuckDBStateStore(path=str(Path(tmp) / "staging.duckdb"))
        return {
            "first full write (baseline)": timed(info, staging, first),
            f"change detection, {share:.0%} changed": timed(info, staging, second),
            "change detection, unchanged": timed(info, staging, second),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()
    results = run(args.rows, args.changed)
    baseline = results["first full write (baseline)"]["seconds"]
    print(f"{args.rows:,} rows")
    print("| run | rows sent | API calls | API | wall time | vs baseline |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['sent']:,} | {r['calls']} | {r['api']} | {r['seconds']:.2f} s "
            f"| {r['seconds'] / baseline:.2f}x |"
        )


if __name__ == "__main__":
    main()
