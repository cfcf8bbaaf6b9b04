"""The writeback assets in a real Dagster instance against the sandbox org over HTTPS:
partitions per batch, the sensor with a real context, checks, rejects, and what re-runs send."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from dagster._core.scheduler.instigation import SensorInstigatorData
from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME, is_under_min_interval

from sf_assets.assets.sensors import evaluate_tick
from sf_assets.definitions import build_definitions
from sf_assets.specs import load_specs
from sf_assets.state import DuckDBStateStore

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
    defs = definitions(project, spec(max_reject_share=0.9))
    with dg.instance_for_test() as instance:
        result = run_batch(defs, instance, "b1")
        assert result.success
        [share] = [
            e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == "mapped"
        ]
        assert (share.check_name, share.passed) == ("reject_share_within_limit", True)
        assert share.metadata["rejected rows"].value == 6 and share.metadata["rows"].value == 8
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
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert (written["created"], written["failed"]) == (2, 1)
    assert written["batch status"] == "incomplete"
    assert rejects["by reason"] == {"DUPLICATE_VALUE": 1}
    (refused,) = [r.data for r in rejects["sample"].records if r.data["stage"] == "salesforce"]
    assert "duplicate value found" in refused["reason"]
    assert refused["hint"].startswith("Another record already holds this value")
    refused = checks["salesforce_refused_no_rows"]
    assert (refused.passed, refused.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert refused.asset_key.path == [SYNC, "written"]
    assert refused.metadata["rows not written"].value == 1
    assert refused.metadata["top error codes"].value == {"DUPLICATE_VALUE": 1}
    assert result.success  # a WARN check shows the refusal without failing the run


def tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> Any:
    """One evaluation of the sync's sensor with a real context, as the daemon runs it."""
    return evaluate_tick(defs, f"{SYNC}_batches", instance)


def requested(result: Any) -> list[str]:
    return [r.partition_key for r in result.run_requests]


def run_requested(
    defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    """Run what the sensor asked for, with its tags, as the daemon would launch it."""
    if not instance.has_dynamic_partition(f"{SYNC}_batches", request.partition_key):
        instance.add_dynamic_partitions(f"{SYNC}_batches", [request.partition_key])
    job = defs.resolve_job_def(f"{SYNC}_writeback")
    return job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        raise_on_error=False,
    )


def test_sensor_requests_every_batch_not_written_oldest_first_late_ones_too(project):
    write_warehouse(project, batch("b1", GOOD) + batch("b2", GOOD) + batch("b3", GOOD))
    defs = definitions(project, spec())
    with dg.instance_for_test() as instance:
        first = tick(defs, instance)
        assert requested(first) == ["b1", "b2", "b3"]
        assert [r.run_key for r in first.run_requests] == ["b1#1", "b2#1", "b3#1"]
        (added,) = first.dynamic_partitions_requests
        assert list(added.partition_keys) == ["b1", "b2", "b3"]
        tags = first.run_requests[0].tags
        assert tags["sf_assets/sync_batch"] == f"{SYNC}/b1" and tags["sf_assets/attempt"] == "1"
        assert run_requested(defs, instance, first.run_requests[1]).success
        later = tick(defs, instance)
        assert requested(later) == ["b1", "b3"]
        late, newer = later.run_requests
        assert late.tags.get("sf_assets/late_batch") == "true"
        assert "sf_assets/late_batch" not in newer.tags
        result = run_requested(defs, instance, late)
        assert metadata(result, "written")["late batch"] is True
        assert run_requested(defs, instance, newer).success
        done = tick(defs, instance)
        assert (
            done.run_requests == [] and "every batch of the source is written" in done.skip_message
        )


