"""Writeback specs: rows of a dataset written into a Salesforce object."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from sf_assets.specs.base import DatasetSync
from sf_assets.specs.common import NAME_PATTERN, SpecModel


class CreateObject(SpecModel):
    """A custom object the sync creates from its mapping when the org does not have it yet."""

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*__c$",
        description="API name of the custom object, e.g. Checkout__c; must equal target.object.",
    )
    label: str = Field(min_length=1, description="Singular label, e.g. Checkout.")
    plural_label: str = Field(min_length=1, description="Plural label, e.g. Checkouts.")


class SalesforceTarget(SpecModel):
    salesforce: str = Field(
        "default", pattern=NAME_PATTERN, description="Name of the Salesforce connection."
    )
    object: str = Field(description="API name of the sObject, e.g. Contact or Checkout__c.")
    create_object: CreateObject | None = Field(
        None,
        description="Create the object (fields derived from the source columns) when the org "
        "does not have it; an existing object is never altered.",
    )

    @model_validator(mode="after")
    def creates_the_target(self) -> SalesforceTarget:
        if self.create_object is not None and self.create_object.name != self.object:
            raise ValueError(
                f"create_object.name {self.create_object.name!r} must equal object {self.object!r}"
            )
        return self

    operation: Literal["insert", "update", "upsert", "delete"] = "upsert"
    match_on: str = Field(
        description="Target field that holds the source key: an external id, idLookup or "
        "unique field (or Id). Upserts on an external id match natively; on any other field "
        "the writer looks the existing ids up first. Inserts use it to confirm a write whose "
        "answer was lost instead of sending it twice."
    )
    create_missing: bool | None = Field(
        None,
        description="Whether a key with no record creates one. Defaults to true for upsert and "
        "false for update (update-only: such keys are recorded as not found).",
    )
    max_delete_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Largest share of the object's records one delete run may remove; a run "
        "that would remove more fails before deleting anything.",
    )

    @model_validator(mode="after")
    def create_missing_applies(self) -> SalesforceTarget:
        if self.create_missing is not None and self.operation in ("insert", "delete"):
            raise ValueError(f"create_missing does not apply to operation {self.operation}")
        if self.create_missing and self.match_on.lower() == "id":
            raise ValueError("create_missing cannot create records matched on Id")
        return self

    @property
    def creates_missing(self) -> bool:
        """Whether keys without a record are created: upsert semantics unless told otherwise."""
        if self.create_missing is not None:
            return self.create_missing
        return self.operation in ("insert", "upsert")


class SyncSpec(DatasetSync):
    """A writeback into Salesforce."""

    kind: ClassVar[str] = "salesforce"
    target: SalesforceTarget
    mapping: dict[str, str] = Field(
        min_length=1, description="Target field API name -> source column."
    )
    api: Literal["auto", "rest", "bulk"] = "auto"
    bulk_from_rows: int | None = Field(
        None,
        ge=1,
        description="With api: auto, the rows to send from which Bulk API 2.0 is used instead "
        "of REST (sObject Collections); unset: sf-assets' measured default.",
    )
    rest_parallel_calls: int = Field(
        5,
        ge=1,
        le=10,
        description="sObject Collections calls sent side by side. An org serves concurrent "
        "requests in parallel (only calls running over 20 s count against its limit of 25); "
        "set 1 when rows share parent records and fail with UNABLE_TO_LOCK_ROW.",
    )
    null_values: Literal["clear", "ignore"] = Field(
        "clear",
        description="What a null source value does to the target field on update: clear it "
        "(the target mirrors the source) or leave the field as it is.",
    )

    @field_validator("mapping")
    @classmethod
    def mapping_names(cls, mapping: dict[str, str]) -> dict[str, str]:
        lowered = [field.lower() for field in mapping]
        duplicates = sorted({f for f in mapping if lowered.count(f.lower()) > 1})
        if duplicates:
            raise ValueError(f"fields mapped more than once: {', '.join(duplicates)}")
        return mapping

    @model_validator(mode="after")
    def key_is_mapped(self) -> SyncSpec:
        if self.source.key is None and self.target.match_on.lower() not in {
            f.lower() for f in self.mapping
        }:
            reversed_entry = reversed_mapping(self.mapping, self.target.match_on)
            if reversed_entry:
                column, field = reversed_entry
                raise ValueError(
                    f"the mapping looks reversed: it has `{column}: {field}`, but a mapping "
                    "goes Salesforce field -> source column; write "
                    f"`{field}: {column}` (and turn the other entries round the same way)"
                )
            raise ValueError(
                f"target.match_on {self.target.match_on!r} must be mapped from a source column "
                "(or name the key column as source.key)"
            )
        return self

    @property
    def key_column(self) -> str:
        """The source column that identifies a row across runs."""
        if self.source.key is not None:
            return self.source.key
        return next(c for f, c in self.mapping.items() if f.lower() == self.target.match_on.lower())

    @property
    def connection(self) -> str:
        return self.target.salesforce


def reversed_mapping(mapping: dict[str, str], match_on: str) -> tuple[str, str] | None:
    """The entry `column: Field` when the match_on field appears as a mapped *value*: the
    telltale of a mapping written source column first."""
    return next(
        ((column, field) for column, field in mapping.items() if field.lower() == match_on.lower()),
        None,
    )
