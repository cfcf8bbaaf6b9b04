"""Sync specs: the YAML files in `syncs/` that declare what to write where.

Each file holds one sync. A bad file fails loading with the file, the field path and what is
wrong, because the person who wrote it has to find the line to fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from sf_assets.specs.common import SpecError, SpecModel
from sf_assets.specs.emarsys import EmarsysSyncSpec
from sf_assets.specs.ingest import IngestSpec
from sf_assets.specs.sources import SOURCE_KINDS
from sf_assets.specs.writeback import SyncSpec


def spec_kind(value: Any) -> str:
    """The kind of a spec, named by its target: `target: {emarsys: …}` uploads sales data to
    Emarsys; any other target (`salesforce:` being the default connection) writes to Salesforce;
    a spec with `read:` and no target reads Salesforce into DuckDB."""
    if isinstance(value, dict):
        target = value.get("target")
        if target is None and "read" in value:
            return "ingest"
        return "emarsys" if isinstance(target, dict) and "emarsys" in target else "salesforce"
    return value.kind


AnySyncSpec = Annotated[
    Annotated[SyncSpec, Tag("salesforce")]
    | Annotated[EmarsysSyncSpec, Tag("emarsys")]
    | Annotated[IngestSpec, Tag("ingest")],
    Discriminator(spec_kind),
]
SPEC_ADAPTER: TypeAdapter[SyncSpec | EmarsysSyncSpec | IngestSpec] = TypeAdapter(AnySyncSpec)
SPEC_KINDS = ("salesforce", "emarsys", "ingest")


class LoadedSpec(SpecModel):
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
    return SPEC_ADAPTER.json_schema()


def load_spec(file: Path, root: Path) -> LoadedSpec:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SpecError(f"{file}: cannot read the spec: {error}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{file}: a sync spec is a mapping of fields, not {type(data).__name__}")
    try:
        spec = SPEC_ADAPTER.validate_python(data)
    except ValidationError as error:
        raise SpecError(_describe(file, error)) from None
    return LoadedSpec(spec=spec, file=file, root=root)


def _describe(file: Path, error: ValidationError) -> str:
    lines = [f"{file}: {error.error_count()} problem(s) in the sync spec"]
    for item in error.errors():
        path = ".".join(field_path(item["loc"])) or "(top)"
        lines.append(f"  {path}: {item['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def field_path(loc: tuple[int | str, ...]) -> list[str]:
    """The location as the person wrote it: without the tags pydantic adds for the spec kind
    (first) and the source kind (right after `source`)."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in SPEC_KINDS:
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "source" and parts[1] in SOURCE_KINDS:
        del parts[1]
    return parts


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