@pytest.mark.parametrize("interval", [5, 30])
def test_the_daemon_looks_at_the_sensor_at_the_loop_it_is_due_never_a_loop_early(project, interval):
    """Dagster's sensor daemon loops every few seconds and evaluates a sensor once its minimum
    interval has passed since its last tick began, which is a moment after that tick's loop
    began. Dagster's own check decides here, with the sensor as defined."""
    write_warehouse(project, batch("b1", GOOD))
    sensor = definitions(project, spec(sensor_interval_seconds=interval)).resolve_sensor_def(
        f"{SYNC}_batches"
    )
    as_defined = SimpleNamespace(min_interval_seconds=sensor.minimum_interval_seconds)
    tick_began_late = 0.3  # seconds after its loop began

    def skipped_at(loops_later: int) -> bool:
        began = time.time() - (loops_later * MIN_INTERVAL_LOOP_TIME - tick_began_late)
        state = SimpleNamespace(
            instigator_data=SensorInstigatorData(last_tick_start_timestamp=began)
        )
        return is_under_min_interval(state, as_defined)

    due = interval // MIN_INTERVAL_LOOP_TIME
    assert not skipped_at(due), f"a {interval} s sensor waited for the loop after the one due"
    assert due == 1 or skipped_at(due - 1), f"a {interval} s sensor was looked at a loop early"


def test_sensor_requests_only_batches_newer_than_the_highest_written(project):
    """`batches: after_highest` keeps the strict watermark: a lower batch is never asked for."""
    write_warehouse(project, batch("b1", GOOD) + batch("b2", GOOD) + batch("b3", GOOD))
    defs = definitions(project, spec(batches="after_highest"))
    with dg.instance_for_test() as instance:
        first = tick(defs, instance)
        assert requested(first) == ["b1", "b2", "b3"]
        assert [r.run_key for r in first.run_requests] == ["b1#1", "b2#1", "b3#1"]
        instance.add_dynamic_partitions(f"{SYNC}_batches", ["b1", "b2", "b3"])
        assert run_batch(defs, instance, "b2").success
        later = tick(defs, instance)
        assert [r.partition_key for r in later.run_requests] == ["b3"]
        assert not later.dynamic_partitions_requests


@pytest.mark.parametrize("mode", ["all_pending", "after_highest"])
def test_numeric_batches_are_requested_in_numeric_order(project, mode):
    rows = batch("9", GOOD[:1]) + batch("10", GOOD[1:]) + batch("11", GOOD[:1])
    write_warehouse(project, rows)
    defs = definitions(project, spec(batches=mode))
    with dg.instance_for_test() as instance:
        assert requested(tick(defs, instance)) == ["9", "10", "11"]
        assert run_batch(defs, instance, "9").success
        assert run_batch(defs, instance, "10").success
        assert requested(tick(defs, instance)) == ["11"]  # 11 comes after 10, not before 9


@pytest.mark.parametrize("mode", ["all_pending", "after_highest"])
def test_an_empty_high_partition_hides_nothing(project, http, mode):
    write_warehouse(project, batch("b1", GOOD) + batch("b2", GOOD))
    defs = definitions(project, spec(batches=mode))
    with dg.instance_for_test() as instance:
        empty = run_batch(defs, instance, "z9")  # a batch id the data does not have
        assert empty.success and metadata(empty, "written")["rows in"] == 0
        assert requested(tick(defs, instance)) == ["b1", "b2"]
        assert run_batch(defs, instance, "b1").success
        assert requested(tick(defs, instance)) == ["b2"]
    statuses = DuckDBStateStore(path=str(project / "staging.duckdb")).batch_statuses(SYNC)
    assert dict(statuses.select("batch", "rows").rows()) == {"z9": 0, "b1": 2}


