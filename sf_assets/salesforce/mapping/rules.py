"""The rules of each Salesforce field type: how a source value is parsed for the field and
what makes Salesforce refuse it (length, email form, restricted picklists, number ranges,
dates, ids).

A rule is a `Problem`: where its condition holds, the row is rejected with its code and a text
that names the value. Conversions beyond the obvious ones:
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

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from sf_assets.salesforce.describe import ID_TYPES, FieldInfo
from sf_assets.salesforce.mapping.values import (
    UTC_DATETIME,
    Scope,
    as_text,
    blank_to_null,
    quoted,
    to_utc,
)

# Close to what the org accepts: a local part, an @ and a dotted domain.
EMAIL = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
SALESFORCE_ID = r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-5]{3})?$"
NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
WHOLE_NUMBER = r"^[+-]?\d+$"
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
# Salesforce refuses dates outside this range.
FIRST_DATE, LAST_DATE = "1700-01-01", "4000-12-31"
# Salesforce int fields are 32-bit unless the describe says how many digits they hold.
INT_LIMIT = 2**31
MAX_INT_LIMIT = 10**18
# Enough decimals to hold any float's shortest text exactly, and 20 digits before the point.
EXACT_DECIMAL = pl.Decimal(38, 18)
# Below this, `|x| * 10**scale` and its halfway points are distinct floats (ulp well under 0.1).
EXACT_FLOAT_LIMIT = 2.0**47
LISTED_PICKLIST_VALUES = 12


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


Parsed = tuple[pl.Expr, list[Problem]]
Parser = Callable[[FieldInfo, pl.Expr, pl.DataType, Scope], Parsed]


def parser_for(field: FieldInfo, relationship: bool) -> Parser:
    """The parser for a field's type; a relationship column carries the parent's external id."""
    if relationship:
        return _parse_relationship
    if field.type in ID_TYPES:
        return _parse_id
    return {
        "boolean": _parse_boolean,
        "int": _parse_int,
        "double": _parse_number,
        "currency": _parse_number,
        "percent": _parse_number,
        "date": _parse_date,
        "datetime": _parse_datetime,
    }.get(field.type, _parse_text)


def invalid_utf8(source: pl.Expr, scope: Scope) -> Problem:
    """U+FFFD takes three bytes for one character, so only rows longer in bytes than in
    characters (not plain ASCII) are searched for it."""
    searched = source.str.len_bytes() != source.str.len_chars()
    return Problem(
        scope.sparse(source.str.contains("\ufffd", literal=True), where=searched, default=False),
        "INVALID_UTF8",
        pl.lit(
            "the text holds U+FFFD replacement characters: the file was not valid UTF-8, "
            "so its encoding needs fixing at the source"
        ),
    )


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
        # On the text rather than the kept value (null for ""), so that the regex, the
        # costliest rule, runs in the first stage beside the other source columns' parsing.
        problems.append(
            Problem(
                (text != "") & ~text.str.contains(EMAIL),
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
    return blank_to_null(as_text(source, dtype)), []


def _parse_id(field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Parsed:
    value = scope.keep(blank_to_null(as_text(source, dtype)))
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
        # Most values are spelt exactly as listed; only the others are trimmed and lowered.
        exact = scope.keep(_boolean_word(source))
        loose = _boolean_word(source.str.strip_chars().str.to_lowercase())
        value = pl.coalesce(exact, scope.sparse(loose, where=exact.is_null()))
        shown = source
    else:
        value, shown = pl.lit(None, pl.Boolean), as_text(source, dtype)
    value = scope.keep(value)
    # Only a value that is not a boolean word needs the costlier test for blank text.
    written = scope.sparse(blank_to_null(shown).is_not_null(), where=value.is_null(), default=False)
    problem = Problem(
        written & value.is_null(),
        "INVALID_BOOLEAN",
        pl.format("{} is not a boolean (use true/false, yes/no or 1/0)", quoted(shown)),
    )
    return value, [problem]


def _boolean_word(word: pl.Expr) -> pl.Expr:
    """True or false for a listed word, else null; two `is_in` tests cost half of one
    `replace_strict`."""
    return pl.when(word.is_in(TRUE_WORDS)).then(True).when(word.is_in(FALSE_WORDS)).then(False)


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
    if dtype.is_integer():
        value = number  # a whole number is already at any scale
    elif dtype.is_float():
        value = scope.keep(round_float_to_scale(number, field.scale, scope))
    else:
        text = source.str.strip_chars() if dtype == pl.Utf8 else source.cast(pl.Utf8)
        value = scope.keep(round_to_scale(text, number, field.scale))
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

    Rounding the float instead would turn 1.005 into 1.0 (the float is 1.00499…). Values the
    exact decimal cannot read fall back to rounding the float; from 2**53 on every float is a
    whole number, which rounding would only spoil (polars' float rounding of 1e20 is off).
    """
    if scale >= EXACT_DECIMAL.scale:
        return number
    exact = text.cast(EXACT_DECIMAL, strict=False).round(scale, mode="half_away_from_zero")
    rounded = number.round(scale, mode="half_away_from_zero")
    fallback = pl.when(number.abs() >= 2.0**53).then(number).otherwise(rounded)
    return pl.when(number.is_not_null()).then(pl.coalesce(exact.cast(pl.Float64), fallback))


