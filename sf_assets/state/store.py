"""The state store: the one interface through which runs, sensors and commands keep sf-assets'
own state. Backends implement it (the embedded DuckDB file in `duckdb_backend`); nothing
outside a backend knows how the state is stored.

What it keeps, per sync:

- staged batches (`source`, `mapped`, `rejects`, ... frames, one per batch);
- the write ledger: every attempt at every row, append-only, keyed by sync and row key;
- open write jobs with what is needed to read their results again (operation, match field and
  the value sent for every key), so a crashed write can be finished from the target's answers;
- a lease per (sync, batch): one run at a time may write a batch (see `state.lease`);
- batch status: which batches were written completely, the sensor's source of truth;
- Emarsys uploads in parts, with a unique key per line.

Rules every backend keeps: an operation that changes state is one transaction; writes made
under a lease check the lease in that same transaction (a run whose lease was taken over
cannot record or open anything); the final commit of a write records its outcomes, the batch
status and the lease release together. Nothing secret is ever stored.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import dagster as dg
import polars as pl
from pydantic import Field

from sf_assets.state.model import Claim, CursorCommit, JobStart, Lease, OpenJob, Settlement

KINDS = ("source", "mapped", "mapping_rejects", "rejects")  # usual kinds; any lowercase name works
# Columns a caller of record_outcomes provides; the store adds sync, batch, run, attempt, time.
OUTCOME_COLUMNS = (
    "source_key",
    "target_id",
    "operation",
    "api",
    "status",
    "error_code",
    "error_message",
    "hint",
    "content_hash",
    "job_id",
)
# Columns record_outcomes takes when given (null otherwise): the target object and the match
# field's value, which let a later check see keys another sync already created.
OPTIONAL_OUTCOME_COLUMNS = ("object", "match_value")


def ledger_rows(outcomes: pl.DataFrame) -> pl.DataFrame:
    """The outcomes a caller gives `record_outcomes`, as every backend stores them: each
    column text, the optional ones null where not given; a missing column is a bug of the
    caller, refused before anything is written."""
    missing = set(OUTCOME_COLUMNS) - set(outcomes.columns)
    if missing:
        raise ValueError(f"outcomes lack columns: {', '.join(sorted(missing))}")
    return outcomes.select(
        *(pl.col(c).cast(pl.Utf8) for c in OUTCOME_COLUMNS),
        *(
            (pl.col(c) if c in outcomes.columns else pl.lit(None)).cast(pl.Utf8).alias(c)
            for c in OPTIONAL_OUTCOME_COLUMNS
        ),
    )


class StateStore(dg.ConfigurableResource, abc.ABC):
    """sf-assets' state: staged batches, ledger, open jobs, leases, batch status, Emarsys."""

    lease_wait_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a run waits for another run that is writing the same batch "
        "before it fails, naming that run. 0 fails at once.",
    )
    lease_ttl_seconds: float = Field(
        60.0,
        gt=0,
        description="A lease whose heartbeat is older than this is taken over when neither "
        "the Dagster instance nor this machine's process table can tell whether its run is "
        "alive (a run of another instance, or on another machine).",
    )

    # Whether every machine that reaches the store sees the same state (a database server),
    # rather than only this machine (a local file).
    shared: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the state lives, for messages (a file path, a database without password)."""

    # -- staged batches ---------------------------------------------------------------------

    @abc.abstractmethod
    def replace_batch(self, sync: str, kind: str, batch: str, frame: pl.DataFrame) -> None:
        """Store `frame` as this batch of `<sync>__<kind>`, replacing what was there; the
        batch keeps its own columns, so it loads back as staged even when empty."""

    @abc.abstractmethod
    def load_batch(self, sync: str, kind: str, batch: str) -> pl.DataFrame:
        """The batch as stored; an empty frame without columns if it was never staged."""

    # -- ledger ------------------------------------------------------------------------------

    @abc.abstractmethod
    def ledger(self, sync: str, batch: str | None = None) -> pl.DataFrame:
        """Every write attempt of the sync (or of one batch), oldest first."""

    @abc.abstractmethod
    def latest_outcomes(
        self, sync: str, batch: str, statuses: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """One row per key of the batch: its latest attempt; with `statuses`, only the keys
        whose latest attempt has one of them (what a check or the rejects need of a written
        million-row batch is a few rows, not the whole ledger)."""

    @abc.abstractmethod
    def successful_keys(self, sync: str, batch: str) -> pl.Series:
        """Keys of the batch with a settling outcome (model.SUCCESS_STATUSES)."""

    @abc.abstractmethod
    def written_hashes(self, sync: str, batch: str) -> pl.DataFrame:
        """`source_key`, `content_hash` of each key's latest successful write in the batch."""

    @abc.abstractmethod
    def created_keys(self, sync: str, keys: pl.Series) -> pl.DataFrame:
        """`_key`, `target_id`, `batch` of the given keys that some batch of the sync created
        (the latest creation per key): an insert never creates them again."""

    @abc.abstractmethod
    def recorded_ids(self, ids: Sequence[str], since: datetime) -> set[str]:
        """The given record ids that any sync's ledger recorded at or after `since`: such a
        record is not the answer to a lost insert, whatever value it shares. The records
        asked about were created after `since`, so no earlier ledger row can name them, and
        the search stays at the ledger's recent end (no index on every record id)."""

    @abc.abstractmethod
    def created_by_other_syncs(
        self, sync: str, sobject: str, match_values: pl.Series
    ) -> pl.DataFrame:
        """`match_value` (lower-cased) and `sync` for values that another sync created in the
        same object."""

    @abc.abstractmethod
    def record_outcomes(
        self,
        sync: str,
        batch: str,
        outcomes: pl.DataFrame,
        *,
        run_id: str,
        lease: str,
        close_jobs: Sequence[tuple[str, str]] = (),
        settle: Settlement | None = None,
    ) -> None:
        """Append outcomes (OUTCOME_COLUMNS, optionally OPTIONAL_OUTCOME_COLUMNS), close the
        jobs they came from (`(job_id, final state)` pairs) and, with `settle`, record the
        batch's status and release the lease: one transaction, refused (LeaseLost) unless
        `lease` is the batch's current lease token."""

    # -- open jobs ---------------------------------------------------------------------------

    @abc.abstractmethod
    def start_job(self, sync: str, batch: str, job: JobStart, *, lease: str) -> None:
        """Remember a write before its data leaves; refused (LeaseLost) without the lease."""

    @abc.abstractmethod
    def open_jobs(self, sync: str, batch: str) -> list[OpenJob]:
        """Writes of this batch whose outcome is not recorded yet, oldest first."""

    @abc.abstractmethod
    def jobs(self, sync: str, batch: str | None = None) -> pl.DataFrame:
        """Every write job of the sync (or batch), with `key_count` instead of the keys."""

    # -- leases ------------------------------------------------------------------------------

    @abc.abstractmethod
    def claim_lease(self, sync: str, batch: str, claim: Claim) -> Lease:
        """Take the batch's lease if nobody holds it; the holder afterwards (maybe another)."""

    @abc.abstractmethod
    def take_over_lease(self, sync: str, batch: str, claim: Claim, previous_token: str) -> bool:
        """Replace the holder whose token is `previous_token`; False if it changed meanwhile."""

    @abc.abstractmethod
    def renew_lease(self, sync: str, batch: str, token: str) -> bool:
        """Heartbeat; False when the lease is no longer held with this token."""

    @abc.abstractmethod
    def release_lease(self, sync: str, batch: str, token: str) -> None:
        """Give the lease up (nothing happens if it is no longer held with this token)."""

    @abc.abstractmethod
    def current_lease(self, sync: str, batch: str) -> Lease | None:
        """The batch's holder, if any."""

    # -- batch status ------------------------------------------------------------------------

    @abc.abstractmethod
    def batch_statuses(self, sync: str) -> pl.DataFrame:
        """`batch`, `status`, `rows`, `refused`, `run_id`, `updated_at` of every batch of the
        sync whose write finished."""

    @abc.abstractmethod
    def settle_batch(self, sync: str, batch: str, settle: Settlement, *, lease: str) -> None:
        """Record how a write that sent nothing ended and release the lease, together."""

    # -- Emarsys uploads ---------------------------------------------------------------------

    @abc.abstractmethod
    def emarsys_uploads(self, sync: str, batch: str | None = None) -> pl.DataFrame:
        """`batch`, `part`, `state`, `line_count`, `first_order`, `run_id`, `updated_at`."""

    @abc.abstractmethod
    def emarsys_lines(self, sync: str, keys: pl.Series) -> pl.DataFrame:
        """`_key`, `batch`, `part`, `state` of the given line keys recorded in any batch."""

    @abc.abstractmethod
    def begin_emarsys_upload(
        self,
        sync: str,
        batch: str,
        keys: pl.Series,
        *,
        run_id: str,
        first_order: str | None,
        lease: str,
    ) -> int:
        """Check and mark in one transaction: refuse (UploadConflict) while a part of the
        batch is uncertain or when any key is already recorded, else record the keys as a new
        uncertain part; its number."""

    @abc.abstractmethod
    def finish_emarsys_upload(
        self, sync: str, batch: str, part: int, *, lease: str, settle: Settlement
    ) -> None:
        """After the 200: the part is sent, the batch settled and the lease released."""

    @abc.abstractmethod
    def forget_emarsys_upload(self, sync: str, batch: str, part: int) -> int:
        """Nothing of the part was stored: drop it and its lines; how many lines it held."""

    @abc.abstractmethod
    def confirm_emarsys_upload(self, sync: str, batch: str, part: int, *, run_id: str) -> int:
        """A person confirmed the uncertain part arrived: it becomes sent; its line count."""

    # -- ingest cursors --------------------------------------------------------------------------

    @abc.abstractmethod
    def cursor(self, stream: str) -> dict[str, Any] | None:
        """The last committed cursor of an ingest stream (a small JSON document), or None."""

    @abc.abstractmethod
    def commit_cursors(self, cursors: Mapping[str, Mapping[str, Any]], *, run_id: str) -> None:
        """Replace the cursors of every stream given, all or none, and append them to the
        history; called only after the rows they cover are committed."""

    @abc.abstractmethod
    def cursors(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Every stream whose name starts with `prefix`, with its cursor."""

    @abc.abstractmethod
    def cursor_history(self, stream: str) -> list[CursorCommit]:
        """Every commit of the stream, oldest first."""
