"""Sync specs: the YAML files in `syncs/` that declare what to write where.

Each file holds one sync. A bad file fails loading with the file, the field path and what is
wrong, because the person who wrote it has to find the line to fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_BATCH_COLUMN = "_BATCH_ID_"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class SpecError(ValueError):
    """A sync spec that cannot be used; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DuckDBSource(_Model):
    """A table, view or query in a DuckDB database file."""

    duckdb: str = Field(description="Path of the DuckDB file, relative to the project folder.")
    table: str | None = Field(None, description="Table or view, optionally schema-qualified.")
    sql: str | None = Field(None, description="A SELECT whose rows are the dataset.")
    batch_column: str | None = Field(
        DEFAULT_BATCH_COLUMN,
        description="Column whose values key the batches; null for a dataset written whole.",
    )
    key: str | None = Field(
        None,
        description="Source column that identifies a row; defaults to the column mapped to "
        "the target's match_on field.",
    )

    @model_validator(mode="after")
    def one_relation(self) -> DuckDBSource:
        if (self.table is None) == (self.sql is None):
            raise ValueError("give exactly one of `table` or `sql`")
        return self


class FileSource(_Model):
    """Parquet or CSV files matched by a glob pattern."""

    parquet: str | None = Field(None, description="Glob of Parquet files, relative to the project.")
    csv: str | None = Field(None, description="Glob of CSV files (UTF-8, header row).")
    batch_column: str | None = Field(DEFAULT_BATCH_COLUMN, description="See DuckDB source.")
    key: str | None = Field(None, description="See DuckDB source.")

    @model_validator(mode="after")
    def one_format(self) -> FileSource:
        if (self.parquet is None) == (self.csv is None):
            raise ValueError("give exactly one of `parquet` or `csv`")
        return self


def _source_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "duckdb" if "duckdb" in value else "files"
    return "duckdb" if isinstance(value, DuckDBSource) else "files"


Source = Annotated[
    Annotated[DuckDBSource, Tag("duckdb")] | Annotated[FileSource, Tag("files")],
    Discriminator(_source_kind),
]


class CreateObject(_Model):
    """A custom object the sync creates from its mapping when the org does not have it yet."""

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*__c$",
        description="API name of the custom object, e.g. Checkout__c; must equal target.object.",
    )
    label: str = Field(min_length=1, description="Singular label, e.g. Checkout.")
    plural_label: str = Field(min_length=1, description="Plural label, e.g. Checkouts.")


class SalesforceTarget(_Model):
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


class Freshness(_Model):
    max_lag_minutes: int = Field(gt=0, description="Fail when nothing was written for this long.")


class SyncSpec(_Model):
    name: str = Field(pattern=NAME_PATTERN, description="Unique name; becomes the asset prefix.")
    description: str | None = None
    source: Source
    target: SalesforceTarget
    mapping: dict[str, str] = Field(
        min_length=1, description="Target field API name -> source column."
    )
    api: Literal["auto", "rest", "bulk"] = "auto"
    null_values: Literal["clear", "ignore"] = Field(
        "clear",
        description="What a null source value does to the target field on update: clear it "
        "(the target mirrors the source) or leave the field as it is.",
    )
    freshness: Freshness | None = None
    sensor_interval_seconds: int = Field(30, ge=5, description="How often the sensor looks.")

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
            raise ValueError(
                f"target.match_on {self.target.match_on!r} must be mapped from a source column "
                "(or name the key column as source.key)"
            )
        return self

    @property
    def batched(self) -> bool:
        return self.source.batch_column is not None

    @property
    def key_column(self) -> str:
        """The source column that identifies a row across runs."""
        if self.source.key is not None:
            return self.source.key
        return next(c for f, c in self.mapping.items() if f.lower() == self.target.match_on.lower())

    @property
    def connection(self) -> str:
        return self.target.salesforce


EMARSYS_STANDARD_COLUMNS = ("order", "timestamp", "customer", "email", "item", "price", "quantity")