def round_float_to_scale(number: pl.Expr, scale: int, scope: Scope) -> pl.Expr:
    """`round_to_scale` of a float's shortest text, worked out without making the text.

    The text of a float is the shortest decimal that reads back as that float, so it sits
    exactly on a halfway point `(k + 0.5) / 10**scale` only when that halfway point reads
    back as the float. Comparing the float with the float of the halfway point therefore
    tells whether the text is below, on or above it, and the rounded value is the float of
    `k` or `k + 1` over `10**scale`. Both divisions must be exact IEEE divisions: polars
    multiplies by the reciprocal when it divides by a scalar (even a broadcast one), so the
    divisor is a column computed from the (finite) values, which IEEE rules keep any
    optimiser from folding back into a scalar.
    The argument needs halfway points to be distinct floats, which holds while
    `|number| * 10**scale` stays below `EXACT_FLOAT_LIMIT`; larger values take the text path.
    Zero comes out positive, as the decimal's float does.
    """
    if scale >= EXACT_DECIMAL.scale:
        return number
    factor = 10.0**scale
    # Each intermediate is kept, so that the expressions reading it twice compute it once.
    size = scope.keep(number.abs())
    scaled = scope.keep(size * factor)
    divisor = scope.keep(size * 0.0 + factor)
    low = scope.keep(scaled.floor())
    up = (size >= (low + 0.5) / divisor).cast(pl.Float64)
    rounded = scope.keep((low + up) / divisor)
    signed = pl.when(rounded == 0).then(0.0).when(number < 0).then(-rounded).otherwise(rounded)
    large = scope.sparse(
        round_to_scale(number.cast(pl.Utf8), number, scale),
        where=scaled >= EXACT_FLOAT_LIMIT,
    )
    return pl.coalesce(large, signed)


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
    return value, _date_rules(value, source, dtype, scope, "a date (use 2024-01-31)")


def _parse_datetime(field: FieldInfo, source: pl.Expr, dtype: pl.DataType, scope: Scope) -> Parsed:
    if dtype == pl.Date or isinstance(dtype, pl.Datetime) or dtype == pl.Utf8:
        value = to_utc(source, dtype, scope)
    else:
        value = pl.lit(None, UTC_DATETIME)
    value = scope.keep(value)
    example = "a date and time (use 2024-01-31T10:00:00Z, an offset, or a date)"
    return value, _date_rules(value, source, dtype, scope, example)


def _date_rules(
    value: pl.Expr, source: pl.Expr, dtype: pl.DataType, scope: Scope, wanted: str
) -> list:
    shown = as_text(source, dtype)
    if dtype == pl.Utf8:
        # Only text that did not parse needs the costlier test for blank text.
        present = scope.sparse(
            blank_to_null(source).is_not_null(), where=value.is_null(), default=False
        )
    else:
        present = source.is_not_null()
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
