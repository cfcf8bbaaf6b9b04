"""The writeback assets in a real Dagster instance against the sandbox org over HTTPS:
partitions per batch, the sensor with a real context, checks, rejects, and what re-runs send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from sf_assets.assets.checks import writeback_checks
from sf_assets.definitions import build_definitions
from sf_assets.specs import load_specs

SYNC = "fans"
GOOD = [
    {"contact_id": "f-1", "last_name": "One", "email": "one@example.com", "tickets": "1"},
    {"contact_id": "f-2", "last_name": "Two", "email": "two@example.com", "tickets": "2"},
]


def spec(api: str = "auto", **changes: Any) -> dict[str, Any]:
    body = {
        "name": SYNC,
        "source": {"duckdb": "warehouse.duckdb", "table": "crm.fans"},
        "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"},
        "mapping": {
            "External_Id__c": "contact_id",
            "LastName": "last_name",
            "Email": "email",
            "Ticket_Count__c": "tickets",
        },
        "api": api,
    }
    body.update(changes)
    return body


def write_warehouse(project: Path, rows: list[dict[str, Any]]) -> None:
    path = project / "warehouse.duckdb"
    path.unlink(missing_ok=True)
    frame = pl.DataFrame(rows, schema={k: pl.Utf8 for k in [*GOOD[0], "_BATCH_ID_"]})
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA crm")
        con.register("rows", frame)
        con.execute("CREATE TABLE crm.fans AS SELECT * FROM rows")


def batch(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "_BATCH_ID_": name} for row in rows]


@pytest.fixture
def project(tmp_path: Path, sandbox, monkeypatch) -> Path:
    info = sandbox.info()
    (tmp_path / "syncs").mkdir()
    monkeypatch.setenv("SF_LOGIN_URL", info["login_url"])
    monkeypatch.setenv("SF_USERNAME", info["username"])
    monkeypatch.setenv("SF_PASSWORD", info["password"])
    monkeypatch.setenv("SF_SECURITY_TOKEN", info["security_token"])
    monkeypatch.setenv("SF_CA_BUNDLE", info["ca_bundle"])
    monkeypatch.setenv("SF_ASSETS_STAGING", str(tmp_path / "staging.duckdb"))
    monkeypatch.setenv("SF_ASSETS_SYNCS_DIR", str(tmp_path / "syncs"))
    return tmp_path


def definitions(project: Path, body: dict[str, Any]) -> dg.Definitions:
    (project / "syncs" / f"{SYNC}.yaml").write_text(yaml.safe_dump(body))
    return build_definitions(load_specs(project / "syncs"))


def run_batch(
    defs: dg.Definitions, instance: dg.DagsterInstance, key: str
) -> dg.ExecuteInProcessResult:
    if not instance.has_dynamic_partition(f"{SYNC}_batches", key):
        instance.add_dynamic_partitions(f"{SYNC}_batches", [key])
    job = defs.resolve_job_def(f"{SYNC}_writeback")
    return job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)


def metadata(result: dg.ExecuteInProcessResult, step: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == [SYNC, step]:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{step} was not materialized")


def contacts(http) -> dict[str, dict[str, Any]]:
    return {r["External_Id__c"]: r for r in http.admin("GET", "records/Contact")}


@pytest.mark.parametrize("api", ["rest", "bulk"])
def test_batches_are_written_once_each_and_updates_land(project, http, api):
    write_warehouse(
        project,
        batch("b1", GOOD)
        + batch("b2", [{**GOOD[0], "tickets": "5"}, {**GOOD[1], "contact_id": "f-3"}]),
    )
    defs = definitions(project, spec(api))
    with dg.instance_for_test() as instance:
        first = run_batch(defs, instance, "b1")
        assert first.success
        written = metadata(first, "written")
        assert (written["sent"], written["created"], written["updated"]) == (2, 2, 0)
        second = run_batch(defs, instance, "b2")
        written = metadata(second, "written")
        assert (written["sent"], written["created"], written["updated"]) == (2, 1, 1)
        again = run_batch(defs, instance, "b1")
        assert metadata(again, "written")["sent"] == 0
    records = contacts(http)
    assert sorted(records) == ["f-1", "f-2", "f-3"]
    assert records["f-1"]["Ticket_Count__c"] == 5.0


def test_bad_rows_go_to_rejects_with_reasons_and_the_rest_is_written(project, http):
    rows = [
        *GOOD,
        {"contact_id": "f-3", "last_name": None, "email": "x@example.com", "tickets": "1"},
        {"contact_id": "f-4", "last_name": "Bad", "email": "no-at-sign", "tickets": "1"},
        {"contact_id": "f-5", "last_name": "Bad", "email": "y@example.com", "tickets": "many"},
        {"contact_id": "f-6", "last_name": "L" * 81, "email": "z@example.com", "tickets": "1"},
        {"contact_id": "f-7", "last_name": "Twice", "email": "a@example.com", "tickets": "1"},
        {"contact_id": "f-7", "last_name": "Twice", "email": "b@example.com", "tickets": "1"},
    ]
    write_warehouse(project, batch("b1", rows))
    defs = definitions(project, spec())
    with dg.instance_for_test() as instance:
        result = run_batch(defs, instance, "b1")
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {
            "required_fields_present": True,
            "match_keys_unique": True,
            "rows_refused": True,  # mapping set the bad rows aside: Salesforce refused none
        }
        rejects = metadata(result, "rejects")
    assert rejects["rejected"] == 6
    assert set(rejects["by reason"]) >= {
        "REQUIRED_FIELD_MISSING",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_NUMBER",
        "STRING_TOO_LONG",
        "DUPLICATE_KEY",
    }
    assert sorted(contacts(http)) == ["f-1", "f-2"]
    staged = duckdb.connect(str(project / "staging.duckdb"), read_only=True)
    reasons = staged.execute(f'SELECT key, reason FROM "{SYNC}__rejects"').fetchall()
    assert any(key == "f-4" and "f-4" in reason and "email" in reason for key, reason in reasons)


def test_salesforce_refusals_are_rejects_with_a_hint(project, http):
    http.admin("POST", "records/Contact", json=[{"LastName": "Owner", "External_Id__c": "F-9"}])
    rows = [
        *GOOD,
        {"contact_id": "f-9", "last_name": "Dup", "email": "d@example.com", "tickets": "1"},
    ]
    write_warehouse(project, batch("b1", rows))
    insert = {"object": "Contact", "operation": "insert", "match_on": "External_Id__c"}
    defs = definitions(project, spec("rest", target=insert))
    with dg.instance_for_test() as instance:
        result = run_batch(defs, instance, "b1")
        written = metadata(result, "written")
        rejects = metadata(result, "rejects")
    assert (written["created"], written["failed"]) == (2, 1)
    assert rejects["by reason"] == {"DUPLICATE_VALUE": 1}
    (refused,) = [r.data for r in rejects["sample"].records if r.data["stage"] == "salesforce"]
    assert "duplicate value found" in refused["reason"]
    assert refused["hint"].startswith("Another record already holds this value")


def test_sensor_requests_only_batches_newer_than_the_highest_written(project):
    write_warehouse(project, batch("b1", GOOD) + batch("b2", GOOD) + batch("b3", GOOD))
    defs = definitions(project, spec())
    sensor = defs.resolve_sensor_def(f"{SYNC}_batches")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance_ref=instance.get_ref(), definitions=defs, resources=defs.resources
        )
        first = sensor.evaluate_tick(context)
        assert [r.partition_key for r in first.run_requests] == ["b1", "b2", "b3"]
        assert [r.run_key for r in first.run_requests] == ["b1", "b2", "b3"]
        (added,) = first.dynamic_partitions_requests
        assert list(added.partition_keys) == ["b1", "b2", "b3"]
        instance.add_dynamic_partitions(f"{SYNC}_batches", ["b1", "b2", "b3"])
        assert run_batch(defs, instance, "b2").success
        later = sensor.evaluate_tick(
            dg.build_sensor_context(
                instance_ref=instance.get_ref(), definitions=defs, resources=defs.resources
            )
        )
        assert [r.partition_key for r in later.run_requests] == ["b3"]
        assert not later.dynamic_partitions_requests


def test_spec_that_does_not_fit_the_org_fails_before_writing(project, http):
    write_warehouse(project, batch("b1", GOOD))
    body = spec()
    body["mapping"] = {**body["mapping"], "Emial__c": "email"}
    defs = definitions(project, body)
    with dg.instance_for_test() as instance:
        result = run_batch(defs, instance, "b1")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "Emial__c" in str(failure.event_specific_data.error)
    assert contacts(http) == {}


def test_no_secret_reaches_logs_metadata_event_log_or_staging(project, sandbox, capfd):
    info = sandbox.info()
    secrets = [info["password"], info["security_token"], info["client_secret"]]
    write_warehouse(project, batch("b1", GOOD))
    defs = definitions(project, spec())
    with dg.instance_for_test() as instance:
        result = run_batch(defs, instance, "b1")
        assert result.success
        records = instance.all_logs(result.run_id)
        event_text = "\n".join(str(r) for r in records)
        run_text = str(instance.get_run_by_id(result.run_id))
    staging_bytes = (project / "staging.duckdb").read_bytes()
    out = capfd.readouterr()
    for secret in secrets:
        assert secret not in event_text
        assert secret not in run_text
        assert secret.encode() not in staging_bytes
        assert secret not in out.out + out.err


def test_checks_fail_on_duplicate_keys_and_missing_required_values(sandbox):
    from sf_sandbox.schema import load_schema

    from sf_assets.salesforce.describe import ObjectInfo
    from sf_assets.specs import SyncSpec

    schema = load_schema()
    obj = ObjectInfo.from_describe(schema.get("Contact").describe("59.0", schema))
    rows = pl.DataFrame({"_key": ["a", "a"], "LastName": [None, "x"]})
    results = {
        r.check_name: r for r in writeback_checks(SyncSpec.model_validate(spec()), obj, rows)
    }
    assert not results["match_keys_unique"].passed
    assert not results["required_fields_present"].passed


def test_csv_source_with_invalid_utf8_bad_date_and_picklist(project, http):
    (project / "exports").mkdir()
    (project / "exports" / "fans.csv").write_bytes(
        b"contact_id,last_name,birthdate,tier,_BATCH_ID_\n"
        b"c-1,Good,1990-01-31,Gold,b1\n"
        b"c-2,Bad\xff\xfeName,1990-01-31,Gold,b1\n"
        b"c-3,Late,1990-02-31,Gold,b1\n"
        b"c-4,Shiny,1990-01-31,Diamond,b1\n"
    )
    body = spec(
        source={"csv": "exports/*.csv"},
        mapping={
            "External_Id__c": "contact_id",
            "LastName": "last_name",
            "Birthdate": "birthdate",
            "Fan_Tier__c": "tier",
        },
    )
    defs = definitions(project, body)
    with dg.instance_for_test() as instance:
        result = run_batch(defs, instance, "b1")
        assert result.success
        rejects = metadata(result, "rejects")
    assert rejects["by reason"] == {
        "INVALID_UTF8": 1,
        "INVALID_DATE": 1,
        "INVALID_PICKLIST_VALUE": 1,
    }
    assert list(contacts(http)) == ["c-1"]
    assert contacts(http)["c-1"]["Birthdate"] == "1990-01-31"


def test_unknown_table_fails_the_run_naming_the_sync_and_the_table(project, http):
    write_warehouse(project, batch("b1", GOOD))
    defs = definitions(project, spec(source={"duckdb": "warehouse.duckdb", "table": "crm.fanz"}))
    with dg.instance_for_test() as instance:
        result = run_batch(defs, instance, "b1")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.event_specific_data.error)
    assert SYNC in message and "crm.fanz" in message
    assert contacts(http) == {}
