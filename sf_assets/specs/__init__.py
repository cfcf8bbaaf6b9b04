"""Sync specs: one YAML file per sync in `syncs/`, one pydantic model per kind.

The kind is named by the spec's target (`target: {salesforce: …}` or `target: {emarsys: …}`),
or by `read:` for a spec that reads Salesforce into DuckDB;
`loader` reads the files, tells the kinds apart through a discriminated union, and reports a
bad file with the file, the field path and what is wrong.
"""

from sf_assets.specs.common import NAME_PATTERN, Freshness, SpecError, SpecModel
from sf_assets.specs.emarsys import EMARSYS_STANDARD_COLUMNS, EmarsysSyncSpec, EmarsysTarget
from sf_assets.specs.ingest import IngestSpec
from sf_assets.specs.loader import (
    AnySyncSpec,
    BrokenSpec,
    LoadedSpec,
    SpecFolder,
    json_schema,
    load_spec,
    load_specs,
    read_specs,
    schema_text,
    spec_kind,
    syncs_dir,
)
from sf_assets.specs.sources import DEFAULT_BATCH_COLUMN, DuckDBSource, FileSource, Source
from sf_assets.specs.writeback import CreateObject, SalesforceTarget, SyncSpec

__all__ = [
    "DEFAULT_BATCH_COLUMN",
    "EMARSYS_STANDARD_COLUMNS",
    "NAME_PATTERN",
    "AnySyncSpec",
    "BrokenSpec",
    "CreateObject",
    "DuckDBSource",
    "EmarsysSyncSpec",
    "EmarsysTarget",
    "FileSource",
    "Freshness",
    "IngestSpec",
    "LoadedSpec",
    "SalesforceTarget",
    "Source",
    "SpecError",
    "SpecFolder",
    "SpecModel",
    "SyncSpec",
    "json_schema",
    "load_spec",
    "load_specs",
    "read_specs",
    "schema_text",
    "spec_kind",
    "syncs_dir",
]
