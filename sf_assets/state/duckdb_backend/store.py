"""The embedded backend: the whole state in one DuckDB file, for one machine.

DuckDB lets one process at a time open a file for writing, and Dagster runs steps (and runs)
in separate processes, so every operation opens its own short-lived connection, waits while
another process holds the file (for `lock_wait_seconds`, then fails saying which program
holds it), and keeps its transaction short. Because only one process has the file open at a
time, a transaction here is also serialized against every other process; threads of one
process share the database, and a transaction that meets another's change to the same row is
simply run again. All of the DuckDB SQL of the state store is in this package.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl
from pydantic import Field

from sf_assets.sql import add_missing_columns, attached, first_row, quote_identifier, table_exists
from sf_assets.state.duckdb_backend.migrations import migrate
from sf_assets.state.model import (
    SENT,
    SUCCESS_STATUSES,
    UNCERTAIN,
    Claim,
    CursorCommit,
    JobStart,
    Lease,
    LeaseLost,
    OpenJob,
    Settlement,
    StateError,
    StateLocked,
    UploadConflict,
)
from sf_assets.state.store import KINDS, StateStore, ledger_rows

T = TypeVar("T")
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
BATCH_COLUMN = "_batch"
LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")
CONFLICT_ATTEMPTS = 20
FILE_MODE = 0o600  # the file holds the business data of every staged batch

_migrated: set[str] = set()
_migrated_lock = threading.Lock()
LEASE_COLUMNS = (
    "sync, batch, run_id, token, host, pid, process_started, acquired_at, "
    "epoch(now()) - epoch(heartbeat_at) AS heartbeat_age"
)


class DuckDBStateStore(StateStore):
    """The state in one DuckDB file (the default; everything runs on one machine)."""

    path: str = Field(description="DuckDB file; its folder is created on demand.")
    lock_wait_seconds: float = Field(
        120.0,
        gt=0,
        description="How long an operation waits while another process has the file open "
        "(a DuckDB shell, say) before it fails saying which one.",
    )

    @property
    def location(self) -> str:
        return self.path

    # -- connections and transactions -------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection to a file at the latest schema version."""
        with contextlib.ExitStack() as stack:
            try:
                connection = stack.enter_context(
                    attached(self.path, wait_seconds=self.lock_wait_seconds, mode=FILE_MODE)
                )
            except duckdb.IOException as error:
                raise self._unopenable(error) from None
            connection.execute("SET TimeZone = 'UTC'")
            self._migrate(connection)
            yield connection

    def _unopenable(self, error: duckdb.IOException) -> StateError:
        holder = LOCK_HOLDER.search(str(error))
        if holder is None:
            return StateError(f"cannot open the state file {self.path}: {error}")
        program, pid = holder.groups()
        return StateLocked(
            f"the state file {self.path} stayed locked by {program} (PID {pid}) for "
            f"{self.lock_wait_seconds:.0f} s, so nothing was written. DuckDB lets one "
            "process at a time open it, even to read: close that program (a DuckDB shell or "
            "notebook on the file, or a second Dagster instance), or read a copy of the file, "
            "then re-materialize. Nothing was sent for this step."
        )

    def _migrate(self, connection: duckdb.DuckDBPyConnection) -> None:
        key = str(Path(self.path).resolve())
        with _migrated_lock:
            if key in _migrated:
                return
            migrate(connection, self.path)
            _migrated.add(key)

    def _write(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work` in one transaction, again when it met another thread's change."""
        for attempt in range(CONFLICT_ATTEMPTS):
            with self.connect() as connection:
                connection.begin()
                try:
                    result = work(connection)
                    connection.commit()
                    return result
                except duckdb.TransactionException:
                    _rollback(connection)
                except BaseException:
                    _rollback(connection)
                    raise
            time.sleep(0.005 * (attempt + 1))
        raise StateError(
            f"a change to the state file {self.path} kept conflicting with another thread's "
            f"({CONFLICT_ATTEMPTS} tries); re-materialize"
        )

    def _frame(self, sql: str, params: Any = None) -> pl.DataFrame:
        with self.connect() as connection:
            return connection.sql(sql, params=params).pl()

    # -- staged batches ---------------------------------------------------------------------

    def replace_batch(self, sync: str, kind: str, batch: str, frame: pl.DataFrame) -> None:
        table = _table(sync, kind)
        if BATCH_COLUMN in frame.columns:
            raise ValueError(f"a staged frame may not have a column named {BATCH_COLUMN!r}")
        frame = frame.with_columns(
            pl.col(c).cast(pl.Utf8) for c, t in frame.schema.items() if t == pl.Null
        )
        quoted = quote_identifier(table)

        def work(connection: duckdb.DuckDBPyConnection) -> None:
            if frame.width:
                connection.register("incoming", frame.to_arrow())
                _widen(connection, table)
                connection.execute(f"DELETE FROM {quoted} WHERE {BATCH_COLUMN} = ?", [batch])
                connection.execute(
                    f"INSERT INTO {quoted} BY NAME "
                    f"SELECT ?::VARCHAR AS {BATCH_COLUMN}, * FROM incoming",
                    [batch],
                )
            elif table_exists(connection, "main", table):
                connection.execute(f"DELETE FROM {quoted} WHERE {BATCH_COLUMN} = ?", [batch])
            connection.execute(
                "DELETE FROM staged_batches WHERE sync = ? AND kind = ? AND batch = ?",
                [sync, kind, batch],
            )
            connection.execute(
                "INSERT INTO staged_batches VALUES (?, ?, ?, ?, ?, now())",
                [sync, kind, batch, frame.columns, frame.height],
            )

        self._write(work)

    def load_batch(self, sync: str, kind: str, batch: str) -> pl.DataFrame:
        table = _table(sync, kind)
        with self.connect() as connection:
            found = first_row(
                connection.execute(
                    "SELECT columns FROM staged_batches WHERE sync = ? AND kind = ? AND batch = ?",
                    [sync, kind, batch],
                )
            )
            if found is None or not found[0]:
                return pl.DataFrame()
            selected = ", ".join(quote_identifier(c) for c in found[0])
            return connection.sql(
                f"SELECT {selected} FROM {quote_identifier(table)} WHERE {BATCH_COLUMN} = ?",
                params=[batch],
            ).pl()

    # -- ledger ------------------------------------------------------------------------------

    def ledger(self, sync: str, batch: str | None = None) -> pl.DataFrame:
        where, params = _scope(sync, batch)
        return self._frame(
            f"SELECT * FROM write_ledger WHERE {where} ORDER BY written_at, attempt, source_key",
            params,
        )

    def latest_outcomes(
        self, sync: str, batch: str, statuses: Sequence[str] | None = None
    ) -> pl.DataFrame:
        latest = (
            "SELECT * FROM write_ledger WHERE sync = ? AND batch = ? "
            "QUALIFY row_number() OVER (PARTITION BY source_key ORDER BY attempt DESC) = 1"
        )
        if statuses is None:
            return self._frame(f"{latest} ORDER BY source_key", [sync, batch])
        return self._frame(
            f"SELECT * FROM ({latest}) WHERE list_contains(?, status) ORDER BY source_key",
            [sync, batch, list(statuses)],
        )

    def successful_keys(self, sync: str, batch: str) -> pl.Series:
        frame = self._frame(
            "SELECT DISTINCT source_key FROM write_ledger "
            f"WHERE sync = ? AND batch = ? AND status IN ({_listed(SUCCESS_STATUSES)})",
            [sync, batch],
        )
        return frame["source_key"]

    def written_hashes(self, sync: str, batch: str) -> pl.DataFrame:
        return self._frame(
            "SELECT source_key, content_hash FROM write_ledger "
            "WHERE sync = ? AND batch = ? AND status IN ('created', 'updated') "
            "QUALIFY row_number() OVER (PARTITION BY source_key ORDER BY attempt DESC) = 1",
            [sync, batch],
        )

    def created_keys(self, sync: str, keys: pl.Series) -> pl.DataFrame:
        wanted = pl.DataFrame({"_key": keys.cast(pl.Utf8)}).unique()
        with self.connect() as connection:
            connection.register("wanted", wanted)
            return connection.sql(
                "SELECT source_key AS _key, target_id, batch FROM write_ledger "
                "WHERE sync = ? AND status = 'created' "
                "AND source_key IN (SELECT _key FROM wanted) "
                "QUALIFY row_number() OVER (PARTITION BY source_key ORDER BY written_at DESC) = 1",
                params=[sync],
            ).pl()

    def recorded_ids(self, ids: Sequence[str], since: datetime) -> set[str]:
        if not ids:
            return set()
        wanted = pl.DataFrame({"id": list(ids)}, schema={"id": pl.Utf8})
        with self.connect() as connection:
            connection.register("wanted", wanted)
            frame = connection.sql(
                "SELECT DISTINCT target_id FROM write_ledger "
                "WHERE target_id IN (SELECT id FROM wanted) AND written_at >= ?",
                params=[since],
            ).pl()
        return set(frame["target_id"].to_list())

    def created_by_other_syncs(
        self, sync: str, sobject: str, match_values: pl.Series
    ) -> pl.DataFrame:
        wanted = pl.DataFrame({"value": match_values.cast(pl.Utf8).str.to_lowercase()}).unique()
        with self.connect() as connection:
            connection.register("wanted", wanted)
            return connection.sql(
                "SELECT DISTINCT lower(match_value) AS match_value, sync FROM write_ledger "
                "WHERE object = ? AND sync <> ? AND status = 'created' "
                "AND lower(match_value) IN (SELECT value FROM wanted) ORDER BY 1, 2",
                params=[sobject, sync],
            ).pl()

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
        incoming = ledger_rows(outcomes)

        def work(connection: duckdb.DuckDBPyConnection) -> None:
            _fence(connection, sync, batch, lease)
            if incoming.height:
                _append_ledger(connection, sync, batch, incoming, run_id)
            for job_id, state in close_jobs:
                connection.execute(
                    "UPDATE write_jobs SET state = ?, closed_at = now() "
                    "WHERE job_id = ? AND closed_at IS NULL",
                    [state, job_id],
                )
            if settle is not None:
                _settle(connection, sync, batch, settle)
                _release(connection, sync, batch, lease)

        self._write(work)

    # -- open jobs ---------------------------------------------------------------------------

    def start_job(self, sync: str, batch: str, job: JobStart, *, lease: str) -> None:
        record = pl.DataFrame(
            {
                "sync": [sync],
                "batch": [batch],
                "job_id": [job.job_id],
                "api": [job.api],
                "operation": [job.operation],
                "match_field": [job.match_field],
                "state": [job.state],
                "keys": [job.keys.cast(pl.Utf8)],
                "matches": [None if job.matches is None else job.matches.cast(pl.Utf8)],
                "run_id": [job.run_id],
            }
        )

        def work(connection: duckdb.DuckDBPyConnection) -> None:
            _fence(connection, sync, batch, lease)
            connection.register("incoming", record.to_arrow())
            connection.execute(
                "INSERT INTO write_jobs BY NAME SELECT *, now() AS created_at FROM incoming"
            )

        self._write(work)

    def open_jobs(self, sync: str, batch: str) -> list[OpenJob]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT job_id, api, operation, match_field, state, keys, matches, run_id, "
                "created_at FROM write_jobs "
                "WHERE sync = ? AND batch = ? AND closed_at IS NULL ORDER BY created_at",
                [sync, batch],
            ).fetchall()
        return [
            OpenJob(
                job_id=row[0],
                api=row[1],
                operation=row[2],
                match_field=row[3],
                state=row[4],
                keys=list(row[5] or []),
                matches=list(row[6] or []),
                run_id=row[7],
                created_at=row[8],
            )
            for row in rows
        ]

    def jobs(self, sync: str, batch: str | None = None) -> pl.DataFrame:
        where, params = _scope(sync, batch)
        return self._frame(
            "SELECT * EXCLUDE (keys, matches), len(keys) AS key_count FROM write_jobs "
            f"WHERE {where} ORDER BY created_at",
            params,
        )

    # -- leases ------------------------------------------------------------------------------

    def claim_lease(self, sync: str, batch: str, claim: Claim) -> Lease:
        def work(connection: duckdb.DuckDBPyConnection) -> Lease:
            connection.execute(
                "INSERT OR IGNORE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, now(), now())",
                [
                    sync,
                    batch,
                    claim.token,
                    claim.run_id,
                    claim.host,
                    claim.pid,
                    claim.process_started,
                ],
            )
            held = _lease(connection, sync, batch)
            assert held is not None
            return held

        return self._write(work)

    def take_over_lease(self, sync: str, batch: str, claim: Claim, previous_token: str) -> bool:
        def work(connection: duckdb.DuckDBPyConnection) -> bool:
            changed = connection.execute(
                "UPDATE leases SET token = ?, run_id = ?, host = ?, pid = ?, "
                "process_started = ?, acquired_at = now(), heartbeat_at = now() "
                "WHERE sync = ? AND batch = ? AND token = ?",
                [
                    claim.token,
                    claim.run_id,
                    claim.host,
                    claim.pid,
                    claim.process_started,
                    sync,
                    batch,
                    previous_token,
                ],
            ).fetchall()
            return bool(changed[0][0])

        return self._write(work)

    def renew_lease(self, sync: str, batch: str, token: str) -> bool:
        def work(connection: duckdb.DuckDBPyConnection) -> bool:
            changed = connection.execute(
                "UPDATE leases SET heartbeat_at = now() WHERE sync = ? AND batch = ? AND token = ?",
                [sync, batch, token],
            ).fetchall()
            return bool(changed[0][0])

        return self._write(work)

    def release_lease(self, sync: str, batch: str, token: str) -> None:
        self._write(lambda connection: _release(connection, sync, batch, token))

    def current_lease(self, sync: str, batch: str) -> Lease | None:
        with self.connect() as connection:
            return _lease(connection, sync, batch)

    # -- batch status ------------------------------------------------------------------------

    def batch_statuses(self, sync: str) -> pl.DataFrame:
        return self._frame(
            "SELECT batch, status, rows, refused, run_id, updated_at FROM batches "
            "WHERE sync = ? ORDER BY updated_at, batch",
            [sync],
        )

    def settle_batch(self, sync: str, batch: str, settle: Settlement, *, lease: str) -> None:
        def work(connection: duckdb.DuckDBPyConnection) -> None:
            _fence(connection, sync, batch, lease)
            _settle(connection, sync, batch, settle)
            _release(connection, sync, batch, lease)

        self._write(work)

    # -- Emarsys uploads ---------------------------------------------------------------------

    def emarsys_uploads(self, sync: str, batch: str | None = None) -> pl.DataFrame:
        where, params = _scope(sync, batch)
        return self._frame(
            "SELECT batch, part, state, line_count, first_order, run_id, updated_at "
            f"FROM emarsys_uploads WHERE {where} ORDER BY updated_at, batch, part",
            params,
        )

    def emarsys_lines(self, sync: str, keys: pl.Series) -> pl.DataFrame:
        wanted = pl.DataFrame({"_key": keys.cast(pl.Utf8)}).unique()
        with self.connect() as connection:
            connection.register("wanted", wanted)
            return _recorded_lines(connection, sync)

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
        wanted = pl.DataFrame({"_key": keys.cast(pl.Utf8)})

        def work(connection: duckdb.DuckDBPyConnection) -> int:
            _fence(connection, sync, batch, lease)
            uncertain = first_row(
                connection.execute(
                    "SELECT min(part) FROM emarsys_uploads "
                    "WHERE sync = ? AND batch = ? AND state = ?",
                    [sync, batch, UNCERTAIN],
                )
            )
            if uncertain and uncertain[0] is not None:
                raise UploadConflict(
                    f"part {uncertain[0]} is uncertain", uncertain_part=uncertain[0], recorded=None
                )
            connection.register("wanted", wanted)
            recorded = _recorded_lines(connection, sync)
            if recorded.height:
                raise UploadConflict("lines already recorded", recorded=recorded)
            last = first_row(
                connection.execute(
                    "SELECT coalesce(max(part), 0) FROM emarsys_uploads "
                    "WHERE sync = ? AND batch = ?",
                    [sync, batch],
                )
            )
            part = int(last[0]) + 1 if last else 1
            try:  # the unique line key is the last word, whatever raced the check above
                connection.execute(
                    "INSERT INTO emarsys_sent_lines SELECT ?, _key, ?, ? FROM wanted",
                    [sync, batch, part],
                )
            except duckdb.ConstraintException as error:
                raise UploadConflict(str(error), recorded=None) from None
            connection.execute(
                "INSERT INTO emarsys_uploads VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                [sync, batch, part, UNCERTAIN, wanted.height, first_order, run_id],
            )
            return part

        return self._write(work)

    def finish_emarsys_upload(
        self, sync: str, batch: str, part: int, *, lease: str, settle: Settlement
    ) -> None:
        def work(connection: duckdb.DuckDBPyConnection) -> None:
            _fence(connection, sync, batch, lease)
            connection.execute(
                "UPDATE emarsys_uploads SET state = ?, run_id = ?, updated_at = now() "
                "WHERE sync = ? AND batch = ? AND part = ?",
                [SENT, settle.run_id, sync, batch, part],
            )
            _settle(connection, sync, batch, settle)
            _release(connection, sync, batch, lease)

        self._write(work)

    def forget_emarsys_upload(self, sync: str, batch: str, part: int) -> int:
        def work(connection: duckdb.DuckDBPyConnection) -> int:
            found = first_row(
                connection.execute(
                    "SELECT line_count FROM emarsys_uploads WHERE sync = ? AND batch = ? "
                    "AND part = ?",
                    [sync, batch, part],
                )
            )
            for table in ("emarsys_sent_lines", "emarsys_uploads"):
                connection.execute(
                    f"DELETE FROM {table} WHERE sync = ? AND batch = ? AND part = ?",
                    [sync, batch, part],
                )
            return int(found[0]) if found else 0

        return self._write(work)

    def confirm_emarsys_upload(self, sync: str, batch: str, part: int, *, run_id: str) -> int:
        def work(connection: duckdb.DuckDBPyConnection) -> int:
            found = first_row(
                connection.execute(
                    "UPDATE emarsys_uploads SET state = ?, run_id = ?, updated_at = now() "
                    "WHERE sync = ? AND batch = ? AND part = ? AND state = ? "
                    "RETURNING line_count",
                    [SENT, run_id, sync, batch, part, UNCERTAIN],
                )
            )
            return int(found[0]) if found else 0

        return self._write(work)

    # -- SQL pieces ----------------------------------------------------------------------------------

    # -- ingest cursors --------------------------------------------------------------------------

    def cursor(self, stream: str) -> dict[str, Any] | None:
        with self.connect() as connection:
            row = first_row(
                connection.execute("SELECT cursor FROM ingest_cursors WHERE stream = ?", [stream])
            )
        return json.loads(row[0]) if row else None

    def commit_cursors(self, cursors: Mapping[str, Mapping[str, Any]], *, run_id: str) -> None:
        rows = [
            (stream, json.dumps(dict(value), sort_keys=True)) for stream, value in cursors.items()
        ]
        if not rows:
            return

        def work(connection: duckdb.DuckDBPyConnection) -> None:
            for stream, text in rows:
                connection.execute("DELETE FROM ingest_cursors WHERE stream = ?", [stream])
                for table in ("ingest_cursors", "ingest_cursor_history"):
                    connection.execute(
                        f"INSERT INTO {table} VALUES (?, ?, ?, now())", [stream, text, run_id]
                    )

        self._write(work)

    def cursors(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT stream, cursor FROM ingest_cursors WHERE starts_with(stream, ?) "
                "ORDER BY stream",
                [prefix],
            ).fetchall()
        return {stream: json.loads(text) for stream, text in rows}

    def cursor_history(self, stream: str) -> list[CursorCommit]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT cursor, run_id, committed_at FROM ingest_cursor_history "
                "WHERE stream = ? ORDER BY committed_at, rowid",
                [stream],
            ).fetchall()
        return [CursorCommit(json.loads(text), run_id, at) for text, run_id, at in rows]


def _rollback(connection: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # a failed commit has rolled back by itself
        connection.rollback()


def _table(sync: str, kind: str) -> str:
    if not KIND_PATTERN.match(kind) or not KIND_PATTERN.match(sync):
        raise ValueError(
            f"sync and kind must be lowercase names (e.g. {', '.join(KINDS)}), "
            f"not {sync!r} and {kind!r}"
        )
    return f"{sync}__{kind}"


def _widen(connection: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create the table from the incoming frame, or add the columns it brings."""
    quoted = quote_identifier(table)
    if not table_exists(connection, "main", table):
        connection.execute(
            f"CREATE TABLE {quoted} AS "
            f"SELECT NULL::VARCHAR AS {BATCH_COLUMN}, * FROM incoming LIMIT 0"
        )
        return
    add_missing_columns(connection, quoted)


def _scope(sync: str, batch: str | None) -> tuple[str, list[Any]]:
    if batch is None:
        return "sync = ?", [sync]
    return "sync = ? AND batch = ?", [sync, batch]


def _listed(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


# Each incoming key's latest attempt so far in the batch (only the incoming keys are looked at).
PREVIOUS_ATTEMPTS = """
    LEFT JOIN (
        SELECT source_key, max(attempt) AS attempt FROM write_ledger
        WHERE sync = $sync AND batch = $batch
          AND source_key IN (SELECT source_key FROM incoming)
        GROUP BY source_key
    ) AS previous USING (source_key)
"""


def _append_ledger(
    connection: duckdb.DuckDBPyConnection,
    sync: str,
    batch: str,
    incoming: pl.DataFrame,
    run_id: str,
) -> None:
    """Add outcomes, each as its key's next attempt. A batch's first outcomes are all first
    attempts: numbering them against the ledger would hash every key of the batch for nothing
    (a third of the memory and time of recording 1,000,000 outcomes)."""
    connection.register("incoming", incoming.to_arrow())
    params = {"sync": sync, "batch": batch, "run_id": run_id}
    recorded = connection.execute(
        "SELECT 1 FROM write_ledger WHERE sync = $sync AND batch = $batch LIMIT 1",
        {"sync": sync, "batch": batch},
    )
    numbered = first_row(recorded) is not None
    attempt = "(coalesce(previous.attempt, 0) + 1)::INTEGER" if numbered else "1"
    connection.execute(
        "INSERT INTO write_ledger BY NAME SELECT incoming.*, $sync AS sync, $batch AS batch, "
        f"$run_id AS run_id, {attempt} AS attempt, now() AS written_at FROM incoming "
        + (PREVIOUS_ATTEMPTS if numbered else ""),
        params,
    )


def _lease(connection: duckdb.DuckDBPyConnection, sync: str, batch: str) -> Lease | None:
    found = first_row(
        connection.execute(
            f"SELECT {LEASE_COLUMNS} FROM leases WHERE sync = ? AND batch = ?", [sync, batch]
        )
    )
    if found is None:
        return None
    return Lease(
        sync=found[0],
        batch=found[1],
        run_id=found[2],
        token=found[3],
        host=found[4],
        pid=int(found[5]),
        process_started=found[6],
        acquired_at=found[7],
        heartbeat_age_seconds=float(found[8]),
    )


def _fence(connection: duckdb.DuckDBPyConnection, sync: str, batch: str, token: str) -> None:
    """Refuse a change made under a lease this writer no longer holds."""
    holder = _lease(connection, sync, batch)
    if holder is not None and holder.token == token:
        return
    now = f"run {holder.run_id} holds it now" if holder else "nobody holds it now"
    raise LeaseLost(
        f"{sync} batch {batch}: this run no longer holds the batch's lease ({now}), so it "
        "records and sends nothing more. Whatever it sent is finished by the next run that "
        "holds the lease, from Salesforce's own answers."
    )


def _release(connection: duckdb.DuckDBPyConnection, sync: str, batch: str, token: str) -> None:
    connection.execute(
        "DELETE FROM leases WHERE sync = ? AND batch = ? AND token = ?", [sync, batch, token]
    )


def _settle(
    connection: duckdb.DuckDBPyConnection, sync: str, batch: str, settle: Settlement
) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, now())",
        [sync, batch, settle.status, settle.rows, settle.refused, settle.run_id],
    )


def _recorded_lines(connection: duckdb.DuckDBPyConnection, sync: str) -> pl.DataFrame:
    """Lines of the registered `wanted` frame recorded in any batch, with their part's state."""
    return connection.sql(
        "SELECT w._key, l.batch, l.part, u.state FROM wanted w "
        "JOIN emarsys_sent_lines l ON l.line_key = w._key AND l.sync = ? "
        "JOIN emarsys_uploads u ON u.sync = l.sync AND u.batch = l.batch AND u.part = l.part "
        "ORDER BY l.batch, l.part, w._key",
        params=[sync],
    ).pl()
