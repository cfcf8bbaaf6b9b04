"""sObject Collections writes: 200 records a call, committed to the ledger a window at a time.

Each window of calls is remembered in the state store (its keys and the match values sent)
before the first call leaves and is closed in the same transaction that records its outcomes,
so a crash in between leaves an open window that the next run resolves rather than sends again.
A call whose answer is lost is resolved the same way at once: upserts, updates and deletes are
safe to repeat, inserts are looked up (writer.lookup: only records this sync can have created)
and only the rows not created are sent again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import polars as pl

from sf_assets.salesforce.errors import OutcomeUnknown, SalesforceApiError
from sf_assets.salesforce.retry import retryable
from sf_assets.salesforce.writer import lookup, outcomes, wire
from sf_assets.salesforce.writer.context import WriteContext
from sf_assets.salesforce.writer.errors import InDoubt

COLLECTION_SIZE = 200


def send(ctx: WriteContext, rows: pl.DataFrame) -> pl.Series:
    """Write `rows`; returns the keys that failed with UNABLE_TO_LOCK_ROW."""
    locked = [
        outcomes.locked_keys(send_window(ctx, window))
        for window in rows.iter_slices(ctx.options.rest_window_rows)
    ]
    return pl.concat(locked) if locked else pl.Series("_key", [], dtype=pl.Utf8)


def send_window(ctx: WriteContext, window: pl.DataFrame) -> pl.DataFrame:
    job_id = f"rest-{uuid.uuid4().hex[:20]}"
    ctx.start_job(job_id, "rest", window["_key"], "Sending")
    since = datetime.now(UTC)
    answered: list[pl.DataFrame] = []
    try:
        for chunk in window.iter_slices(COLLECTION_SIZE):
            answered.append(send_chunk(ctx, chunk, job_id, since, _concat(answered)))
    except InDoubt as doubt:
        # Keep the window open: the next run looks its keys up before sending anything.
        ctx.record(_concat(answered), api="rest")
        raise doubt.cause from None
    except (SalesforceApiError, OutcomeUnknown) as error:
        done = _concat(answered)
        unsent = window.filter(~pl.col("_key").is_in(done["_key"].implode()))["_key"]
        code = getattr(error, "code", "OUTCOME_UNKNOWN")
        stopped = outcomes.rows(unsent, "not_sent", job_id=job_id, code=code, message=str(error))
        ctx.record(pl.concat([done, stopped]), api="rest", close_jobs=[(job_id, "Stopped")])
        raise
    result = _concat(answered)
    ctx.record(result, api="rest", close_jobs=[(job_id, "Done")])
    return result


def send_chunk(
    ctx: WriteContext, chunk: pl.DataFrame, job_id: str, since: datetime, earlier: pl.DataFrame
) -> pl.DataFrame:
    """One collections call and its per-row outcomes; `earlier` holds this window's answers
    not committed yet (their records are this write's, never another row's)."""
    keys = chunk["_key"]
    try:
        items = post(ctx, chunk)
    except OutcomeUnknown:
        ctx.count_sent(chunk.height)
        if ctx.target.operation != "insert":
            raise  # retries of a repeatable call ran out: the rows count as not sent
        try:
            return resolve_lost(ctx, chunk, job_id, since, earlier)
        except Exception as error:
            raise InDoubt(error) from error
    except SalesforceApiError as error:
        if error.daily_limit or retryable(error, idempotent=True):
            raise
        # The whole call was refused for a reason about the request: every row failed with it.
        return outcomes.rows(keys, "failed", job_id=job_id, code=error.code, message=error.message)
    ctx.count_sent(chunk.height)
    return outcomes.from_collection(
        keys.to_list(), items, operation=ctx.target.operation, job_id=job_id
    )


def resolve_lost(
    ctx: WriteContext, chunk: pl.DataFrame, job_id: str, since: datetime, earlier: pl.DataFrame
) -> pl.DataFrame:
    """An insert whose answer was lost: keep what it created, send only what is missing."""
    resolved: list[pl.DataFrame] = []
    for _ in range(ctx.options.retry_attempts):
        known = {i for i in pl.concat([earlier, *resolved])["target_id"].to_list() if i}
        settled, missing = lookup.resolve_lost_inserts(
            ctx, ctx.key_map(chunk["_key"]), ctx.target.match_on, since, job_id=job_id, known=known
        )
        resolved.append(settled)
        chunk = chunk.filter(pl.col("_key").is_in(missing.implode()))
        if chunk.is_empty():
            return _concat(resolved)
        ctx.log.warning(
            "an insert's answer was lost; sending the %d rows it did not create again",
            chunk.height,
        )
        try:
            items = post(ctx, chunk)
        except OutcomeUnknown:
            continue
        resolved.append(
            outcomes.from_collection(
                chunk["_key"].to_list(), items, operation="insert", job_id=job_id
            )
        )
        return _concat(resolved)
    raise OutcomeUnknown(f"the answers to {chunk.height} inserts kept getting lost")


def post(ctx: WriteContext, chunk: pl.DataFrame) -> list[dict[str, Any]]:
    target = ctx.target
    if target.operation == "delete":  # deleting a deleted record fails: safe to repeat
        ids = ",".join(chunk[target.match_on].cast(pl.Utf8).to_list())
        path = f"composite/sobjects?ids={ids}&allOrNone=false"
        return ctx.api.call("DELETE", path, idempotent=True).json()
    records = wire.json_records(
        chunk,
        sobject=target.object,
        object_fields=ctx.job.object_fields,
        send_nulls=target.send_nulls,
        id_column=target.match_on if target.operation == "update" else None,
    )
    body = {"allOrNone": False, "records": records}
    if target.operation == "insert":
        response = ctx.api.call("POST", "composite/sobjects", json=body, idempotent=False)
    elif target.operation == "update":
        response = ctx.api.call("PATCH", "composite/sobjects", json=body, idempotent=True)
    else:
        path = f"composite/sobjects/{target.object}/{target.match_on}"
        response = ctx.api.call("PATCH", path, json=body, idempotent=True)
    return response.json()


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(frames) if frames else outcomes.empty()
