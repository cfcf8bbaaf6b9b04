"""How long the org takes to answer, so that thresholds and timeouts tuned against the sandbox
mean something against a real org.

Two profiles: `realistic` (the default of the `sf-sandbox` program) and `instant` (the default
of `Org()`, what the functional tests use). Any field can be overridden on top of a profile in
the settings file (`timing: realistic` or `timing: {profile: realistic, bulk_queue_ms: 500}`)
or while the server runs through `PUT`/`PATCH /__admin/timing`.

The realistic figures and where they come from:

* `rest_call_ms = 150`: Salesforce's status site (trust.salesforce.com) long published an
  average server-side transaction time well under 300 ms; a REST call from a nearby data
  centre adds tens of milliseconds of network and TLS. 150 ms is a middle value for a small
  call (describe, one record, a query page) seen from a client in the same region.
* `rest_record_ms = 5`: an sObject Collections call writes its records in one transaction.
  Published measurements of inserting 200 records (metillium.com, "Salesforce Record
  Automation Benchmarking", 2020) put the automation alone at 53 ms (Apex trigger) to 396 ms
  (Process Builder) of CPU per 200 records; with validation, sharing and the write itself a
  200-record call takes about a second in a typical org, i.e. 5 ms a record.
* `bulk_queue_ms = 2000`: a closed ingest job waits in UploadComplete until a worker picks it
  up. The Bulk API guide's own examples show a 2-record job with 2.9-3.6 s of total
  processing time, most of it fixed overhead; 2 s of queueing is typical of an idle org and
  grows under load.
* `bulk_ingest_rows_per_second = 2000`: Salesforce splits an ingest job into internal batches
  of 10,000 records processed in parallel (Bulk API 2.0 guide, "How Requests Are
  Processed"). The guide's example batch processed 800 records in 2.2 s of API time
  (~370 records/s per batch); Salesforce's "Maximizing Parallelism and Throughput" article
  reaches 20 million records an hour (~5,500 records/s) only with a tuned org and full
  parallelism. 2,000 records/s sits between one batch at a time and the tuned best case. It
  is the org's throughput, shared by the jobs it processes at once (`Capacity`): those
  batches all run on the org's one pool of asynchronous workers.
* `bulk_query_queue_ms = 2000`: query jobs start in UploadComplete and are queued like ingest
  jobs.
* `bulk_query_rows_per_second = 10000`: Bulk API 2.0 chunks large queries by primary key into
  chunks of 100,000-250,000 records, each of which must run within the 2-minute query timeout
  (Bulk API guide, "How Bulk Queries Are Processed"), so one chunk alone delivers at least
  ~1,000 records/s and chunks run in parallel; extracting a million records takes a minute or
  two in practice. Query jobs processed at once share it too.

Processing time "depends on triggers, validation rules and org load; it does not scale
linearly" (Bulk API 2.0 guide): these are medians to plan with, not promises. Waits are
`asyncio.sleep`s on the server's event loop, so a waiting request or job never holds up
another.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Salesforce processes an ingest job in internal batches of this many records; a timed job
# makes progress (and its records become visible) one batch at a time.
BULK_BATCH_RECORDS = 10_000

Profile = Literal["realistic", "instant"]


class Timing(BaseModel):
    """The timing model. A rate of None means no limit (the work takes no modelled time)."""

    model_config = ConfigDict(extra="forbid")

    profile: Profile = Field("instant", description="The profile the other values start from.")
    rest_call_ms: float = Field(0, ge=0, description="Base latency of any REST or SOAP call.")
    rest_record_ms: float = Field(
        0, ge=0, description="Extra time per record in an sObject Collections call."
    )
    bulk_queue_ms: float = Field(
        0, ge=0, description="Time a closed ingest job waits in UploadComplete."
    )
    bulk_ingest_rows_per_second: float | None = Field(
        None, gt=0, description="Ingest throughput while InProgress (None: no limit)."
    )
    bulk_query_queue_ms: float = Field(
        0, ge=0, description="Time a query job waits in UploadComplete."
    )
    bulk_query_rows_per_second: float | None = Field(
        None, gt=0, description="Query throughput while InProgress (None: no limit)."
    )

    @classmethod
    def of(cls, profile: str) -> Timing:
        if profile not in PROFILES:
            names = " or ".join(PROFILES)
            raise ValueError(f"unknown timing profile {profile!r}: use {names}")
        return PROFILES[profile].model_copy()

    @classmethod
    def from_setting(cls, setting: Any, base: Timing | None = None) -> Timing:
        """A timing from a settings value: a profile name, or a mapping of fields on top of
        its `profile` (or of `base` when the mapping names no profile)."""
        if isinstance(setting, str):
            return cls.of(setting)
        if not isinstance(setting, dict):
            raise ValueError("timing must be a profile name or a mapping of timing fields")
        profile = setting.get("profile")
        start = cls.of(profile) if profile is not None else (base or cls.of("realistic"))
        return cls.model_validate({**start.model_dump(), **setting})

    @property
    def timed_ingest(self) -> bool:
        return self.bulk_ingest_rows_per_second is not None


PROFILES: dict[str, Timing] = {
    "realistic": Timing(
        profile="realistic",
        rest_call_ms=150,
        rest_record_ms=5,
        bulk_queue_ms=2000,
        bulk_ingest_rows_per_second=2000,
        bulk_query_queue_ms=2000,
        bulk_query_rows_per_second=10000,
    ),
    "instant": Timing(profile="instant"),
}


async def pause(milliseconds: float) -> None:
    """Wait without holding up the event loop; no wait at all for zero."""
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000)


class Capacity:
    """An org's Bulk processing capacity for one kind of job (ingest or query).

    The modelled rows per second are the org's, not each job's: Salesforce runs the internal
    batches of every job in progress on the same pool of the org's asynchronous workers, so
    jobs processed at once take turns here, a step each, and two jobs side by side each go at
    about half the rate. A client that splits its rows into more jobs therefore gains nothing
    but their uploads overlapping, as on a real org; a lone job goes at the full rate.
    """

    def __init__(self) -> None:
        self.free_at = 0.0  # monotonic time until which the capacity is taken

    def reserve(self, not_before: float, seconds: float) -> float:
        """When a step of `seconds` that may start at `not_before` is done; it holds the
        capacity until then, so the next step of any job starts after it."""
        start = max(not_before, self.free_at)
        self.free_at = start + seconds
        return self.free_at


async def progress(
    total: int,
    rows_per_second: float | None,
    capacity: Capacity,
    step: int = BULK_BATCH_RECORDS,
) -> AsyncIterator[int]:
    """Cumulative record counts, `step` at a time, each yielded when the modelled
    throughput, shared with the other jobs `capacity` serves, says that many are done (at
    once when there is no limit).

    Each step is booked from the end of the one before, so the time the caller spends
    between steps counts toward the schedule instead of adding to it.
    """
    done_at = time.monotonic()
    done = 0
    while done < total:
        count = min(step, total - done)
        done += count
        if rows_per_second is not None:
            done_at = capacity.reserve(done_at, count / rows_per_second)
            await asyncio.sleep(max(0.0, done_at - time.monotonic()))
        yield done
