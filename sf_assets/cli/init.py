"""`sf-assets init`: a sync spec scaffolded from a table or files and the org's describe.

Columns are matched to fields by name (ignoring case, underscores, spaces and the `__c`
suffix, against API names and labels), the match key is proposed from the matched fields that
can identify a record (an external id first, then a unique or idLookup field), and required
fields that no column covers are listed. The file is then validated like `sf-assets validate`
does, so the first thing the user reads is what is left to fix.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sf_assets.cli.org import ConnectionProblem, login
from sf_assets.cli.validate import findings_for
from sf_assets.names import comparable
from sf_assets.salesforce.describe import FieldInfo, ObjectInfo, UnknownObjectError, describe_object
from sf_assets.sources import Dataset, DatasetError, Schema
from sf_assets.sources.schema import ROW_COLUMN
from sf_assets.specs import (
    DEFAULT_BATCH_COLUMN,
    NAME_PATTERN,
    LoadedSpec,
    SpecError,
    SyncSpec,
    load_spec,
    syncs_dir,
)


@dataclass(frozen=True)
class InitRequest:
    """What the user asked for on the command line."""

    name: str
    object: str
    source: dict[str, str]  # {"duckdb": file, "table": t} | {"duckdb", "sql"} | {"csv"|"parquet"}
    batch_column: str | None = None  # None: `_BATCH_ID_` when the source has it
    whole: bool = False  # the dataset has no batches: written whole, changes only
    match_on: str | None = None
    operation: str = "upsert"
    connection: str = "default"
    force: bool = False


@dataclass(frozen=True)
class Scaffold:
    """The proposal: which column feeds which field, the key, and what is still missing."""

    mapping: dict[str, str]  # field -> column
    match_on: str | None
    unmatched: list[str]  # source columns no field matched
    uncovered: list[str]  # fields required to create a record that no column feeds


class InitError(Exception):
    """Something init cannot decide for the user; the message says what to pass or fix."""


def request_from(args: argparse.Namespace) -> InitRequest:
    """The command line as a request; exactly one source must be named."""
    given = {k: getattr(args, k) for k in ("duckdb", "table", "sql", "csv", "parquet")}
    source = {k: v for k, v in given.items() if v}
    return InitRequest(
        name=args.name,
        object=args.object,
        source=source,
        batch_column=args.batch_column,
        whole=args.no_batches,
        match_on=args.match_on,
        operation=args.operation,
        connection=args.connection,
        force=args.force,
    )


def run_init(request: InitRequest) -> int:
    try:
        return write_scaffold(request)
    except InitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def write_scaffold(request: InitRequest) -> int:
    if not re.fullmatch(NAME_PATTERN, request.name):
        raise InitError(
            f"{request.name!r} is not a sync name: use lower-case letters, digits and "
            "underscores, starting with a letter (e.g. leads_to_salesforce)"
        )
    if not valid_source(request.source):
        raise InitError(
            "name the source: --duckdb FILE with --table NAME or --sql QUERY, or --csv GLOB, "
            "or --parquet GLOB"
        )
    path = syncs_dir() / f"{request.name}.yaml"
    if path.exists() and not request.force:
        raise InitError(f"{path} exists already; pass --force to replace it")
    columns = source_columns(request)
    client = connect(request.connection)
    try:
        obj = describe_object(client, request.object)
    except UnknownObjectError as error:
        raise InitError(str(error)) from None
    batch_column = choose_batch_column(request, columns)
    usable = [c for c in columns if c not in (batch_column, ROW_COLUMN)]
    scaffold = propose(obj, usable, request)
    if scaffold.match_on is None:
        raise InitError(no_key_message(obj, scaffold))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec_text(request, obj, scaffold, batch_column), encoding="utf-8")
    print(f"wrote {path}")
    print_proposal(obj, scaffold, batch_column)
    return validate_written(path, client)


def valid_source(source: dict[str, str]) -> bool:
    keys = set(source)
    return keys in ({"duckdb", "table"}, {"duckdb", "sql"}, {"csv"}, {"parquet"})


def source_columns(request: InitRequest) -> Schema:
    """The source's columns, read through the same readers a run uses."""
    provisional = SyncSpec.model_validate(
        {
            "name": request.name,
            "source": {**request.source, "batch_column": None},
            "target": {"object": request.object, "match_on": "Id"},
            "mapping": {"Id": "_"},
        }
    )
    loaded = LoadedSpec(spec=provisional, file=syncs_dir() / "new.yaml", root=syncs_dir().parent)
    try:
        return Dataset(loaded).found_columns()
    except DatasetError as error:
        raise InitError(str(error)) from None


def connect(connection: str) -> Any:
    try:
        return login(connection)
    except ConnectionProblem as problem:
        raise InitError(str(problem)) from None


def choose_batch_column(request: InitRequest, columns: Schema) -> str | None:
    if request.whole:
        return None
    if request.batch_column is not None:
        if request.batch_column not in columns:
            raise InitError(
                f"the source has no column {request.batch_column!r} for --batch-column "
                f"(columns: {', '.join(columns)})"
            )
        return request.batch_column
    return DEFAULT_BATCH_COLUMN if DEFAULT_BATCH_COLUMN in columns else None


