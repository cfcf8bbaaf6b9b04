"""Mapping a batch of source rows onto a Salesforce object, every value checked on the way.

Each mapped column is parsed into its field's type and checked against what the org enforces
(length, email form, restricted picklists, number ranges, dates, ids, required fields) before
anything is sent, so that a bad row costs no API call and its reason names the source column a
person can fix. Everything is a polars expression: a million-row batch costs a few column
operations, not a million Python calls.

A row with problems is set aside once, with its first problem in mapping order (the key comes
first); all other rows go on. Nothing is guessed: a key that appears twice rejects every
occurrence, and text is never trimmed or cut to fit.

Conversions beyond the obvious ones:
- An empty string is null, as Salesforce stores it; for numbers, dates, booleans and ids a
  blank (whitespace-only) value is null too.
- Numbers are rounded to the field's scale, half away from zero, because Salesforce does the
  same when it saves them (2.5 in a Number(18, 0) field is stored as 3); the rounding works on
  the decimal text, so 1.005 in a currency field becomes 1.01. Nothing else is rounded: an int
  field rejects 2.5.
- Datetimes end up in UTC: naive values are taken as UTC, values with an offset are converted.
  A datetime mapped to a date field keeps its UTC calendar date.
- Restricted picklist values must match an active value exactly, case included, so that no
  value is sent that the org could refuse.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import polars as pl

from sf_assets.describe import FieldInfo, ObjectInfo
from sf_assets.specs import SyncSpec

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

ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
UTC_DATETIME = pl.Datetime("us", "UTC")
# Output dtype per field type; every other type (text, picklists, ids) is Utf8.
FIELD_DTYPES: dict[str, pl.DataType] = {
    "boolean": pl.Boolean(),
    "int": pl.Int64(),
    **dict.fromkeys(NUMBER_TYPES, pl.Float64()),
    "date": pl.Date(),
    "datetime": UTC_DATETIME,
}

# Close to what the org accepts: a local part, an @ and a dotted domain.
EMAIL = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
SALESFORCE_ID = r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-5]{3})?$"
NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
WHOLE_NUMBER = r"^[+-]?\d+$"
# ISO 8601 date, optionally with a time (T or space) and a zone (Z, +hh, +hhmm, +hh:mm).
DATETIME_TEXT = (
    r"^(\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$"
)
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
# Salesforce refuses dates outside this range.
FIRST_DATE, LAST_DATE = "1700-01-01", "4000-12-31"
# Salesforce int fields are 32-bit unless the describe says how many digits they hold.
INT_LIMIT = 2**31
MAX_INT_LIMIT = 10**18
# Enough decimals to hold any float's shortest text exactly, and 20 digits before the point.
EXACT_DECIMAL = pl.Decimal(38, 18)
SHOWN_CHARACTERS = 60
LISTED_PICKLIST_VALUES = 12


class MappingError(ValueError):
    """A spec that does not fit the object or the batch; preflight reports these up front."""


@dataclass(frozen=True)
class Target:
    """One mapped field: the source column it reads and the field it writes."""

    name: str  # output column: the field's API name, or `Relationship.ExternalIdField`
    column: str
    field: FieldInfo  # for a relationship column, the lookup field it sets
    relationship: bool = False


@dataclass(frozen=True)
class Problem:
    """A rule: where `when` holds, the row is rejected with `code` and `text`."""

    when: pl.Expr
    code: str
    text: pl.Expr


@dataclass(frozen=True)
class Checked:
    """A column after its rules: the typed value and its rules, first to last."""

    value: pl.Expr
    problems: list[Problem]
    shown: pl.Expr  # the source value as text, for the rejects table


@dataclass(frozen=True)
class Number:
    """A column read as a number: the finite Float64, whether a value was given, its text."""

    value: pl.Expr
    present: pl.Expr
    shown: pl.Expr


@dataclass
class MappedBatch:
    """Rows that passed (`_row`, `_key`, `_hash`, one typed column per field) and rejects."""

    rows: pl.DataFrame
    rejects: pl.DataFrame


class Scope:
    """Intermediate columns, each computed once for the whole batch.

    A parsed value feeds several rules (is it null, in range, too long); naming it as a column
    keeps polars from parsing the text again for each of them. An expression that reads kept
    columns lands in a later stage than they do.
    """

    def __init__(self) -> None:
        self.stages: list[list[pl.Expr]] = []
        self._stage_of: dict[str, int] = {}

    def keep(self, expr: pl.Expr, name: str | None = None) -> pl.Expr:
        name = name or f"__k{len(self._stage_of)}"
        reads = [self._stage_of[root] for root in expr.meta.root_names() if root in self._stage_of]
        stage = max(reads, default=-1) + 1
        if stage == len(self.stages):
            self.stages.append([])
        self.stages[stage].append(expr.alias(name))
        self._stage_of[name] = stage
        return pl.col(name)

    def apply(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        for stage in self.stages:
            frame = frame.with_columns(stage)
        return frame


# -- the batch ------------------------------------------------------------------------------


def map_batch(spec: SyncSpec, obj: ObjectInfo, frame: pl.DataFrame, batch: str) -> MappedBatch:
    """Map one batch onto `obj`: typed rows that passed every rule, and one reject per bad row."""
    frame = _with_row_numbers(frame)
    targets = resolve_targets(spec, obj)
    _require_columns(spec, targets, frame)
    scope = Scope()
    checks = [_key_check(spec, obj, targets, frame.schema, scope)]
    checks += [
        _field_check(spec, obj, target, frame.schema[target.column], scope) for target in targets
    ]
    read = dict.fromkeys([ROW, spec.key_column, *[t.column for t in targets]])
    checked = _first_problems(scope.apply(frame.lazy().select(list(read))), checks).collect()
    is_bad = checked["__first"].is_not_null()
    rows = checked.filter(~is_bad).select(
        pl.col(ROW),
        checks[0].value.alias(KEY),
        *[
            check.value.cast(output_dtype(t)).alias(t.name)
            for check, t in zip(checks[1:], targets, strict=True)
        ],
    )
    rows = rows.insert_column(2, content_hash(rows, [t.name for t in targets]))
    rejects = _rejects(spec, batch, targets, checks, checked.filter(is_bad))
    return MappedBatch(rows=rows, rejects=rejects)


def resolve_targets(spec: SyncSpec, obj: ObjectInfo) -> list[Target]:
    """The spec's mapping resolved against the object, in mapping order.

    When the key column is named as `source.key` and match_on is not mapped, the key column
    feeds match_on: the writer needs the match values as a field like any other.
    """
    targets = [target_for(name, column, obj) for name, column in spec.mapping.items()]
    match_on = spec.target.match_on.lower()
    if all(t.name.lower() != match_on for t in targets):
        targets.append(target_for(spec.target.match_on, spec.key_column, obj))
    return targets


def output_dtype(target: Target) -> pl.DataType:
    """The dtype of a mapped column: relationship columns carry text external ids."""
    if target.relationship:
        return pl.Utf8()
    return FIELD_DTYPES.get(target.field.type, pl.Utf8())


def target_for(name: str, column: str, obj: ObjectInfo) -> Target:
    """Resolve one mapping entry: a field name, or `Relationship.ExternalIdField`."""
    if "." in name:
        relationship, external_field = name.split(".", 1)
        lookup = obj.relationship(relationship)
        if lookup is None:
            raise MappingError(
                f"{obj.name} has no relationship {relationship!r} (mapped as {name})"
            )
        return Target(f"{lookup.relationship_name}.{external_field}", column, lookup, True)
    info = obj.field(name)
    if info is None:
        raise MappingError(f"{obj.name} has no field {name!r}; run the preflight check")
    return Target(info.name, column, info)


def _with_row_numbers(frame: pl.DataFrame) -> pl.DataFrame:
    """Readers number the rows; a frame built by hand gets 1-based numbers here."""
    if ROW in frame.columns:
        return frame.with_columns(pl.col(ROW).cast(pl.Int64))
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def _require_columns(spec: SyncSpec, targets: list[Target], frame: pl.DataFrame) -> None:
    wanted = [spec.key_column, *[t.column for t in targets]]
    missing = sorted({column for column in wanted if column not in frame.schema})
    if missing:
        raise MappingError(
            f"{spec.name}: source column(s) {', '.join(missing)} not in the batch "
            f"(it has {', '.join(frame.columns)})"
        )
    for column in wanted:
        dtype = frame.schema[column]
        if not is_supported(dtype):
            raise MappingError(
                f"{spec.name}: column {column!r} holds {dtype}, which cannot be written to "
                "a Salesforce field"
            )


def _first_problems(frame: pl.LazyFrame, checks: list[Checked]) -> pl.LazyFrame:
    """`__first`: the index of the check that rejects the row, null for a good row.

    Only whether a rule holds is worked out for every row; codes and reasons wait for the
    rejected rows, which are few.
    """
    failed = [
        pl.any_horizontal([problem.when.fill_null(False) for problem in check.problems])
        if check.problems
        else pl.lit(False)
        for check in checks
    ]
    first = pl.coalesce([pl.when(fails).then(pl.lit(i)) for i, fails in enumerate(failed)])
    return frame.with_columns(first.alias("__first"))


def _rejects(
    spec: SyncSpec,
    batch: str,
    targets: list[Target],
    checks: list[Checked],
    bad: pl.DataFrame,
) -> pl.DataFrame:
    """One row per rejected source row, with its first problem spelled out."""
    columns = [spec.key_column, *[t.column for t in targets]]
    fields = [_key_field(spec, targets), *[t.name for t in targets]]
    first = pl.col("__first")

    def pick(values: Callable[[int], pl.Expr]) -> pl.Expr:
        chain = pl.when(first == 0).then(values(0))
        for i in range(1, len(checks)):
            chain = chain.when(first == i).then(values(i))
        return chain

    problems = [first_problem(check.problems) for check in checks]
    table = bad.select(
        pl.lit(spec.name).alias("sync"),
        pl.lit(batch).alias("batch"),
        pl.col(ROW).alias("row"),
        checks[0].value.alias("key"),
        pick(lambda i: pl.lit(columns[i])).alias("column"),
        pick(lambda i: pl.lit(fields[i], pl.Utf8)).alias("field"),
        pick(lambda i: checks[i].shown).alias("value"),
        pick(lambda i: problems[i][0]).alias("code"),
        pick(lambda i: problems[i][1]).alias("problem"),
    )
    return table.with_columns(reject_reason(spec.name, batch).alias("reason")).select(
        [pl.col(name).cast(dtype) for name, dtype in REJECT_SCHEMA.items()]
    )


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


def _key_field(spec: SyncSpec, targets: list[Target]) -> str | None:
    """The field the key column is mapped to, if any (for naming it in reasons)."""
    return next((t.name for t in targets if t.column == spec.key_column), None)


# -- the key --------------------------------------------------------------------------------


def _key_check(
    spec: SyncSpec, obj: ObjectInfo, targets: list[Target], schema: pl.Schema, scope: Scope
) -> Checked:
    """Every row needs a key, and a key may appear only once in the batch.

    Keys are compared without case when the key feeds a match_on field that ignores case
    (most do): `A@x.com` and `a@x.com` would reach the same Salesforce record.
    """
    column = spec.key_column
    text = as_text(pl.col(column), schema[column])
    key = scope.keep(pl.when(text.str.strip_chars() != "").then(text))
    match = obj.field(spec.target.match_on)
    folds_case = (
        match is not None
        and not match.case_sensitive
        and any(t.column == column and t.field == match for t in targets)
    )
    compared = scope.keep(key.str.to_lowercase()) if folds_case else key
    count = scope.keep(pl.len().over(compared))
    duplicate = pl.format("key {} appears {} times in the batch", quoted(key), count)
    if folds_case and match is not None:
        note = f" (ignoring case, as matching on {match.name} does)"
        # Reasons are worked out on the rejected rows only; every occurrence of a duplicate
        # is among them, so counting spellings there sees the whole group.
        spellings = key.n_unique().over(compared)
        duplicate = pl.when(spellings > 1).then(duplicate + note).otherwise(duplicate)
    problems = [
        Problem(key.is_null(), "MISSING_KEY", pl.lit("the key is empty")),
        Problem(count > 1, "DUPLICATE_KEY", duplicate),
    ]
    return Checked(key, problems, text)


# -- fields ---------------------------------------------------------------------------------


def _field_check(
    spec: SyncSpec, obj: ObjectInfo, target: Target, dtype: pl.DataType, scope: Scope
) -> Checked:
    """Parse one mapped column for its field and check it, invalid UTF-8 first."""
    source = pl.col(target.column)
    if is_text(dtype):
        source, dtype = source.cast(pl.Utf8), pl.Utf8()
    value, problems = _parser(target)(target.field, source, dtype, scope)
    value = scope.keep(value)
    if dtype == pl.Utf8:
        problems.insert(0, _invalid_utf8(source))
    problems += _emptiness_rules(spec, obj, target, value)
    return Checked(value, problems, as_text(pl.col(target.column), dtype))


Parsed = tuple[pl.Expr, list[Problem]]
Parser = Callable[[FieldInfo, pl.Expr, pl.DataType, Scope], Parsed]


def _parser(target: Target) -> Parser:
    if target.relationship:
        return _parse_relationship
    kind = target.field.type
    if kind in ID_TYPES:
        return _parse_id
    return {
        "boolean": _parse_boolean,
        "int": _parse_int,
        "double": _parse_number,
        "currency": _parse_number,
        "percent": _parse_number,
        "date": _parse_date,
        "datetime": _parse_datetime,
    }.get(kind, _parse_text)


def _invalid_utf8(source: pl.Expr) -> Problem:
    return Problem(
        source.str.contains("\ufffd", literal=True),
        "INVALID_UTF8",
        pl.lit(
            "the text holds U+FFFD replacement characters: the file was not valid UTF-8, "
            "so its encoding needs fixing at the source"
        ),
    )


def _emptiness_rules(
    spec: SyncSpec, obj: ObjectInfo, target: Target, value: pl.Expr
) -> list[Problem]:
    """Null values that Salesforce would refuse: match values, required and uncleared fields."""
    field = target.field
    empty = value.is_null()
    if not target.relationship and field.name.lower() == spec.target.match_on.lower():
        return [Problem(empty, "MISSING_KEY", pl.lit("empty, but rows are matched on it"))]
    operation = spec.target.operation
    if operation in ("insert", "upsert") and field.required_on_create:
        text = f"empty, but {field.name} is required to create a {obj.name}"
        return [Problem(empty, "REQUIRED_FIELD_MISSING", pl.lit(text))]
    clears = operation == "update" and spec.null_values == "clear"
    if clears and not field.nillable and field.updateable and field.type != "boolean":
        text = f"empty, but {field.name} cannot be cleared (the spec's null_values is clear)"
        return [Problem(empty, "REQUIRED_FIELD_MISSING", pl.lit(text))]
    return []


def _parse_text(field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Parsed:
    text = as_text(source, dtype)
    value = scope.keep(pl.when(text != "").then(text))
    problems = []
    if field.length:
        length = value.str.len_chars()
        problems.append(
            Problem(
                length > field.length,
                "STRING_TOO_LONG",
                pl.format(
                    f"{{}} is {{}} characters, longer than the {field.length} the field holds",
                    quoted(value),
                    length,
                ),
            )
        )
    if field.type == "email":
        problems.append(
            Problem(
                ~value.str.contains(EMAIL),
                "INVALID_EMAIL_ADDRESS",
                pl.format("{} is not a valid email address", quoted(value)),
            )
        )
    if field.restricted_picklist and field.picklist:
        problems.append(_picklist_rule(field, value))
    return value, problems


def _picklist_rule(field: FieldInfo, value: pl.Expr) -> Problem:
    """Restricted picklists take only their active values; multi-selects each of theirs."""
    allowed = list(field.picklist)
    if field.type == "multipicklist":
        valid = value.str.split(";").list.eval(pl.element().is_in(allowed)).list.all()
    else:
        valid = value.is_in(allowed)
    listed = ", ".join(allowed[:LISTED_PICKLIST_VALUES])
    if len(allowed) > LISTED_PICKLIST_VALUES:
        listed += ", …"
    return Problem(
        ~valid,
        "INVALID_PICKLIST_VALUE",
        pl.format(f"{{}} is not a value of this restricted picklist ({listed})", quoted(value)),
    )


def _parse_relationship(
    field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope
) -> Parsed:
    """`Account.External_Id__c`: the related record's external id, sent as text."""
    return _blank_to_null(as_text(source, dtype)), []