def test_a_failed_batch_is_requested_again_after_its_back_off(project, http):
    write_warehouse(project, batch("b1", GOOD))
    # A back-off long enough for the next tick to fall inside it on a loaded machine (a tick
    # there can take a second or more), short enough to wait out.
    retry = {"first_after_minutes": 0.1, "max_after_minutes": 10}
    defs = definitions(project, spec("bulk", batch_retry=retry))
    with dg.instance_for_test() as instance:
        [first] = tick(defs, instance).run_requests
        http.admin("PATCH", "faults", json={"fail_bulk_jobs": "InvalidBatch : outage"})
        failed = run_requested(defs, instance, first)
        assert not failed.success
        http.admin("PATCH", "faults", json={"fail_bulk_jobs": None})
        waiting = tick(defs, instance)
        assert waiting.run_requests == []
        assert "b1: attempt 1 did not write it; attempt 2 is due at" in waiting.skip_message
        time.sleep(6.5)  # the 6 s back-off
        [again] = tick(defs, instance).run_requests
        assert (again.partition_key, again.run_key, again.tags["sf_assets/attempt"]) == (
            "b1",
            "b1#2",
            "2",
        )
        assert run_requested(defs, instance, again).success
        assert tick(defs, instance).run_requests == []
    assert sorted(contacts(http)) == ["f-1", "f-2"]


def test_a_batch_with_too_many_bad_rows_stops_before_any_write_call(project, http):
    """60 % of the rows fail mapping: the blocking check stops the batch; the only call made
    is the object's describe (a read)."""
    bad = [{**GOOD[0], "contact_id": f"b-{i}", "email": "not-an-email"} for i in range(6)]
    good = [{**GOOD[0], "contact_id": f"g-{i}"} for i in range(4)]
    write_warehouse(project, batch("b1", good + bad))
    defs = definitions(project, spec())
    before = http.admin("GET", "calls")["by_resource"]
    with dg.instance_for_test() as instance:
        result = run_batch(defs, instance, "b1")
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        materialized = {tuple(e.asset_key.path) for e in result.get_asset_materialization_events()}
    assert not result.success
    share = checks["reject_share_within_limit"]
    assert not share.passed and share.metadata["share"].value == 0.6
    assert "max_reject_share" in share.description
    assert (SYNC, "written") not in materialized
    after = http.admin("GET", "calls")["by_resource"]
    made = {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }
    assert set(made) <= {"sobjects"}  # describe only: no composite, jobs or query call
    assert contacts(http) == {}


def test_a_503_on_describe_is_retried(project, http):
    write_warehouse(project, batch("b1", GOOD))
    defs = definitions(project, spec())
    with dg.instance_for_test() as instance:
        http.admin("PATCH", "faults", json={"server_unavailable_next": 2})
        result = run_batch(defs, instance, "b1")
    assert result.success
    assert sorted(contacts(http)) == ["f-1", "f-2"]


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
        max_reject_share=0.9,
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


def test_keys_another_sync_created_in_the_object_stop_an_insert_before_any_write(project, http):
    """Two insert syncs into Contact with the same e-mail addresses would make two records of
    each: the second sync's batch stops at the blocking check."""
    write_warehouse(project, batch("b1", GOOD))
    by_email = {"object": "Contact", "operation": "insert", "match_on": "Email"}
    first = spec("rest", target=by_email)
    (project / "syncs" / "tickets.yaml").write_text(yaml.safe_dump({**first, "name": "tickets"}))
    defs = definitions(project, first)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tickets_batches", ["b1"])
        owner = defs.resolve_job_def("tickets_writeback").execute_in_process(
            instance=instance, partition_key="b1", raise_on_error=False
        )
        assert owner.success
        before = http.admin("GET", "calls")["by_resource"].get("composite", 0)
        result = run_batch(defs, instance, "b1")
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not result.success
    taken = checks["keys_not_created_by_another_sync"]
    assert not taken.passed and taken.metadata["by sync"].value == {"tickets": 2}
    assert http.admin("GET", "calls")["by_resource"].get("composite", 0) == before
    assert sorted(r["Email"] for r in http.admin("GET", "records/Contact")) == [
        "one@example.com",
        "two@example.com",
    ]
