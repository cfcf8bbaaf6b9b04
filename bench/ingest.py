"""Reading 1,000,000 Contacts into DuckDB: sf-assets' first read (Bulk, REST and its own
choice) and an incremental read of 1 % changes, next to simple-salesforce's `bulk2` download
and `query_all` in the same run.

    uv run python bench/ingest.py [--records 1000000] [--repeat 5] [--timing instant]
                                  [--crossover 2000 5000 10000 20000 50000]

One sandbox org runs as its own process (as in the demo) with the timing profile asked for
(`/__admin/timing`), seeded once through the admin CSV endpoint from a helper process. Every
measurement runs in its own client process, so its peak memory is its own, and the kinds are
interleaved: each repetition runs all of them in a rotated order. API calls are the org's own
count (`/__admin/calls`) around each measurement. sf-assets' figures are what the raw-copy
asset runs: log in, describe, read, type the values, commit them to a DuckDB file with the
cursor, and compare the count with `SELECT COUNT()`; the baselines only download (CSV files,
or dicts in memory). The incremental read follows a first read by a minute and a Bulk update
of 1 % of the records, so that its look-back window holds none of the seeded records.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from memory import client_mib, peak_mib

from resources.https import TrustingSession
from sf_assets.cli.local_org import local_org, salesforce_resource
from sf_assets.salesforce.reader import ReadOptions, Warehouse, read_object
from sf_assets.specs.ingest import IngestSpec
from sf_assets.state import DuckDBStateStore
from sf_assets.state.cursors import StateCursors

FIELDS = ["FirstName", "LastName", "Email", "Phone", "Birthdate", "Ticket_Count__c", "LeadSource"]
SOQL = f"SELECT Id, SystemModstamp, IsDeleted, CreatedDate, {', '.join(FIELDS)} FROM Contact"
SEED_CHUNK = 250_000
SETTLE_SECONDS = 61  # past the spec's 60 s look-back: the seed is not read again
KINDS = ("bulk2_download", "query_all", "sf_assets_bulk", "sf_assets_rest")
LOG = logging.getLogger("bench.ingest")


# -- the org ------------------------------------------------------------------------------------


def seed(info: dict[str, Any], records: int, sobject: str = "Contact") -> None:
    http = TrustingSession(info["ca_bundle"])
    for start in range(0, records, SEED_CHUNK):
        n = pl.int_range(start, min(start + SEED_CHUNK, records), eager=True)
        if sobject == "Contact":
            frame = pl.DataFrame({"n": n}).select(
                ("Fan" + pl.col("n").cast(pl.Utf8)).alias("FirstName"),
                ("Buyer" + (pl.col("n") % 997).cast(pl.Utf8)).alias("LastName"),
                ("fan" + pl.col("n").cast(pl.Utf8) + "@example.com").alias("Email"),
                ("+1 555 " + pl.col("n").cast(pl.Utf8).str.zfill(7)).alias("Phone"),
                pl.lit("1990-05-01").alias("Birthdate"),
                (pl.col("n") % 9).cast(pl.Utf8).alias("Ticket_Count__c"),
                pl.lit("Ticketing").alias("LeadSource"),
            )
        else:  # Accounts numbered by NumberOfEmployees: a filter reads the first N of them
            frame = pl.DataFrame({"Name": "Shop " + n.cast(pl.Utf8), "NumberOfEmployees": n})
        url = f"{info['instance_url']}/__admin/records/{sobject}/csv"
        response = http.post(url, data=frame.write_csv().encode(), timeout=900)
        response.raise_for_status()
        assert response.json()["failed"] == 0, response.text


def org_calls(info: dict[str, Any]) -> int:
    http = TrustingSession(info["ca_bundle"])
    return int(http.get(f"{info['instance_url']}/__admin/calls", timeout=60).json()["total"])


def set_timing(info: dict[str, Any], profile: str) -> None:
    http = TrustingSession(info["ca_bundle"])
    response = http.put(f"{info['instance_url']}/__admin/timing", json=profile, timeout=60)
    if response.status_code == 404:
        raise SystemExit("this sandbox has no timing model (/__admin/timing); update it first")
    response.raise_for_status()


def update_share(info: dict[str, Any], ids: list[str], value: int) -> None:
    """Change `ids` through a Bulk update, as a real org's users would: stamped, counted."""
    client = salesforce_resource(info).client()
    records = [{"Id": i, "Ticket_Count__c": value} for i in ids]
    (result,) = client.bulk2.Contact.update(records=records, wait=0.5)
    assert result["numberRecordsFailed"] == 0, result


