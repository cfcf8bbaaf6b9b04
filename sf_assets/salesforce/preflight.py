"""Checking a sync spec against the org's live object description before anything is written.

A spec that maps a misspelt field, leaves out a required one or matches on a field that can hold
the same value twice would fail on every row, after API calls have been spent; these checks say
so up front, with the field and a suggestion. What can only be known per value (a text column
that should hold numbers, a restricted picklist) is a warning here and a reject per row in
mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import polars as pl
from simple_salesforce import Salesforce

from sf_assets.names import comparable, did_you_mean
from sf_assets.salesforce.describe import (
    DECIMAL_TYPES,
    ID_TYPES,
    FieldInfo,
    ObjectInfo,
    UnknownObjectError,
    describe_object,
)
from sf_assets.salesforce.mapping import MappedField, MappingError, target_for
from sf_assets.salesforce.mapping.values import is_text
from sf_assets.specs import SyncSpec

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One thing preflight found; `object` qualifies `field` in the one-line form."""

    level: Level
    sync: str
    field: str | None
    message: str
    object: str | None = None

    def line(self) -> str:
        """`ERROR contacts_to_salesforce: Contact.Emial: no such field on Contact (…)`."""
        where = ""
        if self.field:
            where = f"{self.object}.{self.field}: " if self.object else f"{self.field}: "
        return f"{self.level.upper()} {self.sync}: {where}{self.message}"


def object_missing(spec: SyncSpec, error: UnknownObjectError) -> Finding:
    """The finding for a target object the org does not have."""
    return Finding("error", spec.name, None, str(error))


def preflight(
    sf: Salesforce, spec: SyncSpec, source_schema: Mapping[str, pl.DataType] | None = None
) -> list[Finding]:
    """Describe the target (and the objects its relationship columns point at), then check."""
    try:
        obj = describe_object(sf, spec.target.object)
    except UnknownObjectError as error:
        return [object_missing(spec, error)]
    related: dict[str, ObjectInfo] = {}
    findings: list[Finding] = []
    for name in _related_object_names(spec, obj):
        try:
            related[name] = describe_object(sf, name)
        except UnknownObjectError as error:
            findings.append(object_missing(spec, error))
    return findings + check_spec(spec, obj, source_schema, related=related)


def check_spec(
    spec: SyncSpec,
    obj: ObjectInfo,
    source_schema: Mapping[str, pl.DataType] | None = None,
    *,
    related: Mapping[str, ObjectInfo] | None = None,
) -> list[Finding]:
    """Every problem of `spec` against `obj`, errors first.

    `source_schema` (column -> dtype) adds the checks on source columns; `related` (object name
    -> description) adds the checks on the far side of relationship columns such as
    `Account.External_Id__c`.
    """
    check = _Check(spec, obj, related or {})
    targets = check.mapped_fields()
    check.object_permissions()
    check.writable(targets)
    check.required(targets)
    check.match_on()
    check.restricted_picklists(targets)
    if source_schema is not None:
        check.source_columns(targets, source_schema)
    return sorted(check.findings, key=lambda finding: finding.level != "error")


def _related_object_names(spec: SyncSpec, obj: ObjectInfo) -> list[str]:
    names: list[str] = []
    for name in spec.mapping:
        lookup = obj.relationship(name.split(".", 1)[0]) if "." in name else None
        if lookup is not None and len(lookup.reference_to) == 1:
            names.append(lookup.reference_to[0])
    return sorted(set(names))


