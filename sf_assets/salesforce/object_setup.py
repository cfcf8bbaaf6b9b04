"""Creating a sync's target object from its mapping (`target.create_object`).

A BI tool's writeback often needs a fresh object to insert into. The object is created once,
through the Metadata API, with one field per mapped column whose type is derived from the
column's dtype and, where size matters, from the values seen. A type that cannot be derived is
an error rather than a guess, because a wrong field type cannot be changed back cheaply.

An object that already exists is never altered: the mapping is compared with its fields and
what is missing comes back as the field types the org's admin has to set up.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
from simple_salesforce import Salesforce

from sf_assets.salesforce.describe import ObjectInfo, UnknownObjectError, describe_object
from sf_assets.salesforce.mapping.values import is_text
from sf_assets.specs import SyncSpec

NAME_LENGTH = 80  # a custom object's Text name field is always 80 characters
TEXT_STEPS = (10, 20, 40, 80, 120, 255)  # lengths a derived Text field is rounded up to
TEXT_MAX = 255
LONG_TEXT_LENGTHS = (32768, 131072)
NUMBER_PRECISION = 18  # the most digits a Salesforce number holds
MAX_SCALE = 8
LONG_TEXT_VISIBLE_LINES = 3
# Fields every custom object has; mapping them needs nothing created.
BUILT_IN_FIELDS = frozenset({"id", "ownerid"})
# Metadata type -> describe types of an existing field that accept what the column holds.
ACCEPTING_TYPES: dict[str, frozenset[str]] = {
    "Text": frozenset(
        {"string", "textarea", "email", "phone", "url", "picklist", "combobox", "encryptedstring"}
    ),
    "LongTextArea": frozenset({"textarea"}),
    "Number": frozenset({"double", "currency", "percent", "int"}),
    "Checkbox": frozenset({"boolean"}),
    "Date": frozenset({"date", "datetime"}),
    "DateTime": frozenset({"datetime"}),
}


class ObjectSetupError(ValueError):
    """The object cannot be created, or the existing one lacks what the mapping needs."""


@dataclass(frozen=True)
class FieldType:
    """The Salesforce field a column needs, in Metadata API terms."""

    kind: str  # Text, LongTextArea, Number, Checkbox, Date or DateTime
    length: int = 0
    precision: int = 0
    scale: int = 0
    external_id: bool = False

    def label(self) -> str:
        """`Text(40)`, `Number(16, 2)`, `Text(20) External ID unique`: what an admin sets up."""
        if self.kind == "Number":
            text = f"Number({self.precision}, {self.scale})"
        elif self.kind in ("Text", "LongTextArea"):
            text = f"{self.kind}({self.length})"
        else:
            text = self.kind
        return f"{text} External ID unique" if self.external_id else text


@dataclass(frozen=True)
class FieldPlan:
    """One field of the object: its API name, the column that feeds it and its type."""

    field: str
    column: str
    type: FieldType


@dataclass(frozen=True)
class SetupReport:
    """What `ensure_object` found or did; `requirements` lists what an existing object lacks."""

    object: str
    exists: bool
    created: bool = False
    fields: tuple[FieldPlan, ...] = ()
    requirements: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.created:
            listed = ", ".join(f"{p.field} {p.type.label()}" for p in self.fields)
            return f"created {self.object} with {listed}"
        if self.exists:
            return f"{self.object} already existed; nothing created"
        return f"{self.object} does not exist yet"


# -- deriving field types ------------------------------------------------------------------------


def derive_type(sync: str, column: str, dtype: pl.DataType, values: pl.Series | None) -> FieldType:
    """The field type for a column of `dtype`; `values` (a sample) sizes text and scale."""
    dtype = dtype() if isinstance(dtype, type) else dtype
    if is_text(dtype):
        return text_type(_lengths(values))
    if dtype.is_integer():
        return FieldType("Number", precision=NUMBER_PRECISION, scale=0)
    if dtype.is_float():
        return FieldType("Number", precision=NUMBER_PRECISION, scale=float_scale(values))
    if isinstance(dtype, pl.Decimal):
        return _decimal_type(sync, column, dtype)
    kind = {pl.Boolean: "Checkbox", pl.Date: "Date", pl.Datetime: "DateTime"}.get(type(dtype))
    if kind is None:
        raise ObjectSetupError(
            f"sync {sync}: cannot derive a Salesforce field type for column {column!r} "
            f"({dtype}); create_object handles text, integer, float, decimal, boolean, date "
            "and datetime columns: cast the column in the source"
        )
    return FieldType(kind)


def text_type(longest: int | None) -> FieldType:
    """Text rounded up to a step, LongTextArea beyond 255; no values seen: Text(255)."""
    if longest is None:
        return FieldType("Text", length=TEXT_MAX)
    if longest <= TEXT_MAX:
        return FieldType("Text", length=next(s for s in TEXT_STEPS if s >= max(longest, 1)))
    long = next((n for n in LONG_TEXT_LENGTHS if n >= longest), LONG_TEXT_LENGTHS[-1])
    return FieldType("LongTextArea", length=long)


def float_scale(values: pl.Series | None) -> int:
    """Decimal places the sample needs, at most 8; no values seen: 8, so nothing is rounded."""
    present = _non_null(values)
    finite = [] if present is None else [v for v in present if math.isfinite(v)]
    places = [_decimal_places(v) for v in finite]
    return min(max(places), MAX_SCALE) if places else MAX_SCALE


def _decimal_places(value: float) -> int:
    exponent = decimal.Decimal(repr(value)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _decimal_type(sync: str, column: str, dtype: pl.Decimal) -> FieldType:
    precision = dtype.precision or NUMBER_PRECISION
    if precision > NUMBER_PRECISION:
        raise ObjectSetupError(
            f"sync {sync}: column {column!r} ({dtype}) has more digits than a Salesforce number "
            f"holds ({NUMBER_PRECISION}): cast it to a narrower decimal in the source"
        )
    return FieldType("Number", precision=precision, scale=dtype.scale)


def _lengths(values: pl.Series | None) -> int | None:
    present = _non_null(values)
    if present is None or present.is_empty():
        return None
    return int(present.cast(pl.Utf8).str.len_chars().max())


def _non_null(values: pl.Series | None) -> pl.Series | None:
    return values.drop_nulls() if values is not None else None


# -- planning the fields of a mapping ------------------------------------------------------------


def plan_fields(
    spec: SyncSpec, schema: Mapping[str, pl.DataType], sample: pl.DataFrame | None
) -> list[FieldPlan]:
    """Every field the object needs for the mapping, Name first; all problems raised at once."""
    plans: list[FieldPlan] = []
    problems: list[str] = []
    for name, column in _wanted_fields(spec):
        try:
            plans.append(_plan_field(spec, name, column, schema, sample))
        except ObjectSetupError as error:
            problems.append(str(error))
    if problems:
        raise ObjectSetupError("\n".join(problems))
    return sorted(plans, key=lambda plan: plan.field != "Name")


def _wanted_fields(spec: SyncSpec) -> list[tuple[str, str]]:
    """(field, column) of the mapping, plus match_on when the key column is not mapped."""
    wanted = [(name, column) for name, column in spec.mapping.items()]
    match_on = spec.target.match_on
    if match_on.lower() not in {name.lower() for name, _ in wanted}:
        wanted.append((match_on, spec.key_column))
    return [(name, column) for name, column in wanted if name.lower() not in BUILT_IN_FIELDS]


def _plan_field(
    spec: SyncSpec,
    name: str,
    column: str,
    schema: Mapping[str, pl.DataType],
    sample: pl.DataFrame | None,
) -> FieldPlan:
    if name.lower() == "name":
        return FieldPlan("Name", column, FieldType("Text", length=NAME_LENGTH))
    if "." in name or not name.endswith("__c"):
        raise ObjectSetupError(
            f"sync {spec.name}: {spec.target.object}.{name}: create_object creates custom "
            "fields (ending in __c) only, not lookups or standard fields"
        )
    if column not in schema:
        raise ObjectSetupError(
            f"sync {spec.name}: column {column!r} (mapped to {name}) is not in the dataset"
        )
    values = sample[column] if sample is not None and column in sample.columns else None
    if name.lower() == spec.target.match_on.lower():
        return FieldPlan(name, column, _key_type(spec, column, values))
    return FieldPlan(name, column, derive_type(spec.name, column, schema[column], values))


def _key_type(spec: SyncSpec, column: str, values: pl.Series | None) -> FieldType:
    """The match_on field: Text, external id and unique, so upserts and retries can match."""
    longest = _lengths(values)
    if longest is not None and longest > TEXT_MAX:
        raise ObjectSetupError(
            f"sync {spec.name}: key column {column!r} holds values longer than {TEXT_MAX} "
            "characters, more than an external id field can hold"
        )
    return FieldType("Text", length=text_type(longest).length, external_id=True)


# -- an object that already exists ---------------------------------------------------------------


def requirements(
    spec: SyncSpec,
    obj: ObjectInfo,
    schema: Mapping[str, pl.DataType],
    sample: pl.DataFrame | None,
) -> list[str]:
    """One line per mapped field the existing object lacks or types incompatibly."""
    lines = []
    for name, column in _wanted_fields(spec):
        if "." in name:
            continue  # relationship columns are checked by preflight against the far object
        existing = obj.field(name)
        try:
            needed = _plan_field(spec, name, column, schema, sample).type
        except ObjectSetupError as error:
            if existing is None:
                lines.append(f"{obj.name}.{name} is missing, and {error}")
            continue
        if existing is None:
            lines.append(f"{obj.name}.{name} is missing: create it as {needed.label()}")
        elif existing.type not in ACCEPTING_TYPES[needed.kind]:
            lines.append(
                f"{obj.name}.{existing.name} is a {existing.type} field, but column {column!r} "
                f"needs {needed.label()}"
            )
    return lines


# -- the entry points ----------------------------------------------------------------------------


def plan_object(
    sf: Salesforce,
    spec: SyncSpec,
    source_schema: Mapping[str, pl.DataType],
    sample: pl.DataFrame | None = None,
) -> SetupReport:
    """What ensure_object would do, without changing the org (for `sf-assets validate`)."""
    name = _object_name(spec)
    try:
        obj = describe_object(sf, name)
    except UnknownObjectError:
        fields = tuple(plan_fields(spec, source_schema, sample))
        return SetupReport(name, exists=False, fields=fields)
    return SetupReport(
        name, exists=True, requirements=tuple(requirements(spec, obj, source_schema, sample))
    )


def ensure_object(
    sf: Salesforce,
    spec: SyncSpec,
    source_schema: Mapping[str, pl.DataType],
    sample: pl.DataFrame | None,
) -> SetupReport:
    """Create the target object if the org lacks it; an existing one must already fit.

    Raises ObjectSetupError naming every problem: an underivable column, or the fields an
    existing object lacks with the type each needs (it is never altered).
    """
    report = plan_object(sf, spec, source_schema, sample)
    if not report.exists:
        try:
            report = _create(sf, spec, report)
        except _CreatedMeanwhile:  # another run won the race: it must fit like any other
            report = plan_object(sf, spec, source_schema, sample)
    if report.requirements:
        raise ObjectSetupError(
            f"sync {spec.name}: {report.object} already exists and does not fit the mapping; "
            "it is never altered, so set these up in the org:\n" + "\n".join(report.requirements)
        )
    return report


class _CreatedMeanwhile(Exception):
    """The org answered DUPLICATE_DEVELOPER_NAME: the object appeared since it was described."""


def _object_name(spec: SyncSpec) -> str:
    if spec.target.create_object is None:
        raise ObjectSetupError(f"sync {spec.name}: target.create_object is not set")
    return spec.target.create_object.name


def _create(sf: Salesforce, spec: SyncSpec, report: SetupReport) -> SetupReport:
    """One createMetadata call with the object and all its fields."""
    md = sf.mdapi
    try:
        md.CustomObject.create([_custom_object(md, spec, report.fields)])
    except Exception as error:  # simple-salesforce raises a bare Exception per failed component
        if "DUPLICATE_DEVELOPER_NAME" in str(error):
            raise _CreatedMeanwhile from None
        raise ObjectSetupError(
            f"sync {spec.name}: Salesforce refused to create {report.object}: {error}"
        ) from None
    return SetupReport(report.object, exists=True, created=True, fields=report.fields)


def _custom_object(md: Any, spec: SyncSpec, plans: tuple[FieldPlan, ...]) -> Any:
    setup = spec.target.create_object
    assert setup is not None  # _object_name checked it
    return md.CustomObject(
        fullName=setup.name,
        label=setup.label,
        pluralLabel=setup.plural_label,
        nameField=_name_field(md, setup.label, any(p.field == "Name" for p in plans)),
        deploymentStatus=md.DeploymentStatus("Deployed"),
        sharingModel=md.SharingModel("ReadWrite"),
        fields=[_custom_field(md, plan) for plan in plans if plan.field != "Name"],
    )


def _name_field(md: Any, label: str, mapped: bool) -> Any:
    """Text when the mapping sets Name; otherwise numbered by the org, so inserts need no Name."""
    if mapped:
        return md.CustomField(label=f"{label} Name", type=md.FieldType("Text"))
    return md.CustomField(
        label=f"{label} Number",
        type=md.FieldType("AutoNumber"),
        displayFormat="{0000000}",
        startingNumber=1,
    )


def _custom_field(md: Any, plan: FieldPlan) -> Any:
    kind = plan.type.kind
    options: dict[str, Any] = {}
    if kind in ("Text", "LongTextArea"):
        options["length"] = plan.type.length
    if kind == "LongTextArea":
        options["visibleLines"] = LONG_TEXT_VISIBLE_LINES
    if kind == "Number":
        options.update(precision=plan.type.precision, scale=plan.type.scale)
    if kind == "Checkbox":
        options["defaultValue"] = "false"
    if plan.type.external_id:
        options.update(externalId=True, unique=True)
    return md.CustomField(
        fullName=plan.field,
        label=plan.field.removesuffix("__c").replace("_", " "),
        type=md.FieldType(kind),
        **options,
    )
