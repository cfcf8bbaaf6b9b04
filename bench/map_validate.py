"""How fast a batch is mapped and validated for Salesforce, against the per-row Python loop
someone would write without polars.

    uv run python bench/map_validate.py [--rows 1000000] [--repeat 5] [--baseline-rows 100000]

One run builds a Contact batch of mixed dtypes (text, ints, floats, dates, ISO text datetimes,
yes/no text) with a few percent of bad rows, then works through it three ways in this process:
- baseline: a straightforward loop over the rows as dicts, applying the same rules field by field
  with `re`, `datetime` and `decimal`, hashing each good row with the xxhash package; it maps
  the first `--baseline-rows` rows (a loop's rows/s does not depend on the size);
- map_batch: the vectorised mapping of `sf_assets.mapping`;
- floor: what no vectorised mapping of these rules in polars can leave out, in one query: each
  column's one unavoidable operation (the email regex, the datetime parse, the key's hash and
  sort, the picklist and boolean look-ups, the length) and the content hash of the typed
  values as a number, with nothing else (no reasons, no split into rows and rejects, no second
  pattern, no text of the hash).
It checks that the loop and map_batch accept and reject the same rows of the loop's share with
the same codes and hashes (map_batch mapping that share alone, so duplicates are counted
alike), and that the floor hashes the values map_batch hashes; then it prints rows/s for each
(median and range of `--repeat` interleaved rounds), the share of the content hash, the
speed-up and the peak memory.
"""

from __future__ import annotations

import argparse
import re
import resource
import time
from collections import Counter
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import polars as pl
from sf_sandbox.schema import load_schema
from timing import Samples, interleaved

from sf_assets.rows import HASH_PREFIX, content_hash, typed_sum
from sf_assets.salesforce.describe import FieldInfo, ObjectInfo
from sf_assets.salesforce.mapping import map_batch
from sf_assets.salesforce.mapping.rules import EMAIL, FALSE_WORDS, TRUE_WORDS
from sf_assets.salesforce.mapping.values import ZONED_LAYOUT
from sf_assets.specs import SyncSpec
from tests.support.typed_hash import multipliers, typed_hash

SPEC = SyncSpec.model_validate(
    {
        "name": "contacts_to_salesforce",
        "source": {"duckdb": "warehouse.duckdb", "table": "crm.contacts"},
        "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"},
        "mapping": {
            "External_Id__c": "fan_id",
            "LastName": "last_name",
            "Email": "email",
            "Ticket_Count__c": "tickets",
            "Lifetime_Value__c": "lifetime_value",
            "Birthdate": "birthdate",
            "Last_Purchase__c": "last_purchase",
            "HasOptedOutOfEmail": "opted_out",
            "Fan_Tier__c": "fan_tier",
        },
    }
)


def contact() -> ObjectInfo:
    schema = load_schema()
    return ObjectInfo.from_describe(schema.get("Contact").describe("59.0", schema))


def sample(rows: int) -> pl.DataFrame:
    """A ticketing export: about 2 % of the rows carry one problem each."""
    i = pl.int_range(0, rows, dtype=pl.Int64)

    def every(n: int) -> pl.Expr:
        return i % n == n - 1

    key = pl.when(every(331)).then(i - 1).otherwise(i).cast(pl.Utf8)
    tiers = pl.lit(["Bronze", "Silver", "Gold", "Platinum"]).list.get(i % 4)
    stamp = pl.format(
        "2026-11-{}T{}:{}:00{}",
        (i % 28 + 1).cast(pl.Utf8).str.zfill(2),
        (i % 24).cast(pl.Utf8).str.zfill(2),
        (i % 60).cast(pl.Utf8).str.zfill(2),
        pl.lit(["Z", "+01:00", "-0500", ""]).list.get(i % 4),
    )
    return pl.select(
        pl.when(every(997)).then(pl.lit("")).otherwise(pl.lit("fan-") + key).alias("fan_id"),
        pl.when(every(409))
        .then(None)
        .when(every(1009))
        .then(pl.lit("X" * 90))
        .otherwise(pl.format("Buyer{}", i % 997))
        .alias("last_name"),
        pl.when(every(211))
        .then(pl.format("fan{}-at-example.com", i))
        .otherwise(pl.format("fan{}@example.com", i))
        .alias("email"),
        (i % 9 + 1).alias("tickets"),
        ((i % 100_000) / 100 + 0.005).alias("lifetime_value"),
        (pl.lit(date(1950, 1, 1)) + pl.duration(days=i % 20_000)).alias("birthdate"),
        pl.when(every(503))
        .then(pl.lit("2026-13-01T10:00:00Z"))
        .otherwise(stamp)
        .alias("last_purchase"),
        pl.when(every(601))
        .then(pl.lit("maybe"))
        .otherwise(pl.lit(["yes", "no", "true", "0"]).list.get(i % 4))
        .alias("opted_out"),
        pl.when(every(307)).then(pl.lit("Diamond")).otherwise(tiers).alias("fan_tier"),
        (i + 1).alias("_row"),
    )


