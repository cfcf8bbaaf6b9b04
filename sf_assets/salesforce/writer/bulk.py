"""Bulk API 2.0 ingest jobs through the raw endpoints: create, upload one CSV, close, poll,
read the result files.

A job's id, its operation, the field it matches on and the value sent for every key go to the
state store right after the job is created and before any data is uploaded, so a run that dies
at any later point leaves a job the next run can ask Salesforce about, and read the results of,
without knowing how it was sent. Results are matched to rows through the match column
Salesforce echoes back (the sync's match field, or `Id` for a write sent by Id after a lookup),
never by position: their order is not guaranteed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from sf_assets.salesforce.bulk2.polling import poll_job
from sf_assets.salesforce.errors import OutcomeUnknown, SalesforceApiError
from sf_assets.salesforce.writer import lookup, outcomes, wire
from sf_assets.salesforce.writer.context import WriteContext
from sf_assets.salesforce.writer.errors import BulkJobFailed, WriteError

JOBS = "jobs/ingest"
UPLOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class Started:
    """A job Salesforce holds the rows of: everything needed to read its results later."""

    job_id: str
    keys: pl.Series
    created_at: datetime
    operation: str
    match_field: str
    key_map: pl.DataFrame  # `_key`, `_match`: the match field's value sent for each key


def send(ctx: WriteContext, rows: pl.DataFrame) -> pl.Series:
    """Write `rows` in as many jobs as the size limit needs; returns the keys that failed with
    UNABLE_TO_LOCK_ROW. Raises BulkJobFailed (after recording) when Salesforce failed a job."""
    started = [start(ctx, part, body) for part, body in split(ctx, rows)]
    locked: list[pl.Series] = []
    failed: list[str] = []
    for job in started:
        answered, info = finish(ctx, job)
        locked.append(outcomes.locked_keys(answered))
        if info["state"] != "JobComplete":
            failed.append(
                f"{job.job_id} ({info['state']}: {info.get('errorMessage') or 'no message'})"
            )
    if failed:
        raise BulkJobFailed(
            f"Salesforce did not complete Bulk job(s) {', '.join(failed)}; their unprocessed "
            "rows are recorded as not sent and will be sent again by the next run."
        )
    return pl.concat(locked)


# -- uploading ----------------------------------------------------------------------------------


def split(ctx: WriteContext, rows: pl.DataFrame) -> Iterator[tuple[pl.DataFrame, bytes]]:
    """The rows as CSV uploads of at most `bulk_max_bytes` each, made one at a time so that
    only one upload is held in memory."""
    text = wire.as_text(rows, ctx.job.object_fields)
    body = wire.csv_bytes(text, send_nulls=ctx.target.send_nulls)
    limit = ctx.options.bulk_max_bytes
    if len(body) <= limit:
        yield rows, body
        return
    if rows.height == 1:
        raise WriteError(f"row {rows['_key'][0]!r} alone is larger than a Bulk upload may be")
    parts = max(2, math.ceil(len(body) / limit * 1.05))
    del text, body
    for part in rows.iter_slices(math.ceil(rows.height / parts)):
        yield from split(ctx, part)


def start(ctx: WriteContext, rows: pl.DataFrame, body: bytes) -> Started:
    """Create a job, remember it, upload and close it. An upload whose answer was lost is
    never repeated into the same job: that job is aborted and a new one takes the rows."""
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        job_id = create(ctx)
        created_at = datetime.now(UTC)
        ctx.start_job(job_id, "bulk", rows["_key"], "Open")
        ctx.bulk_job_ids.append(job_id)
        try:
            upload(ctx, job_id, body)
        except OutcomeUnknown:
            ctx.log.warning(
                "Bulk job %s: the upload broke off (attempt %d of %d); aborting it and "
                "uploading into a new job",
                job_id,
                attempt,
                UPLOAD_ATTEMPTS,
            )
            abort(ctx, job_id)
            continue
        close(ctx, job_id)
        ctx.count_sent(rows.height)
        ctx.log.info(
            "Bulk job %s: %d rows (%.1f MB) uploaded", job_id, rows.height, len(body) / 1e6
        )
        target = ctx.target
        return Started(
            job_id,
            rows["_key"],
            created_at,
            target.operation,
            target.match_on,
            ctx.key_map(rows["_key"]),
        )
    raise WriteError(f"the Bulk upload broke off {UPLOAD_ATTEMPTS} times; nothing was sent")


def create(ctx: WriteContext) -> str:
    """A new Open job. Repeating a create whose answer was lost leaves at most an empty job
    behind, which Salesforce never processes, so it is safe to retry."""
    target = ctx.target
    request: dict[str, Any] = {
        "object": target.object,
        "operation": target.operation,
        "contentType": "CSV",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    }
    if target.operation == "upsert":
        request["externalIdFieldName"] = target.match_on
    return ctx.api.call("POST", JOBS, json=request, idempotent=True).json()["id"]


def upload(ctx: WriteContext, job_id: str, body: bytes) -> None:
    ctx.api.call(
        "PUT",
        f"{JOBS}/{job_id}/batches",
        data=body,
        headers={"Content-Type": "text/csv"},
        idempotent=False,
    )


def close(ctx: WriteContext, job_id: str) -> None:
    """UploadComplete; if that answer is lost, the job's state says whether it arrived."""
    try:
        patch_state(ctx, job_id, "UploadComplete")
    except (OutcomeUnknown, SalesforceApiError) as error:
        if isinstance(error, SalesforceApiError) and error.code != "INVALIDJOBSTATE":
            raise
        if info(ctx, job_id)["state"] == "Open":
            patch_state(ctx, job_id, "UploadComplete")


