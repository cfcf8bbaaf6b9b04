"""Which fields of an object are read, and the column type each becomes in the copy.

The list comes from the org's describe, not from the spec alone, so that `fields: all` means
what the connected user can read today, a misspelt field fails before anything is read, and
every column gets the type Salesforce gives the field.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import polars as pl

from sf_assets.salesforce.describe import ObjectInfo
from sf_assets.specs.ingest import ObjectRead

# Always read: the key and the cursor; and where the object has them, the deletion flag and
# the creation date (for retention windows).
REQUIRED_FIELDS = ("Id", "SystemModstamp")
SYSTEM_FIELDS = ("Id", "SystemModstamp", "IsDeleted", "CreatedDate")
# Compound fields repeat their parts (BillingCity, ...) and Bulk queries refuse them; base64
# bodies cannot be queried in bulk either.
SKIPPED_TYPES = frozenset({"address", "location", "base64"})
DTYPES: dict[str, pl.DataType] = {
    "boolean": pl.Boolean(),
    "int": pl.Int64(),
    "double": pl.Float64(),
    "currency": pl.Float64(),
    "percent": pl.Float64(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
}


class FieldSelectionError(ValueError):
    """The spec names fields the object does not have (or the user cannot read)."""


@dataclass(frozen=True)
class Selection:
    """The fields read from one object, in the org's spelling, with their describe types."""

    object: str
    types: dict[str, str]

    @property
    def fields(self) -> list[str]:
        return list(self.types)

    def dtype(self, field: str) -> pl.DataType:
        return DTYPES.get(self.types[field], pl.Utf8())

    def has(self, field: str) -> bool:
        return field in self.types

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {field: self.dtype(field) for field in self.types}


def select_fields(obj: ObjectInfo, read: ObjectRead, *, sync: str) -> Selection:
    """The fields to read: the spec's list (checked against the describe) or every readable
    field kept by `include` and not dropped by `exclude`; the system fields always."""
    if read.fields == "all":
        names = [
            name
            for name, info in obj.fields.items()
            if info.type not in SKIPPED_TYPES and _kept(name, read.include, read.exclude)
        ]
    else:
        names = [_known(obj, name, sync) for name in read.fields]
        names = [n for n in names if _kept(n, [], read.exclude)]
    for name in reversed(SYSTEM_FIELDS):
        if obj.field(name) is None and name not in REQUIRED_FIELDS:
            continue
        canonical = _known(obj, name, sync)
        names = [canonical, *(n for n in names if n != canonical)]
    return Selection(obj.name, {name: obj.fields[name].type for name in dict.fromkeys(names)})


def _kept(name: str, include: list[str], exclude: list[str]) -> bool:
    lowered = name.lower()
    if include and not any(fnmatch.fnmatchcase(lowered, p.lower()) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(lowered, p.lower()) for p in exclude)


def _known(obj: ObjectInfo, name: str, sync: str) -> str:
    info = obj.field(name)
    if info is None:
        close = obj.close_field_names(name)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise FieldSelectionError(
            f"sync {sync}: {obj.name} has no field {name!r} readable by this user{hint}; fix "
            f"read.objects.{obj.name}.fields or the user's field permissions"
        )
    if info.type in SKIPPED_TYPES:
        raise FieldSelectionError(
            f"sync {sync}: {obj.name}.{info.name} is a compound {info.type} field, which "
            "queries cannot read whole; list its parts instead"
        )
    return info.name
