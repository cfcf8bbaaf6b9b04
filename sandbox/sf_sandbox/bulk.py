"""Bulk API 2.0: ingest jobs (create, upload one CSV, close, poll, read results) and query jobs.

A job answers at once and works in the background, as the real one does: closing an ingest job
returns `UploadComplete`, the job waits in the queue, moves to `InProgress`, and ends
`JobComplete` or `Failed` while clients poll. How long each step takes comes from the org's
timing model (`timing.py`): a timed ingest job writes its rows in Salesforce's internal batches
of 10,000, each when the modelled throughput reaches it, so `numberRecordsProcessed` grows and
the records appear batch by batch; an aborted job keeps what it wrote and leaves the rest
unprocessed. Without a throughput limit (the `instant` profile) the whole upload is one batch.
The waiting happens on the event loop and the writing on a worker thread, so polls and other
calls are answered meanwhile.

The CSV goes through polars and the org's one write engine as whole columns, so a million-row
job costs a few column operations rather than a million Python calls.

What a writer must cope with in production is reproduced on purpose: only one upload per job,
job-level failures for bad headers or malformed CSV, per-row failures in `failedResults`, and
result rows in an order that differs from the upload order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import gzip
import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from sf_sandbox import app as gateway
from sf_sandbox.errors import SalesforceError, malformed_json, not_found
from sf_sandbox.ids import make_id
from sf_sandbox.org import Org
from sf_sandbox.schema import Schema, SObject
from sf_sandbox.soql import CompiledQuery
from sf_sandbox.store import utc_now
from sf_sandbox.timing import BULK_BATCH_RECORDS, Capacity, pause, progress
from sf_sandbox.values import NULL
from sf_sandbox.writes import WriteRequest

log = logging.getLogger("sandbox.bulk")

MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # Salesforce's advice for raw CSV (150 MB after base64)
JOB_KEY_PREFIX = "750"
NOT_AVAILABLE = "#N/A"  # the CSV spelling of "set this field to null"
UTF8_BOM = b"\xef\xbb\xbf"
DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
QUERY_OPERATIONS = ("query", "queryAll")
FINISHED_STATES = ("JobComplete", "Failed", "Aborted")
DELETABLE_STATES = ("UploadComplete", *FINISHED_STATES)
ABORTABLE_STATES = ("Open", "UploadComplete", "InProgress")
RESULT_KINDS = {
    "successfulresults": "successful",
    "failedresults": "failed",
    "unprocessedrecords": "unprocessed",
}
UNSUPPORTED_SOQL = (
    (re.compile(r"\bGROUP\s+BY\b", re.I), "GROUP BY"),
    (re.compile(r"\bOFFSET\b", re.I), "OFFSET"),
    (re.compile(r"\bTYPEOF\b", re.I), "TYPEOF"),
)
AGGREGATE_CALL = re.compile(r"\b(COUNT|COUNT_DISTINCT|SUM|AVG|MIN|MAX)\s*\(", re.I)


class JobFailure(Exception):
    """A job-level failure: the job ends `Failed` with this `errorMessage`."""


# -- jobs -----------------------------------------------------------------------------------


@dataclass
class Job:
    """One Bulk API 2.0 job and whatever data it holds while a client may still ask for it."""

    id: str
    kind: str  # "ingest" or "query"
    operation: str
    object: str
    created_by: str
    created: str
    api_version: str
    line_ending: str = "LF"
    column_delimiter: str = "COMMA"
    external_id_field: str | None = None
    query: str | None = None
    state: str = "Open"
    modstamp: str = ""
    error_message: str | None = None
    processed: int = 0
    failed: int = 0
    processing_ms: int = 0
    upload: bytes | None = None  # the CSV as uploaded, until it is parsed
    uploaded: bool = False
    header: list[str] = field(default_factory=list)
    rows: pl.DataFrame | None = None  # parsed input: Utf8, None = empty cell, NULL = #N/A
    outcomes: list[pl.DataFrame] = field(default_factory=list)  # per batch written, in order
    records: pl.DataFrame | None = None  # query results, already rendered as text
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)  # keeps the work alive

    @property
    def outcome(self) -> pl.DataFrame | None:
        """One write outcome per row of the processed prefix; None when nothing was written."""
        return pl.concat(self.outcomes) if self.outcomes else None

    def record(self, outcome: pl.DataFrame) -> None:
        """A batch has been written: count it."""
        self.outcomes.append(outcome)
        self.processed += outcome.height
        self.failed += int((~outcome["success"]).sum())

    @property
    def separator(self) -> str:
        return DELIMITERS[self.column_delimiter]

    @property
    def eol(self) -> str:
        return LINE_ENDINGS[self.line_ending]

    @property
    def content_url(self) -> str:
        return f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"

    def touch(self, state: str | None = None) -> None:
        if state is not None:
            self.state = state
        self.modstamp = timestamp()

    def move(self, expected: tuple[str, ...], state: str) -> bool:
        """Change state only from one of `expected`: a client's abort wins over the worker."""
        with self.lock:
            if self.state not in expected:
                return False
            self.touch(state)
            return True