# -- one measurement per process ----------------------------------------------------------------


def spec(api: str, sobject: str = "Contact", condition: list | None = None) -> IngestSpec:  # type: ignore[type-arg]
    fields = FIELDS if sobject == "Contact" else ["Name", "NumberOfEmployees"]
    return IngestSpec.model_validate(
        {
            "name": "bench",
            "read": {
                "objects": {sobject: {"fields": fields, "api": api, "filter": condition or []}}
            },
            "into": {"duckdb": "warehouse.duckdb"},
        }
    )


def sf_assets_read(info: dict[str, Any], folder: Path, api: str, sobject: str, limit: int) -> dict:
    condition = [{"field": "NumberOfEmployees", "op": "<", "value": limit}] if limit else None
    started = time.perf_counter()
    report = read_object(
        spec(api, sobject, condition),
        sobject,
        salesforce_resource(info),
        warehouse=Warehouse(folder / "warehouse.duckdb", "salesforce"),
        cursors=StateCursors(DuckDBStateStore(path=str(folder / "state.duckdb"))),
        run_id=uuid.uuid4().hex,
        log=LOG,
        options=ReadOptions(),
    )
    seconds = time.perf_counter() - started
    count = report.cursor.count
    assert count is None or count.passed, count
    return {"seconds": seconds, "records": report.records, "mode": report.mode, "api": report.apis}


def baseline(info: dict[str, Any], folder: Path, kind: str) -> dict:
    """What a user would write with simple-salesforce; logging in is timed as for sf-assets."""
    started = time.perf_counter()
    client = salesforce_resource(info).client()
    if kind == "bulk2_download":
        pages = client.bulk2.Contact.download(SOQL, path=str(folder))
        records = sum(int(page["number_of_records"]) for page in pages)
    else:
        records = len(client.query_all(SOQL)["records"])
    return {"seconds": time.perf_counter() - started, "records": records}


def child(kind: str, info_file: Path, folder: Path, sobject: str, limit: int) -> None:
    info = json.loads(info_file.read_text())
    if kind.startswith("sf_assets"):
        api = {"sf_assets_bulk": "bulk", "sf_assets_rest": "rest"}.get(kind, "auto")
        result = sf_assets_read(info, folder, api, sobject, limit)
    else:
        result = baseline(info, folder, kind)
    print(json.dumps({**result, "client_mib": client_mib()}))


