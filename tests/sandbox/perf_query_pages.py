"""Seconds per REST query page against a sandbox org holding many Contacts.

Run it as a user of the sandbox would read a big object: one `query` call, then
`nextRecordsUrl` pages, through simple-salesforce over HTTPS. Pages are read at three depths
(the second page, the middle, the last) because a cursor that re-runs the query pays more the
deeper it is. Each repetition runs every step once, so the steps interleave.

    uv run python -m tests.sandbox.perf_query_pages --rows 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import polars as pl
from sf_sandbox.org import Org
from sf_sandbox.server import SandboxServer
from simple_salesforce import Salesforce

from resources.https import TrustingSession

SOQL = "SELECT Id, FirstName, LastName, Email FROM Contact ORDER BY LastName"
PAGE = 2000
T = TypeVar("T")


def seed_contacts(server: SandboxServer, rows: int) -> None:
    frame = pl.DataFrame(
        {
            "FirstName": [f"First{n}" for n in range(rows)],
            "LastName": [f"Last{n:07d}" for n in range(rows)],
            "Email": [f"fan{n}@example.com" for n in range(rows)],
        }
    )
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    session = TrustingSession(str(server.ca_bundle))
    answer = session.post(
        f"{server.url}/__admin/records/Contact/csv", data=buffer.getvalue(), timeout=600
    )
    answer.raise_for_status()
    assert answer.json()["created"] == rows, answer.text


def client(server: SandboxServer) -> Salesforce:
    return Salesforce(
        session_id=server.org.open_session(),
        instance_url=server.url,
        session=TrustingSession(str(server.ca_bundle)),
        version=server.org.api_version,
    )


def timed(step: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    last = (args.rows - 1) // PAGE * PAGE
    depths = {"second page": PAGE, "middle page": args.rows // 2 // PAGE * PAGE, "last page": last}
    figures: dict[str, list[float]] = {"first call (query)": [], **{name: [] for name in depths}}
    with tempfile.TemporaryDirectory() as workdir:
        server = SandboxServer(Org(), workdir=Path(workdir))
        with server:
            seed_contacts(server, args.rows)
            sf = client(server)
            for _ in range(args.repeat):
                seconds, first = timed(lambda: sf.query(SOQL))
                figures["first call (query)"].append(seconds)
                assert first["totalSize"] == args.rows
                base = str(first["nextRecordsUrl"]).rsplit("-", 1)[0]
                for name, offset in depths.items():
                    url = f"{base}-{offset}"
                    seconds, page = timed(
                        lambda url=url: sf.query_more(url, identifier_is_url=True)
                    )
                    assert page["records"], f"no records at offset {offset}"
                    figures[name].append(seconds)
    print(f"{args.rows:,} Contacts, {args.repeat} interleaved repetitions, seconds per call")
    print(f"{'step':<20} {'median':>8} {'min':>8} {'max':>8}")
    for name, values in figures.items():
        print(
            f"{name:<20} {statistics.median(values):>8.3f} {min(values):>8.3f} {max(values):>8.3f}"
        )


if __name__ == "__main__":
    main()
