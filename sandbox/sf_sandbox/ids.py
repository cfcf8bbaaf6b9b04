"""Record ids the way Salesforce makes them: 15 case-sensitive characters plus a 3-character
suffix that makes the id unique when compared case-insensitively.

An id is `key prefix (3) + pod (2) + counter (10 digits) + suffix (3)`. Digits carry no case, so
only the first five characters decide the suffix: the sandbox computes it once per object and
builds a million ids with one vectorised string operation.
"""

from __future__ import annotations

import re

import polars as pl

POD = "5g"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
ID_PATTERN = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-5]{3})?$")


def checksum_suffix(id15: str) -> str:
    """The 3-character case-safe suffix of a 15-character id (or of its first chunks)."""
    out = []
    for start in range(0, len(id15), 5):
        chunk = id15[start : start + 5]
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        out.append(_SUFFIX_ALPHABET[bits])
    return "".join(out)


def make_id(key_prefix: str, counter: int) -> str:
    id15 = f"{key_prefix}{POD}{counter:010d}"
    return id15 + checksum_suffix(id15)


def make_ids(key_prefix: str, first_counter: int, count: int) -> pl.Series:
    """`count` consecutive ids for one object, built without a Python loop."""
    suffix = checksum_suffix(f"{key_prefix}{POD}")[0] + "AA"
    counters = pl.int_range(first_counter, first_counter + count, eager=True, dtype=pl.Int64)
    return pl.select(
        pl.concat_str(
            pl.lit(f"{key_prefix}{POD}"),
            pl.lit(counters).cast(pl.Utf8).str.zfill(10),
            pl.lit(suffix),
        ).alias("Id")
    ).to_series()


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is malformed."""
    if not ID_PATTERN.match(value):
        return None
    if len(value) == 18:
        suffix = checksum_suffix(value[:15])
        return value[:15] + suffix if value[15:].upper() == suffix else None
    return value + checksum_suffix(value)
