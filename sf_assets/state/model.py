"""The records the state store hands out and takes in, whatever backend holds them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

# Ledger statuses that settle a key: a re-run of its batch sends nothing for it. `skipped` is an
# insert whose key an earlier batch of the sync already created (it is never inserted twice).
SUCCESS_STATUSES = ("created", "updated", "deleted", "not_found", "skipped")
# Statuses that leave a key unwritten: refused by the target, or never sent.
UNWRITTEN_STATUSES = ("failed", "not_sent")

# A batch is `written` when every row the write was given has a settling outcome, and
# `incomplete` when the write finished with rows the target refused or never got.
WRITTEN, INCOMPLETE = "written", "incomplete"

# Emarsys uploads: `uncertain` before the POST (its lines count as sent), `sent` after the 200.
SENT, UNCERTAIN = "sent", "uncertain"


class StateError(Exception):
    """The state store cannot do what was asked; the message says what to do."""


class StateLocked(StateError):
    """Another process kept the state file locked for longer than the store waits."""


class LeaseLost(StateError):
    """The lease this write holds on its batch was taken over, so it must not go on."""


class UploadConflict(StateError):
    """An Emarsys upload that may not start: an earlier part is uncertain, or some of its lines
    are already recorded (sent or in doubt) in some batch."""

    def __init__(
        self, message: str, *, uncertain_part: int | None = None, recorded: pl.DataFrame | None
    ) -> None:
        super().__init__(message)
        self.uncertain_part = uncertain_part
        self.recorded = recorded


@dataclass(frozen=True)
class JobStart:
    """A write about to leave: what a later run needs to read its results by itself.

    `matches` holds, per key, the match field's value as sent (`match_field` is `Id` for
    writes sent by Id after a lookup), because Bulk results and lookups name rows by it; None
    when every value is the key itself.
    """

    job_id: str
    api: str  # "bulk": a Bulk API 2.0 ingest job; "rest": a window of collections calls
    operation: str  # the operation as sent: insert, update, upsert or delete
    match_field: str
    keys: pl.Series
    matches: pl.Series | None
    state: str
    run_id: str


@dataclass(frozen=True)
class OpenJob:
    """A write sent (or about to be sent) whose outcome is not in the ledger yet."""

    job_id: str
    api: str
    operation: str
    match_field: str | None  # None for jobs recorded before the store kept it
    state: str
    keys: list[str]
    matches: list[str]
    run_id: str
    created_at: datetime

    def key_map(self) -> pl.DataFrame:
        """`_key` and `_match` (the match field's value as sent) of every row of the job; a job
        recorded without match values matched on its keys."""
        matches = self.matches if len(self.matches) == len(self.keys) else self.keys
        return pl.DataFrame(
            {"_key": self.keys, "_match": matches}, schema={"_key": pl.Utf8, "_match": pl.Utf8}
        )


@dataclass(frozen=True)
class Claim:
    """Who asks for a batch's lease: the run, a token unique to this attempt, and the process
    (host, pid and its start time, so a reused pid is not taken for the holder)."""

    run_id: str
    token: str
    host: str
    pid: int
    process_started: float


@dataclass(frozen=True)
class Lease:
    """The current holder of a batch's lease."""

    sync: str
    batch: str
    run_id: str
    token: str
    host: str
    pid: int
    process_started: float | None
    acquired_at: datetime
    heartbeat_age_seconds: float  # by the store's own clock


@dataclass(frozen=True)
class Settlement:
    """How a write of a batch ended, recorded with the final ledger commit."""

    status: str  # WRITTEN or INCOMPLETE
    rows: int  # rows the write was given (0: an empty batch)
    refused: int  # rows whose latest outcome leaves them unwritten
    run_id: str


@dataclass(frozen=True)
class CursorCommit:
    """One past commit of an ingest stream's cursor, for checks and people investigating."""

    cursor: dict[str, Any]
    run_id: str | None
    committed_at: datetime
