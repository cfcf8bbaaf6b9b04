"""Progress of long writes and reads, logged at a steady pace.

A write of a few thousand rows can take minutes against a real org; a run log that shows only
its first and last line looks hung in between. These helpers log every few seconds (never per
row or per call): rows sent of the total with the rate and the time left, and a Bulk job's
state with the records Salesforce has processed and failed so far. The last row always gets
its line, so even a fast write shows how it went.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

DEFAULT_EVERY_SECONDS = 5.0
EVERY_VARIABLE = "SF_ASSETS_PROGRESS_SECONDS"


def pace_seconds() -> float:
    """Seconds between two progress lines: `$SF_ASSETS_PROGRESS_SECONDS`, else 5."""
    value = os.environ.get(EVERY_VARIABLE)
    return float(value) if value else DEFAULT_EVERY_SECONDS


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    return (
        f"{minutes} min {rest:02d} s"
        if minutes < 60
        else f"{minutes // 60} h {minutes % 60:02d} min"
    )


class Paced:
    """What every progress line needs: where it goes, what it is about, its pace and clock."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.what = what
        self.every = pace_seconds() if every is None else every
        self.clock = clock
        self.started = self.last = clock()


class RowProgress(Paced):
    """Rows of one piece of work sent so far, of a total known once it starts."""

    def __init__(self, log: logging.Logger, what: str, **pace: Any) -> None:
        super().__init__(log, what, **pace)
        self.total = 0
        self.done = 0
        self.via = ""

    def start(self, total: int, via: str) -> None:
        self.total, self.done, self.via = total, 0, via
        self.started = self.last = self.clock()

    def advance(self, rows: int) -> None:
        self.done += rows
        now = self.clock()
        if self.done >= self.total or now - self.last >= self.every:
            self.last = now
            self.log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        share = self.done / self.total if self.total else 1.0
        text = (
            f"{self.what}: {self.done} of {self.total} rows sent via {self.via} ({share:.0%}), "
            f"{rate:,.0f} rows/s"
        )
        if self.done < self.total and rate > 0:
            return f"{text}, about {duration((self.total - self.done) / rate)} left"
        return f"{text}, {duration(elapsed)} in all"


class JobProgress(Paced):
    """A Bulk job's state while it is polled: logged when the state changes and at the pace."""

    def __init__(self, log: logging.Logger, what: str, **pace: Any) -> None:
        super().__init__(log, what, **pace)
        self.state: str | None = None

    def update(self, info: Mapping[str, Any]) -> None:
        now = self.clock()
        state = str(info.get("state"))
        if state == self.state and now - self.last < self.every:
            return
        self.state, self.last = state, now
        processed = int(info.get("numberRecordsProcessed") or 0)
        failed = int(info.get("numberRecordsFailed") or 0)
        elapsed = max(now - self.started, 1e-9)
        self.log.info(
            "%s: %s, %d records processed, %d failed (%s, %.0f records/s)",
            self.what,
            state,
            processed,
            failed,
            duration(elapsed),
            processed / elapsed,
        )
