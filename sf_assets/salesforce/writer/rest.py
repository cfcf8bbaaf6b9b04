"""sObject Collections writes: 200 records a call, several calls side by side, committed to
the ledger a window at a time.

Each window of calls is remembered in the state store (its keys and the match values sent)
before the first call leaves and is closed in the same transaction that records its outcomes,
so a crash in between leaves an open window that the next run resolves rather than sends again.
A call whose answer is lost is resolved the same way at once: upserts, updates and deletes are
safe to repeat, inserts are looked up (writer.lookup: only records this sync can have created)
and only the rows not created are sent again.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from sf_assets.salesforce.errors import OutcomeUnknown, SalesforceApiError
from sf_assets.salesforce.retry import retryable
from sf_assets.salesforce.writer import lookup, outcomes, wire
from sf_assets.salesforce.writer.context import WriteContext

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
    lost: list[pl.DataFrame] = []
    stopped_by: SalesforceApiError | OutcomeUnknown | None = None
    for answer in call_all(ctx, list(window.iter_slices(COLLECTION_SIZE))):
        if answer.error is None and answer.items is None:
            continue  # never sent: a call before it stopped the window
        if answer.items is not None or isinstance(answer.error, OutcomeUnknown):
            ctx.count_sent(answer.chunk.height)
        if answer.items is not None:
            answered.append(
                outcomes.from_collection(
                    answer.chunk["_key"].to_list(),
                    answer.items,
                    operation=ctx.target.operation,
                    job_id=job_id,
                )
            )
        elif isinstance(answer.error, OutcomeUnknown) and ctx.target.operation == "insert":
            lost.append(answer.chunk)
        elif stops(ctx, answer.error):
            stopped_by = stopped_by or answer.error
        else:  # refused for a reason about the request: every row failed with it
            error = answer.error
            assert isinstance(error, SalesforceApiError)  # a lost answer is resolved or stops
            answered.append(
                outcomes.rows(
                    answer.chunk["_key"],
                    "failed",
                    job_id=job_id,
                    code=error.code,
                    message=error.message,
                )
            )
    try:
        for chunk in lost:  # after every other answer, so the lookups know all of them
            answered.append(resolve_lost(ctx, chunk, job_id, since, _concat(answered)))
    except Exception as error:
        # Keep the window open: the next run looks its keys up before sending anything.
        ctx.record(_concat(answered), api="rest")
        raise error from None
    done = _concat(answered)
    if stopped_by is not None:
        unsent = window.filter(~pl.col("_key").is_in(done["_key"].implode()))["_key"]
        code = getattr(stopped_by, "code", "OUTCOME_UNKNOWN")
        stopped = outcomes.rows(
            unsent, "not_sent", job_id=job_id, code=code, message=str(stopped_by)
        )
        ctx.record(pl.concat([done, stopped]), api="rest", close_jobs=[(job_id, "Stopped")])
        raise stopped_by
    ctx.record(done, api="rest", close_jobs=[(job_id, "Done")])
    return done


@dataclass(frozen=True)
class Answer:
    """What one collections call came back with: its results, or the error it ended in;
    neither when it was never made."""

    chunk: pl.DataFrame
    items: list[dict[str, Any]] | None = None
    error: SalesforceApiError | OutcomeUnknown | None = None


def call_all(ctx: WriteContext, chunks: list[pl.DataFrame]) -> list[Answer]:
    """The window's calls, `rest_parallel_calls` side by side (an org serves concurrent
    requests in parallel), answers in request order. Once a call ends in an error that stops
    the window, calls not begun yet are not made; those in flight finish and count."""
    stop = threading.Event()

    def attempt(chunk: pl.DataFrame) -> Answer:
        if stop.is_set():
            return Answer(chunk)
        try:
            return Answer(chunk, items=post(ctx, chunk))
        except (SalesforceApiError, OutcomeUnknown) as error:
            if stops(ctx, error):
                stop.set()
            return Answer(chunk, error=error)

    workers = min(ctx.job.spec.rest_parallel_calls, len(chunks)) or 1
    with ctx.api.threads(workers) as pool:
        return list(pool.map(attempt, chunks))


def stops(ctx: WriteContext, error: SalesforceApiError | OutcomeUnknown) -> bool:
    """Whether an error ends the window: the org refuses more calls for now (a limit, a
    passing fault that outlasted its retries), or a repeatable call's answer kept getting
    lost (its rows count as not sent). A lost insert is resolved instead."""
    if isinstance(error, OutcomeUnknown):
        return ctx.target.operation != "insert"
    return error.daily_limit or retryable(error, idempotent=True)


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
