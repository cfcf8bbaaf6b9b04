"""How fast the sandbox org takes a Bulk API 2.0 ingest, so it never becomes the bottleneck of a
writeback benchmark.

    uv run python bench/bulk_ingest.py [--rows 1000000]

The sandbox runs as its own process, as in the demo. One run measures, on the same CSV:
- baseline: creating a job and uploading the bytes (transport and TLS only, nothing processed);
- ingest: create, upload, UploadComplete, poll to JobComplete, download successfulResults.
It prints rows/s for both, their ratio, and the peak memory of the sandbox and of this client.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
from memory import client_mib, peak_mib

from resources.https import TrustingSession
from sf_assets.cli.local_org import local_org, salesforce_resource


def sample_csv(rows: int) -> bytes:
    """Contacts shaped like a ticketing export: six columns, about 80 bytes a row."""
    n = pl.int_range(0, rows, eager=True)
    frame = pl.DataFrame(
        {
            "FirstName": "Fan" + n.cast(pl.Utf8),
            "LastName": "Buyer" + (n % 997).cast(pl.Utf8),
            "Email": "fan" + n.cast(pl.Utf8) + "@example.com",
            "External_Id__c": "ext-" + n.cast(pl.Utf8),
            "Ticket_Count__c": (n % 9 + 1).cast(pl.Utf8),
            "Birthdate": pl.Series(["1990-01-01"]).new_from_index(0, rows),
        }
    )
    return frame.write_csv().encode()


class Ingest:
    def __init__(self, info: dict[str, Any]) -> None:
        sf = salesforce_resource(info).client()
        self.base = f"{info['instance_url']}/services/data/v{info['api_version']}/jobs/ingest"
        self.http = TrustingSession(info["ca_bundle"])
        self.http.headers["Authorization"] = f"Bearer {sf.session_id}"

    def create(self) -> str:
        response = self.http.post(
            self.base, json={"object": "Contact", "operation": "insert", "lineEnding": "LF"}
        )
        response.raise_for_status()
        return response.json()["id"]

    def upload(self, job: str, body: bytes) -> None:
        response = self.http.put(
            f"{self.base}/{job}/batches", data=body, headers={"Content-Type": "text/csv"}
        )
        assert response.status_code == 201, response.text

    def finish(self, job: str) -> dict[str, Any]:
        self.http.patch(f"{self.base}/{job}", json={"state": "UploadComplete"}).raise_for_status()
        while True:
            info = self.http.get(f"{self.base}/{job}").json()
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                return info
            time.sleep(0.05)

    def successful_rows(self, job: str) -> int:
        response = self.http.get(f"{self.base}/{job}/successfulResults", stream=True)
        response.raise_for_status()
        lines = sum(chunk.count(b"\n") for chunk in response.iter_content(1 << 20))
        return lines - 1

    def abort(self, job: str) -> None:
        self.http.patch(f"{self.base}/{job}", json={"state": "Aborted"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    body = sample_csv(rows)
    print(f"rows: {rows:,}  CSV: {len(body) / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory() as workdir, local_org(Path(workdir)) as info:
        ingest = Ingest(info)
        started = time.perf_counter()
        job = ingest.create()
        ingest.upload(job, body)
        baseline = time.perf_counter() - started
        ingest.abort(job)

        started = time.perf_counter()
        job = ingest.create()
        ingest.upload(job, body)
        result = ingest.finish(job)
        processed = time.perf_counter() - started
        written = ingest.successful_rows(job)
        total = time.perf_counter() - started
        sandbox_mib = peak_mib(info["pid"])
    assert result["state"] == "JobComplete", result
    assert written == rows == result["numberRecordsProcessed"], (written, result)
    print(f"baseline (create + upload only): {baseline:6.2f} s  {rows / baseline:12,.0f} rows/s")
    print(f"ingest to JobComplete:           {processed:6.2f} s  {rows / processed:12,.0f} rows/s")
    print(f"ingest + successfulResults:      {total:6.2f} s  {rows / total:12,.0f} rows/s")
    print(f"ingest / baseline time ratio:    {total / baseline:6.2f}x")
    print(f"peak memory: sandbox {sandbox_mib:,.0f} MiB, client {client_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
