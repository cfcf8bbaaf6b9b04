"""Waiting for a Bulk API 2.0 job (ingest or query) to reach a final state.

A job is noticed as finished at most one wait after it finished, and each poll is an API call
counted against the org's daily allocation, so the waits trade lateness for calls:

- they start short (`poll_seconds`, 0.2 s) and grow by half each poll up to `max_poll_seconds`
  (5 s): a job done within a second or two, the common case for a batch of a few thousand
  rows, is seen within a fraction of a second, and a job whose progress cannot be told costs
  about one call per 5 s (a 1,000,000-row job at 2,000 rows/s: about 110 polls, 0.1 % of an
  Enterprise org's 100,000 daily calls);
- when the job reports progress (`numberRecordsProcessed`) and the rows it holds are known,
  the measured rate says when it will be done: a wait ends then, so the last wait of a long
  job does not overshoot its end by up to 5 s, and a job with more than 5 s to go is next
  asked at 90 % of the time it has left (at most a minute later), so the polls of its long
  middle are a handful instead of one per 5 s (a 1,000,000-row job at 2,000 rows/s: 17 polls
  instead of about 110). A rate that is off is corrected at each of those polls.
"""

from __future__ import annotations

import time
from typing import Any

from sf_assets.progress import JobProgress
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.errors import BulkJobTimedOut

FINISHED = ("JobComplete", "Failed", "Aborted")
GROWTH = 1.5
LEAD = 0.9  # share of a long job's predicted time left waited before asking again
LONGEST_WAIT = 60.0  # seconds: what a rate thrown off by a job that speeds up can cost


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
        time.sleep(next_wait(wait, remaining, options.poll_seconds, options.max_poll_seconds))
        wait = min(wait * GROWTH, options.max_poll_seconds)


def next_wait(wait: float, remaining: float, shortest: float, longest: float) -> float:
    """The wait before the next poll: the growing `wait`, cut short when the job should be
    done sooner, or most of the predicted time left when that is longer than `longest`."""
    if longest < remaining < float("inf"):
        return min(remaining * LEAD, LONGEST_WAIT)
    return max(shortest, min(wait, remaining))


class Seen:
    """The job's progress as polled: when the first processed records were seen, and how many,
    to tell the rate it processes at (from then on, so the time it queued does not count)."""

    def __init__(self, started: float) -> None:
        self.first: tuple[float, int] = (started, 0)

    def remaining(self, processed: int, rows: int | None, now: float) -> float:
        """Seconds until the job should be done; infinite while that cannot be told."""
        since, before = self.first
        if before == 0 and processed > 0:  # the first sighting: no rate yet
            self.first = (now, processed)
            return float("inf")
        if not rows or processed <= before or now <= since or processed >= rows:
            return float("inf")
        rate = (processed - before) / (now - since)
        return (rows - processed) / rate
