"""What every direction shares about rows: the system columns a mapped frame carries, content
hashes that tell what changed, and reject frames with their reasons.
"""

from __future__ import annotations

import hashlib

import duckdb
import polars as pl
import polars_hash as plh

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


def repeated(hashed: pl.Expr) -> pl.Expr:
    """Whether a row's 64-bit hash is another row's too: the candidates for a repeated value.
    Sorting hashes is far cheaper than grouping the text they hash, and a collision only makes
    a candidate, which the caller then compares by its value."""
    in_order = hashed.sort()
    return hashed.is_in(in_order.filter(in_order == in_order.shift(1)).implode())


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


# The hash's algorithm, written at the head of every hash (version 0, MD5, had none): a ledger
# can hold hashes of an earlier version, which are compared again with that version's algorithm (never taken as a
# change, which would resend every row of an unbatched sync once the algorithm changes).
HASH_VERSION = "x1"
HASH_PREFIX = f"{HASH_VERSION}:"


def content_hash(rows: pl.DataFrame, names: list[str]) -> pl.Series:
    """A hash of a canonical text of each row's mapped values: the same values give the same
    hash in every run, process and version, so the ledger can tell what changed.

    XXH3-128 (polars-hash, a polars plugin, so no Python per row) rather than polars' own hash,
    whose values may change between polars versions: XXH3's output is fixed by its
    specification since xxHash 0.8. It is about ten times faster than the MD5 that version 0
    used, and 128 bits make a changed row that keeps its hash a non-event.
    """
    if rows.height == 0:
        return pl.Series(HASH, [], pl.Utf8)
    digest = plh.col("canonical").nchash.xxh3_128().cast(pl.Utf8)
    hashed = (
        canonical_rows(rows, names)
        .select(pl.concat_str(pl.lit(HASH_PREFIX), digest).alias(HASH))
        .collect()
    )
    return hashed[HASH]


def legacy_content_hash(rows: pl.DataFrame, names: list[str]) -> pl.Series:
    """Version 0 of the hash (no prefix): MD5 of the same canonical text, as DuckDB computes
    it. Only to compare rows whose ledger entry predates `HASH_VERSION`."""
    if rows.height == 0:
        return pl.Series(HASH, [], pl.Utf8)
    canonical = canonical_rows(rows, names).collect()
    with duckdb.connect() as connection:
        connection.register("canonical", canonical)
        hashed = connection.sql("SELECT md5(canonical) AS h FROM canonical").pl()
    return hashed["h"].alias(HASH)


def is_version_zero(hashed: pl.Expr) -> pl.Expr:
    """Whether a ledger's hash was made by version 0 (32 hex digits, no version prefix)."""
    return hashed.str.contains(r"^[0-9a-f]{32}$")


def canonical_rows(rows: pl.DataFrame, names: list[str]) -> pl.LazyFrame:
    """`canonical`: the text each version hashes. It starts with a digest of the field names
    (adding or renaming a field changes every hash) and lists each value as `length:text`, or
    `~` for null, in field-name order, joined by the record separator: the length prefix keeps
    it unambiguous whatever the values hold.

    Each value is turned into text once, in a pass of its own, and the pieces are joined in one
    concatenation of pieces that need none of their own: an expression that used the text three
    times cast it three times, and each intermediate string column costs about as much as the
    hash.
    """
    ordered = sorted(names)
    fields_digest = hashlib.md5("\x1f".join(ordered).encode()).hexdigest()[:8]
    texts = rows.lazy().select(
        canonical_text(pl.col(name), rows.schema[name]).alias(name) for name in ordered
    )
    pieces: list[pl.Expr] = [pl.lit(fields_digest)]
    for name in ordered:
        text = pl.col(name)
        length = text.str.len_bytes().cast(pl.Utf8).fill_null(pl.lit("~"))
        colon = pl.when(text.is_null()).then(pl.lit("")).otherwise(pl.lit(":"))
        pieces += [pl.lit(FIELD_SEPARATOR), length, colon, text.fill_null(pl.lit(""))]
    return texts.select(pl.concat_str(pieces).alias("canonical"))


def canonical_text(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A typed value as text for hashing; instants as integers (UTC microseconds, days)."""
    if isinstance(dtype, pl.Datetime):
        return value.dt.epoch("us").cast(pl.Utf8)
    if dtype == pl.Date:
        return value.dt.epoch("d").cast(pl.Utf8)
    return value.cast(pl.Utf8)