def abort(ctx: WriteContext, job_id: str) -> None:
    """Abort an Open job (nothing of it was processed) and close its record."""
    try:
        patch_state(ctx, job_id, "Aborted")
    except SalesforceApiError as error:
        if error.code != "INVALIDJOBSTATE":
            raise
    ctx.record(outcomes.empty(), api="bulk", close_jobs=[(job_id, "Aborted")])


def patch_state(ctx: WriteContext, job_id: str, state: str) -> None:
    ctx.api.call("PATCH", f"{JOBS}/{job_id}", json={"state": state}, idempotent=False)


# -- results ----------------------------------------------------------------------------------


def finish(ctx: WriteContext, job: Started) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Wait for the job, then record one outcome per row it carried."""
    final = poll(ctx, job.job_id, rows=job.keys.len())
    answered = read_outcomes(ctx, job, final)
    ctx.record(
        answered, api="bulk", close_jobs=[(job.job_id, final["state"])], operation=job.operation
    )
    counts = dict(answered.group_by("status").len().iter_rows())
    ctx.log.info("Bulk job %s %s: %s", job.job_id, final["state"], counts)
    return answered, final


def info(ctx: WriteContext, job_id: str) -> dict[str, Any]:
    return ctx.api.call("GET", f"{JOBS}/{job_id}", idempotent=True).json()


def poll(ctx: WriteContext, job_id: str, *, rows: int | None = None) -> dict[str, Any]:
    """The job's info once it has finished (`rows`: how many it holds, when known)."""
    return poll_job(
        ctx.api,
        f"{JOBS}/{job_id}",
        f"Bulk job {job_id}",
        "the next run picks it up from there",
        rows=rows,
    )


def read_outcomes(ctx: WriteContext, job: Started, final: dict[str, Any]) -> pl.DataFrame:
    """Successful and failed rows from the result files; rows Salesforce never processed are
    not sent; rows in no file at all are resolved like a lost answer. Everything comes from
    the job itself, so a later run reads the results of any job the same way."""
    match = job.match_field
    complete = final["state"] == "JobComplete"
    successful = result_file(ctx, job.job_id, "successfulResults", ["sf__Id", "sf__Created", match])
    failed = (
        result_file(ctx, job.job_id, "failedResults", ["sf__Id", "sf__Error", match])
        if final.get("numberRecordsFailed", 0) or not complete
        else pl.DataFrame(schema=dict.fromkeys(["sf__Id", "sf__Error", match], pl.Utf8))
    )
    answered = outcomes.from_bulk(
        successful,
        failed,
        job.key_map,
        match_column=match,
        job_id=job.job_id,
        operation=job.operation,
    )
    rest = job.keys.filter(~job.keys.is_in(answered["_key"].implode()))
    if rest.is_empty():
        return answered
    message = final.get("errorMessage") or f"the job ended {final['state']}"
    unprocessed = pl.Series([], dtype=pl.Utf8)
    if not complete:
        echoed = result_file(ctx, job.job_id, "unprocessedrecords", [match])[match]
        unprocessed = job.key_map.filter(pl.col("_match").is_in(echoed.implode()))["_key"]
    code = "BULK_JOB_FAILED" if final["state"] == "Failed" else "BULK_JOB_ABORTED"
    never = outcomes.rows(unprocessed, "not_sent", job_id=job.job_id, code=code, message=message)
    unknown = rest.filter(~rest.is_in(unprocessed.implode()))
    return pl.concat([answered, never, resolve_unknown(ctx, job, unknown)])


def resolve_unknown(ctx: WriteContext, job: Started, keys: pl.Series) -> pl.DataFrame:
    """Rows the job carried but no result file mentions: inserts are looked up (only records
    this sync can have created count), repeatable operations are simply sent again."""
    if keys.is_empty():
        return outcomes.empty()
    ctx.log.warning("Bulk job %s: %d rows are in no result file", job.job_id, keys.len())
    if job.operation != "insert":
        return outcomes.rows(
            keys, "not_sent", job_id=job.job_id, code="NO_RESULT", message="in no result file"
        )
    sent = job.key_map.filter(pl.col("_key").is_in(keys.implode()))
    settled, _ = lookup.resolve_lost_inserts(
        ctx, sent, job.match_field, job.created_at, job_id=job.job_id
    )
    return settled


def result_file(ctx: WriteContext, job_id: str, kind: str, columns: list[str]) -> pl.DataFrame:
    response = ctx.api.call(
        "GET", f"{JOBS}/{job_id}/{kind}/", headers={"Accept": "text/csv"}, idempotent=True
    )
    if not response.content.strip():
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.Utf8))
    frame = pl.read_csv(io.BytesIO(response.content), infer_schema=False, columns=columns)
    return frame.with_columns(pl.all().fill_null(""))