# -- the baseline: the per-row loop ---------------------------------------------------------

EMAIL_RE = re.compile(EMAIL)
NUMBER_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
FIRST_DAY, LAST_DAY = date(1700, 1, 1), date(4000, 12, 31)


class Reject(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def baseline(records: list[dict[str, Any]], obj: ObjectInfo) -> tuple[list, list]:
    """Map and validate row by row, as a loop over dicts would."""
    fields = [(obj.fields[name], column) for name, column in SPEC.mapping.items()]
    hasher = RowHasher({f.name: f.type for f, _ in fields})
    counts = Counter((r["fan_id"] or "").lower() for r in records)
    good, bad = [], []
    for record in records:
        key = record["fan_id"]
        try:
            if not key or not key.strip():
                raise Reject("MISSING_KEY")
            if counts[key.lower()] > 1:
                raise Reject("DUPLICATE_KEY")
            out = {field.name: parse_value(field, record[column]) for field, column in fields}
        except Reject as reject:
            bad.append((record["_row"], reject.code))
            continue
        good.append((record["_row"], hasher.hash(out)))
    return good, bad


def parse_value(field: FieldInfo, value: Any) -> Any:
    parsed = PARSERS.get(field.type, parse_text)(field, value)
    if parsed is None and field.required_on_create:
        raise Reject("REQUIRED_FIELD_MISSING")
    return parsed


def parse_text(field: FieldInfo, value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if "\ufffd" in text:
        raise Reject("INVALID_UTF8")
    if field.length and len(text) > field.length:
        raise Reject("STRING_TOO_LONG")
    if field.type == "email" and not EMAIL_RE.match(text):
        raise Reject("INVALID_EMAIL_ADDRESS")
    if field.restricted_picklist and text not in field.picklist:
        raise Reject("INVALID_PICKLIST_VALUE")
    return text


def parse_number(field: FieldInfo, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else repr(value)
    if isinstance(value, bool) or not NUMBER_RE.match(text):
        raise Reject("INVALID_NUMBER")
    try:
        exact = Decimal(text).quantize(Decimal(1).scaleb(-field.scale), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise Reject("INVALID_NUMBER") from None
    if field.precision and abs(exact) >= 10 ** (field.precision - field.scale):
        raise Reject("NUMBER_OUTSIDE_VALID_RANGE")
    return float(exact)


def parse_boolean(field: FieldInfo, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise Reject("INVALID_BOOLEAN")


def parse_date(field: FieldInfo, value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        if not FIRST_DAY <= value <= LAST_DAY:
            raise Reject("INVALID_DATE")
        return value
    moment = parse_datetime(field, value)
    return None if moment is None else moment.date()


def parse_datetime(field: FieldInfo, value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        raise Reject("INVALID_DATE") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not FIRST_DAY <= moment.date() <= LAST_DAY:
        raise Reject("INVALID_DATE")
    return moment


PARSERS = {
    "double": parse_number,
    "currency": parse_number,
    "percent": parse_number,
    "boolean": parse_boolean,
    "date": parse_date,
    "datetime": parse_datetime,
}


HASH_KINDS = {
    "boolean": "bool",
    "int": "int",
    "double": "float",
    "currency": "float",
    "percent": "float",
    "date": "date",
    "datetime": "datetime",
}


class RowHasher:
    """The x2 hash map_batch computes, worked out in Python (tests/support/typed_hash.py): the
    multipliers once, as a loop over one batch's rows would, then one sum per row."""

    def __init__(self, types: dict[str, str]) -> None:
        names = sorted(types)
        self.kinds = {name: HASH_KINDS.get(types[name], "text") for name in names}
        self.factors = multipliers(names, [self.kinds[name] for name in names])

    def hash(self, values: dict[str, Any]) -> str:
        return typed_hash(values, self.kinds, self.factors)


# -- the floor: the unavoidable operations alone ---------------------------------------------


# What the floor works out more cheaply than map_batch, so not always alike.
LOSSY = ["Lifetime_Value__c", "Last_Purchase__c"]


def floor(frame: pl.DataFrame, obj: ObjectInfo) -> pl.DataFrame:
    """Each mapped column's one operation that any polars mapping of these rules must run on
    every row, and the 128-bit content hash of the typed values (as a number: its text is a
    choice of the ledger's, not a need), in the fastest form measured: the typed columns, then
    one query for the hash and the checks.

    A lower bound, not a mapping: it keeps no reasons, rejects nothing, and parses datetimes
    with the common layout alone (so text the pattern would refuse passes)."""
    source = {field: pl.col(column) for field, column in SPEC.mapping.items()}
    converted = {
        "Ticket_Count__c": source["Ticket_Count__c"].cast(pl.Float64),
        "Lifetime_Value__c": source["Lifetime_Value__c"].round(2, mode="half_away_from_zero"),
        "Last_Purchase__c": source["Last_Purchase__c"].str.to_datetime(
            ZONED_LAYOUT, time_unit="us", time_zone="UTC", strict=False
        ),
        "HasOptedOutOfEmail": source["HasOptedOutOfEmail"].is_in(TRUE_WORDS),
    }
    typed = source | converted
    checks = [
        source["Email"].str.contains(EMAIL),
        source["LastName"].str.len_chars() > obj.fields["LastName"].length,
        source["Fan_Tier__c"].is_in(list(obj.fields["Fan_Tier__c"].picklist)),
        source["HasOptedOutOfEmail"].is_in(FALSE_WORDS),
        source["External_Id__c"].hash().sort(),
    ]
    values = frame.with_columns(expr.alias(name) for name, expr in typed.items())
    hashed = typed_sum(values.schema, list(typed)).alias("_hash")
    return values.select(
        hashed, *LOSSY, *[check.alias(f"check{i}") for i, check in enumerate(checks)]
    )


# -- the run --------------------------------------------------------------------------------


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    parser.add_argument(
        "--baseline-rows",
        type=int,
        default=100_000,
        help="rows the per-row loop maps each round (its rows/s hardly depends on the size, "
        "and a million rows take it minutes a round)",
    )
    args = parser.parse_args()
    rows = args.rows
    obj = contact()
    frame = sample(rows)
    print(f"rows: {rows:,}  mapped fields: {len(SPEC.mapping)}  source dtypes: ", end="")
    print(", ".join(sorted({str(dtype) for dtype in frame.schema.values()})))

    data_mib = peak_mib()
    map_batch(SPEC, obj, frame.head(1_000), "warm-up")  # polars' first-call setup
    baseline_rows = min(rows, args.baseline_rows)
    records = frame.head(baseline_rows).to_dicts()
    times, results = interleaved(
        args.repeat,
        {
            "map_batch": lambda: map_batch(SPEC, obj, frame, "bench"),
            "baseline": lambda: baseline(records, obj),
            "floor": lambda: floor(frame, obj),
        },
    )
    mapped, (good, bad) = results["map_batch"], results["baseline"]
    peak = peak_mib()
    sizes = {"map_batch": rows, "baseline": baseline_rows, "floor": rows}
    hashing = Samples()
    names = [name for name in mapped.rows.columns if not name.startswith("_")]
    for _ in range(args.repeat):
        started = time.perf_counter()
        content_hash(mapped.rows, names)
        hashing.add(time.perf_counter() - started)

    agree(map_batch(SPEC, obj, frame.head(baseline_rows), "check"), good, bad)
    same_work(mapped, results["floor"])
    print(f"rejected: {mapped.rejects.height:,} ({mapped.rejects.height / rows:.1%}), by code:")
    for code, count in mapped.rejects["code"].value_counts(sort=True).iter_rows():
        print(f"  {code:<24} {count:>7,}")
    print(f"median (fastest-slowest) of {args.repeat} interleaved rounds:")
    for name, label in (
        ("baseline", "per-row Python loop"),
        ("map_batch", "map_batch (polars)"),
        ("floor", "floor (unavoidable ops)"),
    ):
        rate = sizes[name] / times[name].median
        print(
            f"{label:<28} {sizes[name]:>9,} rows {times[name].spread():<24} {rate:>12,.0f} rows/s"
        )
    print(f"  of which the content hash  {hashing.spread():<26} (timed alone on the mapped rows)")
    speed_up = (rows / times["map_batch"].median) / (baseline_rows / times["baseline"].median)
    print(f"speed-up (rows/s): {speed_up:.1f}x")
    print(f"peak memory: with the batch built {data_mib:,.0f} MiB, after both {peak:,.0f} MiB")


def agree(mapped: Any, good: list, bad: list) -> None:
    """Both ways must accept and reject the same rows, for the same reasons, with equal hashes."""
    assert dict(bad) == dict(mapped.rejects.select("row", "code").iter_rows()), "rejects differ"
    assert dict(good) == dict(mapped.rows.select("_row", "_hash").iter_rows()), "rows differ"


def same_work(mapped: Any, floor_frame: pl.DataFrame) -> None:
    """The floor hashes the same typed values as map_batch: a good row's hash matches wherever
    the floor's cheaper datetime parse and float rounding gave map_batch's values."""
    texts = floor_frame.with_columns((HASH_PREFIX + pl.col("_hash").cast(pl.Utf8)).alias("_hash"))
    mine = texts.select(pl.all().name.suffix("_floor")).gather(mapped.rows["_row"] - 1)
    both = pl.concat([mapped.rows, mine], how="horizontal")
    alike = both.filter(
        pl.all_horizontal(pl.col(c).eq_missing(pl.col(f"{c}_floor")) for c in LOSSY)
    )
    assert alike.height > both.height / 2, "the floor's values differ on most rows"
    assert (alike["_hash"] == alike["_hash_floor"]).all(), "the floor hashes other values"


if __name__ == "__main__":
    main()
