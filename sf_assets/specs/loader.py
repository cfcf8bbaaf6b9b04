"""Sync specs: the YAML files in `syncs/` that declare what to write where.

Each file holds one sync. A bad file is reported with the file, the field path and what is
wrong, because the person who wrote it has to find the line to fix. One bad file never hides
the good ones: `read_specs` sets it aside (the code location shows it as a broken spec), and
only callers that must have every spec (`load_specs`) fail on it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from sf_assets.project import in_project
from sf_assets.specs.common import SpecError, SpecModel
from sf_assets.specs.emarsys import EmarsysSyncSpec
from sf_assets.specs.ingest import IngestSpec
from sf_assets.specs.sources import SOURCE_KINDS, DuckDBSource, table_parts
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
    """`$SF_ASSETS_SYNCS_DIR`, else `syncs/`; a relative path is in the project folder."""
    return in_project(os.environ.get("SF_ASSETS_SYNCS_DIR", "syncs")).resolve()


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


@dataclass(frozen=True)
class BrokenSpec:
    """A file in the syncs folder that is not a usable spec, and why (one readable message)."""

    file: Path
    message: str


@dataclass(frozen=True)
class SpecFolder:
    """What the syncs folder holds: the specs that load, and the files that do not."""

    specs: list[LoadedSpec]
    broken: list[BrokenSpec]

    def require_all(self) -> list[LoadedSpec]:
        """The specs, or a SpecError naming every broken file."""
        if self.broken:
            raise SpecError("\n".join(item.message for item in self.broken))
        return self.specs


def spec_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def read_specs(directory: Path | None = None) -> SpecFolder:
    """Every `*.yaml`/`*.yml` in the syncs folder, in name order. A file that does not load,
    that reuses a name an earlier file took, or that reads an ingest spec's table from another
    file is set aside with its message."""
    directory = directory or syncs_dir()
    if not directory.is_dir():
        return SpecFolder([], [])
    specs: list[LoadedSpec] = []
    broken: list[BrokenSpec] = []
    seen: dict[str, Path] = {}
    for file in spec_files(directory):
        try:
            loaded = load_spec(file, directory.parent)
        except SpecError as error:
            broken.append(BrokenSpec(file, str(error)))
            continue
        name = loaded.spec.name
        if name in seen:
            message = f"{file}: sync name {name!r} is already used by {seen[name]}; rename one"
            broken.append(BrokenSpec(file, message))
            continue
        seen[name] = file
        specs.append(loaded)
    misread = misread_tables(specs)
    set_aside = {item.file for item in misread}
    return SpecFolder([s for s in specs if s.file not in set_aside], broken + misread)


def misread_tables(specs: list[LoadedSpec]) -> list[BrokenSpec]:
    """Syncs that read a table an ingest spec writes, but from another DuckDB file. Asset keys
    name a table and not its file, so such a sync would show the ingest upstream of data it
    never reads, and it would read a stale or missing table instead (most likely the file
    path is wrong in one of the two specs)."""
    written: dict[tuple[str, ...], tuple[LoadedSpec, Path]] = {}
    for loaded in specs:
        if isinstance(loaded.spec, IngestSpec):
            into = loaded.resolve(loaded.spec.into.duckdb).resolve()
            written.update({table_parts(t): (loaded, into) for t in loaded.spec.tables()})
    misread = []
    for loaded in specs:
        source = getattr(loaded.spec, "source", None)
        if not isinstance(source, DuckDBSource) or source.table is None:
            continue
        writer, into = written.get(table_parts(source.table), (None, None))
        path = loaded.resolve(source.duckdb).resolve()
        if writer is not None and into != path:
            message = (
                f"{loaded.file}: sync {loaded.spec.name!r} reads {source.table} from "
                f"{source.duckdb}, but ingest spec {writer.spec.name!r} ({writer.file.name}) "
                f"writes that table into {writer.spec.into.duckdb}: point `source.duckdb` at "
                f"{writer.spec.into.duckdb}, or read a table of another name"
            )
            misread.append(BrokenSpec(loaded.file, message))
    return misread


def load_specs(directory: Path | None = None) -> list[LoadedSpec]:
    """Every spec of the syncs folder; a SpecError naming every file that does not load."""
    return read_specs(directory).require_all()


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2)
