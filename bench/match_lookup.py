"""Matching keys by a non-external-id field (Contact.Email): SOQL IN lists against one Bulk query.

    uv run python bench/match_lookup.py [--records 1000000] [--keys 100000]
                                        [--crossover 400 800 1600 3200]

Each measurement runs in its own process with its own sandbox org (a separate process, as in
the demo), seeded with `--records` Contacts with distinct emails through the admin CSV endpoint
(from a helper process, not timed, so that the seed data is not in the measured peak memory):
- REST: the writer's lookup through SOQL IN lists, URL-sized chunks of keys;
- Bulk: the writer's lookup through one Bulk API 2.0 query job reading Id and Email;
- the full write of the same keys (update the half that exists, insert the rest) through the
  writer, which chooses the lookup by key count;
- the crossover: both lookups at smaller key counts, to choose `lookup.BULK_LOOKUP_KEYS`.
Keys are half existing emails (a tenth of them in a different case) and half new ones.
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
from pathlib import Path
from typing import Any

import polars as pl
from memory import client_mib, peak_mib

from resources.https import TrustingSession
from sf_assets.cli.local_org import local_org, salesforce_resource
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.writer import WriteJob, WriteReport, lookup, write_batch
from sf_assets.salesforce.writer.context import WriteContext
from sf_assets.specs import SyncSpec
from sf_assets.state import DuckDBStateStore

FIELDS = {"Id": "id", "Email": "email", "LastName": "string"}
EXTERNAL_IDS = frozenset({"External_Id__c"})
SEED_CHUNK = 250_000
LOG = logging.getLogger("bench.match_lookup")


# -- data ---------------------------------------------------------------------------------------


def seed(info: dict[str, Any], records: int) -> None:
    """`records` Contacts with distinct emails, through the admin endpoint (no API calls)."""
    http = TrustingSession(info["ca_bundle"])
    for start in range(0, records, SEED_CHUNK):
        n = pl.int_range(start, min(start + SEED_CHUNK, records), eager=True)
        frame = pl.DataFrame(
            {
                "LastName": "Seed" + n.cast(pl.Utf8),
                "Email": "fan" + n.cast(pl.Utf8) + "@example.com",
            }
        )
        url = f"{info['instance_url']}/__admin/records/Contact/csv"
        response = http.post(url, data=frame.write_csv().encode(), timeout=600)
        response.raise_for_status()
        assert response.json()["failed"] == 0, response.text


def seed_in_helper(info: dict[str, Any], records: int, workdir: Path) -> None:
    """Seed from another process, so that this one's peak memory is the measurement's."""
    info_file = workdir / "org.json"
    info_file.write_text(json.dumps(info))
    command = [sys.executable, __file__, "--seed", str(info_file), "--records", str(records)]
    subprocess.run(command, check=True)


def mapped(keys: int, records: int) -> pl.DataFrame:
    """`keys` rows: half existing emails spread over the org (every tenth in upper case), half
    new ones."""
    existing = keys // 2
    step = max(records // max(existing, 1), 1)
    n = pl.int_range(0, existing, eager=True) * step
    old = "fan" + n.cast(pl.Utf8) + "@example.com"
    old = pl.select(
        pl.when(pl.int_range(0, existing) % 10 == 0).then(old.str.to_uppercase()).otherwise(old)
    ).to_series()
    new = "new" + pl.int_range(0, keys - existing, eager=True).cast(pl.Utf8) + "@example.com"
    email = pl.concat([old, new])
    return pl.DataFrame(
        {
            "_row": pl.int_range(1, keys + 1, eager=True, dtype=pl.Int64),
            "_key": "k" + pl.int_range(0, keys, eager=True).cast(pl.Utf8),
            "_hash": email,
            "Email": email,
            "LastName": "Fan " + email,
        }
    )


def sync() -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": "bench_fans",
            "source": {"duckdb": "warehouse.duckdb", "table": "crm.fans"},
            "target": {"object": "Contact", "operation": "upsert", "match_on": "Email"},
            "mapping": {"Email": "email", "LastName": "last_name"},
            "api": "auto",
        }
    )


def job(info: dict[str, Any], frame: pl.DataFrame, workdir: Path) -> WriteJob:
    return WriteJob(
        spec=sync(),
        batch="b1",
        mapped=frame,
        salesforce=salesforce_resource(info),
        staging=DuckDBStateStore(path=str(workdir / f"staging-{uuid.uuid4().hex}.duckdb")),
        run_id=uuid.uuid4().hex,
        log=LOG,
        object_fields=FIELDS,
        external_ids=EXTERNAL_IDS,
    )


# -- one measurement per process ----------------------------------------------------------------


def look_up(info: dict[str, Any], frame: pl.DataFrame, workdir: Path, method: str) -> dict:
    """The writer's lookup alone, forced onto one method; logging in is not timed."""
    lookup.BULK_LOOKUP_KEYS = 1 if method == "bulk" else 10**12
    write_job = job(info, frame, workdir)
    with Api(write_job.salesforce, LOG, write_job.options) as api:
        api.client  # noqa: B018 - log in before the clock starts
        ctx = WriteContext(write_job, api)
        before = api.calls
        started = time.perf_counter()
        found = lookup.matching(ctx, frame["_key"])
        seconds = time.perf_counter() - started
        calls = api.calls - before
    matched = int((found["ids"].list.len() == 1).sum())
    return {"seconds": seconds, "calls": calls, "matched": matched}


