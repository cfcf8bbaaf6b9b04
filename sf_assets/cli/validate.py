"""`sf-assets validate`: every sync spec checked against the live org, one line per finding."""

from __future__ import annotations

import sys

from sf_assets.cli.org import Clients, ConnectionProblem
from sf_assets.connections import missing_emarsys_settings, overridden_by_environment
from sf_assets.emarsys.lines import check_columns
from sf_assets.salesforce.describe import ObjectInfo, UnknownObjectError, describe_object
from sf_assets.salesforce.object_setup import ObjectSetupError, plan_fields, requirements
from sf_assets.salesforce.preflight import Finding, check_spec
from sf_assets.salesforce.reader.validate import ingest_findings
from sf_assets.sources import Dataset, DatasetError, Schema
from sf_assets.specs import (
    EmarsysSyncSpec,
    IngestSpec,
    LoadedSpec,
    SyncSpec,
    read_specs,
    syncs_dir,
)


def findings_for(loaded: LoadedSpec, client: object) -> list[Finding]:
    spec = loaded.spec
    try:
        obj = describe_object(client, spec.target.object)
    except UnknownObjectError as error:
        if spec.target.create_object is not None:
            return _creation_findings(loaded)
        return [Finding("error", spec.name, None, str(error))]
    try:
        columns = Dataset(loaded).columns()
    except DatasetError as error:
        message = str(error).removeprefix(f"{spec.name}: ")  # the finding names the sync
        return [Finding("error", spec.name, None, message), *check_spec(spec, obj, None)]
    if spec.target.create_object is not None:
        return _requirement_findings(spec, obj, columns)
    return _requirement_findings(spec, obj, columns, missing_only=True)


def _creation_findings(loaded: LoadedSpec) -> list[Finding]:
    """An object the first run will create: a warning listing the fields it gets."""
    spec = loaded.spec
    try:
        plans = plan_fields(spec, Dataset(loaded).columns(), None)
    except (DatasetError, ObjectSetupError) as error:
        return [Finding("error", spec.name, None, line) for line in str(error).splitlines()]
    fields = ", ".join(f"{plan.field} {plan.type.label()}" for plan in plans)
    return [
        Finding(
            "warning",
            spec.name,
            None,
            f"{spec.target.object} does not exist yet; the first run creates it with {fields} "
            "(text lengths and number scales are sized from that run's batch)",
        )
    ]


def _requirement_findings(
    spec: SyncSpec, obj: ObjectInfo, columns: Schema, *, missing_only: bool = False
) -> list[Finding]:
    """What the object lacks, each with the type the mapping needs (the set-up a user must do
    in the org), then the usual checks on the rest. For objects sf-assets does not create, only
    custom fields that can be created are listed; type fit of existing fields is preflight's."""
    lines = requirements(spec, obj, columns, None)
    if missing_only:
        lines = [line for line in lines if " is missing: create it as " in line]
    covered = {line.split(" ", 1)[0].split(".", 1)[1].lower() for line in lines}
    needs = [Finding("error", spec.name, None, line) for line in lines]
    rest = [f for f in check_spec(spec, obj, columns) if (f.field or "").lower() not in covered]
    return needs + rest


def run_validate() -> int:
    for name in overridden_by_environment():
        print(
            f"NOTE  {name} is set in the environment and, to another value, in .env: "
            "sf-assets uses the environment's value, `dg dev` the file's; keep only one"
        )
    folder = read_specs()
    for broken in folder.broken:
        print(f"ERROR {broken.message}", file=sys.stderr)
    if not folder.specs and not folder.broken:
        print(f"no sync specs in {syncs_dir()}")
        return 0
    clients = Clients()
    errors = len(folder.broken)
    for loaded in folder.specs:
        if isinstance(loaded.spec, EmarsysSyncSpec):
            missing = missing_emarsys_settings(loaded.spec.connection)
            if missing is not None:
                print(f"ERROR {loaded.spec.name}: {missing.message()}")
                errors += 1
            errors += report(
                loaded.spec.name, "sales-data file fits the rules", sales_findings(loaded)
            )
            continue
        try:
            client = clients.get(loaded.spec.connection)
        except ConnectionProblem as problem:
            print(f"ERROR {loaded.spec.name}: {problem}")
            errors += 1
            continue
        if isinstance(loaded.spec, IngestSpec):
            errors += report(
                loaded.spec.name,
                "objects, fields and filters fit the org",
                ingest_findings(loaded.spec, client),
            )
            continue
        fits = f"{loaded.spec.target.object} mapping fits the org"
        errors += report(loaded.spec.name, fits, findings_for(loaded, client))
    return 1 if errors else 0


def report(sync: str, ok_text: str, findings: list[Finding]) -> int:
    """Print one line per finding (or OK); the number of errors."""
    for finding in findings:
        print(finding.line())
    if not findings:
        print(f"OK    {sync}: {ok_text}")
    return sum(f.level == "error" for f in findings)


def sales_findings(loaded: LoadedSpec) -> list[Finding]:
    """An Emarsys sync: the header rules, and the mapped source columns exist."""
    spec = loaded.spec
    found = [
        Finding("error", spec.name, None, problem)
        for problem in check_columns(list(spec.target.columns), dict(spec.mapping))
    ]
    try:
        columns = Dataset(loaded).columns()
    except DatasetError as error:
        return [
            *found,
            Finding("error", spec.name, None, str(error).removeprefix(f"{spec.name}: ")),
        ]
    missing = sorted(set(spec.mapping.values()) - set(columns))
    if missing:
        found.append(
            Finding("error", spec.name, None, f"source has no column(s) {', '.join(missing)}")
        )
    return found
