"""Finding out what a lost answer did: which of a set of keys now exist in Salesforce.

An insert whose answer never arrived may or may not have created its records, and sending it
again could create them twice. The keys are looked up with SOQL on the match_on field instead,
limited to records created since the send started (less a margin for clock skew), so that an
older record that happens to share a non-unique value is not taken for the one sent.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import polars as pl

from sf_assets.salesforce import soql
from sf_assets.salesforce.bulk2 import query
from sf_assets.salesforce.describe import NUMBER_TYPES
from sf_assets.salesforce.writer.context import WriteContext
from sf_assets.salesforce.writer.errors import WriteError

URL_BUDGET = 12_000  # characters of encoded SOQL per call; Salesforce refuses URIs over 16,384
CLOCK_MARGIN = timedelta(minutes=15)
# Keys from which a lookup reads the object with one Bulk query job instead of SOQL IN calls
# (bulk_records). Measured against an org of 1,000,000 Contacts matching by Email
# (bench/match_lookup.py, see BENCHMARKS.md): the Bulk job costs 0.78 s and 7 calls whatever
# the key count, IN lists 1.0 s / 3 calls for 800 keys, 2.0 s / 5 calls for 1,600 and
# 5.3 s / 9 calls for 3,200. From 2,000 keys the job is over twice as fast for about as many
# calls; it reads the whole object, so smaller orgs favour it more and much larger ones less.
BULK_LOOKUP_KEYS = 2_000


def queries(ctx: WriteContext, values: list[str], since: datetime | None) -> list[str]:
    """SELECTs covering every value, each short enough to travel in a URL; `since` limits
    them to records created from then on (less the clock margin)."""
    target = ctx.target
    field_type = ctx.job.object_fields.get(target.match_on)
    head = f"SELECT Id, {target.match_on} FROM {target.object} WHERE {target.match_on} IN ("
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


def existing(ctx: WriteContext, keys: pl.Series, since: datetime) -> pl.DataFrame:
    """Rows of `keys` found in Salesforce: `_key`, `target_id`."""
    wanted = ctx.key_map(keys)
    found: list[tuple[str, str]] = []
    for statement in queries(ctx, wanted["_match"].drop_nulls().to_list(), since):
        found += fetch(ctx, statement)
    ctx.log.info("looked up %d keys after a lost answer: %d found", wanted.height, len(found))
    frame = pl.DataFrame(found, schema={"target_id": pl.Utf8, "_found": pl.Utf8}, orient="row")
    matched = wanted.with_columns(pl.col("_match").str.to_lowercase().alias("_found")).join(
        frame.with_columns(pl.col("_found").str.to_lowercase()), on="_found", how="inner"
    )
    return matched.unique("_key", keep="first").select("_key", "target_id")


def fetch(ctx: WriteContext, statement: str) -> list[tuple[str, str]]:
    """(Id, match_on value) of every record the query returns, page by page."""
    found: list[tuple[str, str]] = []
    path = "query?q=" + quote(statement, safe="")
    while path:
        page = ctx.api.call("GET", path, idempotent=True).json()
        found += [(r["Id"], str(r[ctx.target.match_on])) for r in page["records"]]
        path = page.get("nextRecordsUrl") or ""
    return found


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
    count = f"SELECT COUNT() FROM {ctx.target.object}"
    return int(
        ctx.api.call("GET", "query?q=" + quote(count, safe=""), idempotent=True).json()["totalSize"]
    )
