"""sObject Collections writes: 200 records a call, committed to the ledger a window at a time.

Each window of calls is remembered in staging (its keys) before the first call leaves and is
closed in the same transaction that records its outcomes, so a crash in between leaves an
open window that the next run resolves by lookup rather than by sending again. A call whose
answer is lost is resolved the same way at once: upserts and updates are safe to repeat,
inserts are looked up by their match_on value and only the missing rows are sent again.
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
from sf_assets.salesforce.writer.crash import crash_point
from sf_assets.salesforce.writer.errors import InDoubt

COLLECTION_SIZE = 200


def send(ctx: WriteContext, rows: pl.DataFrame, *, last_round: bool) -> pl.Series:
    """Write `rows`; returns the keys that failed with UNABLE_TO_LOCK_ROW."""
    locked = [
        outcomes.locked_keys(send_window(ctx, window, last_round=last_round))
        for window in rows.iter_slices(ctx.options.rest_window_rows)
    ]
    return pl.concat(locked) if locked else pl.Series("_key", [], dtype=pl.Utf8)


def send_window(ctx: WriteContext, window: pl.DataFrame, *, last_round: bool) -> pl.DataFrame:
    job_id = f"rest-{uuid.uuid4().hex[:20]}"
    ctx.start_job(job_id, "rest", window["_key"], "Sending")
    since = datetime.now(UTC)
    answered: list[pl.DataFrame] = []
    try:
        for chunk in window.iter_slices(COLLECTION_SIZE):
            answered.append(send_chunk(ctx, chunk, job_id, since))
            crash_point("rest_answer")
    except InDoubt as doubt:
        # Keep the window open: the next run looks its keys up before sending anything.
        ctx.record(_concat(answered), api="rest", last_round=last_round)
        raise doubt.cause from None
    except (SalesforceApiError, OutcomeUnknown) as error:
        done = _concat(answered)
        unsent = window.filter(~pl.col("_key").is_in(done["_key"].implode()))["_key"]
        code = getattr(error, "code", "OUTCOME_UNKNOWN")
        stopped = outcomes.rows(unsent, "not_sent", job_id=job_id, code=code, message=str(error))
        ctx.record(
            pl.concat([done, stopped]),
            api="rest",
            close_jobs=[(job_id, "Stopped")],
            last_round=last_round,
        )
        raise
    result = _concat(answered)
    ctx.record(result, api="rest", close_jobs=[(job_id, "Done")], last_round=last_round)
    return result


def send_chunk(
    ctx: WriteContext, chunk: pl.DataFrame, job_id: str, since: datetime
) -> pl.DataFrame:
    """One collections call and its per-row outcomes."""
    keys = chunk["_key"]
    try:
        items = post(ctx, chunk)
    except OutcomeUnknown:
        ctx.count_sent(chunk.height)
        if ctx.target.operation != "insert":
            raise  # retries of a repeatable call ran out: the rows count as not sent
        try:
            return resolve_lost(ctx, chunk, job_id, since)
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
    ctx: WriteContext, chunk: pl.DataFrame, job_id: str, since: datetime
) -> pl.DataFrame:
    """An insert whose answer was lost: keep what was created, send only what is missing."""
    resolved: list[pl.DataFrame] = []
    for _ in range(ctx.options.retry_attempts):
        found = lookup.existing(ctx, chunk["_key"], since)
        resolved.append(
            outcomes.rows(found["_key"], "created", job_id=job_id, target_ids=found["target_id"])
        )
        chunk = chunk.filter(~pl.col("_key").is_in(found["_key"].implode()))
        if chunk.is_empty():
            return _concat(resolved)
        ctx.log.warning(
            "an insert's answer was lost; sending the %d rows not found again", chunk.height
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