class _Check:
    """The checks, each a method that reads top to bottom and appends findings."""

    def __init__(self, spec: SyncSpec, obj: ObjectInfo, related: Mapping[str, ObjectInfo]):
        self.spec = spec
        self.obj = obj
        self.related = related
        # An update that creates missing records needs what an upsert needs.
        creates = spec.target.creates_missing and spec.target.operation == "update"
        self.operation = "upsert" if creates else spec.target.operation
        self.match = obj.field(spec.target.match_on)
        self.findings: list[Finding] = []

    def error(self, field: str | None, message: str) -> None:
        self.findings.append(Finding("error", self.spec.name, field, message, self.obj.name))

    def warning(self, field: str | None, message: str) -> None:
        self.findings.append(Finding("warning", self.spec.name, field, message, self.obj.name))

    # -- the mapping against the object --------------------------------------------------

    def mapped_fields(self) -> list[MappedField]:
        """Resolve every mapped field, reporting the unknown ones with close names."""
        targets = []
        for name, column in self.spec.mapping.items():
            try:
                target = target_for(name, column, self.obj)
            except MappingError:
                self._unknown(name, column)
                continue
            targets.append(target)
            if target.relationship:
                self._relationship(target)
        self._set_twice(targets)
        return targets

    def _unknown(self, name: str, column: str) -> None:
        field = self.obj.field(column)
        looks_reversed = (
            field is not None
            and field.name == column
            and (comparable(name) == comparable(column) or not did_you_mean(name, self.obj.fields))
        )
        if "." not in name and field is not None and looks_reversed:
            # `last_name: LastName`: the value is a field's exact API name and the key is that
            # field's name as a column would spell it (or nothing like any field).
            self.error(
                name,
                f"no such field on {self.obj.name}, but {field.name} is one: the mapping looks "
                f"reversed; a mapping goes Salesforce field -> source column, so write "
                f"`{field.name}: {name}`",
            )
            return
        if "." in name:
            relationship = name.split(".", 1)[0]
            names = [f.relationship_name for f in self.obj.fields.values() if f.relationship_name]
            hint = did_you_mean(relationship, names)
            self.error(name, f"no relationship {relationship!r} on {self.obj.name}{hint}")
            return
        self.error(name, f"no such field on {self.obj.name}{did_you_mean(name, self.obj.fields)}")

    def _relationship(self, target: MappedField) -> None:
        """`Account.External_Id__c` must name an external id or idLookup field of Account."""
        lookup = target.field
        if len(lookup.reference_to) != 1:
            self.error(
                target.name,
                f"{lookup.name} can point at {', '.join(lookup.reference_to)}; a relationship "
                "column needs a lookup to a single object",
            )
            return
        other = self.related.get(lookup.reference_to[0])
        if other is None:
            return
        name = target.name.split(".", 1)[1]
        far = other.field(name)
        if far is None:
            hint = did_you_mean(name, other.fields)
            self.error(target.name, f"no such field on {other.name}{hint}")
        elif not (far.external_id or far.id_lookup):
            self.error(
                target.name,
                f"{other.name}.{far.name} is neither an external id nor an idLookup field, so "
                f"Salesforce cannot find the {other.name} by it",
            )

    def _set_twice(self, targets: list[MappedField]) -> None:
        """`AccountId` and `Account.External_Id__c` both set AccountId: one would win silently."""
        seen: dict[str, str] = {}
        for target in targets:
            name = target.field.name
            if name in seen:
                self.error(name, f"set twice, by {seen[name]} and by {target.name}")
            seen.setdefault(name, target.name)

    def object_permissions(self) -> None:
        if self.operation in ("insert", "upsert") and not self.obj.createable:
            self.error(None, f"{self.obj.name} records cannot be created by this user")
        if self.operation in ("update", "upsert") and not self.obj.updateable:
            self.error(None, f"{self.obj.name} records cannot be updated by this user")

    def writable(self, targets: list[MappedField]) -> None:
        """Insert needs createable fields, update updateable ones, upsert both.

        The match_on field is only looked up on update (Id is never updateable), and on upsert
        it is set when the record is created.
        """
        for target in targets:
            for flag in self._permissions_needed(target):
                if not getattr(target.field, flag):
                    self.error(
                        target.name,
                        f"not {flag}, so an {self.operation} cannot set it{_why(target.field)}",
                    )
                    break

    def _permissions_needed(self, target: MappedField) -> tuple[str, ...]:
        if not target.relationship and target.field is self.match:
            # Id is never written (match_on reports an insert on Id); other keys are on create.
            return () if self.operation == "update" or self.match.name == "Id" else ("createable",)
        return {
            "insert": ("createable",),
            "update": ("updateable",),
            "upsert": ("createable", "updateable"),
            "delete": (),
        }[self.operation]

    def required(self, targets: list[MappedField]) -> None:
        if self.operation in ("update", "delete") or not self.spec.target.creates_missing:
            return
        mapped = {target.field.name for target in targets}
        for field in self.obj.fields.values():
            if field.required_on_create and field.name not in mapped:
                self.error(
                    field.name,
                    f"required to create a {self.obj.name} but not mapped from any column",
                )

    def match_on(self) -> None:
        """Rows are matched on one field: it must hold each value at most once."""
        name = self.spec.target.match_on
        field = self.match
        if field is None:
            if not self._reported(name):
                hint = did_you_mean(name, self.obj.fields)
                self.error(name, f"match_on: no such field on {self.obj.name}{hint}")
            return
        if field.name == "Id" and self.operation == "insert":
            self.error("Id", "match_on Id cannot work for an insert: Salesforce assigns the Id")
        elif not field.matchable:
            # idLookup and unique fields are fine: the writer looks their ids up first.
            self.error(
                field.name,
                "match_on is not unique: Salesforce cannot tell records apart by it (it can hold "
                f"the same value on many {self.obj.name} records); match on an external id, "
                "idLookup or unique field, or Id",
            )

    def _reported(self, name: str) -> bool:
        return any(f.field and f.field.lower() == name.lower() for f in self.findings)

    def restricted_picklists(self, targets: list[MappedField]) -> None:
        for target in targets:
            field = target.field
            if not target.relationship and field.restricted_picklist and field.picklist:
                self.warning(
                    target.name,
                    f"restricted picklist: values other than {', '.join(field.picklist)} are "
                    "rejected row by row",
                )

    # -- the source columns ----------------------------------------------------------------

    def source_columns(self, targets: list[MappedField], schema: Mapping[str, pl.DataType]) -> None:
        key = self.spec.key_column
        if key not in schema:
            self.error(
                None, f"source key column {key!r} is not in the dataset{did_you_mean(key, schema)}"
            )
        for target in targets:
            if target.column not in schema:
                hint = did_you_mean(target.column, schema)
                self.error(
                    target.name, f"source column {target.column!r} is not in the dataset{hint}"
                )
                continue
            fit = source_fit(target, schema[target.column])
            if fit is not None:
                level, message = fit
                (self.error if level == "error" else self.warning)(target.name, message)