class EmarsysTarget(_Model):
    """Smart Insight sales data: one CSV upload per batch, in the column order agreed with the
    merchant's Emarsys account."""

    emarsys: str = Field("default", pattern=NAME_PATTERN, description="Emarsys connection name.")
    sales_data: Literal[True] = Field(description="The sales-data API (the only one supported).")
    columns: list[str] = Field(
        min_length=1,
        description="Header of the file, in the order configured for the merchant: standard "
        "columns (order, timestamp, customer or email, item, price, quantity) and custom ones "
        "with a type prefix (s_, i_, f_).",
    )
    price: Literal["line_total", "unit_price"] = Field(
        "line_total",
        description="What the mapped price column holds; Emarsys wants the line total, so unit "
        "prices are multiplied by the quantity.",
    )


class EmarsysSyncSpec(_Model):
    name: str = Field(pattern=NAME_PATTERN, description="Unique name; becomes the asset prefix.")
    description: str | None = None
    source: Source
    target: EmarsysTarget
    mapping: dict[str, str] = Field(min_length=1, description="Emarsys column -> source column.")
    freshness: Freshness | None = None
    sensor_interval_seconds: int = Field(30, ge=5, description="How often the sensor looks.")

    @model_validator(mode="after")
    def columns_are_mapped(self) -> EmarsysSyncSpec:
        unmapped = [c for c in self.target.columns if c not in self.mapping]
        unknown = [c for c in self.mapping if c not in self.target.columns]
        if unmapped or unknown:
            raise ValueError(
                "mapping and target.columns must name the same columns"
                + (f"; not mapped: {', '.join(unmapped)}" if unmapped else "")
                + (f"; not in columns: {', '.join(unknown)}" if unknown else "")
            )
        if "order" not in self.mapping:
            raise ValueError("the `order` column must be mapped")
        return self

    @property
    def batched(self) -> bool:
        return self.source.batch_column is not None

    @property
    def key_column(self) -> str:
        """An order line is identified by its order and item; the order column names it."""
        return self.source.key or self.mapping["order"]

    @property
    def connection(self) -> str:
        return self.target.emarsys


AnySyncSpec = SyncSpec | EmarsysSyncSpec


class LoadedSpec(_Model):
    """A spec plus where it came from (relative paths resolve against `root`)."""

    spec: AnySyncSpec
    file: Path
    root: Path

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.root / path


def syncs_dir() -> Path:
    return Path(os.environ.get("SF_ASSETS_SYNCS_DIR", "syncs")).resolve()


def json_schema() -> dict[str, Any]:
    return TypeAdapter(AnySyncSpec).json_schema()


def load_spec(file: Path, root: Path) -> LoadedSpec:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SpecError(f"{file}: cannot read the spec: {error}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{file}: a sync spec is a mapping of fields, not {type(data).__name__}")
    target = data.get("target")
    model = EmarsysSyncSpec if isinstance(target, dict) and "emarsys" in target else SyncSpec
    try:
        spec = model.model_validate(data)
    except ValidationError as error:
        raise SpecError(_describe(file, error)) from None
    return LoadedSpec(spec=spec, file=file, root=root)


def _describe(file: Path, error: ValidationError) -> str:
    lines = [f"{file}: {error.error_count()} problem(s) in the sync spec"]
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"] if not _is_union_tag(part)) or "(top)"
        lines.append(f"  {path}: {item['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and part in ("duckdb", "files")


def load_specs(directory: Path | None = None) -> list[LoadedSpec]:
    """Every `*.yaml`/`*.yml` in the syncs folder, in name order; names must be unique."""
    directory = directory or syncs_dir()
    if not directory.is_dir():
        return []
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    loaded = [load_spec(file, directory.parent) for file in files]
    seen: dict[str, Path] = {}
    for item in loaded:
        if item.spec.name in seen:
            raise SpecError(
                f"{item.file}: sync name {item.spec.name!r} is already used by {seen[item.spec.name]}"
            )
        seen[item.spec.name] = item.file
    return loaded


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2)
