"""One configuration story: every command reads the environment and the project's `.env`,
the environment wins, and a connection that is not configured names the variables to set."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from tests.cli.helpers import org_settings, sf_assets, write_env_file

SPEC = {
    "name": "fans",
    "source": {"duckdb": "warehouse.duckdb", "table": "fans"},
    "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"},
    "mapping": {"External_Id__c": "id", "LastName": "last_name"},
}


def make_project(project: Path, connection: str = "default") -> None:
    with duckdb.connect(str(project / "warehouse.duckdb")) as con:
        con.execute("CREATE TABLE fans (id VARCHAR, last_name VARCHAR, _BATCH_ID_ VARCHAR)")
    (project / "syncs").mkdir()
    body = {**SPEC, "target": {**SPEC["target"], "salesforce": connection}}
    (project / "syncs" / "fans.yaml").write_text(yaml.safe_dump(body))


def test_validate_reads_the_project_env_file(tmp_path, sandbox_info):
    make_project(tmp_path)
    write_env_file(tmp_path, org_settings(sandbox_info))
    completed = sf_assets(tmp_path, "validate")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "OK    fans: Contact mapping fits the org" in completed.stdout


def test_a_variable_in_the_environment_wins_over_env_file(tmp_path, sandbox_info):
    make_project(tmp_path)
    stale = {**org_settings(sandbox_info), "SF_PASSWORD": "left-by-an-old-demo"}
    write_env_file(tmp_path, stale)
    completed = sf_assets(tmp_path, "validate", env={"SF_PASSWORD": sandbox_info["password"]})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    wrong = sf_assets(tmp_path, "validate")  # the file alone: its stale password is refused
    assert wrong.returncode == 1
    assert "INVALID_LOGIN" in wrong.stdout
    assert "left-by-an-old-demo" not in wrong.stdout + wrong.stderr


def test_missing_variables_are_named_for_the_default_connection(tmp_path):
    make_project(tmp_path)
    completed = sf_assets(tmp_path, "validate", env={"SF_LOGIN_URL": "https://test.salesforce.com"})
    assert completed.returncode == 1
    assert (
        "ERROR fans: Salesforce connection 'default' is not configured: set SF_USERNAME and "
        "SF_PASSWORD in the environment or in .env in the project folder (and "
        "SF_SECURITY_TOKEN unless the org trusts this network's IP range)"
    ) in completed.stdout


def test_missing_variables_are_named_for_a_named_connection(tmp_path, sandbox_info):
    make_project(tmp_path, connection="prod")
    settings = org_settings(sandbox_info)  # the default connection is set, prod is not
    completed = sf_assets(tmp_path, "validate", env={**settings, "SF_PROD_USERNAME": "me@acme.com"})
    assert completed.returncode == 1
    assert (
        "Salesforce connection 'prod' is not configured: set SF_PROD_PASSWORD " in completed.stdout
    )


def test_missing_variables_follow_the_login_flow(tmp_path):
    make_project(tmp_path, connection="prod")
    completed = sf_assets(tmp_path, "validate", env={"SF_PROD_AUTH_FLOW": "jwt"})
    assert completed.returncode == 1
    assert (
        "set SF_PROD_USERNAME, SF_PROD_CLIENT_ID, SF_PROD_PRIVATE_KEY_FILE in the environment"
        in completed.stdout
    )


def test_describe_names_the_variables_too(tmp_path):
    completed = sf_assets(tmp_path, "describe", "Lead")
    assert completed.returncode == 1
    assert "set SF_USERNAME and SF_PASSWORD" in completed.stderr


def test_validate_notes_a_variable_set_differently_in_both_places(tmp_path, sandbox_info):
    make_project(tmp_path)
    write_env_file(tmp_path, {**org_settings(sandbox_info), "SF_API_VERSION": "58.0"})
    completed = sf_assets(tmp_path, "validate", env={"SF_API_VERSION": "59.0"})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (
        "NOTE  SF_API_VERSION is set in the environment and, to another value, in .env: "
        "sf-assets uses the environment's value, `dg dev` the file's; keep only one"
    ) in completed.stdout
