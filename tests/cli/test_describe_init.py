"""`sf-assets describe` and `sf-assets init` against the sandbox org: what they say when the
object, the source or the match key cannot be found."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from tests.cli.helpers import org_settings, sf_assets


def warehouse(project: Path, columns: str) -> None:
    with duckdb.connect(str(project / "w.duckdb")) as con:
        con.execute(f"CREATE TABLE people ({columns})")


def test_describe_suggests_a_close_object_name(tmp_path, sandbox_info):
    completed = sf_assets(tmp_path, "describe", "Contatc", env=org_settings(sandbox_info))
    assert completed.returncode == 1
    assert "Salesforce object 'Contatc' does not exist" in completed.stderr
    assert "did you mean Contact?" in completed.stderr


def test_describe_lists_external_ids_and_id_lookup_fields(tmp_path, sandbox_info):
    completed = sf_assets(tmp_path, "describe", "Contact", env=org_settings(sandbox_info))
    assert completed.returncode == 0, completed.stderr
    assert "external ids (upsert matches natively): External_Id__c" in completed.stdout
    assert "Email" in completed.stdout.split("idLookup fields")[1]


def test_init_lists_required_fields_no_column_covers(tmp_path, sandbox_info):
    warehouse(tmp_path, "external_id VARCHAR, email VARCHAR, first_name VARCHAR")
    completed = sf_assets(
        tmp_path,
        "init",
        "people",
        "--object",
        "Contact",
        "--duckdb",
        "w.duckdb",
        "--table",
        "people",
        env=org_settings(sandbox_info),
    )
    assert completed.returncode == 1  # written, but validate finds the missing LastName
    assert "required to create a Contact but no column matched: LastName" in completed.stdout
    assert "ERROR people: Contact.LastName: required to create a Contact" in completed.stdout
    spec = yaml.safe_load((tmp_path / "syncs" / "people.yaml").read_text())
    assert spec["target"]["match_on"] == "External_Id__c"  # an external id beats idLookup Email
    assert spec["source"]["batch_column"] is None  # no _BATCH_ID_ column: written whole
    assert "# LastName: <column>" in (tmp_path / "syncs" / "people.yaml").read_text()


def test_init_without_a_key_says_which_fields_can_match(tmp_path, sandbox_info):
    warehouse(tmp_path, "last_name VARCHAR, phone VARCHAR")
    completed = sf_assets(
        tmp_path,
        "init",
        "people",
        "--object",
        "Contact",
        "--duckdb",
        "w.duckdb",
        "--table",
        "people",
        env=org_settings(sandbox_info),
    )
    assert completed.returncode == 1
    assert "pass --match-on FIELD" in completed.stderr
    assert "External_Id__c" in completed.stderr and "Email" in completed.stderr
    assert not (tmp_path / "syncs" / "people.yaml").exists()


def test_init_never_overwrites_a_spec_without_force(tmp_path, sandbox_info):
    warehouse(tmp_path, "external_id VARCHAR, last_name VARCHAR")
    (tmp_path / "syncs").mkdir()
    (tmp_path / "syncs" / "people.yaml").write_text("# mine\n")
    completed = sf_assets(
        tmp_path,
        "init",
        "people",
        "--object",
        "Contact",
        "--duckdb",
        "w.duckdb",
        "--table",
        "people",
        env=org_settings(sandbox_info),
    )
    assert completed.returncode == 1 and "pass --force" in completed.stderr
    assert (tmp_path / "syncs" / "people.yaml").read_text() == "# mine\n"


def test_init_names_a_missing_table_with_what_exists(tmp_path, sandbox_info):
    warehouse(tmp_path, "id VARCHAR")
    completed = sf_assets(
        tmp_path,
        "init",
        "people",
        "--object",
        "Contact",
        "--duckdb",
        "w.duckdb",
        "--table",
        "peeple",
        env=org_settings(sandbox_info),
    )
    assert completed.returncode == 1
    assert "no table or view 'peeple'" in completed.stderr and "main.people" in completed.stderr


def test_init_from_csv_files_matches_labels_and_proposes_the_external_id(tmp_path, sandbox_info):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "a.csv").write_text(
        "External Id,Last Name,E-mail,_BATCH_ID_\nx-1,One,one@example.com,b1\n"
    )
    completed = sf_assets(
        tmp_path,
        "init",
        "people",
        "--object",
        "Contact",
        "--csv",
        "exports/*.csv",
        env=org_settings(sandbox_info),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    spec = yaml.safe_load((tmp_path / "syncs" / "people.yaml").read_text())
    assert spec["source"] == {"csv": "exports/*.csv", "batch_column": "_BATCH_ID_"}
    assert spec["mapping"] == {
        "External_Id__c": "External Id",
        "LastName": "Last Name",
        "Email": "E-mail",
    }
    assert spec["target"]["match_on"] == "External_Id__c"
