"""Reading one Salesforce object into its raw copy: the first read takes everything, later
reads take what changed since the cursor, and deletions follow.

The order of every read is: scan the records, commit them to the warehouse, then move the
cursor in the state store. A crash between the last two reads those records again on the next
run (upserts by Id make that harmless); the cursor is never ahead of the copy. Reads are
committed in chunks, so a crash loses at most one chunk of work, and an unfinished Bulk job is
remembered so that the next run downloads its remaining pages instead of querying again.

A changed field list or filter makes the next read a full one (unchanged records would never
show up as changes otherwise), and so does `full_refresh`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import polars as pl

from resources.salesforce import SalesforceResource
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.describe import describe_object
from sf_assets.salesforce.errors import SalesforceApiError
from sf_assets.salesforce.options import ApiOptions
from sf_assets.salesforce.reader import deletions
from sf_assets.salesforce.reader.commits import Committer
from sf_assets.salesforce.reader.cursor import BulkState, CountCheck, ObjectCursor
from sf_assets.salesforce.reader.fields import Selection
from sf_assets.salesforce.reader.plan import Plan
from sf_assets.salesforce.reader.scan import BULK_READ_RECORDS, Page, Scan, highest
from sf_assets.salesforce.reader.statements import Position, Statement, created_since, until
from sf_assets.salesforce.reader.warehouse import ARCHIVED, DELETED, ORG, Warehouse
from sf_assets.specs.ingest import IngestSpec, ObjectRead
from sf_assets.state.cursors import CursorStore

COMMIT_RECORDS = 100_000  # records per warehouse commit (and cursor move) on REST
FIELD_ERRORS = ("INVALID_FIELD", "INVALID_TYPE")  # a kept describe that no longer holds


@dataclass(frozen=True)
class ReadOptions:
    """How a read runs: what the run asks for, and sizes that tests shrink."""

    full_refresh: bool = False  # read everything again (and compare every key)
    reconcile: bool = False  # compare every key with the org after the changes
    since: datetime | None = None  # a backfill: re-read records stamped from here...
    until: datetime | None = None  # ...to here (default: now); the cursor stays
    commit_records: int = COMMIT_RECORDS
    bulk_records: int = BULK_READ_RECORDS

    @property
    def backfill(self) -> bool:
        return self.since is not None


@dataclass
class ReadReport:
    """What one read did, for the asset's metadata and the checks."""

    object: str
    mode: str = "incremental"  # full | incremental | backfill
    reason: str = ""
    apis: list[str] = field(default_factory=list)
    records: int = 0  # records received (deleted ones included)
    deleted: int = 0  # copies flagged deleted by this read
    archived: int = 0  # copies flagged as no longer matching the filter
    pruned: int = 0  # copies removed as older than the retention window
    reconciled: bool = False
    deleted_ids: list[str] = field(default_factory=list)
    bulk_job_ids: list[str] = field(default_factory=list)
    api_calls: int = 0
    seconds: float = 0.0
    cursor: ObjectCursor = field(default_factory=ObjectCursor)