class Jobs:
    """The org's Bulk jobs, in memory: real jobs are purged after seven days anyway."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_id: dict[str, Job] = {}
        self.counter = 0
        self.capacity = {"ingest": Capacity(), "query": Capacity()}

    def new_id(self) -> str:
        with self.lock:
            self.counter += 1
            return make_id(JOB_KEY_PREFIX, self.counter)

    def add(self, job: Job) -> Job:
        with self.lock:
            self.by_id[job.id] = job
        return job

    def get(self, kind: str, job_id: str) -> Job:
        """The job of this kind, looked up by its 15- or 18-character id, or a 404."""
        job = self.by_id.get(job_id)
        if job is None and len(job_id) == 15:
            job = next((j for j in self.by_id.values() if j.id[:15] == job_id), None)
        if job is None or job.kind != kind:
            raise not_found()
        return job

    def remove(self, job: Job) -> None:
        with self.lock:
            self.by_id.pop(job.id, None)

    def of_kind(self, kind: str) -> list[Job]:
        with self.lock:
            return [job for job in self.by_id.values() if job.kind == kind]


def jobs_of(org: Org) -> Jobs:
    return org.extensions.setdefault("bulk", Jobs())


def timestamp() -> str:
    """Job timestamps look like `2024-01-01T10:00:00.000+0000`."""
    return utc_now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def summary(job: Job, *, with_upload: bool = True) -> dict[str, Any]:
    """The short job info that create and close answer with (no counters, no jobType)."""
    info: dict[str, Any] = {
        "id": job.id,
        "operation": job.operation,
        "object": job.object,
        "createdById": job.created_by,
        "createdDate": job.created,
        "systemModstamp": job.modstamp,
        "state": job.state,
    }
    if job.external_id_field:
        info["externalIdFieldName"] = job.external_id_field
    info.update(concurrencyMode="Parallel", contentType="CSV", apiVersion=float(job.api_version))
    if with_upload:
        if job.kind == "ingest":
            info["contentUrl"] = job.content_url
        info.update(lineEnding=job.line_ending, columnDelimiter=job.column_delimiter)
    return info


def full_info(job: Job) -> dict[str, Any]:
    """Get Job Info: the summary plus job type, CSV format, counters and timings."""
    info = summary(job, with_upload=False)
    layout = {"lineEnding": job.line_ending, "columnDelimiter": job.column_delimiter}
    if job.kind == "ingest":
        info.update(jobType="V2Ingest", contentUrl=job.content_url, **layout)
        info.update(
            numberRecordsProcessed=job.processed,
            numberRecordsFailed=job.failed,
            retries=0,
            totalProcessingTime=job.processing_ms,
            apiActiveProcessingTime=job.processing_ms,
            apexProcessingTime=0,
        )
    else:
        info.update(jobType="V2Query", **layout)
        info.update(
            numberRecordsProcessed=job.processed,
            retries=0,
            totalProcessingTime=job.processing_ms,
            isPkChunkingSupported=True,
        )
    if job.error_message is not None:
        info["errorMessage"] = job.error_message
    return info


def listing(jobs: list[Job]) -> dict[str, Any]:
    records = []
    for job in sorted(jobs, key=lambda j: j.id):
        record = summary(job)
        record.pop("contentUrl", None)
        record["jobType"] = "V2Ingest" if job.kind == "ingest" else "V2Query"
        records.append(record)
    return {"done": True, "records": records, "nextRecordsUrl": None}


# -- request helpers ------------------------------------------------------------------------


def reply(content: Any) -> Response:
    return gateway.SalesforceJSON(content)


def media_type(request: Request) -> str | None:
    value = request.headers.get("content-type")
    return value.split(";")[0].strip().lower() if value else None


def require_media_type(request: Request, expected: str, *, optional: bool = False) -> None:
    """A body in another format is refused with 415, as Salesforce's REST layer does."""
    given = media_type(request)
    if given == expected or (given is None and optional):
        return
    raise SalesforceError(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        f"Content-Type header specified in HTTP request is not supported: {given or ''}",
    )


