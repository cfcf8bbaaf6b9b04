"""The fast paths of mapping give the same values as the slow, obvious way of working them out.

Mapping takes shortcuts to run at millions of rows a second: floats are rounded without making
their text, common datetime layouts are parsed by chrono directly, duplicate keys are found by
their 64-bit hashes, U+FFFD is only searched for in non-ASCII text, and the content hash reads
typed values without making text. Each shortcut is checked here against the plain computation on
values chosen to sit where a shortcut could go wrong (halfway points, -0, huge magnitudes, odd
layouts, hash neighbours), because a different value would change what is sent, and a different
hash would make every unbatched sync send all its rows again.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal

import polars as pl
import pytest
import xxhash

from sf_assets.rows import CONTENT_HASHES, content_hash
from sf_assets.salesforce.mapping import map_batch
from sf_assets.salesforce.mapping.rules import round_float_to_scale, round_to_scale
from sf_assets.salesforce.mapping.values import (
    DATETIME_TEXT,
    Scope,
    _split_datetime_text,
    parse_datetime_text,
    to_lowercase,
)
from tests.salesforce.mapping.test_batch import CONTACT, make_spec
from tests.support.typed_hash import multipliers, typed_hash


def decimal_rounding(value: float, scale: int) -> float:
    """What Salesforce stores: the shortest text of the float, rounded half away from zero."""
    step = Decimal(1).scaleb(-scale)
    exact = Decimal(repr(value)).quantize(step, ROUND_HALF_UP, Context(prec=400))
    return float(exact) + 0.0  # -0.0 becomes 0.0, as the decimal's float does


def awkward_floats() -> list[float]:
    generator = random.Random(11)
    values = [1.005, 2.675, 0.125, -0.125, -0.001, 0.0, -0.0, 1e-7, 1.5e-8, 0.285, 0.29]
    values += [5e-324, 1e15, 1e14 + 0.03125, 1e13 + 0.005, 123456789.125, 2.0**47, 1e20, 1e300]
    for _ in range(5_000):
        values.append(generator.uniform(-1e6, 1e6))
        values.append(round(generator.uniform(-1e5, 1e5), generator.randint(0, 6)))
        digits = f"{generator.randint(-(10**7), 10**7)}.{generator.randint(0, 99):02d}5"
        values.append(float(digits))  # a halfway point at scale 2 in its text
        values.append(generator.randint(-(10**6), 10**6) / 10 ** generator.randint(0, 8))
    return values


@pytest.mark.parametrize("scale", [0, 1, 2, 3, 5, 8, 17])
def test_floats_round_like_their_decimal_text(scale):
    values = awkward_floats()
    frame = pl.DataFrame({"x": pl.Series(values, dtype=pl.Float64)})
    scope = Scope()
    rounded = scope.keep(round_float_to_scale(pl.col("x"), scale, scope))
    got = scope.apply(frame).select(rounded).to_series()
    expected = pl.Series([decimal_rounding(value, scale) for value in values])
    # compared as text so that 0.0 and -0.0 differ
    mismatches = frame.with_columns(got=got.cast(pl.Utf8), expected=expected.cast(pl.Utf8))
    assert mismatches.filter(pl.col("got") != pl.col("expected")).height == 0


@pytest.mark.parametrize("scale", [0, 2, 5])
def test_float_rounding_agrees_with_rounding_the_text(scale):
    """The text path (kept for decimals and huge floats) and the float path agree."""
    values = awkward_floats()
    frame = pl.DataFrame({"x": pl.Series(values, dtype=pl.Float64)})
    scope = Scope()
    fast = scope.keep(round_float_to_scale(pl.col("x"), scale, scope))
    text = round_to_scale(pl.col("x").cast(pl.Utf8), pl.col("x"), scale)
    both = scope.apply(frame).select(fast.alias("fast"), text.alias("text"))
    normalised = both.with_columns(pl.col("text") + 0.0)
    assert normalised.filter(pl.col("fast") != pl.col("text")).height == 0


def datetime_texts() -> list[str | None]:
    generator = random.Random(5)
    zones = ["", "Z", "z", "+01:00", "-0500", "+05", "-00:00", " Z", "  +01:30", "+24:00", "+99"]
    separators = ["T", "t", " "]
    times = ["10:00", "10:00:00", "23:59:59.5", "00:00:00.123456789", "10:00:60", "24:00:00"]
    texts: list[str | None] = [None, "", "   ", "2024-02-30", "2024-1-31T10:00:00Z"]
    texts += ["+2024-01-31T10:00:00Z", "2024-01-31T10:00:00.1234567891Z", "2024-01-31T1:00:00"]
    texts += ["٢٠٢٤-01-31T10:00:00Z", "2024-01-31T10:00:00,5Z", "2024-01-31T10:00:00GMT"]
    for _ in range(3_000):
        day = date(1700, 1, 1) + timedelta(days=generator.randint(0, 900_000))
        text = day.isoformat()
        if generator.random() < 0.9:
            text += generator.choice(separators) + generator.choice(times)
            text += generator.choice(zones)
        if generator.random() < 0.1:
            text = generator.choice([" ", "\t"]) + text + generator.choice(["", " ", "\n"])
        texts.append(text)
    return texts


def test_datetime_text_parses_like_splitting_date_time_and_zone():
    frame = pl.DataFrame({"t": pl.Series(datetime_texts(), dtype=pl.Utf8)})
    scope = Scope()
    fast = scope.keep(parse_datetime_text(pl.col("t"), scope))
    text = pl.col("t")
    slow = pl.when(text.str.strip_chars().str.contains(DATETIME_TEXT)).then(
        _split_datetime_text(text)
    )
    both = scope.apply(frame).select(text, fast.alias("fast"), slow.alias("slow"))
    assert both.filter(pl.col("fast").ne_missing(pl.col("slow"))).height == 0
    assert both["fast"].null_count() < both.height // 2  # most of them are dates at all


def reference_text(values: dict[str, object]) -> str:
    """The canonical text written out by hand: field-name digest, then `length:text` or `~`."""
    names = sorted(values)
    parts = [hashlib.md5("\x1f".join(names).encode()).hexdigest()[:8]]
    for name in names:
        value = values[name]
        if value is None:
            parts.append("~")
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, datetime):
            text = str((value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))
        elif isinstance(value, date):
            text = str((value - date(1970, 1, 1)).days)
        else:
            text = str(value)
        parts.append(f"{len(text.encode())}:{text}")
    return "\x1e".join(parts)


def hashed_rows() -> pl.DataFrame:
    """Values where a hash could go wrong: null beside empty text and zero, separators and
    non-ASCII in text, -0.0, extreme integers, dates before 1970."""
    return pl.DataFrame(
        {
            "LastName": ["Lovelace", None, "", "Zoë ~:\x1e", "x" * 300],
            "Ticket_Count__c": [3.0, None, 0.0, 1e21, -0.0],
            "Birthdate": [date(1815, 12, 10), None, date(1970, 1, 1), date(1699, 1, 1), None],
            "Last_Purchase__c": pl.Series(
                [datetime(2026, 11, 22, 9, 30, tzinfo=UTC), None, None, None, None],
                dtype=pl.Datetime("us", "UTC"),
            ),
            "HasOptedOutOfEmail": [True, False, None, True, False],
        }
    )


def test_version_x1_is_the_xxh3_of_the_canonical_text_and_version_0_its_md5():
    """The reference digests come from other implementations (the xxHash library's own
    bindings, hashlib), so a plugin that hashed differently would show here."""
    rows = hashed_rows().with_columns(pl.Series("Ticket_Count__c", [3.0, None, 0.0, 1e21, 2.5]))
    texts = [reference_text(row).encode() for row in rows.iter_rows(named=True)]
    hashes = CONTENT_HASHES["x1"](rows, rows.columns).to_list()
    assert hashes == [f"x1:{xxhash.xxh3_128_intdigest(text)}" for text in texts]
    legacy = CONTENT_HASHES["0"](rows, rows.columns).to_list()
    assert legacy == [hashlib.md5(text).hexdigest() for text in texts]
    # a value pinned from before the one-concatenation rewrite: ledgers hold such hashes
    assert legacy[0] == "ee969d7d2a041dba550e7324c80af405"


def reference_typed_hash(values: dict[str, object], kinds: dict[str, str]) -> str:
    names = sorted(values)
    return typed_hash(values, kinds, multipliers(names, [kinds[n] for n in names]))


KINDS = {
    "LastName": "text",
    "Ticket_Count__c": "float",
    "Birthdate": "date",
    "Last_Purchase__c": "datetime",
    "HasOptedOutOfEmail": "bool",
    "Visits": "int",
}


def test_version_x2_is_a_multilinear_hash_of_the_typed_values():
    rows = hashed_rows().with_columns(
        pl.Series("Visits", [0, None, -1, 2**63 - 1, -(2**63)], dtype=pl.Int64)
    )
    hashes = content_hash(rows, rows.columns).to_list()
    assert hashes == [reference_typed_hash(row, KINDS) for row in rows.iter_rows(named=True)]
    # pinned (worked out with the reference above): a change here changes every ledger's hashes
    assert hashes[0] == "x2:197676948098487368309577938765197234603"


def test_version_x2_tells_null_empty_and_zero_apart_and_sees_every_field():
    rows = pl.DataFrame(
        {
            "a": ["", None, "", "", "", ""],
            "b": [0.0, 0.0, None, -0.0, 0.0, 0.0],
            "c": [False, False, False, False, None, False],
        }
    )
    hashes = content_hash(rows, ["a", "b", "c"])
    assert hashes.n_unique() == rows.height - 1  # the last row repeats the first
    assert hashes[0] == hashes[5]
    renamed = content_hash(rows.rename({"c": "d"}), ["a", "b", "d"])
    added = content_hash(rows.with_columns(e=pl.lit(None, pl.Utf8)), ["a", "b", "c", "e"])
    retyped = content_hash(rows.with_columns(pl.col("c").cast(pl.Int64)), ["a", "b", "c"])
    for other in (renamed, added, retyped):
        assert not (other == hashes).any()


def test_duplicate_keys_and_their_counts_match_a_plain_count():
    generator = random.Random(3)
    keys = [f"Fan-{generator.randint(0, 60_000)}" for _ in range(50_000)]
    keys = [key.lower() if generator.random() < 0.3 else key for key in keys]
    frame = pl.DataFrame({"id": keys, "name": ["A"] * len(keys)})
    spec = make_spec({"External_Id__c": "id", "LastName": "name"})
    result = map_batch(spec, CONTACT, frame, "b")
    counts = frame.group_by(pl.col("id").str.to_lowercase().alias("k")).len()
    duplicated = set(counts.filter(pl.col("len") > 1)["k"])
    expected = {i + 1 for i, key in enumerate(keys) if key.lower() in duplicated}
    assert set(result.rejects["row"]) == expected
    assert set(result.rows["_key"].str.to_lowercase()).isdisjoint(duplicated)
    stated = result.rejects.select(
        pl.col("key").str.to_lowercase(),
        pl.col("reason").str.extract(r"appears (\d+) times").cast(pl.UInt32).alias("len"),
    ).unique()
    assert stated.sort("key").rows() == counts.filter(pl.col("len") > 1).sort("k").rows()


def test_lowercasing_only_text_that_changes_gives_the_plain_lowercase():
    """Every code point alone, plus words where context matters (a final sigma, titlecase)."""
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    frame = pl.DataFrame({"t": [*points, "ΟΔΟΣ", "Fan-1", "ǅemal", "ﬃ", "", None]})
    scope = Scope()
    fast = scope.keep(to_lowercase(pl.col("t"), scope))
    plain = pl.col("t").str.to_lowercase()
    both = scope.apply(frame).select(fast.alias("fast"), plain.alias("plain"))
    assert both.filter(pl.col("fast").ne_missing(pl.col("plain"))).height == 0
