"""How long building and uploading a large Emarsys sales-data batch takes.

    uv run python bench/emarsys_upload.py [--rows 1000000]

The sandbox runs as its own process, as in the demo; the resource comes from its info file.
One run measures, on the same mapped lines:
- map: `map_lines` (validation and formatting of the source frame);
- build: `build_csv` (polars), next to the baseline a user would write: `csv.writer` fed one
  Python row at a time, building the same bytes (checked identical);
- upload: `upload_batch` end to end (ledger before and after, gzip, POST, the sandbox parsing
  and validating every line).
It prints the times, the build ratio and the peak memory of this client and of the sandbox.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import tempfile
import time
from pathlib import Path

import polars as pl
from memory import client_mib, peak_mib

from resources.emarsys import EmarsysResource
from sf_assets.cli.local_org import local_org
from sf_assets.emarsys.csv_file import build_csv
from sf_assets.emarsys.ledger import SalesLedger
from sf_assets.emarsys.lines import LinesSpec, map_lines
from sf_assets.emarsys.upload import upload_batch
from sf_assets.state import DuckDBStateStore

COLUMNS = ["order", "timestamp", "customer", "item", "price", "quantity"]


def source(rows: int) -> pl.DataFrame:
    """Order lines like a web shop's: three lines an order, unit prices, small quantities."""
    n = pl.int_range(0, rows, eager=True)
    return pl.DataFrame(
        {
            "order": "O" + (n // 3).cast(pl.Utf8).str.zfill(7),
            "timestamp": pl.from_epoch(1_795_000_000 + n // 3, time_unit="s").dt.replace_time_zone(
                "UTC"
            ),
            "customer": "C" + (n % 50_000).cast(pl.Utf8),
            "item": "SKU-" + (n % 3).cast(pl.Utf8),
            "price": ((n % 500) / 10 + 0.99),
            "quantity": (n % 4 + 1),
        }
    )


def baseline_csv(rows: pl.DataFrame) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows.select(COLUMNS).iter_rows():
        writer.writerow(row)
    return buffer.getvalue().encode("utf-8")


def timed(label: str, seconds: float, rows: int) -> None:
    print(f"{label:<48} {seconds:7.2f} s  {rows / seconds:>12,.0f} lines/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    spec = LinesSpec("bench", {c: c for c in COLUMNS}, COLUMNS, "unit_price")
    with tempfile.TemporaryDirectory() as tmp, local_org(Path(tmp) / "sandbox") as info:
        resource = EmarsysResource(
            token=info["emarsys_token"],
            merchant_id=info["merchant_id"],
            base_url=info["emarsys_url"],
            ca_bundle=info["ca_bundle"],
        )
        ledger = SalesLedger(DuckDBStateStore(path=str(Path(tmp) / "staging.duckdb")), "bench")
        frame = source(args.rows)

        started = time.perf_counter()
        mapped = map_lines(spec, frame, "b1")
        mapping = time.perf_counter() - started
        assert mapped.rejects.height == 0, mapped.rejects.head()

        started = time.perf_counter()
        baseline = baseline_csv(mapped.rows)
        base_seconds = time.perf_counter() - started
        started = time.perf_counter()
        body = build_csv(mapped.rows, COLUMNS)
        build_seconds = time.perf_counter() - started
        assert body == baseline, "build_csv and csv.writer disagree"

        started = time.perf_counter()
        report = upload_batch(
            resource, ledger, mapped.rows, COLUMNS, "b1", "bench", logging.getLogger("bench")
        )
        upload_seconds = time.perf_counter() - started
        assert report.uploaded == args.rows

        rows = args.rows
        print(f"{rows:,} lines, CSV {len(body) / 1e6:.1f} MB, gzipped {report.bytes / 1e6:.1f} MB")
        timed("map_lines (validate + format)", mapping, rows)
        timed("baseline: csv.writer, one row at a time", base_seconds, rows)
        timed("build_csv (polars)", build_seconds, rows)
        timed("upload_batch (ledger, gzip, POST, sandbox parse)", upload_seconds, rows)
        print(f"build_csv is {base_seconds / build_seconds:.1f}x faster than the baseline")
        print(
            f"peak memory: client {client_mib():,.0f} MiB, sandbox {peak_mib(info['pid']):,.0f} MiB"
        )


if __name__ == "__main__":
    main()