class ObjectReader:
    """One object of one ingest spec: its statement, cursor stream and copy."""

    def __init__(
        self,
        spec: IngestSpec,
        sobject: str,
        plan: Plan,
        *,
        api: Api,
        warehouse: Warehouse,
        cursors: CursorStore,
        run_id: str,
        log: logging.Logger,
        org_id: str,
    ) -> None:
        self.spec = spec
        self.org_id = org_id
        self.read_spec: ObjectRead = spec.read.objects[sobject]
        self.plan = plan
        self.sobject = plan.selection.object
        self.api = api
        self.warehouse = warehouse
        self.cursors = cursors
        self.run_id = run_id
        self.log = log
        self.selection: Selection = plan.selection
        self.filter = plan.filter
        self.stream = stream_name(spec.name, self.sobject)

    # -- the read ----------------------------------------------------------------------------

    def read(
        self, options: ReadOptions = ReadOptions(), cursor: ObjectCursor | None = None
    ) -> ReadReport:
        """Read from `cursor` (the stream's committed one unless the caller just read it)."""
        started = time.perf_counter()
        calls = self.api.calls
        now = datetime.now(UTC)
        if cursor is None:
            cursor = ObjectCursor.from_json(self.cursors.read(self.stream))
        report = ReadReport(self.sobject)
        if options.backfill:
            self._backfill(options, now, report)
        else:
            full = self._full_reason(cursor, options)
            if full:
                report.mode, report.reason = "full", full
                cursor = self._full(cursor, options, now, report)
            else:
                cursor = self._incremental(cursor, options, now, report)
            report.cursor = cursor
        report.api_calls = self.api.calls - calls
        report.seconds = time.perf_counter() - started
        return report

    def _full_reason(self, cursor: ObjectCursor, options: ReadOptions) -> str:
        if options.full_refresh:
            return "full refresh asked for"
        if cursor.full_read_seq is not None:
            return "resuming an unfinished full read"
        if cursor.completed_at is None and cursor.position is None:
            return "first read"
        if cursor.fields != tuple(self.selection.fields):
            return "the fields read changed"
        if cursor.filter != self.filter:
            return "the filter changed"
        return ""

    def _full(
        self, cursor: ObjectCursor, options: ReadOptions, now: datetime, report: ReadReport
    ) -> ObjectCursor:
        resuming = cursor.full_read_seq is not None and not options.full_refresh
        if not resuming:
            cursor = ObjectCursor(
                full_read_seq=self.warehouse.max_seq(self.sobject) + 1,
                fields=tuple(self.selection.fields),
                filter=self.filter,
                reconciled_at=cursor.reconciled_at,
                count=cursor.count,
            )
            self._commit(cursor)
        scan = self._scan(options, include_deleted=False)
        start = cursor.position if resuming else None
        resume = cursor.bulk if resuming else None
        cursor = self._drain(scan, self._statement(now), start, resume, cursor, options, report)
        report.deleted_ids = []  # a full read uses query: nothing it received is deleted
        missing = self.warehouse.ids_not_seen_since(self.sobject, cursor.full_read_seq or 0)
        self._flag_gone(missing, report)
        report.reconciled = True
        cursor = replace(
            cursor,
            full_read_seq=None,
            settled=self._settled(scan),
            completed_at=now,
            reconciled_at=now,
            count=self._count(now),
        )
        self._prune(now, report)
        self._commit(cursor)
        return cursor

    def _incremental(
        self, cursor: ObjectCursor, options: ReadOptions, now: datetime, report: ReadReport
    ) -> ObjectCursor:
        deletions_source = self.spec.read.deletions.source
        scan = self._scan(options, include_deleted=deletions_source == "query_all")
        start = self._lower_bound(cursor)
        statement = self._statement(now)
        cursor = self._drain(scan, statement, start, cursor.bulk, cursor, options, report)
        compare = self._compare_reason(cursor, options, now)
        if deletions_source == "get_deleted" and not compare:
            since = start.modstamp if start else now
            ids = deletions.deleted_since(self.api, self.sobject, since, self.log)
            if ids is None:
                compare = "getDeleted's window has passed"
            else:
                report.deleted += self.warehouse.flag(self.sobject, ids, column=DELETED)
                report.deleted_ids += ids.to_list()
        if self.filter is not None and start is not None:
            self._archive_leavers(statement, start, options, report)
        if compare:
            self.log.info("%s: comparing every key with the org (%s)", self.sobject, compare)
            report.reason = compare
            missing = self._missing(options, now)
            self._flag_gone(missing, report)
            report.reconciled = True
            cursor = replace(cursor, reconciled_at=now, count=self._count(now))
        cursor = replace(cursor, settled=self._settled(scan) or cursor.settled, completed_at=now)
        self._prune(now, report)
        self._commit(cursor)
        return cursor

    def _backfill(self, options: ReadOptions, now: datetime, report: ReadReport) -> None:
        """Re-read a period without moving the cursor: the copy is repaired, nothing skipped."""
        report.mode = "backfill"
        assert options.since is not None
        report.reason = f"records stamped from {options.since.isoformat()}" + (
            f" to {options.until.isoformat()}" if options.until else ""
        )
        statement = self._statement(now)
        if options.until is not None:
            statement = statement.where(until(options.until))
        scan = self._scan(options, include_deleted=True)
        buffer: list[pl.DataFrame] = []
        for page in scan.pages(statement, Position(options.since.astimezone(UTC))):
            buffer.append(page.rows)
            report.records += page.rows.height
            if sum(f.height for f in buffer) >= options.commit_records or page.done:
                report.deleted += self._write(buffer)
                buffer = []
        report.deleted += self._write(buffer)
        report.apis, report.bulk_job_ids = scan.apis, scan.bulk_job_ids

    # -- scanning and committing ---------------------------------------------------------------

    def _scan(self, options: ReadOptions, *, include_deleted: bool) -> Scan:
        return Scan(
            self.api,
            self.selection,
            include_deleted=include_deleted,
            choice=self.read_spec.api,
            log=self.log,
            bulk_records=options.bulk_records,
        )

    def _drain(
        self,
        scan: Scan,
        statement: Statement,
        start: Position | None,
        resume: BulkState | None,
        cursor: ObjectCursor,
        options: ReadOptions,
        report: ReadReport,
    ) -> ObjectCursor:
        """Every page of the scan committed, the cursor moved after each commit but the last;
        commits run beside the download of the next page (see commits.py). The caller commits
        the finished cursor at the end of the read anyway, so the last chunk's own cursor
        commit would only cost an opening of the state store; a failure in between re-reads
        that chunk, which its upsert makes harmless."""
        buffer: list[Page] = []
        job = resume
        with Committer() as committer:
            for page in scan.pages(statement, start, resume):
                report.records += page.rows.height
                if DELETED in page.rows.columns:
                    report.deleted_ids += page.rows.filter(pl.col(DELETED))["Id"].to_list()
                buffer.append(page)
                if page.bulk is not None:
                    known = job.highest if job and job.job_id == page.bulk.job_id else None
                    job = replace(page.bulk, highest=_later(known, highest(page.rows)))
                    cursor = self._hand_over(committer, buffer, cursor, job, page.done, report)
                    buffer = []
                elif page.done or sum(p.rows.height for p in buffer) >= options.commit_records:
                    cursor = self._hand_over(committer, buffer, cursor, None, page.done, report)
                    buffer = []
            cursor = self._hand_over(committer, buffer, cursor, None, True, report)
        report.apis, report.bulk_job_ids = scan.apis, scan.bulk_job_ids
        return cursor

    def _hand_over(
        self,
        committer: Committer,
        pages: list[Page],
        cursor: ObjectCursor,
        job: BulkState | None,
        done: bool,
        report: ReadReport,
    ) -> ObjectCursor:
        """The cursor that covers `pages`, whose records are committed before it. A Bulk
        job's records are unordered: the cursor holds the job until its last page, then its
        highest record."""
        if not pages and job is None:
            return cursor
        for page in pages:
            cursor = cursor.moved_to(page.position)
        if job is not None:
            cursor = (
                replace(cursor.moved_to(job.highest), bulk=None)
                if done
                else replace(cursor, bulk=job)
            )
        frames = [p.rows for p in pages]
        committer.submit(lambda: self._store(frames, None if done else cursor, report))
        return cursor

    def _store(
        self, frames: list[pl.DataFrame], cursor: ObjectCursor | None, report: ReadReport
    ) -> None:
        """Write the records, then move the cursor over them; the last chunk comes without a
        cursor (see `_drain`)."""
        report.deleted += self._write(frames)
        records = sum(f.height for f in frames)
        if cursor is None:
            self.log.info("%s: %d records committed", self.sobject, records)
            return
        self._commit(cursor)
        self.log.info(
            "%s: %d records committed; cursor at %s",
            self.sobject,
            records,
            cursor.position.modstamp.isoformat() if cursor.position else "the start",
        )

    def _write(self, frames: Iterable[pl.DataFrame]) -> int:
        """Upsert the records; how many current copies they marked deleted."""
        rows = [f for f in frames if f.height]
        if not rows:
            return 0
        frame = pl.concat(rows, how="vertical_relaxed").with_columns(pl.lit(self.org_id).alias(ORG))
        return self.warehouse.upsert(self.sobject, frame)

    def _commit(self, cursor: ObjectCursor) -> None:
        planned = replace(cursor, plan=self.plan.to_json())
        self.cursors.commit({self.stream: planned.to_json()}, run_id=self.run_id)

    # -- statements and bounds -------------------------------------------------------------------

    def _statement(self, now: datetime) -> Statement:
        statement = Statement(self.sobject, tuple(self.selection.fields)).where(self.filter)
        if self.read_spec.retention_days is not None:
            statement = statement.where(created_since(self._retention_cutoff(now)))
        return statement

    def _retention_cutoff(self, now: datetime) -> datetime:
        assert self.read_spec.retention_days is not None
        return now - timedelta(days=self.read_spec.retention_days)

    def _lower_bound(self, cursor: ObjectCursor) -> Position | None:
        """Exactly after the last record, unless it lies in the look-back window of the last
        read: then from the window's start, so that late commits are read too."""
        position, settled = cursor.position, cursor.settled
        if settled is None:
            return position
        if position is None or position.modstamp >= settled:
            return Position(settled)
        return position

    def _settled(self, scan: Scan) -> datetime | None:
        if scan.started is None:
            return None
        return scan.started - timedelta(seconds=self.spec.read.lookback_seconds)

    def _compare_reason(self, cursor: ObjectCursor, options: ReadOptions, now: datetime) -> str:
        policy = self.spec.read.deletions
        if options.reconcile:
            return "a key comparison was asked for"
        if cursor.completed_at and now - cursor.completed_at > timedelta(days=policy.window_days):
            return f"the last read is older than the {policy.window_days}-day deletion window"
        if cursor.reconciled_at is None or now - cursor.reconciled_at > timedelta(
            hours=policy.reconcile_every_hours
        ):
            return f"keys are compared every {policy.reconcile_every_hours:g} hours"
        return ""

    # -- deletions, leavers, retention -----------------------------------------------------------

    def _missing(self, options: ReadOptions, now: datetime) -> pl.Series:
        """Current copies whose keys the org does not return for the spec's statement."""
        scan = Scan(
            self.api,
            deletions.key_selection(self.sobject),
            include_deleted=False,
            choice=self.read_spec.api,
            log=self.log,
            bulk_records=options.bulk_records,
        )
        present = deletions.org_keys(scan, self._statement(now))
        held = self.warehouse.current_ids(self.sobject)
        return held.filter(~held.is_in(present.implode()))

    def _flag_gone(self, missing: pl.Series, report: ReadReport) -> None:
        found = deletions.gone(self.api, self.sobject, missing, filtered=self.filter is not None)
        report.deleted += self.warehouse.flag(self.sobject, found.deleted, column=DELETED)
        report.archived += self.warehouse.flag(self.sobject, found.archived, column=ARCHIVED)
        report.deleted_ids += found.deleted.to_list()

    def _archive_leavers(
        self, statement: Statement, start: Position, options: ReadOptions, report: ReadReport
    ) -> None:
        """Records changed since `start` that no longer match the filter: flagged archived."""
        assert self.filter is not None
        leavers = Statement(self.sobject, ("Id", "SystemModstamp")).where(f"NOT ({self.filter})")
        scan = Scan(
            self.api,
            deletions.key_selection(self.sobject),
            include_deleted=True,
            choice=self.read_spec.api,
            log=self.log,
            bulk_records=options.bulk_records,
        )
        ids = [page.rows["Id"] for page in scan.pages(leavers, start) if page.rows.height]
        if ids:
            report.archived += self.warehouse.flag(self.sobject, pl.concat(ids), column=ARCHIVED)

    def _prune(self, now: datetime, report: ReadReport) -> None:
        if self.read_spec.retention_days is not None:
            report.pruned += self.warehouse.prune(self.sobject, self._retention_cutoff(now))

    def _count(self, now: datetime) -> CountCheck:
        """The copy's current records against the org's `SELECT COUNT()` of the same scope."""
        in_org = self.api.query_count(self._statement(now).count())
        return CountCheck(now, self.warehouse.current_count(self.sobject), in_org)