# -- matching columns to fields ---------------------------------------------------------------


def propose(obj: ObjectInfo, columns: list[str], request: InitRequest) -> Scaffold:
    writable = [f for f in obj.fields.values() if f.createable or f.updateable or f.name == "Id"]
    by_name: dict[str, FieldInfo] = {}
    for field in writable:  # API names win over labels when both match some column
        by_name.setdefault(comparable(field.label), field)
    for field in writable:
        by_name[comparable(field.name)] = field
    mapping: dict[str, str] = {}
    unmatched: list[str] = []
    for column in columns:
        field = by_name.get(comparable(column))
        if field is None or field.name in mapping:
            unmatched.append(column)
            continue
        mapping[field.name] = column
    match_on = request.match_on or proposed_key(obj, mapping)
    if match_on is not None:
        known = obj.field(match_on)
        match_on = known.name if known else match_on
    creating = request.operation in ("insert", "upsert")
    uncovered = [
        f.name
        for f in obj.fields.values()
        if creating and f.required_on_create and f.name not in mapping
    ]
    return Scaffold(mapping, match_on, unmatched, sorted(uncovered))


def proposed_key(obj: ObjectInfo, mapping: dict[str, str]) -> str | None:
    """The matched field best able to identify a record: an external id (native upsert), then
    a unique field, then an idLookup field such as Email (looked up first)."""
    fields = [obj.fields[name] for name in mapping]
    for wanted in ("external_id", "unique", "id_lookup"):
        found = [f.name for f in fields if getattr(f, wanted) and f.name != "Id"]
        if found:
            return found[0]
    return None


def no_key_message(obj: ObjectInfo, scaffold: Scaffold) -> str:
    candidates = [f.name for f in obj.fields.values() if f.matchable and f.name != "Id"]
    return (
        f"no column matches a field that identifies a {obj.name} record, so there is no match "
        f"key to propose: pass --match-on FIELD with a column mapped to it (fields that can "
        f"match: {', '.join(candidates) or 'none'}; matched so far: "
        f"{', '.join(scaffold.mapping) or 'nothing'})"
    )


# -- the file -------------------------------------------------------------------------------------


def spec_text(
    request: InitRequest, obj: ObjectInfo, scaffold: Scaffold, batch_column: str | None
) -> str:
    source: dict[str, Any] = {**request.source, "batch_column": batch_column}
    target: dict[str, Any] = {
        "salesforce": request.connection,
        "object": obj.name,
        "operation": request.operation,
        "match_on": scaffold.match_on,
    }
    body = {"name": request.name, "source": source, "target": target}
    what = f"{', '.join(request.source.values())}"
    lines = [
        f"# Scaffolded by `sf-assets init` from {what} and the org's describe of {obj.name}.",
        "# Check the mapping, then run `sf-assets validate` and `sf-assets plan "
        f"{request.name}` before the first write.",
        yaml.safe_dump(body, sort_keys=False).rstrip(),
        "mapping:  # Salesforce field: source column",
        *(f"  {field}: {column}" for field, column in scaffold.mapping.items()),
    ]
    if scaffold.uncovered:
        lines.append(f"  # required to create a {obj.name}, no column matched (map one):")
        lines += [f"  # {field}: <column>" for field in scaffold.uncovered]
    if scaffold.unmatched:
        lines.append("# source columns no field matched (map them by hand or leave them out):")
        lines.append("#   " + ", ".join(scaffold.unmatched))
    lines.append("# New syncs' sensors start stopped; set running (or start it in the UI) once")
    lines.append("# a first batch looks right.")
    lines.append("sensor_status: stopped")
    return "\n".join(lines) + "\n"


def print_proposal(obj: ObjectInfo, scaffold: Scaffold, batch_column: str | None) -> None:
    for field, column in scaffold.mapping.items():
        print(f"  {column:<24} -> {obj.name}.{field}")
    print(f"match key: {scaffold.match_on}")
    print(
        f"batches: by {batch_column}"
        if batch_column
        else "batches: none (the dataset is written whole; only new or changed rows are sent)"
    )
    if scaffold.unmatched:
        print(f"not matched to any field: {', '.join(scaffold.unmatched)}")
    if scaffold.uncovered:
        print(
            f"required to create a {obj.name} but no column matched: "
            f"{', '.join(scaffold.uncovered)} (map a column to each in the file)"
        )


def validate_written(path: Path, client: Any) -> int:
    """The new file checked as `sf-assets validate` checks it; 1 when it needs fixing."""
    try:
        loaded = load_spec(path, path.parent.parent)
    except SpecError as error:
        print(f"ERROR {error}")
        return 1
    findings = findings_for(loaded, client)
    for finding in findings:
        print(finding.line())
    errors = sum(f.level == "error" for f in findings)
    if errors:
        print(f"{path.name}: fix the {errors} error(s) above, then run `sf-assets validate`")
        return 1
    print(f"OK    {loaded.spec.name}: {loaded.spec.target.object} mapping fits the org")
    return 0