async def json_body(request: Request) -> dict[str, Any]:
    require_media_type(request, "application/json", optional=True)
    raw = await request.body()
    try:
        body = json.loads(raw.decode("utf-8") or "null")
    except UnicodeDecodeError as error:
        raise malformed_json(f"Invalid UTF-8 in the request body at byte {error.start}") from None
    except json.JSONDecodeError as error:
        raise malformed_json(jackson_message(error)) from None
    if not isinstance(body, dict):
        raise malformed_json(
            "Cannot deserialize instance of `JobInfo` out of "
            f"{type(body).__name__.upper()} token at [line:1, column:1]"
        )
    return body


def jackson_message(error: json.JSONDecodeError) -> str:
    """JSON errors worded the way Salesforce's (Jackson) parser words them."""
    bad = error.doc[error.pos : error.pos + 1]
    if not bad:
        return (
            "Unexpected end-of-input: expected close marker for Object "
            f"at [line:{error.lineno}, column:{error.colno}]"
        )
    return (
        f"Unexpected character ('{bad}' (code {ord(bad)})): expected a valid value "
        f"at [line:{error.lineno}, column:{error.colno}]"
    )


def invalid_value(prop: str, value: Any) -> SalesforceError:
    return SalesforceError(
        400, "API_ERROR", f"Invalid value: '{value}' supplied for property: '{prop}'"
    )


