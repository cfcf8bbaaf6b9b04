"""Reading source values the way every rule needs them: as text a person wrote, as UTC
instants, and computed once per batch.

Everything is a polars expression, so a million-row batch costs a few column operations. A
parsed value feeds several rules (is it null, in range, too long); `Scope` names it as a column
so that polars does not parse the text again for each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

UTC_DATETIME = pl.Datetime("us", "UTC")
# ISO 8601 date, optionally with a time (T or space) and a zone (Z, +hh, +hhmm, +hh:mm).
DATETIME_TEXT = (
    r"^(\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$"
)
# The same with the surrounding whitespace a value may carry, and ASCII digits, which the
# regex engine matches twice as fast as Unicode's; a text with other digits parses in neither
# chrono nor the split of `DATETIME_TEXT`, so it is null (an invalid date) either way.
PADDED_DATETIME_TEXT = r"^\s*" + DATETIME_TEXT[1:-1].replace(r"\d", "[0-9]") + r"\s*$"
# ASCII letters that lowercasing changes.
ASCII_UPPERCASE = [chr(code) for code in range(ord("A"), ord("Z") + 1)]
# chrono layouts for the common shapes; `%#z` takes Z, +hh, +hhmm and +hh:mm.
ZONED_LAYOUT = "%Y-%m-%dT%H:%M:%S%.f%#z"
NAIVE_LAYOUT = "%Y-%m-%dT%H:%M:%S%.f"
SHOWN_CHARACTERS = 60


@dataclass(frozen=True)
class _Sparse:
    """A costly column worked out only on the rows that need it."""

    name: str
    expr: pl.Expr
    where: pl.Expr
    default: Any


class Scope:
    """Intermediate columns, each computed once for the whole batch.

    A parsed value feeds several rules (is it null, in range, too long); naming it as a column
    keeps polars from parsing the text again for each of them. An expression that reads kept
    columns lands in a later stage than they do.

    Polars evaluates every branch of an expression on every row, so a slow path that only a
    few rows need (a rare datetime layout, text that may hold U+FFFD) would cost as much as
    the fast one: `sparse` keeps such a column, computed only on the rows its condition picks.
    """

    def __init__(self) -> None:
        self.stages: list[list[pl.Expr]] = []
        self.sparse_stages: list[list[_Sparse]] = []
        self._stage_of: dict[str, int] = {}

    def keep(self, expr: pl.Expr, name: str | None = None) -> pl.Expr:
        name = name or self._next_name()
        stage = self._stage_after(expr)
        self.stages[stage].append(expr.alias(name))
        self._stage_of[name] = stage
        return pl.col(name)

    def sparse(self, expr: pl.Expr, where: pl.Expr, default: Any = None) -> pl.Expr:
        """`expr` on the rows where `where` holds, `default` on the others.

        `expr` sees only those rows, so a window in it (`pl.len().over(...)`) counts among
        them alone.
        """
        name = self._next_name()
        stage = self._stage_after(expr, where)
        self.sparse_stages[stage].append(_Sparse(name, expr, where, default))
        self._stage_of[name] = stage
        return pl.col(name)

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        for dense, sparse in zip(self.stages, self.sparse_stages, strict=True):
            if dense:
                frame = frame.with_columns(dense)
            if sparse:
                frame = frame.with_columns(_evaluate_sparse(frame, sparse))
        return frame

    def _next_name(self) -> str:
        return f"__k{len(self._stage_of)}"

    def _stage_after(self, *exprs: pl.Expr) -> int:
        reads = [
            self._stage_of[root]
            for expr in exprs
            for root in expr.meta.root_names()
            if root in self._stage_of
        ]
        stage = max(reads, default=-1) + 1
        while len(self.stages) <= stage:
            self.stages.append([])
            self.sparse_stages.append([])
        return stage


def _evaluate_sparse(frame: pl.DataFrame, items: list[_Sparse]) -> list[pl.Series]:
    """The sparse columns of one stage. Which rows each needs is worked out for all of them in
    one pass, side by side (the test is most of the cost when few rows need the column)."""
    named = [item.expr.alias(item.name) for item in items]
    dtypes = frame.lazy().select(named).collect_schema()
    picks = frame.select(item.where.fill_null(False).alias(item.name) for item in items)
    return [_scatter(frame, item, dtypes[item.name], picks[item.name]) for item in items]


def _scatter(
    frame: pl.DataFrame, item: _Sparse, dtype: pl.DataType, picked: pl.Series
) -> pl.Series:
    """`item.expr` on the picked rows, `item.default` on the others."""
    full = pl.repeat(item.default, frame.height, dtype=dtype, eager=True).alias(item.name)
    if not picked.any():
        return full
    roots = list(dict.fromkeys(item.expr.meta.root_names()))
    values = frame.select(roots).filter(picked).select(item.expr).to_series()
    return full.scatter(picked.arg_true(), values)


def to_utc(source: pl.Expr, dtype: pl.DataType, scope: Scope) -> pl.Expr:
    """Any date, datetime or ISO text as a UTC datetime; naive values are taken as UTC."""
    if isinstance(dtype, pl.Datetime):
        return datetime_to_utc(source, dtype)
    if dtype == pl.Date:
        return source.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return parse_datetime_text(source, scope)


def datetime_to_utc(source: pl.Expr, dtype: pl.Datetime) -> pl.Expr:
    if dtype.time_zone is None:
        return source.dt.replace_time_zone("UTC").cast(UTC_DATETIME)
    return source.dt.convert_time_zone("UTC").cast(UTC_DATETIME)


def parse_datetime_text(text: pl.Expr, scope: Scope) -> pl.Expr:
    """ISO 8601 text as UTC: `2024-01-31`, `2024-01-31 10:00`, `…T10:00:00.5Z`, `…+01:00`.

    What is accepted is `DATETIME_TEXT`; the common layouts (`T`, seconds, a zone or none)
    are parsed straight by chrono, and only the rest (a date alone, a space before the time,
    no seconds) goes through the slower split into date, time and zone. chrono alone is more
    lenient than the pattern (one-digit months, signed years), so the pattern decides.
    """
    valid = scope.keep(text.str.contains(PADDED_DATETIME_TEXT))
    zoned = scope.keep(
        text.str.to_datetime(ZONED_LAYOUT, time_unit="us", time_zone="UTC", strict=False)
    )
    naive = text.str.to_datetime(NAIVE_LAYOUT, time_unit="us", strict=False)
    naive = scope.sparse(naive.dt.replace_time_zone("UTC"), where=valid & zoned.is_null())
    fast = scope.keep(pl.coalesce(zoned, naive))
    general = scope.sparse(_split_datetime_text(text), where=valid & fast.is_null())
    return pl.when(valid).then(pl.coalesce(fast, general))


def _split_datetime_text(text: pl.Expr) -> pl.Expr:
    """One regex pass splits date, time and zone; the local time is parsed without its zone
    and the offset subtracted as a duration, so any accepted layout parses."""
    parts = text.str.strip_chars().str.extract_groups(DATETIME_TEXT)
    date, time, zone = (parts.struct.field(name) for name in ("1", "2", "3"))
    time = pl.when(time.is_null()).then(pl.lit("00:00:00")).otherwise(time)
    time = pl.when(time.str.len_bytes() == 5).then(time + ":00").otherwise(time)
    local = pl.concat_str(date, pl.lit("T"), time).str.to_datetime(
        NAIVE_LAYOUT, time_unit="us", strict=False
    )
    return (local - utc_offset(zone)).dt.replace_time_zone("UTC")


def utc_offset(zone: pl.Expr) -> pl.Expr:
    """`Z`, `+01`, `+0130`, `-01:30` or null (UTC) as a duration."""
    digits = zone.str.replace_all(r"[^0-9]", "")
    hours = digits.str.slice(0, 2).cast(pl.Int64, strict=False).fill_null(0)
    minutes = digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0)
    sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
    return pl.duration(minutes=sign * (hours * 60 + minutes))


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
        return datetime_to_utc(source, dtype).dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    if dtype == pl.Date:
        return source.dt.strftime("%Y-%m-%d")
    return source.cast(pl.Utf8)


def to_lowercase(text: pl.Expr, scope: Scope) -> pl.Expr:
    """`text.str.to_lowercase()`, which allocates every string, worked out only for text that
    is not ASCII or holds an ASCII capital: most keys and emails are their own lowercase.
    (The regex engine's Unicode tables lag the case mappings, so no regex tells which
    non-ASCII text lowercasing changes.)"""
    # Kept, so that the test runs beside its stage's other columns rather than after them.
    changes = scope.keep(
        (text.str.len_bytes() != text.str.len_chars()) | text.str.contains_any(ASCII_UPPERCASE)
    )
    return pl.coalesce(scope.sparse(text.str.to_lowercase(), where=changes), text)


def blank_to_null(text: pl.Expr) -> pl.Expr:
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
