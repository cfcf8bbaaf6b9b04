"""Finding records in Salesforce by a match field: what a lost insert created, which ids a
write by lookup goes to, and whether deleted records are gone.

An insert whose answer never arrived may or may not have created its records, and sending it
again could create them twice; taking some other record for it would lose the row. A lost
insert is therefore resolved only against records this sync can have created: holding the
row's match value, created since the write started (less a margin for clock skew), and not
already known to the ledger (any sync's): a record an earlier batch created, or another sync,
is never adopted for a row. When more than one unknown record fits, the row fails for a
person to look at instead of being guessed.
"""

from __future__ import annotations

import io
from collections.abc import Set
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import polars as pl

from sf_assets.salesforce import soql
from sf_assets.salesforce.bulk2 import query
from sf_assets.salesforce.describe import NUMBER_TYPES
from sf_assets.salesforce.writer import outcomes
from sf_assets.salesforce.writer.context import WriteContext
from sf_assets.salesforce.writer.errors import WriteError

URL_BUDGET = 12_000  # characters of encoded SOQL per call; Salesforce refuses URIs over 16,384
CLOCK_MARGIN = timedelta(minutes=5)
# The state database's clock against Salesforce's: a ledger row naming a candidate record was
# written after the record was created, give or take this much.
LEDGER_CLOCK_MARGIN = timedelta(hours=1)
AMBIGUOUS = "LOST_ANSWER_AMBIGUOUS"
SHOWN_IDS = 5
# Keys from which a lookup reads the object with one Bulk query job instead of SOQL IN calls
# (bulk_records). Measured against an org of 1,000,000 Contacts matching by Email
# (bench/match_lookup.py, see BENCHMARKS.md): the Bulk job costs 0.78 s and 7 calls whatever
# the key count, IN lists 1.0 s / 3 calls for 800 keys, 2.0 s / 5 calls for 1,600 and
# 5.3 s / 9 calls for 3,200. From 2,000 keys the job is over twice as fast for about as many
# calls; it reads the whole object, so smaller orgs favour it more and much larger ones less.
BULK_LOOKUP_KEYS = 2_000


def queries(
    ctx: WriteContext, values: list[str], since: datetime | None, match_field: str | None = None
) -> list[str]:
    """SELECTs covering every value of `match_field` (the target's by default), each short
    enough to travel in a URL; `since` limits them to records created from then on (less
    the clock margin)."""
    field = match_field or ctx.target.match_on
    field_type = ctx.job.object_fields.get(field)
    selected = "Id" if field.lower() == "id" else f"Id, {field}"
    head = f"SELECT {selected} FROM {ctx.target.object} WHERE {field} IN ("
    tail = ")"
    if since is not None:
        after = (since - CLOCK_MARGIN).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        tail = f") AND CreatedDate >= {after}"
    budget = URL_BUDGET - len(quote(head + tail))
    result: list[str] = []
    group: list[str] = []
    used = 0
    for value in values:
        literal = soql.literal(value, field_type)
        cost = len(quote(literal)) + 3
        if group and used + cost > budget:
            result.append(head + ",".join(group) + tail)
            group, used = [], 0
        group.append(literal)
        used += cost
    if group:
        result.append(head + ",".join(group) + tail)
    return result