def invalid_job(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALIDJOB", f"InvalidJob : {message}")


def invalid_state(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALIDJOBSTATE", f"InvalidJobState : {message}")


def choice(body: dict[str, Any], prop: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(prop, default)
    if value not in allowed:
        raise invalid_value(prop, "" if value is None else value)
    return value


def csv_format(body: dict[str, Any]) -> tuple[str, str]:
    """(lineEnding, columnDelimiter) of a create request, defaulting like Salesforce."""
    line_ending = choice(body, "lineEnding", tuple(LINE_ENDINGS), "LF")
    delimiter = choice(body, "columnDelimiter", tuple(DELIMITERS), "COMMA")
    return line_ending, delimiter


def job_of(request: Request, kind: str) -> tuple[Org, Job]:
    org = gateway.org_of(request)
    return org, jobs_of(org).get(kind, request.path_params["job_id"])


def session_user(request: Request, org: Org) -> str:
    session = request.scope.get("state", {}).get("session")
    return getattr(session, "user_id", None) or org.user_id


def launch(job: Job, work: Coroutine[Any, Any, None]) -> None:
    """Run a job on the event loop: its waits are sleeps there, its work goes to threads."""
    job.task = asyncio.get_running_loop().create_task(guarded(job, work))


async def guarded(job: Job, work: Coroutine[Any, Any, None]) -> None:
    """Any unexpected error fails the job instead of leaving it InProgress for ever."""
    try:
        await work
    except Exception:
        log.exception("bulk job %s failed unexpectedly", job.id)
        job.error_message = "UNKNOWN_EXCEPTION : An unexpected error occurred"
        job.move(("UploadComplete", "InProgress"), "Failed")


async def dequeue(job: Job, queue_ms: float) -> bool:
    """Wait in UploadComplete, then start: False when the client aborted the job first."""
    await pause(queue_ms)
    return job.move(("UploadComplete",), "InProgress")


# -- ingest jobs: endpoints -----------------------------------------------------------------


async def create_ingest_job(request: Request) -> Response:
    org = gateway.org_of(request)
    body = await json_body(request)
    operation = choice(body, "operation", INGEST_OPERATIONS, "")
    choice(body, "contentType", ("CSV",), "CSV")
    line_ending, delimiter = csv_format(body)
    sobject = ingest_object(org.schema, body.get("object"))
    external_id = upsert_key(sobject, body) if operation == "upsert" else None
    now = timestamp()
    job = Job(
        id=jobs_of(org).new_id(),
        kind="ingest",
        operation=operation,
        object=sobject.name,
        created_by=session_user(request, org),
        created=now,
        modstamp=now,
        api_version=request.path_params["version"],
        line_ending=line_ending,
        column_delimiter=delimiter,
        external_id_field=external_id,
    )
    return reply(summary(jobs_of(org).add(job)))


def ingest_object(schema: Schema, name: Any) -> SObject:
    sobject = schema.get(name) if isinstance(name, str) else None
    if sobject is None:
        raise invalid_job(f"Unable to find object: {name or ''}")
    return sobject


def upsert_key(sobject: SObject, body: dict[str, Any]) -> str:
    """The external id field an upsert matches on: Id, an External ID or an idLookup field."""
    name = body.get("externalIdFieldName")
    if not name:
        raise invalid_job(
            f"External ID was blank for {sobject.name}. An External ID must be specified for upsert."
        )
    key = sobject.field(name) if isinstance(name, str) else None
    if key is None or not key.is_matchable:
        raise invalid_job(
            f"Field name provided, {name} does not match an External ID for {sobject.name}"
        )
    return key.name


async def list_ingest_jobs(request: Request) -> Response:
    return reply(listing(jobs_of(gateway.org_of(request)).of_kind("ingest")))


async def ingest_job_info(request: Request) -> Response:
    _, job = job_of(request, "ingest")
    return reply(full_info(job))


async def change_ingest_job(request: Request) -> Response:
    """Close (the worker starts at once) or abort; the answer shows the state just set."""
    org, job = job_of(request, "ingest")
    target = choice(await json_body(request), "state", ("UploadComplete", "Aborted"), "")
    if target == "Aborted":
        abort(job)
        return reply(summary(job, with_upload=False))
    if not job.move(("Open",), "UploadComplete"):
        raise invalid_state(f"Closing already {state_word(job.state)} Job not allowed")
    answer = reply(summary(job, with_upload=False))
    launch(job, process_ingest(org, job))
    return answer


def abort(job: Job) -> None:
    if not job.move(ABORTABLE_STATES, "Aborted"):
        raise invalid_state(f"Aborting already {state_word(job.state)} Job not allowed")


def state_word(state: str) -> str:
    return {"UploadComplete": "Closed", "JobComplete": "Completed"}.get(state, state)


async def delete_ingest_job(request: Request) -> Response:
    return delete_job(request, "ingest")


async def delete_query_job(request: Request) -> Response:
    return delete_job(request, "query")


def delete_job(request: Request, kind: str) -> Response:
    """Only a job that no longer takes data or runs may go; its data goes with it."""
    org, job = job_of(request, kind)
    if job.state not in DELETABLE_STATES:
        raise invalid_state(
            f"Job {job.id} is in state {job.state}; only jobs in state "
            f"{', '.join(DELETABLE_STATES)} can be deleted"
        )
    jobs_of(org).remove(job)
    return Response(status_code=204)


# -- ingest jobs: the upload ----------------------------------------------------------------


@dataclass
class Upload:
    """What arrived of a PUT body: all of it, or too much, or part of it before the drop."""

    data: bytes | None
    size: int
    dropped: bool = False


async def upload_job_data(request: Request) -> Response:
    org, job = job_of(request, "ingest")
    upload = await receive_upload(
        request, MAX_UPLOAD_BYTES, org.faults.config.drop_upload_after_bytes
    )
    if upload.dropped:
        return DroppedConnection()
    require_media_type(request, "text/csv")
    if job.state != "Open":
        raise invalid_state(f"Job {job.id} is not Open; its state is {job.state}")
    if job.uploaded:
        raise SalesforceError(
            400,
            "BULK_API_ERROR",
            f"Found multipe contents for job: <{job.id[:15]}>, please 'Close' / 'Abort' / "
            "'Delete' the current Job then create a new Job and make sure you only do 'PUT' "
            "once on a given Job.",
        )
    if upload.data is None:
        raise SalesforceError(
            400,
            "BULK_API_ERROR",
            f"Exceeded max size limit of {MAX_UPLOAD_BYTES} bytes for the job data: "
            f"{upload.size} bytes were uploaded",
        )
    job.upload, job.uploaded = upload.data, True
    job.header = header_of(upload.data, job.separator)
    job.touch()
    return Response(status_code=201)


async def receive_upload(request: Request, limit: int, drop_after: int | None) -> Upload:
    """Read the body; keep it only if it fits in `limit`.

    Past the limit the rest is still read (and thrown away) so that the client gets the error
    rather than a reset connection; at `drop_after` bytes reading stops for good.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if drop_after is not None and size >= drop_after:
            return Upload(None, size, dropped=True)
        if size <= limit:
            chunks.append(chunk)
    return Upload(b"".join(chunks) if size <= limit else None, size)


class DroppedConnection(Response):
    """Start an answer, then break the connection: what a client sees when the network fails
    mid-upload. No Content-Length goes out, so no client can take the answer as complete."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        raise gateway.LostResponse(scope["path"])


def header_of(data: bytes, separator: str) -> list[str]:
    """Column names of the first line; empty when the line cannot be read."""
    end = data.find(b"\n")
    line = (data if end < 0 else data[:end]).removeprefix(UTF8_BOM).rstrip(b"\r")
    try:
        return next(csv.reader([line.decode("utf-8")], delimiter=separator), [])
    except (UnicodeDecodeError, csv.Error):
        return []


# -- ingest jobs: processing ----------------------------------------------------------------


async def process_ingest(org: Org, job: Job) -> None:
    """Queue, check the upload and its header, then write the rows batch by batch as the
    timing model allows; a client's abort stops the job between two batches."""
    timing = org.timing
    if not await dequeue(job, timing.bulk_queue_ms):
        return
    started = time.perf_counter()
    try:
        rows = await asyncio.to_thread(prepare_rows, org, job)
        step = BULK_BATCH_RECORDS if timing.timed_ingest else max(rows.height, 1)
        rate, capacity = timing.bulk_ingest_rows_per_second, jobs_of(org).capacity["ingest"]
        async for done in progress(rows.height, rate, capacity, step):
            if job.state != "InProgress":
                return
            batch = rows.slice(job.processed, done - job.processed)
            job.record(await asyncio.to_thread(write_rows, org, job, batch))
        job.move(("InProgress",), "JobComplete")
    except JobFailure as failure:
        job.error_message = str(failure)
        job.move(("InProgress",), "Failed")
    finally:
        job.processing_ms = elapsed_ms(started)


def prepare_rows(org: Org, job: Job) -> pl.DataFrame:
    """The upload parsed into rows, or the job-level failure its bytes or header cause."""
    data, job.upload = job.upload or b"", None  # only the parsed frame stays, for the results
    try:
        fault = org.faults.config.fail_bulk_jobs
        if fault:
            raise JobFailure(fault)
        check_upload(data, job.line_ending)
        if not blank(data):  # closing a job without data just completes it
            check_header(org.schema, job)
        job.rows = parse_rows(data, job)
        return job.rows
    except JobFailure:
        job.rows = readable_rows(data, job)  # what unprocessedrecords shows
        raise


def write_rows(org: Org, job: Job, rows: pl.DataFrame) -> pl.DataFrame:
    """One call to the write engine for one batch; per-row outcomes in input order."""
    sobject = org.schema.get(job.object)
    request = WriteRequest(sobject, job.operation, rows, job.external_id_field, all_or_none=False)
    return org.write(request)


def elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def parse_rows(data: bytes, job: Job) -> pl.DataFrame:
    """The uploaded CSV as Utf8 columns: None for an empty cell, NULL for `#N/A`."""
    frame = read_csv(data, job)
    has_na = NOT_AVAILABLE.encode() in data
    return frame.with_columns(wire_value(pl.col(c), has_na=has_na).alias(c) for c in frame.columns)


def readable_rows(data: bytes, job: Job) -> pl.DataFrame | None:
    """The rows, if they can be read at all: what `unprocessedrecords` shows of a failed job."""
    try:
        check_upload(data, job.line_ending)
        return parse_rows(data, job)
    except JobFailure:
        return None


def check_upload(data: bytes, line_ending: str) -> None:
    """Problems with the bytes themselves fail the job before any row is looked at."""
    check_encoding(data)
    check_line_endings(data, line_ending)


def check_encoding(data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JobFailure(
            "ClientInputError : The uploaded data is not valid UTF-8: invalid byte "
            f"0x{data[error.start]:02X} at offset {error.start}. Bulk API 2.0 accepts UTF-8 only"
        ) from None


def check_line_endings(data: bytes, line_ending: str) -> None:
    """The data must use the job's lineEnding. An unclosed quote swallows every line ending
    after it, and Salesforce reports it the same way."""
    if not uses_line_ending(data, line_ending) or data.count(b'"') % 2:
        raise JobFailure(
            "ClientInputError : LineEnding is invalid on user data. "
            f"Current LineEnding setting is {line_ending}"
        )


def uses_line_ending(data: bytes, line_ending: str) -> bool:
    """LF data holds no CRLF at all; CRLF data ends every line with CRLF."""
    if line_ending == "LF":
        return b"\r\n" not in data
    return data.count(b"\r\n") == data.count(b"\n")


def blank(data: bytes) -> bool:
    return not data or data.isspace()


def read_csv(data: bytes, job: Job) -> pl.DataFrame:
    if blank(data):
        return pl.DataFrame(schema=dict.fromkeys(job.header, pl.Utf8))
    try:
        return pl.read_csv(
            data.removeprefix(UTF8_BOM),
            separator=job.separator,
            quote_char='"',
            infer_schema=False,
            new_columns=job.header if distinct(job.header) else None,
            raise_if_empty=False,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as error:
        problem = "a row has more fields than the header" if "more fields" in str(error) else ""
        raise JobFailure(
            f"ClientInputError : Failed to parse the CSV data: {problem or 'malformed CSV'}"
        ) from None


def distinct(names: list[str]) -> bool:
    """Names polars can use as they are: some, and none repeated."""
    return bool(names) and len(set(names)) == len(names)


def wire_value(column: pl.Expr, *, has_na: bool) -> pl.Expr:
    """Empty (quoted or not) means "leave unchanged"; `#N/A` means "set to null"."""
    value = pl.when(column == "").then(None)
    if has_na:
        value = value.when(column == NOT_AVAILABLE).then(pl.lit(NULL))
    return value.otherwise(column)


def check_header(schema: Schema, job: Job) -> None:
    """Header problems fail the whole job; only the first bad column is named."""
    sobject = schema.get(job.object)
    names = job.header or [""]
    if job.operation in ("delete", "hardDelete") and [n.lower() for n in names] != ["id"]:
        raise JobFailure(f"InvalidBatch : The '{job.operation}' batch must contain only 'Id' field")
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise JobFailure(f"InvalidBatch : Duplicate field name: {name}")
        seen.add(name.lower())
    for name in names:
        if not known_column(schema, sobject, name):
            raise JobFailure(f"InvalidBatch : Field name not found : {name}")


def known_column(schema: Schema, sobject: SObject, name: str) -> bool:
    """A field of the object, or `Relationship.IndexedField` of its (non-polymorphic) parent."""
    if "." not in name:
        return sobject.field(name) is not None
    relationship, _, parent_field_name = name.partition(".")
    lookup = sobject.relationship(relationship)
    if lookup is None or len(lookup.reference_to) != 1:
        return False
    parent = schema.get(lookup.reference_to[0])
    parent_field = parent.field(parent_field_name) if parent else None
    return parent_field is not None and (parent_field.is_matchable or parent_field.unique)


# -- ingest jobs: results -------------------------------------------------------------------


async def ingest_results(request: Request) -> Response:
    kind = RESULT_KINDS.get(request.path_params["segment"].lower())
    if kind is None:
        raise not_found()
    _, job = job_of(request, "ingest")
    header = result_header(job, kind)
    return await csv_response(request, lambda: result_frame(job, kind), header, job)


async def csv_response(
    request: Request,
    frame: Callable[[], pl.DataFrame],
    header: list[str],
    job: Job,
    headers: dict[str, str] | None = None,
) -> Response:
    """A CSV answer built on a worker thread, so that polls of other jobs are answered
    meanwhile, and gzipped when the client accepts it, as Salesforce does for large results."""
    gzipped = "gzip" in request.headers.get("accept-encoding", "").lower()
    body = await asyncio.get_running_loop().run_in_executor(
        None, lambda: csv_bytes(frame(), header, job, gzipped=gzipped)
    )
    headers = dict(headers or {})
    if gzipped:
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(body, media_type="text/csv", headers=headers)


def csv_bytes(frame: pl.DataFrame, header: list[str], job: Job, *, gzipped: bool) -> bytes:
    """Every value quoted, in the job's delimiter and line ending, as Salesforce writes them.

    The header line is written here rather than by polars so that it can repeat a column name
    (a job that failed for a duplicate header still lists its rows as unprocessed).
    """
    buffer = io.BytesIO()
    quoted = ('"' + name.replace('"', '""') + '"' for name in header)
    buffer.write((job.separator.join(quoted) + job.eol).encode("utf-8"))
    frame.write_csv(
        buffer,
        include_header=False,
        quote_style="always",
        separator=job.separator,
        line_terminator=job.eol,
    )
    data = buffer.getvalue()
    return gzip.compress(data, compresslevel=1) if gzipped else data


def result_frame(job: Job, kind: str) -> pl.DataFrame:
    """Rows of one result file, in an order that is deliberately not the upload order.

    Salesforce processes a job in parallel batches, so its results come back shuffled; the
    sandbox reverses them so that clients which match results to input by position fail here
    rather than in production. A job still running has no results yet.
    """
    echo = echoed_rows(job)
    finished = job.state in FINISHED_STATES
    if kind == "unprocessed":  # the rows after the batches written, once the job has ended
        return (echo.slice(job.processed) if finished else echo.clear()).reverse()
    outcome = job.outcome
    if not finished or outcome is None or outcome.height == 0:
        return pl.DataFrame(schema=dict.fromkeys(result_columns(kind, echo.columns), pl.Utf8))
    wanted = outcome["success"] if kind == "successful" else ~outcome["success"]
    status = outcome.select(status_columns(kind))
    written = echo.slice(0, outcome.height)
    return pl.concat([status, written], how="horizontal").filter(wanted).reverse()


def echoed_rows(job: Job) -> pl.DataFrame:
    """The uploaded rows as the client sent them, however far the job got."""
    rows = job.rows
    if rows is None and job.upload is not None:  # aborted before it was processed
        rows = readable_rows(job.upload, job)
    if rows is None:
        return pl.DataFrame(schema=dict.fromkeys(job.header, pl.Utf8))
    return rows.select(echoed(pl.col(name)).alias(name) for name in rows.columns)


def result_header(job: Job, kind: str) -> list[str]:
    columns = job.header
    if not columns and job.rows is not None:
        columns = job.rows.columns
    return columns if kind == "unprocessed" else result_columns(kind, columns)


def echoed(column: pl.Expr) -> pl.Expr:
    """The cell text as the client sent it: `#N/A` stays `#N/A`."""
    return pl.when(column == NULL).then(pl.lit(NOT_AVAILABLE)).otherwise(column)


def result_columns(kind: str, columns: list[str]) -> list[str]:
    second = "sf__Created" if kind == "successful" else "sf__Error"
    return ["sf__Id", second, *columns]


def status_columns(kind: str) -> list[pl.Expr]:
    if kind == "successful":
        created = pl.when(pl.col("created")).then(pl.lit("true")).otherwise(pl.lit("false"))
        return [pl.col("id").alias("sf__Id"), created.alias("sf__Created")]
    fields = pl.col("fields")
    error = (
        pl.when(fields.list.len() > 0)
        .then(pl.format("{}:{}:{} --", "code", "message", fields.list.join(",")))
        .otherwise(pl.format("{}:{}:--", "code", "message"))
    )
    return [pl.col("id").fill_null("").alias("sf__Id"), error.alias("sf__Error")]


# -- query jobs -----------------------------------------------------------------------------


async def create_query_job(request: Request) -> Response:
    org = gateway.org_of(request)
    body = await json_body(request)
    operation = choice(body, "operation", QUERY_OPERATIONS, "")
    line_ending, delimiter = csv_format(body)
    soql = body.get("query")
    if not isinstance(soql, str) or not soql.strip():
        raise invalid_value("query", soql or "")
    check_bulk_soql(soql)
    compiled = compile_query(org, soql, operation)
    now = timestamp()
    job = Job(
        id=jobs_of(org).new_id(),
        kind="query",
        operation=operation,
        object=compiled.sobject.name,
        created_by=session_user(request, org),
        created=now,
        modstamp=now,
        api_version=request.path_params["version"],
        line_ending=line_ending,
        column_delimiter=delimiter,
        query=soql,
        state="UploadComplete",
    )
    answer = reply(summary(jobs_of(org).add(job)))
    launch(job, process_query(org, job, compiled))
    return answer


def check_bulk_soql(soql: str) -> None:
    """Reject what Bulk API 2.0 cannot run: aggregates, GROUP BY, OFFSET, TYPEOF, subqueries."""
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", soql)
    select_list = re.split(r"\bFROM\b", text, maxsplit=1, flags=re.I)[0]
    if re.search(r"\(\s*SELECT\b", select_list, re.I):
        raise feature_not_enabled("Aggregate Relationship is not supported by Bulk API")
    if AGGREGATE_CALL.search(select_list):
        raise feature_not_enabled("Aggregate queries are not supported by Bulk API")
    for pattern, clause in UNSUPPORTED_SOQL:
        if pattern.search(text):
            raise feature_not_enabled(f"{clause} is not supported by Bulk API")


def feature_not_enabled(message: str) -> SalesforceError:
    return SalesforceError(400, "FEATURENOTENABLED", f"FeatureNotEnabled : {message}")


def compile_query(org: Org, soql: str, operation: str) -> CompiledQuery:
    """Compile at create time: a query the org cannot run is refused before any job exists."""
    compiled = org.compile(soql, include_deleted=operation == "queryAll")
    if compiled.count_only:
        raise feature_not_enabled("Aggregate queries are not supported by Bulk API")
    return compiled


async def process_query(org: Org, job: Job, compiled: CompiledQuery) -> None:
    """Queue, run the query once (its snapshot is the result), then count the records out at
    the modelled throughput; pages are cut from the rows on request once the job is done."""
    timing = org.timing
    if not await dequeue(job, timing.bulk_query_queue_ms):
        return
    started = time.perf_counter()
    records = await asyncio.to_thread(query_records, org, compiled)
    capacity = jobs_of(org).capacity["query"]
    async for done in progress(records.height, timing.bulk_query_rows_per_second, capacity):
        if job.state != "InProgress":
            return
        job.processed = done
    job.records = records
    job.processing_ms = elapsed_ms(started)
    job.move(("InProgress",), "JobComplete")


def query_records(org: Org, compiled: CompiledQuery) -> pl.DataFrame:
    """The query's rows as Bulk CSV text, named by their field paths."""
    frame = org.store.query(compiled.sql, compiled.params)
    return frame.select(
        as_text(pl.col(path.column), frame.schema[path.column]).alias(".".join(path.parts))
        for path in compiled.paths
    )


def as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Bulk query CSV values: `2024-01-01T10:00:00.000Z`, `true`/`false`, numbers as text."""
    if isinstance(dtype, pl.Datetime):
        return column.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    if dtype == pl.Date:
        return column.dt.strftime("%Y-%m-%d")
    if dtype == pl.Boolean:
        return pl.when(column).then(pl.lit("true")).when(~column).then(pl.lit("false"))
    return column.cast(pl.Utf8)


async def list_query_jobs(request: Request) -> Response:
    return reply(listing(jobs_of(gateway.org_of(request)).of_kind("query")))


async def query_job_info(request: Request) -> Response:
    _, job = job_of(request, "query")
    return reply(full_info(job))


async def change_query_job(request: Request) -> Response:
    _, job = job_of(request, "query")
    choice(await json_body(request), "state", ("Aborted",), "")
    abort(job)
    return reply(summary(job, with_upload=False))


async def query_results(request: Request) -> Response:
    _, job = job_of(request, "query")
    if job.state != "JobComplete" or job.records is None:
        raise SalesforceError(
            412, "JOB_NOT_COMPLETE", f"Job {job.id} is not complete; its state is {job.state}"
        )
    offset = locator_offset(request.query_params.get("locator"))
    size = page_size(request.query_params.get("maxRecords"), job.records.height - offset)
    page = job.records.slice(offset, size)
    following = offset + page.height
    headers = {
        "Sforce-NumberOfRecords": str(page.height),
        "Sforce-Locator": make_locator(following) if following < job.records.height else "null",
    }
    return await csv_response(request, lambda: page, page.columns, job, headers)


def make_locator(offset: int) -> str:
    """Opaque to clients; Salesforce's look like base64 of a row number (`MTAwMDA`)."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def locator_offset(locator: str | None) -> int:
    if not locator or locator == "null":
        return 0
    try:
        padded = locator + "=" * (-len(locator) % 4)
        return int(base64.b64decode(padded, validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from None


def page_size(max_records: str | None, remaining: int) -> int:
    if max_records is None:
        return max(remaining, 0)
    if not max_records.isdigit() or int(max_records) <= 0:
        raise invalid_value("maxRecords", max_records)
    return min(int(max_records), max(remaining, 0))


# -- routes ---------------------------------------------------------------------------------


async def ingest_job_subresource(request: Request) -> Response:
    """`…/{id}/batches` takes the upload; the results segments are matched case-insensitively."""
    if request.path_params["segment"].lower() == "batches":
        if request.method != "PUT":
            raise method_not_allowed(request.method, "PUT")
        return await upload_job_data(request)
    if request.method != "GET":
        raise method_not_allowed(request.method, "GET, HEAD")
    return await ingest_results(request)


def method_not_allowed(method: str, allowed: str) -> SalesforceError:
    return SalesforceError(
        405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
    )


async def ingest_job(request: Request) -> Response:
    handlers = {"GET": ingest_job_info, "PATCH": change_ingest_job, "DELETE": delete_ingest_job}
    return await handlers[request.method](request)


async def query_job(request: Request) -> Response:
    handlers = {"GET": query_job_info, "PATCH": change_query_job, "DELETE": delete_query_job}
    return await handlers[request.method](request)


async def ingest_jobs(request: Request) -> Response:
    if request.method == "POST":
        return await create_ingest_job(request)
    return await list_ingest_jobs(request)


async def query_jobs(request: Request) -> Response:
    if request.method == "POST":
        return await create_query_job(request)
    return await list_query_jobs(request)


def routes() -> list[BaseRoute]:
    base = "/services/data/v{version}/jobs"
    return [
        Route(f"{base}/ingest", ingest_jobs, methods=["GET", "POST"]),
        Route(f"{base}/ingest/{{job_id}}", ingest_job, methods=["GET", "PATCH", "DELETE"]),
        Route(
            f"{base}/ingest/{{job_id}}/{{segment}}", ingest_job_subresource, methods=["GET", "PUT"]
        ),
        Route(f"{base}/query", query_jobs, methods=["GET", "POST"]),
        Route(f"{base}/query/{{job_id}}", query_job, methods=["GET", "PATCH", "DELETE"]),
        Route(f"{base}/query/{{job_id}}/results", query_results, methods=["GET"]),
    ]
