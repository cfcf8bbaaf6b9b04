"""Scanning an object's records through REST query pages or one Bulk API 2.0 query job.

`auto` starts on REST: its first page answers with the total, so a small read costs no extra
counting call and finishes on REST (2,000 records a call), while a large one goes on through
one Bulk job from the last record of that page. A read told to use Bulk asks `SELECT COUNT()`
first, one call, for the reason `auto` passes its total on: a job whose size is known is
polled as its progress says (a handful of calls for a long job, noticed as it ends) instead of
every 5 s.

REST pages come in (SystemModstamp, Id) order, so each page ends at a position a read can
resume from. A Bulk job is not ordered (ordering would switch off Salesforce's primary-key
chunking), so its position is only known once every page is in; until then a read resumes
from the job itself, which Salesforce keeps for days.

An expired query locator (Salesforce drops idle ones after 15 minutes) is not an error: the
scan asks again from the last record it has, which the keyset makes exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import polars as pl

from sf_assets.salesforce.api import Api
from sf_assets.salesforce.bulk2 import query
from sf_assets.salesforce.errors import SalesforceApiError
from sf_assets.salesforce.reader.cursor import BulkState
from sf_assets.salesforce.reader.fields import Selection
from sf_assets.salesforce.reader.statements import Position, Statement
from sf_assets.salesforce.reader.values import from_csv, from_records

# Records from which a read goes on through a Bulk query job instead of more REST pages. A
# Bulk job costs three calls or more (create, poll, one result page per 250,000 records) and
# Salesforce queues it for seconds; REST returns 2,000 records a call. At 10,000 records REST
# needs 5 calls; beyond that Bulk spends fewer calls and, from tens of thousands on, less time
# (see BENCHMARKS.md, "Reading Salesforce into DuckDB").
BULK_READ_RECORDS = 10_000
LOCATOR_EXPIRED = "INVALID_QUERY_LOCATOR"


class ReadError(Exception):
    """A read that cannot go on; the message says what the copy holds and what to do."""


@dataclass(frozen=True)
class Page:
    """Records of one answer, typed; `position` is where a read resumes when the records came
    in order (REST), `bulk` the job to resume when they did not."""

    rows: pl.DataFrame
    position: Position | None
    bulk: BulkState | None = None
    done: bool = False


class Scan:
    """One scan of a statement; tells afterwards which API it used and when the org said it
    began (the `Date` of its first answer)."""

    def __init__(
        self,
        api: Api,
        selection: Selection,
        *,
        include_deleted: bool,
        choice: str,
        log: logging.Logger,
        bulk_records: int = BULK_READ_RECORDS,
    ) -> None:
        self.api = api
        self.selection = selection
        self.include_deleted = include_deleted
        self.choice = choice
        self.log = log
        self.bulk_records = bulk_records
        self.apis: list[str] = []
        self.started: datetime | None = None
        self.bulk_job_ids: list[str] = []

    def pages(
        self, statement: Statement, start: Position | None, resume: BulkState | None = None
    ) -> Iterator[Page]:
        """Every record of `statement` after `start`, page by page; `resume` continues a Bulk
        job a previous read left unfinished."""
        if resume is not None and (job := self._existing_job(resume)) is not None:
            yield from self._bulk_pages(job)
            return
        if self.choice == "bulk":
            remaining = statement.after(start)
            yield from self._bulk(remaining, self._count(remaining))
            return
        yield from self._rest(statement, start)

    # -- REST --------------------------------------------------------------------------------

    def _rest(self, statement: Statement, start: Position | None) -> Iterator[Page]:
        self._used("rest")
        position = start
        answer = self._first(statement.after(position))
        received = 0
        while True:
            rows = from_records(answer["records"], self.selection)
            position = _last(rows) or position
            received += rows.height
            remaining = int(answer["totalSize"]) - received
            done = bool(answer["done"])
            switch = self.choice == "auto" and not done and remaining >= self.bulk_records
            yield Page(rows, position, done=done and not switch)
            if done:
                return
            if switch:
                self.log.info(
                    "%s: %d more records to read; going on through a Bulk query job",
                    self.selection.object,
                    remaining,
                )
                yield from self._bulk(statement.after(position), remaining)
                return
            answer = self._more(answer["nextRecordsUrl"], statement, position, start)

    def _first(self, statement: Statement) -> dict[str, Any]:
        response = self.api.query(statement.soql(), include_deleted=self.include_deleted)
        self._started(response.headers.get("Date"))
        return response.json()

    def _count(self, statement: Statement) -> int:
        """How many records `statement` returns (the Bulk-only scan's start stays the job's
        creation, by the org's clock)."""
        return self.api.query_count(statement.count(), include_deleted=self.include_deleted)

    def _more(
        self, url: str, statement: Statement, position: Position | None, start: Position | None
    ) -> dict[str, Any]:
        try:
            return self.api.call("GET", url, idempotent=True).json()
        except SalesforceApiError as error:
            if error.code != LOCATOR_EXPIRED:
                raise
        self.log.info(
            "%s: the query locator expired; asking again from the last record read",
            self.selection.object,
        )
        answer = self._first(statement.after(position))
        first = _first(from_records(answer["records"][:1], self.selection))
        if first is not None and position is not None and _not_after(first, position):
            raise ReadError(
                f"{self.selection.object}: Salesforce answered the resumed query from "
                f"{first.modstamp} {first.record_id} although the last record read was "
                f"{position.modstamp} {position.record_id}; what was committed stays, run the "
                "read again"
            )
        return answer

    # -- Bulk --------------------------------------------------------------------------------

    def _bulk(self, statement: Statement, rows: int | None = None) -> Iterator[Page]:
        """The records through a Bulk query job; `rows`, how many a REST answer said are left,
        lets the polls follow the job's progress."""
        self._used("bulk")
        unordered = Statement(statement.object, statement.fields, statement.conditions, False)
        job_id = query.create(self.api, unordered.soql(), include_deleted=self.include_deleted)
        self.bulk_job_ids.append(job_id)
        self.log.info("%s: Bulk query job %s created", self.selection.object, job_id)
        yield Page(_empty(self.selection), None, BulkState(job_id, None))
        yield from self._bulk_pages(BulkState(job_id, None), rows)

    def _existing_job(self, job: BulkState) -> BulkState | None:
        """The job to resume, if Salesforce still has it."""
        try:
            self.api.call("GET", f"{query.JOBS}/{job.job_id}", idempotent=True)
        except SalesforceApiError as error:
            if error.status == 404:
                self.log.info("Bulk query job %s is gone; reading again", job.job_id)
                return None
            raise
        self._used("bulk")
        self.bulk_job_ids.append(job.job_id)
        self.log.info("%s: resuming Bulk query job %s", self.selection.object, job.job_id)
        return job

    def _bulk_pages(self, job: BulkState, rows: int | None = None) -> Iterator[Page]:
        if_late = "nothing of it was committed; run the read again"
        final = query.poll(self.api, job.job_id, if_late, rows=rows)
        self._started_at(final.get("createdDate"))
        if final["state"] != "JobComplete":
            raise ReadError(
                f"{self.selection.object}: Salesforce did not complete Bulk query job "
                f"{job.job_id} ({final['state']}: {final.get('errorMessage') or 'no message'}); "
                "the copy keeps what earlier reads committed"
            )
        for body, following in query.pages_from(self.api, job.job_id, job.locator):
            rows = from_csv(body, self.selection)
            done = following is None
            yield Page(rows, None, BulkState(job.job_id, following), done=done)

    # -- bookkeeping -------------------------------------------------------------------------

    def _used(self, name: str) -> None:
        if name not in self.apis:
            self.apis.append(name)

    def _started(self, date_header: str | None) -> None:
        if self.started is None and date_header:
            self.started = parsedate_to_datetime(date_header).astimezone(UTC)

    def _started_at(self, created: str | None) -> None:
        """A Bulk-only scan began when its job was created, by the org's clock."""
        if self.started is None and created:
            self.started = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def _empty(selection: Selection) -> pl.DataFrame:
    return pl.DataFrame(schema=selection.schema)


def _last(rows: pl.DataFrame) -> Position | None:
    if rows.is_empty():
        return None
    return Position(rows["SystemModstamp"][-1], rows["Id"][-1])


def _not_after(first: Position, position: Position) -> bool:
    """Whether a resumed answer starts at or before where the last one stopped: the same
    record again, or an earlier time (within one time only the org knows the Id order)."""
    return first.record_id == position.record_id or first.modstamp < position.modstamp


def _first(rows: pl.DataFrame) -> Position | None:
    if rows.is_empty():
        return None
    return Position(rows["SystemModstamp"][0], rows["Id"][0])


def highest(rows: pl.DataFrame) -> Position | None:
    """The greatest (SystemModstamp, Id) among `rows`, whatever their order."""
    if rows.is_empty():
        return None
    top = rows.select("SystemModstamp", "Id").sort("SystemModstamp", "Id").row(-1)
    return Position(top[0], top[1])