# -- the run ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, info: dict[str, Any], workdir: Path) -> None:
        self.info = info
        self.workdir = workdir
        self.info_file = workdir / "org.json"
        self.info_file.write_text(json.dumps(info))
        self.last_change = time.monotonic()

    def measure(
        self, kind: str, folder: Path | None = None, sobject: str = "Contact", limit: int = 0
    ) -> dict:
        folder = folder or Path(tempfile.mkdtemp(dir=self.workdir))
        before = org_calls(self.info)
        command = [sys.executable, __file__, "--measure", kind, "--info", str(self.info_file)]
        command += ["--folder", str(folder), "--object", sobject, "--limit", str(limit)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{kind} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return {**result, "calls": org_calls(self.info) - before, "folder": str(folder)}

    def settle(self) -> None:
        wait = self.last_change + SETTLE_SECONDS - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def incremental(self, rep: int, records: int) -> tuple[dict, dict]:
        """A first read, 1 % of the records changed, then the read of the changes."""
        self.settle()
        first = self.measure("sf_assets_auto")
        with duckdb.connect(str(Path(first["folder"]) / "warehouse.duckdb"), read_only=True) as con:
            ids = [
                r[0] for r in con.sql("SELECT Id FROM salesforce.contact ORDER BY Id").fetchall()
            ]
        share = ids[rep::100][: records // 100]
        update_share(self.info, share, 100 + rep)
        self.last_change = time.monotonic()
        changes = self.measure("sf_assets_auto", Path(first["folder"]))
        assert changes["mode"] == "incremental" and changes["records"] == len(share), changes
        return first, changes


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timing", default="instant", choices=["instant", "realistic"])
    parser.add_argument("--crossover", type=int, nargs="*", default=[])
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--info", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--object", default="Contact", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.seed:
        seed(json.loads(Path(args.seed).read_text()), args.records, args.object)
        return
    if args.measure:
        child(args.measure, args.info, args.folder, args.object, args.limit)
        return
    with tempfile.TemporaryDirectory() as folder, local_org(Path(folder) / "org") as info:
        workdir = Path(folder)
        set_timing(info, args.timing)
        bench = Bench(info, workdir)
        seeding = [sys.executable, __file__, "--seed", str(bench.info_file)]
        subprocess.run([*seeding, "--records", str(args.records)], check=True)
        if args.crossover:
            command = [*seeding, "--records", str(max(args.crossover)), "--object", "Account"]
            subprocess.run(command, check=True)
        bench.last_change = time.monotonic()
        results: dict[str, list[dict]] = {k: [] for k in (*KINDS, "first_auto", "changes")}
        for rep in range(args.repeat):
            order = KINDS[rep % len(KINDS) :] + KINDS[: rep % len(KINDS)]
            for kind in order:
                results[kind].append(bench.measure(kind))
                print(f"  rep {rep + 1} {kind}: {results[kind][-1]['seconds']:.2f} s", flush=True)
            first, changes = bench.incremental(rep, args.records)
            results["first_auto"].append(first)
            results["changes"].append(changes)
            print(f"  rep {rep + 1} incremental: {changes['seconds']:.2f} s", flush=True)
        report(results, args, peak_mib(info["pid"]))
        if args.crossover:
            crossover(bench, args.crossover)


def report(results: dict[str, list[dict]], args: argparse.Namespace, sandbox: float) -> None:
    print(f"\n{args.records:,} Contacts, timing {args.timing}, median (min-max) of {args.repeat}:")
    labels = {
        "bulk2_download": "baseline: simple-salesforce bulk2 download",
        "query_all": "baseline: simple-salesforce query_all",
        "sf_assets_bulk": "sf-assets first read, Bulk",
        "sf_assets_rest": "sf-assets first read, REST",
        "first_auto": "sf-assets first read, auto",
        "changes": "sf-assets incremental read, 1 % changed",
    }
    for kind, label in labels.items():
        runs = results[kind]
        calls = sorted({r["calls"] for r in runs})
        memory = max(r["client_mib"] for r in runs)
        print(
            f"  {label:<42} {spread([r['seconds'] for r in runs])}  calls {calls}  "
            f"client peak {memory:,.0f} MiB  records {runs[0]['records']:,}"
        )
    first = statistics.median(r["seconds"] for r in results["first_auto"])
    changes = statistics.median(r["seconds"] for r in results["changes"])
    print(
        f"  incremental / first read (auto): {changes / first:.1%}; sandbox peak {sandbox:,.0f} MiB"
    )


def crossover(bench: Bench, sizes: list[int]) -> None:
    """REST against one Bulk job for reads of growing size (Accounts, filtered), alternating."""
    print("\nREST or Bulk by records read (median of 3, alternating first):")
    for size in sizes:
        times: dict[str, list[float]] = {"sf_assets_rest": [], "sf_assets_bulk": []}
        calls: dict[str, int] = {}
        for turn in range(3):
            order = ("sf_assets_rest", "sf_assets_bulk")[:: 1 if turn % 2 == 0 else -1]
            for kind in order:
                result = bench.measure(kind, sobject="Account", limit=size)
                times[kind].append(result["seconds"])
                calls[kind] = result["calls"]
        rest, bulk = (statistics.median(times[k]) for k in ("sf_assets_rest", "sf_assets_bulk"))
        print(
            f"  {size:>7,} records  REST {rest:6.2f} s ({calls['sf_assets_rest']} calls)  "
            f"Bulk {bulk:6.2f} s ({calls['sf_assets_bulk']} calls)  Bulk/REST {bulk / rest:5.2f}"
        )


if __name__ == "__main__":
    main()
