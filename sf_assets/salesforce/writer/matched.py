"""Writes whose match_on field Salesforce cannot upsert on: look the ids up, then write by Id.

Salesforce upserts natively only on an external id, and only with create semantics. A sync
that identifies Contacts by Email (an idLookup field), updates existing records only, or
deletes, first asks which records hold each key (SOQL IN queries, compared the way Salesforce
compares: trimmed, text case-insensitively) and then writes through the plain REST or Bulk
paths, so outcomes reach the ledger the same way:

- one record: updated (or deleted) by its Id;
- no record: inserted when the target creates missing records, else recorded as not found;
- several records: failed with MULTIPLE_MATCHES, never guessed.

Every run looks up again, so a write whose answer was lost is settled by the next lookup (a
created record is found and updated) rather than sent twice. A few hundred keys fit one
URL-sized query, so 10,000 keys cost about 30 calls; from lookup.BULK_LOOKUP_KEYS keys on, one
Bulk query job reads Id and match_on of the whole object instead (a Bulk query cannot take an
IN list of that size either) and the keys are matched locally the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import polars as pl

from sf_assets.salesforce.writer import lookup, outcomes
from sf_assets.salesforce.writer.context import WriteContext, WriteTarget
from sf_assets.salesforce.writer.errors import WriteError
from sf_assets.salesforce.writer.wire import SYSTEM_COLUMNS

Send = Callable[..., pl.Series]
SHOWN_IDS = 10  # ids listed in a MULTIPLE_MATCHES message


def send(ctx: WriteContext, rows: pl.DataFrame, *, via: Send) -> pl.Series:
    """Look up `rows`, settle the keys that need no write, and write the rest through `via`
    (rest.send or bulk.send); returns the keys that failed with UNABLE_TO_LOCK_ROW."""
    found = lookup.matching(ctx, rows["_key"])
    count = pl.col("ids").list.len()
    single = found.filter(count == 1).select("_key", pl.col("ids").list.first().alias("Id"))
    missing = found.filter(count == 0)
    creating = ctx.target.creates_missing and ctx.target.operation != "delete"
    if ctx.target.operation == "delete":
        guard_delete(ctx, single.height)
    settled = [several(ctx, found.filter(count > 1))]
    if not creating:
        settled.append(outcomes.rows(missing["_key"], "not_found", job_id=None))
    ctx.record(pl.concat(settled), api="none")
    locked = [by_id(ctx, rows, single, via=via)]
    if creating:
        locked.append(inserts(ctx, rows, missing["_key"], via=via))
    return pl.concat(locked)


def several(ctx: WriteContext, found: pl.DataFrame) -> pl.DataFrame:
    """Keys held by more than one record fail: writing to any one of them would be a guess."""
    target = ctx.target
    messages = [
        f"{len(ids)} {target.object} records have {target.match_on} {value!r}: "
        + ", ".join(ids[:SHOWN_IDS])
        + (" …" if len(ids) > SHOWN_IDS else "")
        for value, ids in found.select("_match", "ids").iter_rows()
    ]
    failed = outcomes.rows(found["_key"], "failed", job_id=None, code="MULTIPLE_MATCHES")
    return failed.with_columns(pl.Series("error_message", messages, dtype=pl.Utf8))


def guard_delete(ctx: WriteContext, deleting: int) -> None:
    """Refuse, before anything is deleted, a run that would remove more than the allowed
    share of the object: a wrong key column or an emptied source must not wipe the org."""
    if deleting == 0:
        return
    share = ctx.job.spec.target.max_delete_share
    total = lookup.record_count(ctx)
    if deleting <= share * total:
        return
    raise WriteError(
        f"sync {ctx.sync} would delete {deleting} of the {total} {ctx.target.object} records "
        f"({deleting / total:.1%}), more than target.max_delete_share allows "
        f"({share:.1%}); nothing was deleted. If this is intended, raise "
        f"target.max_delete_share to at least {deleting / total:.2f} and re-materialize the "
        "batch.",
        None,
    )


def by_id(ctx: WriteContext, rows: pl.DataFrame, ids: pl.DataFrame, *, via: Send) -> pl.Series:
    """Update (or delete) the rows that matched one record, by its Id."""
    if ids.is_empty():
        return pl.Series("_key", [], dtype=pl.Utf8)
    operation = "delete" if ctx.target.operation == "delete" else "update"
    # The match field is not sent again: the record already holds the value (compared the way
    # Salesforce compares it), and it may be read-only, like an Order's OrderNumber.
    skipped = {"id", ctx.target.match_on.lower()}
    fields = [c for c in rows.columns if c.lower() not in skipped]
    if operation == "delete":
        fields = list(SYSTEM_COLUMNS)
    frame = rows.select(fields).join(ids, on="_key", how="inner")
    keys = frame.select("_key", pl.col("Id").alias("_match"))
    with sending(ctx, ctx.target.sending(operation, "Id"), keys):
        return via(ctx, frame)


def inserts(ctx: WriteContext, rows: pl.DataFrame, keys: pl.Series, *, via: Send) -> pl.Series:
    """Create the rows no record matched (the target creates missing records)."""
    if keys.is_empty():
        return pl.Series("_key", [], dtype=pl.Utf8)
    frame = rows.filter(pl.col("_key").is_in(keys.implode()))
    with sending(ctx, ctx.target.sending("insert", ctx.target.match_on), ctx.keys):
        return via(ctx, frame)


@contextmanager
def sending(ctx: WriteContext, target: WriteTarget, keys: pl.DataFrame) -> Iterator[None]:
    """The REST and Bulk paths write `ctx.target` and match results through `ctx.keys`:
    point them at the plain write for as long as it is sent."""
    saved = ctx.target, ctx.keys
    ctx.target, ctx.keys = target, keys
    try:
        yield
    finally:
        ctx.target, ctx.keys = saved
