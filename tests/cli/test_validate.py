"""`sf-assets schema` and `sf-assets validate` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import yaml

SF_ASSETS = str(Path(sys.executable).parent / "sf-assets")


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SF_ASSETS, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def environment(info: dict[str, Any], project: Path) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "SF_LOGIN_URL": info["login_url"],
        "SF_USERNAME": info["username"],
        "SF_PASSWORD": info["password"],
        "SF_SECURITY_TOKEN": info["security_token"],
        "SF_CA_BUNDLE": info["ca_bundle"],
        "SF_ASSETS_SYNCS_DIR": str(project / "syncs"),
    }


def write_spec(project: Path, name: str, **changes: Any) -> None:
    body = {
        "name": name,
        "source": {"duckdb": "warehouse.duckdb", "table": "fans"},
        "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"},
        "mapping": {"External_Id__c": "id", "LastName": "last_name", "Email": "email"},
        **changes,
    }
    (project / "syncs").mkdir(exist_ok=True)
    (project / "syncs" / f"{name}.yaml").write_text(yaml.safe_dump(body))


def make_warehouse(project: Path) -> None:
    with duckdb.connect(str(project / "warehouse.duckdb")) as con:
        con.execute(
            "CREATE TABLE fans (id VARCHAR, last_name VARCHAR, email VARCHAR, "
            "birthday DATE, _BATCH_ID_ VARCHAR)"
        )


def test_schema_prints_the_json_schema_of_a_sync(tmp_path):
    completed = run(["schema"], {}, tmp_path)
    assert completed.returncode == 0
    schema = json.loads(completed.stdout)
    salesforce = schema["$defs"]["SyncSpec"]
    assert {"name", "source", "target", "mapping"} <= set(salesforce["properties"])
    assert "EmarsysSyncSpec" in schema["$defs"]


def test_validate_passes_a_spec_that_fits_the_org(tmp_path, sandbox_info):
    make_warehouse(tmp_path)
    write_spec(tmp_path, "fans")
    completed = run(["validate"], environment(sandbox_info, tmp_path), tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "OK" in completed.stdout and "fans" in completed.stdout


def test_validate_reports_each_problem_on_its_own_line(tmp_path, sandbox_info):
    make_warehouse(tmp_path)
    write_spec(
        tmp_path,
        "fans",
        mapping={
            "External_Id__c": "id",
            "Emial": "email",
            "Birthdate": "id",
            "Ticket_Count__c": "birthday",
        },
    )
    completed = run(["validate"], environment(sandbox_info, tmp_path), tmp_path)
    assert completed.returncode == 1
    errors = [line for line in completed.stdout.splitlines() if line.startswith("ERROR")]
    assert any("Emial" in line for line in errors), errors
    assert any("LastName" in line for line in errors), "the unmapped required field"
    assert any("Ticket_Count__c" in line for line in errors), "a date into a number field"
    assert sandbox_info["password"] not in completed.stdout + completed.stderr


def test_validate_names_the_file_and_field_of_a_bad_spec(tmp_path, sandbox_info):
    write_spec(tmp_path, "fans", api="sometimes")
    completed = run(["validate"], environment(sandbox_info, tmp_path), tmp_path)
    assert completed.returncode == 1
    assert "fans.yaml" in completed.stderr and "api" in completed.stderr


def test_two_syncs_with_one_name_are_refused(tmp_path, sandbox_info):
    write_spec(tmp_path, "fans")
    (tmp_path / "syncs" / "copy.yaml").write_text((tmp_path / "syncs" / "fans.yaml").read_text())
    completed = run(["validate"], environment(sandbox_info, tmp_path), tmp_path)
    assert completed.returncode == 1
    assert "already used" in completed.stderr


def test_validate_names_the_type_a_missing_custom_field_needs(tmp_path, sandbox_info):
    make_warehouse(tmp_path)
    write_spec(
        tmp_path,
        "fans",
        mapping={"External_Id__c": "id", "LastName": "last_name", "Fan_Birthday__c": "birthday"},
    )
    completed = run(["validate"], environment(sandbox_info, tmp_path), tmp_path)
    assert completed.returncode == 1
    assert "Contact.Fan_Birthday__c is missing: create it as Date" in completed.stdout


def test_validate_suggests_the_source_column_meant(tmp_path, sandbox_info):
    make_warehouse(tmp_path)
    write_spec(
        tmp_path,
        "fans",
        mapping={"External_Id__c": "id", "LastName": "last_nmae", "Email": "email"},
    )
    completed = run(["validate"], environment(sandbox_info, tmp_path), tmp_path)
    assert completed.returncode == 1
    assert (
        "ERROR fans: Contact.LastName: source column 'last_nmae' is not in the dataset "
        "(did you mean last_name?)"
    ) in completed.stdout


def test_validate_names_a_missing_key_column_with_a_suggestion(tmp_path, sandbox_info):
    make_warehouse(tmp_path)
    write_spec(
        tmp_path,
        "fans",
        mapping={"External_Id__c": "ids", "LastName": "last_name"},
    )
    completed = run(["validate"], environment(sandbox_info, tmp_path), tmp_path)
    assert completed.returncode == 1
    assert "ERROR fans: source has no key column 'ids'; did you mean 'id'? (columns:" in (
        completed.stdout
    )
