"""Where `api: auto` should switch from REST (sObject Collections) to Bulk API 2.0.

    uv run python bench/crossover.py [--sizes 200 1000 2000 3000 5000 10000 20000]
                                     [--repeat 5] [--timing realistic]
                                     [--calls-per-second 0.0]

One sandbox org (its own process) with its timing model set (`org.py`; the output says which
profile was in force), one staging store; for each size, the writer sends the same kind of
batch through REST and through Bulk, alternating which goes first, `--repeat` rounds. Each
write logs in and uses the writer's defaults (poll intervals, collection size), as a run does.

Time is not the only cost: every call counts against the org's daily allocation. The table
prints both, and the suggested threshold is the smallest size from which Bulk costs no more,
weighing each call as `--calls-per-second` seconds (0: time alone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from org import Org
from timing import Samples
from writeback import mapped, write

from sf_assets.cli.local_org import local_org
from sf_assets.salesforce.writer import AUTO_BULK_THRESHOLD
from sf_assets.state import DuckDBStateStore

APIS = ("rest", "bulk")


def measure(sizes: list[int], repeat: int, timing: str) -> dict[str, Any]:
    """Per API and size: every round's seconds and calls."""
    seconds: dict[str, dict[str, list[float]]] = {api: {} for api in APIS}
    calls: dict[str, dict[str, list[int]]] = {api: {} for api in APIS}
    with tempfile.TemporaryDirectory() as folder, local_org(Path(folder) / "org") as info:
        in_force = Org(info).use_timing(timing)
        staging = DuckDBStateStore(path=str(Path(folder) / "staging.duckdb"))
        for round_number in range(repeat):
            for size in sizes:
                order = APIS if round_number % 2 == 0 else APIS[::-1]
                for api in order:
                    frame = mapped(size, f"r{round_number}-{size}-{api}-")
                    started = time.perf_counter()
                    report = write(info, staging, api, frame, f"{api}-{size}-{round_number}")
                    elapsed = time.perf_counter() - started
                    assert report.created == size and report.failed == 0, report
                    seconds[api].setdefault(str(size), []).append(elapsed)
                    calls[api].setdefault(str(size), []).append(report.api_calls)
    return {"seconds": seconds, "calls": calls, "timing": in_force}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[200, 1000, 2000, 3000, 5000, 10000, 20000]
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timing", default="realistic", choices=["realistic", "instant"])
    parser.add_argument("--calls-per-second", type=float, default=0.0, dest="call_cost")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.sizes, args.repeat, args.timing)))
        return
    # a process of its own, so that the measurement starts from a fresh interpreter
    command = [sys.executable, __file__, "--child", "--repeat", str(args.repeat)]
    command += ["--timing", args.timing, "--sizes", *map(str, args.sizes)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-4000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"crossover: median (fastest-slowest) of {args.repeat} rounds, REST and Bulk "
        f"alternating first; sandbox timing: {result['timing']}"
    )
    print(f"{'rows':>8}  {'REST':<26} {'calls':>6}  {'Bulk':<26} {'calls':>6}  Bulk/REST")
    suggested = None
    for size in map(str, args.sizes):
        rest, bulk = (Samples(result["seconds"][api][size]) for api in APIS)
        rest_calls, bulk_calls = (Samples(result["calls"][api][size]).median for api in APIS)
        ratio = bulk.median / rest.median
        print(
            f"{int(size):>8,}  {rest.spread(digits=3):<26} {rest_calls:>6.0f}  "
            f"{bulk.spread(digits=3):<26} {bulk_calls:>6.0f}  {ratio:9.2f}"
        )
        rest_cost = rest.median + args.call_cost * rest_calls
        bulk_cost = bulk.median + args.call_cost * bulk_calls
        if suggested is None and bulk_cost <= rest_cost:
            suggested = int(size)
    weighing = f"one call weighed as {args.call_cost} s" if args.call_cost else "time alone"
    found = f"{suggested:,} rows" if suggested else "beyond the sizes measured"
    print(f"Bulk costs no more than REST from {found} ({weighing}); ", end="")
    print(f"AUTO_BULK_THRESHOLD is {AUTO_BULK_THRESHOLD:,}")


if __name__ == "__main__":
    main()
