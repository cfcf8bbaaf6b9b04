"""`sf-assets validate`: every sync spec checked against the live org, one line per finding."""

from __future__ import annotations

import sys

from resources.salesforce import SalesforceLoginError
from sf_assets.connections import salesforce_from_env
from sf_assets.datasets import Dataset, DatasetError
from sf_assets.describe import UnknownObjectError, describe_object
from sf_assets.preflight import Finding, check_spec
from sf_assets.specs import LoadedSpec, SpecError, load_specs, syncs_dir


def findings_for(loaded: LoadedSpec, client: object) -> list[Finding]:
    spec = loaded.spec
    try:
        obj = describe_object(client, spec.target.object)
    except UnknownObjectError as error:
        return [Finding("error", spec.name, None, str(error))]
    try:
        columns = Dataset(loaded).columns()
    except DatasetError as error:
        return [Finding("error", spec.name, None, str(error)), *check_spec(spec, obj, None)]
    return check_spec(spec, obj, columns)


def run_validate() -> int:
    try:
        specs = load_specs()
    except SpecError as error:
        print(f"ERROR {error}", file=sys.stderr)
        return 1
    if not specs:
        print(f"no sync specs in {syncs_dir()}")
        return 0
    clients: dict[str, object] = {}
    errors = 0
    for loaded in specs:
        connection = loaded.spec.connection
        try:
            client = (
                clients.get(connection) or salesforce_from_env(connection, resolved=True).client()
            )
        except SalesforceLoginError as error:
            print(f"ERROR {loaded.spec.name}: cannot log in to '{connection}': {error}")
            errors += 1
            continue
        clients[connection] = client
        findings = findings_for(loaded, client)
        for finding in findings:
            print(finding.line())
        errors += sum(f.level == "error" for f in findings)
        if not findings:
            print(f"OK    {loaded.spec.name}: {loaded.spec.target.object} mapping fits the org")
    return 1 if errors else 0
