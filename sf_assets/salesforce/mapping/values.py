"""Reading source values the way every rule needs them: as text a person wrote, as UTC
instants, and computed once per batch.

Everything is a polars expression, so a million-row batch costs a few column operations. A
parsed value feeds several rules (is it null, in range, too long); `Scope` names it as a column
so that polars does not parse the text again for each of them.
"""

from __future__ import annotations

import polars as pl

UTC_DATETIME = pl.Datetime("us", "UTC")
# ISO 8601 date, optionally with a time (T or space) and a zone (Z, +hh, +hhmm, +hh:mm).
DATETIME_TEXT = (
    r"^(\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$"
)
SHOWN_CHARACTERS = 60


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
        return to_utc(source, dtype).dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    if dtype == pl.Date:
        return source.dt.strftime("%Y-%m-%d")
    return source.cast(pl.Utf8)


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