def _parse_id(field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Parsed:
    value = scope.keep(_blank_to_null(as_text(source, dtype)))
    hint = ""
    if field.type == "reference" and field.relationship_name:
        hint = (
            f"; to find the {field.reference_to[0] if field.reference_to else 'record'} by "
            f"another field, map a relationship column such as "
            f"{field.relationship_name}.<external id field>"
        )
    problem = Problem(
        ~value.str.contains(SALESFORCE_ID),
        "MALFORMED_ID",
        pl.format(f"{{}} is not a 15- or 18-character Salesforce id{hint}", quoted(value)),
    )
    return value, [problem]


def _parse_boolean(field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Parsed:
    if dtype == pl.Boolean:
        return source, []
    if dtype.is_numeric():
        value = pl.when(source == 1).then(True).when(source == 0).then(False)
        shown = source.cast(pl.Utf8)
    elif dtype == pl.Utf8:
        word = source.str.strip_chars().str.to_lowercase()
        value = pl.when(word.is_in(TRUE_WORDS)).then(True).when(word.is_in(FALSE_WORDS))
        value = value.then(False)
        shown = source
    else:
        value, shown = pl.lit(None, pl.Boolean), as_text(source, dtype)
    value = scope.keep(value)
    problem = Problem(
        _blank_to_null(shown).is_not_null() & value.is_null(),
        "INVALID_BOOLEAN",
        pl.format("{} is not a boolean (use true/false, yes/no or 1/0)", quoted(shown)),
    )
    return value, [problem]


def _parse_int(field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Parsed:
    """Whole numbers only; a fractional value is an error, never truncated."""
    parsed = _as_float(source, dtype, scope)
    number, shown = parsed.value, parsed.shown
    if dtype.is_integer():
        exact = source.cast(pl.Int64, strict=False)
    elif dtype == pl.Utf8:
        whole = source.str.strip_chars()
        exact = pl.when(whole.str.contains(WHOLE_NUMBER)).then(whole.cast(pl.Int64, strict=False))
        exact = exact.otherwise(number.cast(pl.Int64, strict=False))
    else:
        exact = number.cast(pl.Int64, strict=False)
    limit = min(10**field.precision, MAX_INT_LIMIT) if field.precision else INT_LIMIT
    problems = [
        _not_a_number(parsed),
        Problem(
            number != number.floor(),
            "INVALID_NUMBER",
            pl.format("{} is not a whole number, and the field holds integers", quoted(shown)),
        ),
        _out_of_range(number.abs() >= limit, shown, f"at most {len(str(limit - 1))} digits"),
    ]
    return exact, problems


def _parse_number(field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Parsed:
    parsed = _as_float(source, dtype, scope)
    number, shown = parsed.value, parsed.shown
    if dtype == pl.Utf8:
        exact_text = source.str.strip_chars()
    else:
        exact_text = source.cast(pl.Utf8) if dtype.is_decimal() else number.cast(pl.Utf8)
    value = scope.keep(round_to_scale(exact_text, number, field.scale))
    problems = [_not_a_number(parsed)]
    if field.precision:
        digits = max(field.precision - field.scale, 0)
        problems.append(
            _out_of_range(
                value.abs() >= 10.0**digits, shown, f"at most {digits} digits before the point"
            )
        )
    return value, problems


def round_to_scale(text: pl.Expr, number: pl.Expr, scale: int) -> pl.Expr:
    """Round half away from zero on the decimal text, as Salesforce rounds on save.

    Rounding the float instead would turn 1.005 into 1.0 (the float is 1.00499…). Values too
    large for the exact decimal fall back to rounding the float.
    """
    if scale >= EXACT_DECIMAL.scale:
        return number
    exact = text.cast(EXACT_DECIMAL, strict=False).round(scale, mode="half_away_from_zero")
    fallback = number.round(scale, mode="half_away_from_zero")
    return pl.when(number.is_not_null()).then(pl.coalesce(exact.cast(pl.Float64), fallback))


def _as_float(source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Number:
    """The value as a finite Float64 (null when it is not a number), plus what was written."""
    if dtype.is_numeric():
        number, present, shown = source.cast(pl.Float64), source.is_not_null(), source
    elif dtype == pl.Utf8:
        text = source.str.strip_chars()
        number = pl.when(text.str.contains(NUMBER)).then(text.cast(pl.Float64, strict=False))
        present, shown = text != "", source
    else:
        number, present, shown = pl.lit(None, pl.Float64), source.is_not_null(), source
    finite = scope.keep(pl.when(number.is_finite()).then(number))
    return Number(finite, present.fill_null(False), as_text(shown, dtype))


def _not_a_number(number: Number) -> Problem:
    return Problem(
        number.present & number.value.is_null(),
        "INVALID_NUMBER",
        pl.format("{} is not a number", quoted(number.shown)),
    )


def _out_of_range(when: pl.Expr, shown: pl.Expr, limit: str) -> Problem:
    return Problem(
        when,
        "NUMBER_OUTSIDE_VALID_RANGE",
        pl.format(f"{{}} is outside the field's range ({limit})", quoted(shown)),
    )


def _parse_date(field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Parsed:
    if dtype == pl.Date:
        value = source
    elif isinstance(dtype, pl.Datetime) or dtype == pl.Utf8:
        value = to_utc(source, dtype, scope).dt.date()
    else:
        value = pl.lit(None, pl.Date)
    value = scope.keep(value)
    return value, _date_rules(value, source, dtype, "a date (use 2024-01-31)")


def _parse_datetime(field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Parsed:
    if dtype == pl.Date or isinstance(dtype, pl.Datetime) or dtype == pl.Utf8:
        value = to_utc(source, dtype, scope)
    else:
        value = pl.lit(None, UTC_DATETIME)
    value = scope.keep(value)
    example = "a date and time (use 2024-01-31T10:00:00Z, an offset, or a date)"
    return value, _date_rules(value, source, dtype, example)


def _date_rules(value: pl.Expr, source: pl.Expr, dtype: pl.DataType, wanted: str) -> list:
    shown = as_text(source, dtype)
    present = source.is_not_null() if dtype != pl.Utf8 else _blank_to_null(source).is_not_null()
    day = value.cast(pl.Date)
    return [
        Problem(
            present & value.is_null(),
            "INVALID_DATE",
            pl.format(f"{{}} is not {wanted}", quoted(shown)),
        ),
        Problem(
            (day < pl.lit(FIRST_DATE).str.to_date()) | (day > pl.lit(LAST_DATE).str.to_date()),
            "INVALID_DATE",
            pl.format(
                f"{{}} is outside the dates Salesforce accepts ({FIRST_DATE} to {LAST_DATE})",
                quoted(shown),
            ),
        ),
    ]


def to_utc(source: pl.Expr, dtype: pl.DataType, scope: Scope | None = None) -> pl.Expr:
    """Any date, datetime or ISO text as a UTC datetime; naive values are taken as UTC."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return source.dt.replace_time_zone("UTC").cast(UTC_DATETIME)
        return source.dt.convert_time_zone("UTC").cast(UTC_DATETIME)
    if dtype == pl.Date:
        return source.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return parse_datetime_text(source, scope or Scope())


def parse_datetime_text(text: pl.Expr, scope: Scope) -> pl.Expr:
    """ISO 8601 text as UTC: `2024-01-31`, `2024-01-31 10:00`, `…T10:00:00.5Z`, `…+01:00`.

    One regex pass splits date, time and zone; the local time is parsed without its zone and
    the offset subtracted as a duration, so a column mixing offsets costs one fast parse.
    """
    parts = scope.keep(text.str.strip_chars().str.extract_groups(DATETIME_TEXT))
    date, time, zone = (parts.struct.field(name) for name in ("1", "2", "3"))
    time = pl.when(time.is_null()).then(pl.lit("00:00:00")).otherwise(time)
    time = pl.when(time.str.len_bytes() == 5).then(time + ":00").otherwise(time)
    local = pl.concat_str(date, pl.lit("T"), time).str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False
    )
    return (local - _utc_offset(zone)).dt.replace_time_zone("UTC")


def _utc_offset(zone: pl.Expr) -> pl.Expr:
    """`Z`, `+01`, `+0130`, `-01:30` or null (UTC) as a duration."""
    digits = zone.str.replace_all(r"[^0-9]", "")
    hours = digits.str.slice(0, 2).cast(pl.Int64, strict=False).fill_null(0)
    minutes = digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0)
    sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
    return pl.duration(minutes=sign * (hours * 60 + minutes))


# -- content hash ---------------------------------------------------------------------------


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
    texts = [canonical_text(pl.col(name), rows.schema[name]).alias(name) for name in ordered]
    parts = [
        pl.concat_str(
            pl.col(name).str.len_bytes().cast(pl.Utf8), pl.lit(":"), pl.col(name)
        ).fill_null(pl.lit("~"))
        for name in ordered
    ]
    canonical = (
        rows.lazy()
        .select(texts)
        .select(pl.concat_str(pl.lit(fields_digest), *parts, separator="\x1e").alias("canonical"))
        .collect()
    )
    with duckdb.connect() as connection:
        connection.register("canonical", canonical)
        hashed = connection.execute("SELECT md5(canonical) AS h FROM canonical").pl()
    return hashed["h"].alias(HASH)


def canonical_text(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A typed value as text for hashing; instants as integers (UTC microseconds, days)."""
    if isinstance(dtype, pl.Datetime):
        return value.dt.epoch("us").cast(pl.Utf8)
    if dtype == pl.Date:
        return value.dt.epoch("d").cast(pl.Utf8)
    return value.cast(pl.Utf8)


# -- small helpers --------------------------------------------------------------------------


def first_problem(problems: list[Problem]) -> tuple[pl.Expr, pl.Expr]:
    """(code, text) of the first rule that holds, or nulls."""
    if not problems:
        return pl.lit(None, pl.Utf8), pl.lit(None, pl.Utf8)
    head, *rest = problems
    code = pl.when(head.when.fill_null(False)).then(pl.lit(head.code))
    text = pl.when(head.when.fill_null(False)).then(head.text)
    for problem in rest:
        code = code.when(problem.when.fill_null(False)).then(pl.lit(problem.code))
        text = text.when(problem.when.fill_null(False)).then(problem.text)
    return code, text


def quoted(text: pl.Expr) -> pl.Expr:
    """The value in quotes for a reason, cut short when it is long."""
    cut = SHOWN_CHARACTERS - 3
    short = (
        pl.when(text.str.len_chars() > SHOWN_CHARACTERS)
        .then(text.str.slice(0, cut) + "…")
        .otherwise(text)
    )
    return pl.concat_str(pl.lit("'"), short, pl.lit("'"))


def as_text(source: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A source value as text the way a person writes it (ISO dates, UTC datetimes)."""
    if isinstance(dtype, pl.Datetime):
        return to_utc(source, dtype).dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    if dtype == pl.Date:
        return source.dt.strftime("%Y-%m-%d")
    return source.cast(pl.Utf8)


def _blank_to_null(text: pl.Expr) -> pl.Expr:
    return pl.when(text.str.strip_chars() != "").then(text)


def is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.Utf8 or isinstance(dtype, pl.Categorical | pl.Enum)


def is_supported(dtype: pl.DataType) -> bool:
    """Source types map_batch reads: text, numbers, booleans, dates, datetimes, times, nulls."""
    return (
        is_text(dtype)
        or dtype.is_numeric()
        or dtype in (pl.Boolean, pl.Date, pl.Time, pl.Null)
        or isinstance(dtype, pl.Datetime)
    )