def source_fit(target: MappedField, dtype: pl.DataType) -> tuple[Level, str] | None:
    """Whether a source column of `dtype` can feed the target's field: None when it fits."""
    dtype = dtype() if isinstance(dtype, type) else dtype  # pl.Utf8 as well as pl.Utf8()
    column = f"source column {target.column!r} ({_dtype_label(dtype)})"
    kind = _source_kind(dtype)
    if kind == "other":
        return "error", f"{column} cannot be written to a Salesforce field"
    if kind == "null":
        return None
    field_kind = "text" if target.relationship else _field_kind(target.field)
    if field_kind == "datetime" and kind == "datetime" and dtype.time_zone is None:
        return "warning", f"{column} has no time zone: its values are taken as UTC"
    fit = FITS.get((field_kind, kind))
    if fit is None:
        return "error", f"{column} cannot be written to a {target.field.type} field"
    if fit == "ok":
        return None
    return "warning", f"{column}: {fit}"


# (field kind, source kind) -> "ok", or a warning that values are checked per row; absent: error.
PER_ROW = "each value is checked when the batch is mapped"
FITS: dict[tuple[str, str], str] = {
    **{
        ("text", kind): "ok"
        for kind in ("text", "integer", "float", "boolean", "date", "datetime", "time")
    },
    ("id", "text"): "ok",
    ("boolean", "boolean"): "ok",
    ("boolean", "text"): f"text into a boolean field: {PER_ROW} (true/false, yes/no, 1/0)",
    ("boolean", "integer"): f"numbers into a boolean field: {PER_ROW} (only 0 and 1)",
    ("int", "integer"): "ok",
    ("int", "float"): f"fractional numbers into an int field: {PER_ROW}, fractions rejected",
    ("int", "text"): f"text into an int field: {PER_ROW}",
    ("number", "integer"): "ok",
    ("number", "float"): "ok",
    ("number", "text"): f"text into a number field: {PER_ROW}",
    ("date", "date"): "ok",
    ("date", "datetime"): "a datetime into a date field keeps its UTC date and drops the time",
    ("date", "text"): f"text into a date field: {PER_ROW} (ISO dates such as 2024-01-31)",
    ("datetime", "datetime"): "ok",
    ("datetime", "date"): "ok",
    ("datetime", "text"): f"text into a datetime field: {PER_ROW} (ISO 8601, naive = UTC)",
    ("time", "text"): "ok",
    ("time", "time"): "ok",
}


def _field_kind(field: FieldInfo) -> str:
    if field.type in ID_TYPES:
        return "id"
    if field.type in DECIMAL_TYPES:
        return "number"
    if field.type in ("boolean", "int", "date", "datetime", "time"):
        return field.type
    return "text"


def _source_kind(dtype: pl.DataType) -> str:
    if is_text(dtype):
        return "text"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return {pl.Boolean: "boolean", pl.Date: "date", pl.Time: "time", pl.Null: "null"}.get(
        type(dtype), "other"
    )


def _dtype_label(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return f"Datetime[{dtype.time_zone}]" if dtype.time_zone else "Datetime"
    return str(dtype)


def _why(field: FieldInfo) -> str:
    """Read-only fields are usually system, formula or auto-number fields."""
    if not field.createable and not field.updateable:
        return " (it is read-only: a system, formula or auto-number field)"
    return ""
