"""REST query cursors: the server-side result a `nextRecordsUrl` pages through.

A real org runs a query once and keeps its result behind a query locator: later pages come
from that snapshot, so records written or deleted meanwhile neither shift nor change them, and
a page costs the same at the end of a million rows as at the start. The sandbox keeps each
result as one columnar frame (slicing a page out of it copies nothing) rather than as Python
records.

Cursors run out like real ones (SOAP API guide, "QueryLocator"): a cursor expires after 15
minutes without use, and a user holds at most 10 open cursors, opening an 11th releases the
oldest. Both numbers come from the org's fault settings, so a test can shrink them. A locator
that has expired, been released or never existed is answered with `INVALID_QUERY_LOCATOR`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from sf_sandbox.errors import SalesforceError
from sf_sandbox.faults import FaultConfig
from sf_sandbox.ids import make_id
from sf_sandbox.soql import CompiledQuery

LOCATOR_KEY_PREFIX = "01g"


def invalid_locator() -> SalesforceError:
    return SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")


@dataclass
class Cursor:
    locator: str
    user_id: str
    query: CompiledQuery  # what the rows are: the root object and the selected paths
    rows: pl.DataFrame  # the whole result, in query order, fixed at the first call
    last_used: float

    @property
    def total(self) -> int:
        return self.rows.height


class QueryCursors:
    """The open cursors of an org, oldest first."""

    def __init__(
        self, settings: Callable[[], FaultConfig], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.lock = threading.Lock()
        self.open: OrderedDict[str, Cursor] = OrderedDict()

    def add(self, user_id: str, query: CompiledQuery, rows: pl.DataFrame) -> Cursor:
        """Keep `rows` behind a new locator, releasing the user's oldest cursor if needed."""
        config = self.settings()
        cursor = Cursor(new_locator(), user_id, query, rows, self.clock())
        with self.lock:
            self._expire(config)
            mine = [c.locator for c in self.open.values() if c.user_id == user_id]
            for locator in mine[: max(0, len(mine) - config.query_cursors_per_user + 1)]:
                del self.open[locator]
            self.open[cursor.locator] = cursor
        return cursor

    def get(self, locator: str, user_id: str) -> Cursor:
        """The user's live cursor behind `locator`; using it keeps it alive."""
        config = self.settings()
        with self.lock:
            self._expire(config)
            cursor = self.open.get(locator)
            if cursor is None or cursor.user_id != user_id:
                raise invalid_locator()
            cursor.last_used = self.clock()
            return cursor

    def __len__(self) -> int:
        with self.lock:
            return len(self.open)

    def _expire(self, config: FaultConfig) -> None:
        deadline = self.clock() - config.query_cursor_timeout_seconds
        for locator in [c.locator for c in self.open.values() if c.last_used < deadline]:
            del self.open[locator]


def new_locator() -> str:
    """An 18-character id with the query locator prefix, unguessable like a real one."""
    return make_id(LOCATOR_KEY_PREFIX, secrets.randbelow(10**10))