def measure_lookup(records: int, keys: int, workdir: Path, method: str) -> dict[str, Any]:
    frame = mapped(keys, records)
    with local_org(workdir) as info:
        seed_in_helper(info, records, workdir)
        result = look_up(info, frame, workdir, method)
        result["sandbox_mib"] = peak_mib(info["pid"])
    assert result["matched"] == keys // 2, result
    return {**result, "client_mib": client_mib()}


def measure_write(records: int, keys: int, workdir: Path) -> dict[str, Any]:
    """The whole write with the automatic lookup choice: update the half that exists, insert
    the rest."""
    frame = mapped(keys, records)
    with local_org(workdir) as info:
        seed_in_helper(info, records, workdir)
        started = time.perf_counter()
        report: WriteReport = write_batch(job(info, frame, workdir))
        seconds = time.perf_counter() - started
        sandbox = peak_mib(info["pid"])
    assert (report.updated, report.created, report.failed) == (keys // 2, keys - keys // 2, 0)
    return {
        "seconds": seconds,
        "calls": report.api_calls,
        "api": report.api,
        "updated": report.updated,
        "created": report.created,
        "client_mib": client_mib(),
        "sandbox_mib": sandbox,
    }


def measure_crossover(records: int, sizes: list[int], workdir: Path) -> dict[str, Any]:
    """Both lookups at each key count against the same org, alternating which goes first."""
    result: dict[str, Any] = {"rest": {}, "bulk": {}}
    with local_org(workdir) as info:
        seed_in_helper(info, records, workdir)
        for number, size in enumerate(sizes):
            frame = mapped(size, records)
            order = ("rest", "bulk") if number % 2 == 0 else ("bulk", "rest")
            for method in order:
                result[method][str(size)] = look_up(info, frame, workdir, method)
    return result


def child(scenario: str, records: int, keys: int, sizes: list[int]) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        if scenario == "crossover":
            result = measure_crossover(records, sizes, workdir)
        elif scenario == "write":
            result = measure_write(records, keys, workdir)
        else:
            result = measure_lookup(records, keys, workdir, scenario)
    print(json.dumps(result))


# -- the run ------------------------------------------------------------------------------------


def run(scenario: str, records: int, keys: int, sizes: list[int]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--scenario", scenario, "--records", str(records)]
    command += ["--keys", str(keys), "--crossover", *map(str, sizes)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{scenario} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(label: str, result: dict[str, Any], baseline: dict[str, Any]) -> None:
    print(
        f"  {label:<34} {result['seconds']:8.2f} s  "
        f"{result['seconds'] / baseline['seconds']:6.2f}x REST time  {result['calls']:5,} calls  "
        f"client {result['client_mib']:6,.0f} MiB  sandbox {result['sandbox_mib']:6,.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--crossover", type=int, nargs="*", default=[400, 800, 1600, 3200])
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(json.loads(Path(args.seed).read_text()), args.records)
        return
    if args.scenario:
        child(args.scenario, args.records, args.keys, args.crossover)
        return
    print(f"{args.keys:,} keys by Email against {args.records:,} Contacts:")
    rest = run("rest", args.records, args.keys, [])
    show("lookup, REST IN lists (baseline)", rest, rest)
    bulk = run("bulk", args.records, args.keys, [])
    show("lookup, Bulk query job", bulk, rest)
    print(
        f"  Bulk/REST: time {bulk['seconds'] / rest['seconds']:.2f}x, calls "
        f"{bulk['calls'] / rest['calls']:.3f}x"
    )
    write = run("write", args.records, args.keys, [])
    show(f"write (auto: {write['api']}, lookup by count)", write, rest)
    print(f"    updated {write['updated']:,}  created {write['created']:,}")
    if args.crossover:
        result = run("crossover", args.records, 0, args.crossover)
        print("crossover (one run each, same org):")
        for size in map(str, args.crossover):
            r, b = result["rest"][size], result["bulk"][size]
            print(
                f"  {int(size):>7,} keys  rest {r['seconds']:6.2f} s ({r['calls']} calls)  "
                f"bulk {b['seconds']:6.2f} s ({b['calls']} calls)  "
                f"bulk/rest time {b['seconds'] / r['seconds']:5.2f}"
            )


if __name__ == "__main__":
    main()
