"""What every direction shares about rows: the system columns a mapped frame carries, content
hashes that tell what changed, and reject frames with their reasons.
"""

from __future__ import annotations

import hashlib

import duckdb
import polars as pl

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "sync": pl.Utf8(),
    "batch": pl.Utf8(),
    "row": pl.Int64(),
    "key": pl.Utf8(),
    "column": pl.Utf8(),
    "field": pl.Utf8(),
    "value": pl.Utf8(),
    "code": pl.Utf8(),
    "reason": pl.Utf8(),
}
ROW, KEY, HASH = "_row", "_key", "_hash"
FIELD_SEPARATOR = "\x1e"


def reject_reason(sync: str, batch: str) -> pl.Expr:
    """`<sync> batch <b> row <n> (key <k>): column '<c>' -> <Field>: <problem>`, from the
    columns of a reject frame plus `problem`; every target phrases rejects this way."""
    return pl.concat_str(
        pl.lit(f"{sync} batch {batch} row "),
        pl.col("row").cast(pl.Utf8),
        pl.when(pl.col("key").is_null())
        .then(pl.lit(" (no key)"))
        .otherwise(pl.concat_str(pl.lit(" (key "), pl.col("key"), pl.lit(")"))),
        pl.lit(": column '"),
        pl.col("column"),
        pl.lit("'"),
        pl.when(pl.col("field").is_null())
        .then(pl.lit(" (source key)"))
        .otherwise(pl.concat_str(pl.lit(" -> "), pl.col("field"))),
        pl.lit(": "),
        pl.col("problem"),
    )


def content_hash(rows: pl.DataFrame, names: list[str]) -> pl.Series:
    """MD5 of a canonical text of each row's mapped values: the same values give the same hash
    in every run and process, so the ledger can tell what changed. MD5 (computed by DuckDB,
    vectorised) rather than polars' own hash, whose values may change between polars versions.

    The text starts with a digest of the field names (adding or renaming a field changes every
    hash) and lists each value as `length:text`, or `~` for null, in field-name order, joined by
    the record separator: the length prefix keeps it unambiguous whatever the values hold.
    """
    if rows.height == 0:
        return pl.Series(HASH, [], pl.Utf8)
    ordered = sorted(names)
    fields_digest = hashlib.md5("\x1f".join(ordered).encode()).hexdigest()[:8]
    # One concatenation for the whole text, of pieces that need no concatenation of their
    # own (each intermediate string column costs about as much as the hash): a null value
    # is `~`, then nothing, then nothing; any other is its length, `:`, then the text.
    pieces: list[pl.Expr] = [pl.lit(fields_digest)]
    for name in ordered:
        text = canonical_text(pl.col(name), rows.schema[name])
        length = text.str.len_bytes().cast(pl.Utf8).fill_null(pl.lit("~"))
        colon = pl.when(text.is_null()).then(pl.lit("")).otherwise(pl.lit(":"))
        pieces += [pl.lit(FIELD_SEPARATOR), length, colon, text.fill_null(pl.lit(""))]
    canonical = rows.lazy().select(pl.concat_str(pieces).alias("canonical")).collect()
    with duckdb.connect() as connection:
        connection.register("canonical", canonical)
        hashed = connection.sql("SELECT md5(canonical) AS h FROM canonical").pl()
    return hashed["h"].alias(HASH)


def canonical_text(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A typed value as text for hashing; instants as integers (UTC microseconds, days)."""
    if isinstance(dtype, pl.Datetime):
        return value.dt.epoch("us").cast(pl.Utf8)
    if dtype == pl.Date:
        return value.dt.epoch("d").cast(pl.Utf8)
    return value.cast(pl.Utf8)
