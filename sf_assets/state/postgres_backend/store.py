"""The shared backend: the whole state in one PostgreSQL database (a schema of its own), for
deployments whose runs and steps start on different machines.

Every operation opens a short connection (the stores are rebuilt for every run and step, and a
connection over a socket or the LAN costs a few milliseconds, next to the Salesforce calls it
guards), runs one transaction and closes. Rows that must not change under a transaction are
locked explicitly: every write made under a lease first locks the lease row (`FOR UPDATE`), so
a take-over waits for it and is seen by the next; unique keys (the lease, the batch status, the
Emarsys line key) are the last word where two transactions race. A transaction that meets a
deadlock or a serialization failure is run again; a connection that breaks in the middle is not
(its commit may or may not have happened): the step fails with a message that says so, and the
next run of the batch finishes it from the target's answers, as after any crash.

Staged batches are kept as Arrow IPC chunks of up to CHUNK_ROWS rows, compressed with LZ4:
a frame loads back with exactly its polars types (nested lists and structs included) and any
columns it brings, without one table per sync and kind to create, widen and type-map, and
writing or reading one is a single COPY of a few large values (BENCHMARKS.md measures both).
All of the PostgreSQL SQL of the state store is in this package.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import polars as pl
import psycopg
from psycopg import errors
from pydantic import Field
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

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
    UploadConflict,
)
from sf_assets.state.postgres_backend.frames import UTC_MICROSECONDS, copy_in, copy_out
from sf_assets.state.postgres_backend.migrations import migrate
from sf_assets.state.store import (
    KINDS,
    OPTIONAL_OUTCOME_COLUMNS,
    OUTCOME_COLUMNS,
    StateStore,
    ledger_rows,
)

T = TypeVar("T")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CHUNK_ROWS = 250_000
CONFLICT_ATTEMPTS = 20
RETRIED = (errors.DeadlockDetected, errors.SerializationFailure)

LEDGER_SCHEMA: dict[str, pl.DataType] = {
    "sync": pl.Utf8(),
    "batch": pl.Utf8(),
    "source_key": pl.Utf8(),
    "target_id": pl.Utf8(),
    "operation": pl.Utf8(),
    "api": pl.Utf8(),
    "status": pl.Utf8(),
    "error_code": pl.Utf8(),
    "error_message": pl.Utf8(),
    "hint": pl.Utf8(),
    "content_hash": pl.Utf8(),
    "run_id": pl.Utf8(),
    "attempt": pl.Int32(),
    "job_id": pl.Utf8(),
    "written_at": UTC_MICROSECONDS,
    "object": pl.Utf8(),
    "match_value": pl.Utf8(),
}
JOBS_SCHEMA: dict[str, pl.DataType] = {
    "sync": pl.Utf8(),
    "batch": pl.Utf8(),
    "job_id": pl.Utf8(),
    "api": pl.Utf8(),
    "operation": pl.Utf8(),
    "state": pl.Utf8(),
    "run_id": pl.Utf8(),
    "created_at": UTC_MICROSECONDS,
    "closed_at": UTC_MICROSECONDS,
    "match_field": pl.Utf8(),
    "key_count": pl.Int64(),
}
BATCHES_SCHEMA: dict[str, pl.DataType] = {
    "batch": pl.Utf8(),
    "status": pl.Utf8(),
    "rows": pl.Int64(),
    "refused": pl.Int64(),
    "run_id": pl.Utf8(),
    "updated_at": UTC_MICROSECONDS,
}
UPLOADS_SCHEMA: dict[str, pl.DataType] = {
    "batch": pl.Utf8(),
    "part": pl.Int32(),
    "state": pl.Utf8(),
    "line_count": pl.Int64(),
    "first_order": pl.Utf8(),
    "run_id": pl.Utf8(),
    "updated_at": UTC_MICROSECONDS,
}
LINES_SCHEMA: dict[str, pl.DataType] = {
    "_key": pl.Utf8(),
    "batch": pl.Utf8(),
    "part": pl.Int32(),
    "state": pl.Utf8(),
}
LEASE_COLUMNS = (
    "sync, batch, run_id, token, host, pid, process_started, acquired_at, "
    "extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 AS heartbeat_age"
)
# A batch's latest outcomes with given statuses: the few rows with them (through the index
# of unwritten rows, for the statuses it covers), less those a later attempt replaced. No sort
# of the whole batch, which for a written million-row batch took longer than the rest.
LATEST_WITH_STATUS = (
    "SELECT DISTINCT ON (source_key) * FROM write_ledger AS l "
    "WHERE sync = %(sync)s AND batch = %(batch)s AND status = ANY(%(statuses)s) "
    "AND NOT EXISTS (SELECT 1 FROM write_ledger AS later WHERE later.sync = %(sync)s "
    "AND later.batch = %(batch)s AND later.source_key = l.source_key "
    "AND later.attempt > l.attempt) ORDER BY source_key, attempt DESC"
)

_migrated: set[str] = set()
_migrated_lock = threading.Lock()


class PostgresStateStore(StateStore):
    """The state in a PostgreSQL database, shared by every machine of a deployment."""

    shared: ClassVar[bool] = True

    url: str = Field(
        description="postgresql://user:password@host:port/database (any libpq URL); the "
        "password may also come from PGPASSWORD or ~/.pgpass."
    )
    db_schema: str = Field(
        "sf_assets",
        description="The schema that holds sf-assets' tables, created on first use.",
    )
    connect_wait_seconds: float = Field(
        30.0,
        ge=0,
        description="How long an operation keeps trying to reach the database (a restart, a "
        "fail-over) before the step fails.",
    )

    @property
    def location(self) -> str:
        """The database's address without its password, for messages."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
        address = urlunsplit(parts._replace(netloc=f"{user}{host}{port}", query=query))
        return f"{address} [{self.db_schema}]"

    # -- connections and transactions -------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """A short connection to a schema at the latest version (autocommit outside of
        `transaction()` blocks)."""
        try:
            connection = self._open()
        except psycopg.OperationalError as error:
            raise self._unreachable(error) from None
        try:
            self._migrate(connection)
            yield connection
        except psycopg.OperationalError as error:
            if not connection.broken:
                raise
            raise self._broken(error) from None
        finally:
            connection.close()

    def _open(self) -> psycopg.Connection:
        retrying = Retrying(
            retry=retry_if_exception_type(psycopg.OperationalError),
            wait=wait_random_exponential(multiplier=0.05, max=2.0),
            stop=stop_after_delay(self.connect_wait_seconds),
            reraise=True,
        )
        schema = self.db_schema.replace("\\", "\\\\").replace(" ", "\\ ")
        return retrying(
            psycopg.connect,
            self.url,
            autocommit=True,
            # Sorting a batch's ledger (latest outcome per key) in memory, not on disk.
            options=f"-c search_path={schema} -c TimeZone=UTC -c work_mem=64MB",
            application_name="sf-assets",
        )

    def _unreachable(self, error: psycopg.OperationalError) -> StateError:
        return StateError(
            f"cannot reach the state database {self.location} (tried for "
            f"{self.connect_wait_seconds:.0f} s): {_first_line(error)}. Nothing was sent for "
            "this step. Check that PostgreSQL is up and that SF_ASSETS_STATE_URL is right, "
            "then re-materialize."
        )

    def _broken(self, error: psycopg.OperationalError) -> StateError:
        return StateError(
            f"the connection to the state database {self.location} broke during an "
            f"operation ({_first_line(error)}), so this step stopped. Whatever it sent is in "
            "its open jobs or the ledger: re-materialize once the database is back, and the "
            "next run finishes the batch from Salesforce's own answers (nothing is sent twice)."
        )

    def _migrate(self, connection: psycopg.Connection) -> None:
        key = f"{self.url}#{self.db_schema}"
        with _migrated_lock:
            if key in _migrated:
                return
            migrate(connection, self.db_schema, self.location)
            _migrated.add(key)

    def _write(self, work: Callable[[psycopg.Connection], T]) -> T:
        """Run `work` in one transaction, again when it met a deadlock or a serialization
        failure (both roll the whole transaction back)."""
        for attempt in range(CONFLICT_ATTEMPTS):
            with self.connect() as connection:
                try:
                    with connection.transaction():
                        return work(connection)
                except RETRIED:
                    pass
            time.sleep(0.005 * (attempt + 1))
        raise StateError(
            f"a change to the state database {self.location} kept conflicting with another "
            f"transaction ({CONFLICT_ATTEMPTS} tries); re-materialize"
        )

    def _frame(self, query: str, params: Any, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        with self.connect() as connection:
            return copy_out(connection, query, params, schema)

    # -- staged batches ---------------------------------------------------------------------

    def replace_batch(self, sync: str, kind: str, batch: str, frame: pl.DataFrame) -> None:
        _check_names(sync, kind)
        frame = frame.with_columns(
            pl.col(c).cast(pl.Utf8) for c, t in frame.schema.items() if t == pl.Null
        )
        chunks = [_arrow_bytes(frame.slice(at, CHUNK_ROWS)) for at in _chunk_starts(frame)]

        def work(connection: psycopg.Connection) -> None:
            # The batch's row first: a second writer of the same batch waits here until this
            # transaction ends, then replaces what it committed.
            connection.execute(
                "INSERT INTO staged_batches VALUES (%s, %s, %s, %s, %s, now()) "
                "ON CONFLICT (sync, kind, batch) DO UPDATE SET columns = excluded.columns, "
                "row_count = excluded.row_count, staged_at = excluded.staged_at",
                [sync, kind, batch, frame.columns, frame.height],
            )
            connection.execute(
                "DELETE FROM staged_chunks WHERE sync = %s AND kind = %s AND batch = %s",
                [sync, kind, batch],
            )
            with (
                connection.cursor() as cursor,
                cursor.copy(
                    "COPY staged_chunks (sync, kind, batch, chunk, payload) "
                    "FROM STDIN WITH (FORMAT binary)"
                ) as copy,
            ):
                copy.set_types(["text", "text", "text", "int4", "bytea"])
                for number, payload in enumerate(chunks):
                    copy.write_row([sync, kind, batch, number, payload])

        self._write(work)

    def load_batch(self, sync: str, kind: str, batch: str) -> pl.DataFrame:
        _check_names(sync, kind)
        with self.connect() as connection, connection.transaction():
            found = connection.execute(
                "SELECT columns FROM staged_batches WHERE sync = %s AND kind = %s AND batch = %s",
                [sync, kind, batch],
            ).fetchone()
            if found is None or not found[0]:
                return pl.DataFrame()
            with connection.cursor(binary=True) as cursor:
                payloads = cursor.execute(
                    "SELECT payload FROM staged_chunks "
                    "WHERE sync = %s AND kind = %s AND batch = %s ORDER BY chunk",
                    [sync, kind, batch],
                ).fetchall()
        frames = [pl.read_ipc(io.BytesIO(row[0])) for row in payloads]
        return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]

    # -- ledger ------------------------------------------------------------------------------

    def ledger(self, sync: str, batch: str | None = None) -> pl.DataFrame:
        where, params = _scope(sync, batch)
        return self._frame(
            f"SELECT * FROM write_ledger WHERE {where} ORDER BY written_at, attempt, source_key",
            params,
            LEDGER_SCHEMA,
        )

    def latest_outcomes(
        self, sync: str, batch: str, statuses: Sequence[str] | None = None
    ) -> pl.DataFrame:
        latest = (
            "SELECT DISTINCT ON (source_key) * FROM write_ledger "
            "WHERE sync = %s AND batch = %s ORDER BY source_key, attempt DESC"
        )
        if statuses is None:
            return self._frame(latest, [sync, batch], LEDGER_SCHEMA)
        return self._frame(
            LATEST_WITH_STATUS,
            {"sync": sync, "batch": batch, "statuses": list(statuses)},
            LEDGER_SCHEMA,
        )

    def successful_keys(self, sync: str, batch: str) -> pl.Series:
        frame = self._frame(
            "SELECT DISTINCT source_key FROM write_ledger "
            "WHERE sync = %s AND batch = %s AND status = ANY(%s)",
            [sync, batch, list(SUCCESS_STATUSES)],
            {"source_key": pl.Utf8()},
        )
        return frame["source_key"]

    def written_hashes(self, sync: str, batch: str) -> pl.DataFrame:
        return self._frame(
            "SELECT DISTINCT ON (source_key) source_key, content_hash FROM write_ledger "
            "WHERE sync = %s AND batch = %s AND status IN ('created', 'updated') "
            "ORDER BY source_key, attempt DESC",
            [sync, batch],
            {"source_key": pl.Utf8(), "content_hash": pl.Utf8()},
        )

    def created_keys(self, sync: str, keys: pl.Series) -> pl.DataFrame:
        # What inserts created is found through the created-keys index; what an upsert
        # created (a sync whose operation changed) through the batch index, in the batches
        # `_append_ledger` listed. Upserts' rows stay out of the first index: a 1,000,000-row
        # upsert writeback is 1.7-3.5 s faster without them (BENCHMARKS.md).
        wanted = keys.cast(pl.Utf8).unique().drop_nulls().to_list()
        return self._frame(
            "SELECT DISTINCT ON (source_key) source_key AS _key, target_id, batch FROM ("
            "SELECT source_key, target_id, batch, written_at FROM write_ledger "
            "WHERE sync = %(sync)s AND status = 'created' AND operation = 'insert' "
            "AND source_key = ANY(%(keys)s) "
            "UNION ALL "
            "SELECT source_key, target_id, batch, written_at FROM write_ledger "
            "WHERE sync = %(sync)s AND batch IN (SELECT batch FROM batches_with_other_creations "
            "WHERE sync = %(sync)s) AND status = 'created' "
            "AND operation IS DISTINCT FROM 'insert' AND source_key = ANY(%(keys)s)"
            ") AS created ORDER BY source_key, written_at DESC",
            {"sync": sync, "keys": wanted},
            {"_key": pl.Utf8(), "target_id": pl.Utf8(), "batch": pl.Utf8()},
        )

    def recorded_ids(self, ids: Sequence[str], since: datetime) -> set[str]:
        if not ids:
            return set()
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT DISTINCT target_id FROM write_ledger "
                "WHERE written_at >= %s AND target_id = ANY(%s)",
                [since, list(ids)],
            ).fetchall()
        return {row[0] for row in rows}

    def created_by_other_syncs(
        self, sync: str, sobject: str, match_values: pl.Series
    ) -> pl.DataFrame:
        wanted = match_values.cast(pl.Utf8).str.to_lowercase().unique().drop_nulls().to_list()
        return self._frame(
            "SELECT DISTINCT lower(match_value) AS match_value, sync FROM write_ledger "
            "WHERE object = %s AND sync <> %s AND status = 'created' "
            "AND match_value IS NOT NULL AND lower(match_value) = ANY(%s) ORDER BY 1, 2",
            [sobject, sync, wanted],
            {"match_value": pl.Utf8(), "sync": pl.Utf8()},
        )

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

        def work(connection: psycopg.Connection) -> None:
            _fence(connection, sync, batch, lease)
            if incoming.height:
                _append_ledger(connection, sync, batch, incoming, run_id)
            for job_id, state in close_jobs:
                connection.execute(
                    "UPDATE write_jobs SET state = %s, closed_at = now() "
                    "WHERE job_id = %s AND closed_at IS NULL",
                    [state, job_id],
                )
            if settle is not None:
                _settle(connection, sync, batch, settle)
                _release(connection, sync, batch, lease)

        self._write(work)

    # -- open jobs ---------------------------------------------------------------------------

    def start_job(self, sync: str, batch: str, job: JobStart, *, lease: str) -> None:
        # A million keys travel as one JSON text, unpacked by the server: psycopg's array
        # adapter converts them one Python object at a time (2 s for 1,000,000 keys).
        keys = _json_list(job.keys)
        matches = None if job.matches is None else _json_list(job.matches)

        def work(connection: psycopg.Connection) -> None:
            _fence(connection, sync, batch, lease)
            connection.execute(
                "INSERT INTO write_jobs (sync, batch, job_id, api, operation, match_field, "
                "state, keys, matches, run_id, created_at) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s, coalesce({TEXT_ARRAY}, '{{}}'), {TEXT_ARRAY}, "
                "%s, now())",
                [
                    sync,
                    batch,
                    job.job_id,
                    job.api,
                    job.operation,
                    job.match_field,
                    job.state,
                    keys,
                    matches,
                    job.run_id,
                ],
            )

        self._write(work)

    def open_jobs(self, sync: str, batch: str) -> list[OpenJob]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT job_id, api, operation, match_field, state, keys, matches, run_id, "
                "created_at FROM write_jobs "
                "WHERE sync = %s AND batch = %s AND closed_at IS NULL ORDER BY created_at",
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
            "SELECT sync, batch, job_id, api, operation, state, run_id, created_at, closed_at, "
            "match_field, coalesce(cardinality(keys), 0)::bigint AS key_count FROM write_jobs "
            f"WHERE {where} ORDER BY created_at",
            params,
            JOBS_SCHEMA,
        )

    # -- leases ------------------------------------------------------------------------------

    def claim_lease(self, sync: str, batch: str, claim: Claim) -> Lease:
        def work(connection: psycopg.Connection) -> Lease:
            connection.execute(
                "INSERT INTO leases VALUES (%s, %s, %s, %s, %s, %s, %s, now(), now()) "
                "ON CONFLICT (sync, batch) DO NOTHING",
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
        def work(connection: psycopg.Connection) -> bool:
            changed = connection.execute(
                "UPDATE leases SET token = %s, run_id = %s, host = %s, pid = %s, "
                "process_started = %s, acquired_at = now(), heartbeat_at = now() "
                "WHERE sync = %s AND batch = %s AND token = %s",
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
            )
            return changed.rowcount > 0

        return self._write(work)

    def renew_lease(self, sync: str, batch: str, token: str) -> bool:
        def work(connection: psycopg.Connection) -> bool:
            changed = connection.execute(
                "UPDATE leases SET heartbeat_at = now() "
                "WHERE sync = %s AND batch = %s AND token = %s",
                [sync, batch, token],
            )
            return changed.rowcount > 0

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
            "WHERE sync = %s ORDER BY updated_at, batch",
            [sync],
            BATCHES_SCHEMA,
        )

    def settle_batch(self, sync: str, batch: str, settle: Settlement, *, lease: str) -> None:
        def work(connection: psycopg.Connection) -> None:
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
            UPLOADS_SCHEMA,
        )

    def emarsys_lines(self, sync: str, keys: pl.Series) -> pl.DataFrame:
        with self.connect() as connection:
            return _recorded_lines(connection, sync, _unique_keys(keys))

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
        wanted = keys.cast(pl.Utf8).to_list()

        def work(connection: psycopg.Connection) -> int:
            _fence(connection, sync, batch, lease)
            uncertain = connection.execute(
                "SELECT min(part) FROM emarsys_uploads "
                "WHERE sync = %s AND batch = %s AND state = %s",
                [sync, batch, UNCERTAIN],
            ).fetchone()
            if uncertain and uncertain[0] is not None:
                raise UploadConflict(
                    f"part {uncertain[0]} is uncertain", uncertain_part=uncertain[0], recorded=None
                )
            recorded = _recorded_lines(connection, sync, sorted(set(wanted)))
            if recorded.height:
                raise UploadConflict("lines already recorded", recorded=recorded)
            last = connection.execute(
                "SELECT coalesce(max(part), 0) FROM emarsys_uploads WHERE sync = %s AND batch = %s",
                [sync, batch],
            ).fetchone()
            part = int(last[0]) + 1 if last else 1
            try:  # the unique line key is the last word, whatever raced the check above
                connection.execute(
                    "INSERT INTO emarsys_sent_lines "
                    "SELECT %s, line_key, %s, %s FROM unnest(%s::text[]) AS line_key",
                    [sync, batch, part, wanted],
                )
            except errors.UniqueViolation as error:
                raise UploadConflict(_first_line(error), recorded=None) from None
            connection.execute(
                "INSERT INTO emarsys_uploads VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
                [sync, batch, part, UNCERTAIN, len(wanted), first_order, run_id],
            )
            return part

        return self._write(work)

    def finish_emarsys_upload(
        self, sync: str, batch: str, part: int, *, lease: str, settle: Settlement
    ) -> None:
        def work(connection: psycopg.Connection) -> None:
            _fence(connection, sync, batch, lease)
            connection.execute(
                "UPDATE emarsys_uploads SET state = %s, run_id = %s, updated_at = now() "
                "WHERE sync = %s AND batch = %s AND part = %s",
                [SENT, settle.run_id, sync, batch, part],
            )
            _settle(connection, sync, batch, settle)
            _release(connection, sync, batch, lease)

        self._write(work)

    def forget_emarsys_upload(self, sync: str, batch: str, part: int) -> int:
        def work(connection: psycopg.Connection) -> int:
            connection.execute(
                "DELETE FROM emarsys_sent_lines WHERE sync = %s AND batch = %s AND part = %s",
                [sync, batch, part],
            )
            found = connection.execute(
                "DELETE FROM emarsys_uploads WHERE sync = %s AND batch = %s AND part = %s "
                "RETURNING line_count",
                [sync, batch, part],
            ).fetchone()
            return int(found[0]) if found else 0

        return self._write(work)

    def confirm_emarsys_upload(self, sync: str, batch: str, part: int, *, run_id: str) -> int:
        def work(connection: psycopg.Connection) -> int:
            found = connection.execute(
                "UPDATE emarsys_uploads SET state = %s, run_id = %s, updated_at = now() "
                "WHERE sync = %s AND batch = %s AND part = %s AND state = %s "
                "RETURNING line_count",
                [SENT, run_id, sync, batch, part, UNCERTAIN],
            ).fetchone()
            return int(found[0]) if found else 0

        return self._write(work)

    # -- ingest cursors --------------------------------------------------------------------------

    def cursor(self, stream: str) -> dict[str, Any] | None:
        with self.connect() as connection:
            row = connection.execute(
                "SELECT cursor FROM ingest_cursors WHERE stream = %s", [stream]
            ).fetchone()
        return json.loads(row[0]) if row else None

    def commit_cursors(self, cursors: Mapping[str, Mapping[str, Any]], *, run_id: str) -> None:
        rows = [
            (stream, json.dumps(dict(value), sort_keys=True)) for stream, value in cursors.items()
        ]
        if not rows:
            return

        def work(connection: psycopg.Connection) -> None:
            for stream, text in rows:
                connection.execute(
                    "INSERT INTO ingest_cursors VALUES (%s, %s, %s, now()) "
                    "ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, "
                    "run_id = excluded.run_id, committed_at = excluded.committed_at",
                    [stream, text, run_id],
                )
                connection.execute(
                    "INSERT INTO ingest_cursor_history (stream, cursor, run_id, committed_at) "
                    "VALUES (%s, %s, %s, now())",
                    [stream, text, run_id],
                )

        self._write(work)

    def cursors(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT stream, cursor FROM ingest_cursors WHERE starts_with(stream, %s) "
                "ORDER BY stream",
                [prefix],
            ).fetchall()
        return {stream: json.loads(text) for stream, text in rows}

    def cursor_history(self, stream: str) -> list[CursorCommit]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT cursor, run_id, committed_at FROM ingest_cursor_history "
                "WHERE stream = %s ORDER BY id",
                [stream],
            ).fetchall()
        return [CursorCommit(json.loads(text), run_id, at) for text, run_id, at in rows]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_names(sync: str, kind: str) -> None:
    if not NAME_PATTERN.match(kind) or not NAME_PATTERN.match(sync):
        raise ValueError(
            f"sync and kind must be lowercase names (e.g. {', '.join(KINDS)}), "
            f"not {sync!r} and {kind!r}"
        )


def _chunk_starts(frame: pl.DataFrame) -> range:
    """Where each chunk starts; an empty frame is one empty chunk (it keeps its columns)."""
    return range(0, max(frame.height, 1), CHUNK_ROWS)


def _arrow_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="lz4")
    return buffer.getvalue()


def _scope(sync: str, batch: str | None) -> tuple[str, list[Any]]:
    if batch is None:
        return "sync = %s", [sync]
    return "sync = %s AND batch = %s", [sync, batch]


def _unique_keys(keys: pl.Series) -> list[str]:
    return keys.cast(pl.Utf8).unique().drop_nulls().sort().to_list()


# A JSON array of texts as TEXT[], in its order (NULL stays NULL).
TEXT_ARRAY = (
    "(SELECT array_agg(value ORDER BY position) "
    "FROM json_array_elements_text(%s::json) WITH ORDINALITY AS item(value, position))"
)


def _json_list(values: pl.Series) -> str:
    return json.dumps(values.cast(pl.Utf8).to_list())


def _append_ledger(
    connection: psycopg.Connection, sync: str, batch: str, incoming: pl.DataFrame, run_id: str
) -> None:
    """Number each key's attempt from the ledger (the caller holds the batch's lease row, so
    no other writer numbers them). A batch's first outcomes are all first attempts, so they
    need no numbering: one COPY straight into the ledger, in key order, so that the b-trees
    keyed by source_key grow at their right edge instead of splitting pages all over (a
    1,000,000-row writeback about a fifth faster, BENCHMARKS.md)."""
    found = connection.execute(
        "SELECT now(), EXISTS (SELECT 1 FROM write_ledger WHERE sync = %s AND batch = %s)",
        [sync, batch],
    ).fetchone()
    assert found is not None  # a SELECT without FROM always has its one row
    now, recorded = found
    other = (pl.col("status") == "created") & (pl.col("operation").fill_null("") != "insert")
    if incoming.select(other.any()).item():  # see created_keys
        connection.execute(
            "INSERT INTO batches_with_other_creations VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [sync, batch],
        )
    if recorded:
        _append_numbered(connection, sync, batch, incoming, run_id)
        return
    first = incoming.sort("source_key").with_columns(
        sync=pl.lit(sync),
        batch=pl.lit(batch),
        run_id=pl.lit(run_id),
        attempt=pl.lit(1),
        written_at=pl.lit(now.isoformat()),
    )
    copy_in(connection, "write_ledger", first, first.columns)


def _append_numbered(
    connection: psycopg.Connection, sync: str, batch: str, incoming: pl.DataFrame, run_id: str
) -> None:
    """COPY the outcomes into a temporary table, then number each key's attempt from the
    ledger in one INSERT … SELECT."""
    columns = [*OUTCOME_COLUMNS, *OPTIONAL_OUTCOME_COLUMNS]
    connection.execute(
        "CREATE TEMPORARY TABLE incoming_outcomes ("
        + ", ".join(f"{c} TEXT" for c in columns)
        + ") ON COMMIT DROP"
    )
    copy_in(connection, "incoming_outcomes", incoming, columns)
    connection.execute("ANALYZE incoming_outcomes")  # a temporary table has no statistics
    listed = ", ".join(columns)
    connection.execute(
        f"""
        INSERT INTO write_ledger ({listed}, sync, batch, run_id, attempt, written_at)
        SELECT {", ".join("i." + c for c in columns)}, %(sync)s, %(batch)s, %(run_id)s,
               coalesce(previous.attempt, 0) + 1, now()
        FROM incoming_outcomes AS i
        LEFT JOIN (
            SELECT source_key, max(attempt) AS attempt FROM write_ledger
            WHERE sync = %(sync)s AND batch = %(batch)s
              AND source_key IN (SELECT source_key FROM incoming_outcomes)
            GROUP BY source_key
        ) AS previous USING (source_key)
        """,
        {"sync": sync, "batch": batch, "run_id": run_id},
    )


def _lease(
    connection: psycopg.Connection, sync: str, batch: str, *, lock: bool = False
) -> Lease | None:
    found = connection.execute(
        f"SELECT {LEASE_COLUMNS} FROM leases WHERE sync = %s AND batch = %s"
        + (" FOR UPDATE" if lock else ""),
        [sync, batch],
    ).fetchone()
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


def _fence(connection: psycopg.Connection, sync: str, batch: str, token: str) -> None:
    """Refuse a change made under a lease this writer no longer holds; the lease row stays
    locked until the transaction ends, so nobody takes it over meanwhile."""
    holder = _lease(connection, sync, batch, lock=True)
    if holder is not None and holder.token == token:
        return
    now = f"run {holder.run_id} holds it now" if holder else "nobody holds it now"
    raise LeaseLost(
        f"{sync} batch {batch}: this run no longer holds the batch's lease ({now}), so it "
        "records and sends nothing more. Whatever it sent is finished by the next run that "
        "holds the lease, from Salesforce's own answers."
    )


def _release(connection: psycopg.Connection, sync: str, batch: str, token: str) -> None:
    connection.execute(
        "DELETE FROM leases WHERE sync = %s AND batch = %s AND token = %s", [sync, batch, token]
    )


def _settle(connection: psycopg.Connection, sync: str, batch: str, settle: Settlement) -> None:
    connection.execute(
        "INSERT INTO batches VALUES (%s, %s, %s, %s, %s, %s, now()) "
        "ON CONFLICT (sync, batch) DO UPDATE SET status = excluded.status, "
        "rows = excluded.rows, refused = excluded.refused, run_id = excluded.run_id, "
        "updated_at = excluded.updated_at",
        [sync, batch, settle.status, settle.rows, settle.refused, settle.run_id],
    )


def _recorded_lines(connection: psycopg.Connection, sync: str, keys: list[str]) -> pl.DataFrame:
    """The given line keys recorded in any batch, with their part's state."""
    return copy_out(
        connection,
        "SELECT l.line_key AS _key, l.batch, l.part, u.state FROM emarsys_sent_lines l "
        "JOIN emarsys_uploads u ON u.sync = l.sync AND u.batch = l.batch AND u.part = l.part "
        "WHERE l.sync = %s AND l.line_key = ANY(%s) ORDER BY l.batch, l.part, l.line_key",
        [sync, keys],
        LINES_SCHEMA,
    )