def resolve_lost_inserts(
    ctx: WriteContext,
    sent: pl.DataFrame,
    match_field: str,
    since: datetime,
    *,
    job_id: str,
    known: Set[str] = frozenset(),
) -> tuple[pl.DataFrame, pl.Series]:
    """What a lost insert of `sent` (`_key`, `_match`) created: outcomes for the rows settled
    (created, or failed as ambiguous) and the keys that were not created (safe to send).
    `known` holds ids this write already has answers for but has not committed yet."""
    values = sent["_match"].drop_nulls().unique().to_list()
    candidates = records_since(ctx, values, match_field, since)
    recorded_since = since - CLOCK_MARGIN - LEDGER_CLOCK_MARGIN
    theirs = ctx.job.staging.recorded_ids(candidates["Id"].to_list(), recorded_since) | set(known)
    known_ids = pl.Series(sorted(theirs), dtype=pl.Utf8).implode()
    ours = candidates.filter(~pl.col("Id").is_in(known_ids))
    field_type = ctx.job.object_fields.get(match_field)
    by_value = ours.group_by(normalized("_found", field_type).alias("_norm")).agg(
        pl.col("Id").sort().alias("ids")
    )
    matched = sent.with_columns(normalized("_match", field_type).alias("_norm")).join(
        by_value, on="_norm", how="inner"
    )
    single = matched.filter(pl.col("ids").list.len() == 1)
    several = matched.filter(pl.col("ids").list.len() > 1)
    created = outcomes.rows(
        single["_key"], "created", job_id=job_id, target_ids=single["ids"].list.first()
    )
    messages = [
        ambiguous_message(ctx, match_field, value, ids)
        for value, ids in several.select("_match", "ids").iter_rows()
    ]
    ambiguous = outcomes.rows(several["_key"], "failed", job_id=job_id, code=AMBIGUOUS)
    ambiguous = ambiguous.with_columns(pl.Series("error_message", messages, dtype=pl.Utf8))
    ctx.log.info(
        "resolved a lost insert of %d rows by %s: %d created, %d ambiguous, %d not created; "
        "%d look-alike records known to the ledger ignored",
        sent.height,
        match_field,
        single.height,
        several.height,
        sent.height - matched.height,
        candidates.height - ours.height,
    )
    settled = pl.concat([created, ambiguous])
    return settled, sent.filter(~pl.col("_key").is_in(matched["_key"].implode()))["_key"]


def ambiguous_message(ctx: WriteContext, match_field: str, value: str, ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS]) + (" …" if len(ids) > SHOWN_IDS else "")
    return (
        f"the answer to this insert was lost, and {len(ids)} {ctx.target.object} records "
        f"created since then have {match_field} {value!r} and are unknown to the ledger "
        f"({shown}): one may be this row, the others someone else's. Check them, delete "
        "any duplicate, then re-run the batch (or S_retry_rejects) to settle the row."
    )


def records_since(
    ctx: WriteContext, values: list[str], match_field: str, since: datetime
) -> pl.DataFrame:
    """`Id`, `_found` of the records created since `since` (less the margin) holding one of
    `values` in `match_field`."""
    found: list[tuple[str, str]] = []
    for statement in queries(ctx, values, since, match_field):
        found += fetch(ctx, statement, match_field)
    return pl.DataFrame(found, schema={"Id": pl.Utf8, "_found": pl.Utf8}, orient="row")


def missing_ids(ctx: WriteContext, ids: list[str]) -> set[str]:
    """The given record ids that Salesforce no longer has (deleted, or never there)."""
    present: set[str] = set()
    for statement in queries(ctx, ids, None, "Id"):
        present.update(record_id for record_id, _ in fetch(ctx, statement, "Id"))
    return set(ids) - present


def fetch(
    ctx: WriteContext, statement: str, match_field: str | None = None
) -> list[tuple[str, str]]:
    """(Id, match field value) of every record the query returns, page by page."""
    field = match_field or ctx.target.match_on
    return [(r["Id"], str(r[field])) for r in ctx.api.query_records(statement)]


def normalized(column: str, field_type: str | None) -> pl.Expr:
    """A key as Salesforce compares it: trimmed, and text case-insensitively (ids are not)."""
    trimmed = pl.col(column).str.strip_chars()
    return trimmed if field_type in ("id", "reference") else trimmed.str.to_lowercase()


