"""What every direction shares about rows: the system columns a mapped frame carries, content
hashes that tell what changed, and reject frames with their reasons.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

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
    a candidate, which the caller then compares by its value. The sorted hashes are one list
    whose neighbours are compared inside it: an expression naming the sorted column three
    times sorted it three times."""
    pair = pl.element()
    repeats = hashed.sort().implode().list.eval(pair.filter(pair == pair.shift(1)))
    return hashed.is_in(repeats)


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
# can hold hashes of an earlier version, which are compared again with that version's algorithm
# (never taken as a change, which would resend every row of an unbatched sync once the algorithm
# changes). `CONTENT_HASHES` holds every version's algorithm.
HASH_VERSION = "x2"
HASH_PREFIX = f"{HASH_VERSION}:"
# A null word: every value's word is below 2**64, so a null differs from every value.
NULL_WORD = 2**64


def content_hash_of(schema: pl.Schema, names: list[str]) -> pl.Expr:
    """The current version's hash (`HASH_VERSION`: `typed_hash`) as an expression over columns
    `names` of `schema`, for a query that hashes beside other work instead of in a pass of its
    own. The one place that names the current algorithm: `content_hash` and the current entry
    of `CONTENT_HASHES` are made from it."""
    return typed_hash(schema, names)


def content_hash(rows: pl.DataFrame, names: list[str]) -> pl.Series:
    """The current version's hash of each row's mapped values: the same values give the same
    hash in every run, process and version, so the ledger can tell what changed."""
    if rows.height == 0:
        return pl.Series(HASH, [], pl.Utf8)
    return rows.select(content_hash_of(rows.schema, names).alias(HASH)).to_series()


def typed_hash(schema: pl.Schema, names: list[str]) -> pl.Expr:
    """`x2:` and the decimal text of a 128-bit multilinear hash of the row's typed values.

    Each field's value becomes one 64-bit word without making text (`hash_word`), and the
    words are combined as `(a0 + a1*w1 + ... + an*wn) mod 2**128`: a few integer operations a
    column, where version x1 spent most of its time turning values into one long text. Words
    are below 2**64 and a null is 2**64, so each field's word tells its value (a text's up to
    its XXH3-64 digest) and null apart from empty and zero. For random multipliers the sum
    makes two rows with different words collide with a chance of at most 2**-63 whatever they
    hold, and the multipliers are odd, so rows whose words differ in one field never collide.
    The multipliers are digests of the field names and kinds (`multipliers`): adding, renaming
    or retyping a field changes every hash. Every step is fixed by a specification (XXH3, IEEE
    754, integer arithmetic modulo 2**128, BLAKE2b), so the hash does not depend on the polars
    version; the tests work it out again with Python integers.
    """
    return pl.concat_str(pl.lit(HASH_PREFIX), typed_sum(schema, names).cast(pl.Utf8))


def typed_sum(schema: pl.Schema, names: list[str]) -> pl.Expr:
    """The 128-bit sum of `typed_hash`, before it becomes text."""
    ordered = sorted(names)
    kinds = [hash_kind(schema[name]) for name in ordered]
    offset, *factors = multipliers(ordered, kinds)
    terms = [
        hash_word(pl.col(name), schema[name]).cast(pl.UInt128).fill_null(NULL_WORD)
        * pl.lit(factor, pl.UInt128)
        for name, factor in zip(ordered, factors, strict=True)
    ]
    return pl.sum_horizontal(pl.lit(offset, pl.UInt128), *terms)


def multipliers(names: list[str], kinds: list[str]) -> list[int]:
    """The offset and one odd multiplier per field: 128-bit BLAKE2b digests of the position
    and of the sorted field names with their kinds."""
    fields = "\x1f".join(f"{name}\x1e{kind}" for name, kind in zip(names, kinds, strict=True))
    return [
        int.from_bytes(
            hashlib.blake2b(f"{position}\x1d{fields}".encode(), digest_size=16).digest(), "big"
        )
        | 1
        for position in range(len(names) + 1)
    ]


def hash_kind(dtype: pl.DataType) -> str:
    """How `hash_word` reads a column: part of the multipliers, so that two dtypes whose words
    could coincide (a float's bits and an integer) never hash alike."""
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_float():
        return "float"
    if dtype.is_unsigned_integer():
        return "uint"
    if dtype.is_integer():
        return "int"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return "text"


def hash_word(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A value as a 64-bit word (null stays null): text as its XXH3-64, a float as its IEEE 754
    bits, integers in two's complement, a date as days and a datetime as UTC microseconds
    since 1970, a boolean as 0 or 1. Anything else hashes as its text."""
    kind = hash_kind(dtype)
    if kind == "bool":
        return value.cast(pl.UInt64)
    if kind == "float":
        return value.cast(pl.Float64).reinterpret(dtype=pl.UInt64)
    if kind == "uint":
        return value.cast(pl.UInt64)
    if kind == "int":
        return value.cast(pl.Int64).reinterpret(dtype=pl.UInt64)
    if kind == "date":
        return value.cast(pl.Int32).cast(pl.Int64).reinterpret(dtype=pl.UInt64)
    if kind == "datetime":
        return value.dt.epoch("us").reinterpret(dtype=pl.UInt64)
    return value.cast(pl.Utf8).nchash.xxh3_64()  # the namespace of polars-hash


def text_content_hash(rows: pl.DataFrame, names: list[str]) -> pl.Series:
    """Version x1: XXH3-128 of `canonical_rows`' text, as decimal digits. Only to compare rows
    whose ledger entry was written by that version."""
    if rows.height == 0:
        return pl.Series(HASH, [], pl.Utf8)
    digest = plh.col("canonical").nchash.xxh3_128().cast(pl.Utf8)
    hashed = (
        canonical_rows(rows, names)
        .select(pl.concat_str(pl.lit("x1:"), digest).alias(HASH))
        .collect()
    )
    return hashed[HASH]


def md5_content_hash(rows: pl.DataFrame, names: list[str]) -> pl.Series:
    """Version 0 (no prefix): MD5 of `canonical_rows`' text, as DuckDB computes it. Only to
    compare rows whose ledger entry was written by that version."""
    if rows.height == 0:
        return pl.Series(HASH, [], pl.Utf8)
    canonical = canonical_rows(rows, names).collect()
    with duckdb.connect() as connection:
        connection.register("canonical", canonical)
        hashed = connection.sql("SELECT md5(canonical) AS h FROM canonical").pl()
    return hashed["h"].alias(HASH)


CONTENT_HASHES: dict[str, Callable[[pl.DataFrame, list[str]], pl.Series]] = {
    "0": md5_content_hash,
    "x1": text_content_hash,
    HASH_VERSION: content_hash,
}


def hash_version(hashed: pl.Expr) -> pl.Expr:
    """The version that made a ledger's hash: `0` for 32 hex digits (MD5, no prefix), else its
    prefix (`x1`, `x2`); null for a hash of no known form."""
    prefixed = hashed.str.extract(r"^(x[0-9]+):", 1)
    return pl.when(hashed.str.contains(r"^[0-9a-f]{32}$")).then(pl.lit("0")).otherwise(prefixed)


def canonical_rows(rows: pl.DataFrame, names: list[str]) -> pl.LazyFrame:
    """`canonical`: the text versions 0 and x1 hash. It starts with a digest of the field names
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
