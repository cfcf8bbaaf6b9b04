"""What every source reader shares: the columns a spec needs, checked by name, and errors
that list what exists so a person sees the fix."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from sf_assets.names import close_names
from sf_assets.specs import SyncSpec

ROW_COLUMN = "_row"
LISTED_NAMES = 30  # names shown when an error lists what exists

Schema = dict[str, pl.DataType]


class DatasetError(ValueError):
    """A source that cannot be read as the spec says; the message names the sync and the cause."""


def checked_schema(spec: SyncSpec, schema: Mapping[str, pl.DataType]) -> Schema:
    """The schema, once it holds the batch and key columns and leaves `_row` free."""
    wanted = {"batch column": spec.source.batch_column, "key column": spec.key_column}
    for role, column in wanted.items():
        if column is not None and column not in schema:
            raise DatasetError(
                f"{spec.name}: source has no {role} {column!r}{near_miss(column, schema)} "
                f"(columns: {listing(list(schema))})"
            )
    if ROW_COLUMN in schema:
        raise DatasetError(
            f"{spec.name}: source has a column {ROW_COLUMN!r}, the name the reader gives row "
            "numbers; rename or drop it in the source"
        )
    return dict(schema)


def near_miss(column: str, names: Mapping[str, object]) -> str:
    """`; did you mean 'x'?`: a name differing only in case first (names are case-sensitive
    here), else the closest spellings."""
    same = [name for name in names if name.lower() == column.lower()]
    if same:
        return f"; did you mean {same[0]!r}? (names are case-sensitive)"
    close = close_names(column, names)
    return f"; did you mean {' or '.join(repr(name) for name in close)}?" if close else ""


def listing(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return f"{shown}, … ({more} more)" if more > 0 else shown
