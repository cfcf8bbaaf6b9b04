"""Waiting for a Bulk API 2.0 job (ingest or query) to reach a final state.

A job is noticed as finished at most one wait after it finished, and each poll is an API call
counted against the org's daily allocation, so the waits trade lateness for calls:

- they start short (`poll_seconds`, 0.2 s) and grow by half each poll up to `max_poll_seconds`
  (5 s): a job done within a second or two, the common case for a batch of a few thousand
  rows, is seen within a fraction of a second, and a job of several minutes costs about one
  call per 5 s (a 1,000,000-row job at 2,000 rows/s: about 110 polls, 0.1 % of an Enterprise
  org's 100,000 daily calls);
- when the job reports progress (`numberRecordsProcessed`) and the rows it holds are known,
  the next wait ends when the measured rate says the job will be done, so the last wait of a
  long job does not overshoot its end by up to 5 s.
"""

from __future__ import annotations

import time
from typing import Any

from sf_assets.progress import JobProgress
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.errors import BulkJobTimedOut

FINISHED = ("JobComplete", "Failed", "Aborted")
GROWTH = 1.5


def poll_job(
    api: Api, path: str, what: str, if_late: str, *, rows: int | None = None
) -> dict[str, Any]:
    """The job's info once it has finished; `rows` is how many records it holds, when known
    (an ingest job), and `if_late` tells the user what a timeout leaves behind."""
    options = api.options
    wait = options.poll_seconds
    started = time.monotonic()
    deadline = started + options.bulk_timeout_seconds
    progress = JobProgress(api.log, what)
    seen = Seen(started)
    while True:
        current = api.call("GET", path, idempotent=True).json()
        progress.update(current)
        if current["state"] in FINISHED:
            return current
        now = time.monotonic()
        if now > deadline:
            raise BulkJobTimedOut(
                f"{what} is still {current['state']} after "
                f"{options.bulk_timeout_seconds:.0f} s; {if_late}"
            )
        remaining = seen.remaining(int(current.get("numberRecordsProcessed") or 0), rows, now)
        time.sleep(max(options.poll_seconds, min(wait, remaining)))
        wait = min(wait * GROWTH, options.max_poll_seconds)


class Seen:
    """The job's progress as polled: when the first processed records were seen, and how many,
    to tell the rate it processes at (from then on, so the time it queued does not count)."""

    def __init__(self, started: float) -> None:
        self.first: tuple[float, int] = (started, 0)

    def remaining(self, processed: int, rows: int | None, now: float) -> float:
        """Seconds until the job should be done; infinite while that cannot be told."""
        since, before = self.first
        if before == 0 and processed > 0:
            self.first = (now, processed)
        if not rows or processed <= before or now <= since or processed >= rows:
            return float("inf")
        rate = (processed - before) / (now - since)
        return (rows - processed) / rate
