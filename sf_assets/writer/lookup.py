"""Finding out what a lost answer did: which of a set of keys now exist in Salesforce.

An insert whose answer never arrived may or may not have created its records, and sending it
again could create them twice. The keys are looked up with SOQL on the match_on field instead,
limited to records created since the send started (less a margin for clock skew), so that an
older record that happens to share a non-unique value is not taken for the one sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import polars as pl

from sf_assets.writer.context import WriteContext
from sf_assets.writer.wire import NUMBER_TYPES

URL_BUDGET = 12_000  # characters of encoded SOQL per call; Salesforce refuses URIs over 16,384
CLOCK_MARGIN = timedelta(minutes=15)


def soql_literal(value: str, field_type: str | None) -> str:
    if field_type in NUMBER_TYPES:
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def queries(ctx: WriteContext, values: list[str], since: datetime) -> list[str]:
    """SELECTs covering every value, each short enough to travel in a URL."""
    target = ctx.target
    field_type = ctx.job.object_fields.get(target.match_on)
    after = (since - CLOCK_MARGIN).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    head = f"SELECT Id, {target.match_on} FROM {target.object} WHERE {target.match_on} IN ("
    tail = f") AND CreatedDate >= {after}"
    budget = URL_BUDGET - len(quote(head + tail))
    result: list[str] = []
    group: list[str] = []
    used = 0
    for value in values:
        literal = soql_literal(value, field_type)
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
    for soql in queries(ctx, wanted["_match"].drop_nulls().to_list(), since):
        path = "query?q=" + quote(soql, safe="")
        while path:
            page = ctx.api.call("GET", path, idempotent=True).json()
            found += [(r["Id"], str(r[ctx.target.match_on])) for r in page["records"]]
            path = page.get("nextRecordsUrl") or ""
    ctx.log.info("looked up %d keys after a lost answer: %d found", wanted.height, len(found))
    frame = pl.DataFrame(found, schema={"target_id": pl.Utf8, "_found": pl.Utf8}, orient="row")
    matched = wanted.with_columns(pl.col("_match").str.to_lowercase().alias("_found")).join(
        frame.with_columns(pl.col("_found").str.to_lowercase()), on="_found", how="inner"
    )
    return matched.unique("_key", keep="first").select("_key", "target_id")
