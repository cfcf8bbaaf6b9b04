"""Ingest specs: Salesforce objects copied into the user's DuckDB warehouse, kept current by
incremental reads, and merged into `people` and `organizations` (plus `orders` for
fulfilment).

A spec is told from the other kinds by its `read:` block. Filters are structured (`field`,
`op`, `value`) rather than SOQL text, so that every value can be checked against the field's
type and escaped before it reaches a query: no text a user typed is ever pasted into SOQL.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from sf_assets.specs.common import NAME_PATTERN, SpecModel
from sf_assets.specs.sources import DEFAULT_SCHEMA

MERGED_SCHEMA = DEFAULT_SCHEMA  # merged tables are plain `people`, `organizations`, ...


def table_name(sobject: str) -> str:
    """The raw copy's table for an object: its API name in lower case (DuckDB names ignore
    case)."""
    return sobject.lower()


API_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
# A field name or a glob over field names (`*__c`, `Billing*`).
FIELD_PATTERN = r"^[A-Za-z*?][A-Za-z0-9_*?]*$"
CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")
Scalar = str | int | float | bool | None
Operator = Literal["=", "!=", "<", "<=", ">", ">=", "in", "not in", "like", "not like"]
Strategy = Literal["append_only", "overwrite", "ignore"]
# The people merge knows these objects: both are people, told apart by the link table.
PERSON_OBJECTS = ("Contact", "Lead")


class Condition(SpecModel):
    """One comparison of a field with a value, e.g. `{field: LeadSource, op: "!=", value: Web}`."""

    field: str = Field(pattern=API_NAME, description="API name of the field compared.")
    op: Operator = Field("=", description="The comparison; `in`/`not in` take a list.")
    value: Scalar | list[Scalar] = Field(
        description="What the field is compared with: text, a number, true/false, null, an "
        "ISO date or date-time for date fields, or a list for `in`/`not in`."
    )

    @model_validator(mode="after")
    def value_fits_op(self) -> Condition:
        listed = isinstance(self.value, list)
        if self.op in ("in", "not in") and (not listed or not self.value):
            raise ValueError(f"`{self.op}` needs a non-empty list of values")
        if self.op not in ("in", "not in") and listed:
            raise ValueError(f"`{self.op}` compares with one value, not a list")
        if self.op in ("like", "not like") and not isinstance(self.value, str):
            raise ValueError(f"`{self.op}` needs a text pattern")
        if self.value is None and self.op not in ("=", "!="):
            raise ValueError("null can only be compared with = or !=")
        return self


class AnyOf(SpecModel):
    """Conditions of which at least one must hold (an OR group)."""

    any: list[Condition] = Field(min_length=1)


def _filter_kind(value: object) -> str:
    if isinstance(value, dict):
        return "any" if "any" in value else "condition"
    return "any" if isinstance(value, AnyOf) else "condition"


FilterItem = Annotated[
    Annotated[Condition, Tag("condition")] | Annotated[AnyOf, Tag("any")],
    Discriminator(_filter_kind),
]


class ObjectRead(SpecModel):
    """Which records and fields of one object are copied."""

    fields: list[str] | Literal["all"] = Field(
        "all",
        description="Field API names, or `all`: every readable field from the org's describe "
        "(compound address and location fields skipped; their parts are plain fields). Id and "
        "SystemModstamp are always read.",
    )
    include: list[str] = Field(
        default_factory=list,
        description="With `fields: all`, keep only fields matching these names or globs.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Fields (names or globs) never read."
    )
    filter: list[FilterItem] = Field(
        default_factory=list,
        description="Only records matching every item are copied; a record that stops "
        "matching is kept but flagged `_sf_archived`.",
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        description="For activity-like objects: only records created within this many days "
        "are read and kept; older ones are pruned from the copy.",
    )
    api: Literal["auto", "rest", "bulk"] = Field(
        "auto",
        description="auto: REST for small reads, Bulk API 2.0 from a measured size on.",
    )

    @field_validator("include", "exclude")
    @classmethod
    def names_or_globs(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not re.fullmatch(FIELD_PATTERN, v)]
        if bad:
            raise ValueError(f"not a field name or glob: {', '.join(bad)}")
        return values

    @field_validator("fields")
    @classmethod
    def field_names(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list):
            bad = [v for v in value if not re.fullmatch(API_NAME, v)]
            if bad:
                raise ValueError(f"not a field API name: {', '.join(bad)}")
            if not value:
                raise ValueError("list at least one field, or write `all`")
        return value

    @model_validator(mode="after")
    def include_needs_all(self) -> ObjectRead:
        if self.include and self.fields != "all":
            raise ValueError("`include` selects from `fields: all`; with a list, name the fields")
        return self

    def reads(self, field: str) -> bool:
        """Whether an explicit field list holds `field` (`all` may hold anything)."""
        if self.fields == "all":
            return True
        return field.lower() in {f.lower() for f in self.fields}


class Deletions(SpecModel):
    """How deletions in Salesforce reach the copy."""

    source: Literal["query_all", "get_deleted"] = Field(
        "query_all",
        description="query_all: deleted records come with the changes (no extra call); "
        "get_deleted: the getDeleted resource is asked once per read.",
    )
    window_days: int = Field(
        15,
        ge=1,
        description="How long the org keeps deleted records (its recycle bin); a read after a "
        "longer pause compares every key instead.",
    )
    reconcile_every_hours: float = Field(
        24,
        gt=0,
        description="How often every key is compared with the org, which also finds records "
        "purged from the recycle bin or hard-deleted.",
    )


class SalesforceRead(SpecModel):
    salesforce: str = Field(
        "default", pattern=NAME_PATTERN, description="Name of the Salesforce connection."
    )
    objects: dict[str, ObjectRead] = Field(
        min_length=1, description="Object API name -> what to read of it."
    )
    lookback_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description="Changes stamped this long before the previous read began are read again, "
        "in case a long transaction committed them late.",
    )
    deletions: Deletions = Field(default_factory=Deletions)

    @field_validator("objects")
    @classmethod
    def object_names(cls, objects: dict[str, ObjectRead]) -> dict[str, ObjectRead]:
        bad = [name for name in objects if not re.fullmatch(API_NAME, name)]
        if bad:
            raise ValueError(f"not an object API name: {', '.join(bad)}")
        lowered = [name.lower() for name in objects]
        twice = sorted({n for n in objects if lowered.count(n.lower()) > 1})
        if twice:
            raise ValueError(f"objects named twice: {', '.join(twice)}")
        return objects


class Warehouse(SpecModel):
    """The DuckDB file the copies and merged tables are written to (the user's warehouse)."""

    duckdb: str = Field(description="Path of the DuckDB file, relative to the project folder.")
    raw_schema: str = Field(
        "salesforce",
        alias="schema",
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="Schema of the raw copies: one table per object, e.g. salesforce.contact.",
    )


class MergeKeys(SpecModel):
    """How an incoming record finds the person it belongs to."""

    primary: str = Field("Email", pattern=API_NAME, description="Field compared first.")
    fallback: str | None = Field("Phone", pattern=API_NAME, description="Field compared next.")
    match: Literal["any_key", "previous_key_empty"] = Field(
        "any_key",
        description="any_key: a record matches a person on the primary or else the fallback "
        "key; previous_key_empty: the fallback is used only when the record has no primary.",
    )


class PeopleMerge(SpecModel):
    sources: list[Literal["Contact", "Lead"]] = Field(
        default_factory=lambda: list(PERSON_OBJECTS),
        alias="from",
        min_length=1,
        description="Objects whose records become people.",
    )
    fields: list[str] = Field(
        default_factory=lambda: ["FirstName", "LastName", "Email", "Phone"],
        description="Fields copied onto each person (the keys are always among them).",
    )
    strategy: Strategy = Field(
        "append_only",
        description="append_only: new people, and empty fields of existing ones filled; "
        "overwrite: incoming values win; ignore: new people only.",
    )
    keys: MergeKeys = Field(default_factory=MergeKeys)
    email_opt_in: bool = Field(
        False,
        description="Email subscription of a new person (one who opted out in Salesforce is "
        "never subscribed); SMS is always off for new people.",
    )

    @field_validator("fields")
    @classmethod
    def field_names(cls, fields: list[str]) -> list[str]:
        bad = [f for f in fields if not re.fullmatch(API_NAME, f)]
        if bad:
            raise ValueError(f"not a field API name: {', '.join(bad)}")
        return fields

    @property
    def columns(self) -> list[str]:
        """The person's fields: the keys first, then the rest, each once."""
        keys = [self.keys.primary, *([self.keys.fallback] if self.keys.fallback else [])]
        lowered = {k.lower() for k in keys}
        return [*keys, *(f for f in self.fields if f.lower() not in lowered)]


class OrganizationsMerge(SpecModel):
    fields: list[str] = Field(
        default_factory=lambda: ["Name", "Website", "Phone", "Industry", "BillingCountry"],
        description="Account fields copied onto each organization.",
    )
    strategy: Strategy = "append_only"

    @field_validator("fields")
    @classmethod
    def field_names(cls, fields: list[str]) -> list[str]:
        bad = [f for f in fields if not re.fullmatch(API_NAME, f)]
        if bad:
            raise ValueError(f"not a field API name: {', '.join(bad)}")
        return fields


class Merge(SpecModel):
    people: PeopleMerge | None = None
    organizations: OrganizationsMerge | None = None


class IngestSpec(SpecModel):
    """Salesforce objects read into DuckDB, with the tables merged from them."""

    kind: ClassVar[str] = "ingest"
    name: str = Field(pattern=NAME_PATTERN, description="Unique name; becomes the asset group.")
    description: str | None = None
    read: SalesforceRead
    into: Warehouse
    schedule: str | None = Field(
        "*/15 * * * *",
        description="Cron schedule of the incremental reads (null: run them by hand).",
    )
    merge: Merge = Field(default_factory=Merge)
    orders: bool = Field(
        False, description="Build `orders`: Orders with their OrderItems, ready to join."
    )

    @field_validator("schedule")
    @classmethod
    def cron(cls, value: str | None) -> str | None:
        if value is not None:
            parts = value.split()
            if len(parts) != 5 or not all(CRON_FIELD.match(p) for p in parts):
                raise ValueError(f"not a five-field cron schedule: {value!r}")
        return value

    @model_validator(mode="after")
    def merged_objects_are_read(self) -> IngestSpec:
        needs: dict[str, list[str]] = {}
        people = self.merge.people
        if people is not None:
            for name in people.sources:
                needs[name] = people.columns
        if self.merge.organizations is not None:
            needs["Account"] = self.merge.organizations.fields
            if people is not None and "Contact" in people.sources:
                needs["Contact"] = [*needs["Contact"], "AccountId"]
        if self.orders:
            needs.setdefault("Order", [])
            needs.setdefault("OrderItem", ["OrderId"])
        problems = []
        for name, fields in needs.items():
            read = self.object(name)
            if read is None:
                problems.append(f"{name} must be listed under read.objects")
                continue
            missing = [f for f in fields if not read.reads(f)]
            if missing:
                problems.append(f"read.objects.{name}.fields must include {', '.join(missing)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def object(self, name: str) -> ObjectRead | None:
        """The read of an object, whatever the case the spec spelt it in."""
        for key, read in self.read.objects.items():
            if key.lower() == name.lower():
                return read
        return None

    def object_name(self, name: str) -> str:
        """The object's name as the spec spells it."""
        return next(key for key in self.read.objects if key.lower() == name.lower())

    def activity_objects(self) -> list[str]:
        """Objects read as activities: Tasks, and Opportunities with their contact roles."""
        names = ["Task"] if self.object("Task") else []
        if self.object("Opportunity") and self.object("OpportunityContactRole"):
            names += ["Opportunity", "OpportunityContactRole"]
        return names

    def tables(self) -> list[str]:
        """Every warehouse table the spec's assets write: a raw copy per object, then the
        merged tables it builds. Other specs' sources are checked against these."""
        people = self.merge.people is not None
        merged = {
            "people": people,
            "organizations": self.merge.organizations is not None,
            "orders": self.orders,
            "activities": people and bool(self.activity_objects()),
        }
        raw = [self.raw_table(name) for name in self.read.objects]
        return raw + [f"{MERGED_SCHEMA}.{name}" for name, built in merged.items() if built]

    def raw_table(self, sobject: str) -> str:
        """`schema.table` of an object's raw copy."""
        return f"{self.into.raw_schema}.{table_name(sobject)}"

    @property
    def connection(self) -> str:
        return self.read.salesforce

    @property
    def batched(self) -> bool:
        """Ingest specs read whole objects, never batches of a dataset."""
        return False
