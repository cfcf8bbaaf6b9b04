"""Waiting for a Bulk API 2.0 job (ingest or query) to reach a final state.

A job is noticed as finished at most one wait after it finished, and each poll is an API call
counted against the org's daily allocation, so the waits trade lateness for calls:

- they start short (`poll_seconds`, 0.2 s) and grow by half each poll up to `max_poll_seconds`
  (5 s): a job done within a second or two, the common case for a batch of a few thousand
  rows, is seen within a fraction of a second, and a job whose progress cannot be told costs
  about one call per 5 s (a 1,000,000-row job at 2,000 rows/s: about 110 polls, 0.1 % of an
  Enterprise org's 100,000 daily calls);
- when the job reports progress (`numberRecordsProcessed`) and the rows it holds are known,
  the measured rate says when it will be done: a job with more than 5 s to go is next asked
  at 90 % of the time it has left (at most a minute later), so the polls of its long middle
  are a handful instead of one per 5 s (a 1,000,000-row job at 2,000 rows/s: about 20 polls
  instead of about 110), and a wait never runs past the predicted end.

Salesforce counts an ingest job's records as its internal batches of 10,000 finish (a query
job's as its chunks do), so the count seen lags the job by up to one such step: a rate taken
from it at face value comes out too slow whenever a step has just finished unseen, and a
100,000-row job at 2,000 rows/s was once asked again a minute after its 20,000th record, 25 s
after it had ended. So the prediction is the earliest end the polls allow: the job may be up
to one step further than its count, and once it can be in its last step it is asked every
second at most (`CLOSING_WAIT`) until it ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sf_assets.progress import JobProgress
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.errors import BulkJobTimedOut

FINISHED = ("JobComplete", "Failed", "Aborted")
GROWTH = 1.5
LEAD = 0.9  # share of a long job's predicted time left waited before asking again
LONGEST_WAIT = 60.0  # seconds: what a rate thrown off by a job that speeds up can cost
CLOSING_WAIT = 1.0  # seconds between polls once the job may be in its last step


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
        ahead = seen.ahead(int(current.get("numberRecordsProcessed") or 0), rows, now)
        time.sleep(next_wait(wait, ahead, options.poll_seconds, options.max_poll_seconds))
        wait = min(wait * GROWTH, options.max_poll_seconds)


@dataclass(frozen=True)
class Ahead:
    """What the polls so far say of the job's end: at the earliest `remaining` seconds from
    now (0 once it may be in its last step, infinite while that cannot be told), and how long
    one step of its count takes."""

    remaining: float
    step_seconds: float = float("inf")


def next_wait(wait: float, ahead: Ahead, shortest: float, longest: float) -> float:
    """The wait before the next poll: the growing `wait`, cut short when the job may be done
    sooner, or most of the time left when that is longer than `longest`."""
    if longest < ahead.remaining < float("inf"):
        return min(ahead.remaining * LEAD, LONGEST_WAIT)
    if ahead.remaining == 0:
        return max(shortest, min(wait, CLOSING_WAIT, ahead.step_seconds))
    return max(shortest, min(wait, ahead.remaining))


class Seen:
    """The job's progress as polled: when the first processed records were seen and how many,
    to tell the rate it processes at (from then on, so the time it queued does not count), and
    the step its count moves in: the greatest common divisor of the counts seen (10,000 for a
    count of internal batches, a handful of records for a count that moves record by record)."""

    def __init__(self, started: float) -> None:
        self.first: tuple[float, int] = (started, 0)
        self.step = 0

    def ahead(self, processed: int, rows: int | None, now: float) -> Ahead:
        self.step = math.gcd(self.step, processed)
        since, before = self.first
        if before == 0 and processed > 0:  # the first sighting: no rate yet
            self.first = (now, processed)
            return Ahead(float("inf"))
        if not rows or processed <= before or now <= since or processed >= rows:
            return Ahead(float("inf"))
        rate = (processed + self.step - before) / (now - since)  # the fastest the polls allow
        return Ahead(max(0.0, (rows - processed - self.step) / rate), self.step / rate)