def read_object(
    spec: IngestSpec,
    sobject: str,
    salesforce: SalesforceResource,
    *,
    warehouse: Warehouse,
    cursors: CursorStore,
    run_id: str,
    log: logging.Logger,
    options: ReadOptions = ReadOptions(),
    api_options: ApiOptions | None = None,
) -> ReadReport:
    """One read of one object of `spec`, with its own view of the org (calls counted apart)."""
    with Api(salesforce, log, api_options or ApiOptions()) as api:
        stream = stream_name(spec.name, sobject)
        now = datetime.now(UTC)
        cursor = ObjectCursor.from_json(cursors.read(stream))
        kept = Plan.from_json(cursor.plan)
        read = spec.read.objects[sobject]
        fresh = kept is None or options.full_refresh or not kept.fits(read, now)

        def reader(plan: Plan) -> ObjectReader:
            return ObjectReader(
                spec,
                sobject,
                plan,
                api=api,
                warehouse=warehouse,
                cursors=cursors,
                run_id=run_id,
                log=log,
                org_id=organization_id(api),
            )

        def described() -> Plan:
            return Plan.described(
                describe_object(api.client, sobject), read, sync=spec.name, now=now
            )

        if fresh or kept is None:
            return reader(described()).read(options, cursor)
        try:
            return reader(kept).read(options, cursor)
        except SalesforceApiError as error:
            if error.code not in FIELD_ERRORS:
                raise
            log.warning(
                "%s: the org refused a field of the kept describe; describing again", sobject
            )
            return reader(described()).read(options)


def organization_id(api: Api) -> str:
    """The org's 15-character id. A Salesforce session id begins with it (`00D…!…`); a
    session that does not is asked with one query of the org's Organization record."""
    prefix, bang, _ = api.client.session_id.partition("!")
    if bang and prefix.startswith("00D"):
        return prefix[:15]
    answer = api.query("SELECT Id FROM Organization").json()
    return str(answer["records"][0]["Id"])[:15]


def stream_name(sync: str, sobject: str) -> str:
    """The cursor stream of one object of one ingest spec."""
    return f"{sync}/{sobject}"


def _later(a: Position | None, b: Position | None) -> Position | None:
    if a is None or b is None:
        return a or b
    return b if b.key() > a.key() else a