def matching(ctx: WriteContext, keys: pl.Series) -> pl.DataFrame:
    """Every record whose match_on value equals a key's, however many: `_key`, `_match`,
    `ids` (a list, empty when none). One SOQL IN query per URL-sized chunk of keys, or one
    Bulk query job reading the object from BULK_LOOKUP_KEYS keys on."""
    field_type = ctx.job.object_fields.get(ctx.target.match_on)
    wanted = ctx.key_map(keys).with_columns(normalized("_match", field_type).alias("_norm"))
    values = wanted["_match"].drop_nulls().str.strip_chars().unique().sort().to_list()
    if bulk_lookup(len(values), field_type):
        norm = normalized("_found", field_type)
        records = bulk_records(ctx, wanted["_norm"].drop_nulls().unique(), norm)
    else:
        records = in_lists(ctx, values)
    by_value = records.group_by(normalized("_found", field_type).alias("_norm")).agg(
        pl.col("Id").sort().alias("ids")
    )
    ctx.log.info(
        "looked up %d keys on %s: %d records", wanted.height, ctx.target.match_on, records.height
    )
    return wanted.join(by_value, on="_norm", how="left").select(
        "_key", "_match", pl.col("ids").fill_null(pl.lit([], pl.List(pl.Utf8)))
    )


def bulk_lookup(keys: int, field_type: str | None) -> bool:
    """Whether a Bulk query job is cheaper than IN lists for this many keys. Numbers stay on
    REST: JSON and CSV spell them differently, and the comparison is on text."""
    return keys >= BULK_LOOKUP_KEYS and field_type not in NUMBER_TYPES


def bulk_records(ctx: WriteContext, wanted: pl.Series, normalize: pl.Expr) -> pl.DataFrame:
    """`Id`, `_found` (the match_on value as stored) of every record whose value, normalized
    by `normalize` (an expression on `_found`), is one of `wanted` (already normalized).

    An IN list travels in a URL, so a few hundred keys fit one REST call: 100,000 keys cost over
    three hundred calls. A Bulk query job cannot take the keys either (a SOQL statement is
    capped at 100,000 characters, about 3,000 emails), so it reads `Id` and the match_on field
    of every record that has a value, and the keys are matched here page by page; only the
    matches are kept. The job reads the whole object whatever the key count, which is why it
    only pays off for large key sets (BULK_LOOKUP_KEYS).
    """
    field, sobject = ctx.target.match_on, ctx.target.object
    # not queryAll: deleted records must not match; a record without a value matches no key
    job_id = query.create(ctx.api, f"SELECT Id, {field} FROM {sobject} WHERE {field} != null")
    final = query.poll(ctx.api, job_id, "nothing was written")
    if final["state"] != "JobComplete":
        raise WriteError(
            f"Salesforce did not complete Bulk query job {job_id} looking up {field} "
            f"({final['state']}: {final.get('errorMessage') or 'no message'}); nothing was written"
        )
    keep = pl.Series(wanted, dtype=pl.Utf8).implode()
    found = [
        id_and_value(page, field).filter(normalize.is_in(keep))
        for page in query.pages(ctx.api, job_id)
    ]
    return pl.concat(found) if found else pl.DataFrame(schema={"Id": pl.Utf8, "_found": pl.Utf8})


def id_and_value(page: bytes, match_on: str) -> pl.DataFrame:
    """`Id`, `_found` of one result page, as text; the header spells fields as the query did."""
    if not page.strip():
        return pl.DataFrame(schema={"Id": pl.Utf8, "_found": pl.Utf8})
    frame = pl.read_csv(io.BytesIO(page), infer_schema=False)
    by_lower = {name.lower(): name for name in frame.columns}
    return frame.select(
        pl.col(by_lower["id"]).alias("Id"), pl.col(by_lower[match_on.lower()]).alias("_found")
    ).drop_nulls("_found")


def in_lists(ctx: WriteContext, values: list[str]) -> pl.DataFrame:
    """`Id`, `_found` of the records holding one of `values`: one SOQL call per URL-sized
    chunk of keys (a few hundred emails each)."""
    found: list[tuple[str, str]] = []
    for statement in queries(ctx, values, None):
        found += fetch(ctx, statement)
    return pl.DataFrame(found, schema={"Id": pl.Utf8, "_found": pl.Utf8}, orient="row")


def record_count(ctx: WriteContext) -> int:
    """How many records the target object holds now."""
    return ctx.api.query_count(f"SELECT COUNT() FROM {ctx.target.object}")
