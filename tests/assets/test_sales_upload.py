"""The Emarsys sales-data assets in a real Dagster instance against the sandbox's endpoint: each
batch once, a line never twice, and nothing uploaded when a guard says no."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from sf_assets.assets.sensors import evaluate_tick
from sf_assets.definitions import build_definitions
from sf_assets.emarsys.ledger import SalesLedger
from sf_assets.specs import load_specs
from sf_assets.state import DuckDBStateStore
from sf_assets.state.lease import this_claim

SYNC = "sales"
COLUMNS = ["order", "timestamp", "customer", "item", "price", "quantity"]
LINES = [
    ("o-1", "2026-11-21 10:00:00", "c-1", "GA", 10.0, 2, "b1"),
    ("o-1", "2026-11-21 10:00:00", "c-1", "VIP", 50.0, 1, "b1"),
    ("o-2", "2026-11-21 11:00:00", "c-2", "GA", 10.0, 1, "b1"),
    ("o-3", "2026-11-22 09:00:00", "c-3", "GA", 10.0, 3, "b2"),
    ("o-1", "2026-11-21 10:00:00", "c-1", "GA", 10.0, 2, "b2"),  # sent again in b2
]


@pytest.fixture
def project(tmp_path: Path, sandbox, monkeypatch) -> Path:
    info = sandbox.info()
    (tmp_path / "syncs").mkdir()
    monkeypatch.setenv("EMARSYS_URL", info["emarsys_url"])
    monkeypatch.setenv("EMARSYS_TOKEN", info["emarsys_token"])
    monkeypatch.setenv("EMARSYS_MERCHANT_ID", info["merchant_id"])
    monkeypatch.setenv("EMARSYS_CA_BUNDLE", info["ca_bundle"])
    monkeypatch.setenv("SF_ASSETS_STAGING", str(tmp_path / "staging.duckdb"))
    frame = pl.DataFrame(
        LINES,
        schema=["order_id", "at", "customer_id", "sku", "unit_price", "qty", "_BATCH_ID_"],
        orient="row",
    ).with_columns(pl.col("at").str.to_datetime())
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.register("rows", frame)
        con.execute("CREATE TABLE order_lines AS SELECT * FROM rows")
    spec = {
        "name": SYNC,
        "source": {"duckdb": "warehouse.duckdb", "table": "order_lines"},
        "target": {
            "emarsys": "default",
            "sales_data": True,
            "columns": COLUMNS,
            "price": "unit_price",
        },
        "mapping": {
            "order": "order_id",
            "timestamp": "at",
            "customer": "customer_id",
            "item": "sku",
            "price": "unit_price",
            "quantity": "qty",
        },
    }
    (tmp_path / "syncs" / "sales.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path


def run(project: Path, instance: dg.DagsterInstance, batch: str) -> dg.ExecuteInProcessResult:
    defs = build_definitions(load_specs(project / "syncs"))
    if not instance.has_dynamic_partition(f"{SYNC}_batches", batch):
        instance.add_dynamic_partitions(f"{SYNC}_batches", [batch])
    job = defs.resolve_job_def(f"{SYNC}_upload")
    return job.execute_in_process(instance=instance, partition_key=batch, raise_on_error=False)


def metadata(result: dg.ExecuteInProcessResult, step: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == [SYNC, step]:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{step} was not materialized")


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    return str(failure.event_specific_data.error)


def test_each_batch_once_and_a_repeated_line_is_stopped(project, http):
    with dg.instance_for_test() as instance:
        first = run(project, instance, "b1")
        assert first.success
        assert metadata(first, "uploaded")["uploaded"] == 3
        checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
        assert checks == {"reject_share_within_limit": True, "every_line_uploaded": True}
        again = run(project, instance, "b1")
        assert metadata(again, "uploaded")["uploaded"] == 0
        second = run(project, instance, "b2")
        mapped = metadata(second, "mapped")
        assert metadata(second, "uploaded")["uploaded"] == 1
    assert mapped["rejected by reason"] == {"ALREADY_SENT": 1}
    (repeated,) = [r.data for r in mapped["rejects sample"].records]
    assert repeated["code"] == "ALREADY_SENT" and "batch b1" in repeated["reason"]
    lines = http.admin("GET", "emarsys/lines")
    assert len(lines) == 4
    assert {(line["order"], line["item"]) for line in lines} == {
        ("o-1", "GA"),
        ("o-1", "VIP"),
        ("o-2", "GA"),
        ("o-3", "GA"),
    }
    assert float(next(line for line in lines if line["item"] == "VIP")["price"]) == 50.0


def test_a_refused_upload_fails_with_the_endpoint_message_and_changes_nothing(project, http):
    http.admin(
        "PUT",
        "emarsys/columns",
        json=["order", "item", "timestamp", "customer", "price", "quantity"],
    )
    with dg.instance_for_test() as instance:
        refused = run(project, instance, "b1")
        assert not refused.success
        assert "order" in failure_text(refused) and "item" in failure_text(refused)
        assert http.admin("GET", "emarsys/lines") == []
        http.admin("PUT", "emarsys/columns", json=COLUMNS)
        fixed = run(project, instance, "b1")
        assert fixed.success and metadata(fixed, "uploaded")["uploaded"] == 3
    assert len(http.admin("GET", "emarsys/lines")) == 3


def test_a_wrong_token_is_a_clear_error_that_does_not_show_the_token(project, http, monkeypatch):
    monkeypatch.setenv("EMARSYS_TOKEN", "not-the-token-123")
    with dg.instance_for_test() as instance:
        result = run(project, instance, "b1")
        text = failure_text(result) + "\n".join(str(r) for r in instance.all_logs(result.run_id))
    assert not result.success
    assert "token" in text.lower()
    assert "not-the-token-123" not in text
    assert http.admin("GET", "emarsys/lines") == []


def test_columns_that_break_the_rules_stop_the_run_before_any_upload(project, http):
    spec = yaml.safe_load((project / "syncs" / "sales.yaml").read_text())
    spec["target"]["columns"] = [*COLUMNS, "channel"]
    spec["mapping"]["channel"] = "sku"
    (project / "syncs" / "sales.yaml").write_text(yaml.safe_dump(spec))
    with dg.instance_for_test() as instance:
        result = run(project, instance, "b1")
    assert not result.success
    assert "channel" in failure_text(result)
    assert http.admin("GET", "emarsys/lines") == []


def test_release_command_settles_an_uncertain_batch(project):
    staging = DuckDBStateStore(path=str(project / "staging.duckdb"))
    ledger = SalesLedger(staging, SYNC)
    claim = this_claim("run-1")  # a run that recorded its upload, then lost the answer
    staging.claim_lease(SYNC, "b1", claim)
    staging.begin_emarsys_upload(
        SYNC, "b1", pl.Series(["o-1\x1fGA"]), run_id="run-1", first_order="o-1", lease=claim.token
    )
    staging.release_lease(SYNC, "b1", claim.token)
    env = {**os.environ, "SF_ASSETS_SYNCS_DIR": str(project / "syncs")}
    command = [str(Path(sys.executable).parent / "sf-assets"), "emarsys", "release", SYNC, "b1"]
    released = subprocess.run([*command, "--not-sent"], env=env, capture_output=True, text=True)
    assert released.returncode == 0, released.stderr
    assert "next run uploads the batch" in released.stdout
    assert ledger.batch_state("b1") is None
    again = subprocess.run([*command, "--sent"], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "uncertain" in again.stderr


def test_the_sensor_leaves_a_batch_in_doubt_alone_until_it_is_released(project):
    staging = DuckDBStateStore(path=str(project / "staging.duckdb"))
    claim = this_claim("run-1")
    staging.claim_lease(SYNC, "b1", claim)
    staging.begin_emarsys_upload(
        SYNC, "b1", pl.Series(["o-1\x1fGA"]), run_id="run-1", first_order="o-1", lease=claim.token
    )
    staging.release_lease(SYNC, "b1", claim.token)
    defs = build_definitions(load_specs(project / "syncs"))
    with dg.instance_for_test() as instance:

        def tick() -> list[str]:
            result = evaluate_tick(defs, f"{SYNC}_batches", instance)
            return [r.partition_key for r in result.run_requests]

        assert tick() == ["b2"]
        SalesLedger(staging, SYNC).release("b1", sent=False)
        assert tick() == ["b1", "b2"]
