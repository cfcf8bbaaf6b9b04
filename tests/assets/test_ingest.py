"""The ingest assets in a real Dagster instance against the sandbox org over HTTPS: raw copies
with their checks, people and organizations merged from them, incremental runs, backfills,
orders with their items, and a writeback that reads `people` shown downstream of the copies."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml

from resources.https import TrustingSession
from sf_assets.assets.lineage import table_key
from sf_assets.definitions import build_definitions
from sf_assets.specs import load_specs

SPEC: dict[str, Any] = {
    "name": "crm",
    "read": {
        "objects": {
            "Contact": {
                "fields": [
                    "FirstName",
                    "LastName",
                    "Email",
                    "Phone",
                    "AccountId",
                    "HasOptedOutOfEmail",
                ]
            },
            "Lead": {"fields": ["FirstName", "LastName", "Email", "Phone", "Company"]},
            "Account": {"fields": ["Name", "Website", "Phone", "Industry", "BillingCountry"]},
        },
        "lookback_seconds": 0,
    },
    "into": {"duckdb": "warehouse.duckdb"},
    "merge": {"people": {"email_opt_in": True}, "organizations": {}},
}
WRITEBACK: dict[str, Any] = {
    "name": "tiers_to_contacts",
    "source": {"duckdb": "warehouse.duckdb", "table": "people", "batch_column": None},
    "target": {"object": "Contact", "operation": "update", "match_on": "Email"},
    "mapping": {"Email": "Email", "Fan_Tier__c": "tier"},
}
CHECKS = {"cursor_monotonic", "ids_unique", "count_matches_org", "deletions_applied"}


@pytest.fixture
def project(tmp_path: Path, sandbox, monkeypatch) -> Path:
    info = sandbox.info()
    (tmp_path / "syncs").mkdir()
    for name, value in {
        "SF_LOGIN_URL": info["login_url"],
        "SF_USERNAME": info["username"],
        "SF_PASSWORD": info["password"],
        "SF_SECURITY_TOKEN": info["security_token"],
        "SF_CA_BUNDLE": info["ca_bundle"],
        "SF_ASSETS_STAGING": str(tmp_path / "staging.duckdb"),
        "SF_ASSETS_SYNCS_DIR": str(tmp_path / "syncs"),
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def definitions(project: Path, *specs: dict[str, Any]) -> dg.Definitions:
    for body in specs:
        (project / "syncs" / f"{body['name']}.yaml").write_text(yaml.safe_dump(body))
    return build_definitions(load_specs(project / "syncs"))


def seed(info: dict[str, Any], sobject: str, records: list[dict[str, Any]]) -> list[str]:
    http = TrustingSession(info["ca_bundle"])
    response = http.post(f"{info['instance_url']}/__admin/records/{sobject}", json=records)
    response.raise_for_status()
    return [item["id"] for item in response.json()]


def run(defs: dg.Definitions, instance: dg.DagsterInstance, job: str = "crm_ingest", **config: Any):  # type: ignore[no-untyped-def]
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, run_config=config or None
    )
    return result


def metadata(result, *key: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == list(key):
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{'/'.join(key)} was not materialized")


def checks(result, *key: str) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    return {
        e.check_name: e.passed
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path == list(key)
    }


def table(project: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_the_ingest_assets_are_keyed_by_their_tables_and_feed_a_writeback_of_people(project):
    defs = definitions(project, SPEC, WRITEBACK)
    graph = defs.resolve_asset_graph()
    keys = {"/".join(k.path) for k in graph.get_all_asset_keys()}
    assert {"salesforce/contact", "salesforce/lead", "salesforce/account"} <= keys
    assert {"people", "organizations"} <= keys
    people = dg.AssetKey("people")
    assert graph.get(people).parent_keys == {
        dg.AssetKey(["salesforce", "contact"]),
        dg.AssetKey(["salesforce", "lead"]),
    }
    assert people in graph.get(dg.AssetKey(["tiers_to_contacts", "source"])).parent_keys
    assert graph.get(dg.AssetKey(["salesforce", "contact"])).group_name == "crm"
    schedule = defs.resolve_schedule_def("crm_reads")
    assert schedule.cron_schedule == "*/15 * * * *"


def test_a_run_copies_the_objects_merges_people_and_passes_every_check(project, sandbox):
    info = sandbox.info()
    (account,) = seed(info, "Account", [{"Name": "Festival Shop", "Website": "shop.example"}])
    seed(
        info,
        "Contact",
        [
            {
                "LastName": "Lima",
                "FirstName": "Ana",
                "Email": "ana@example.com",
                "AccountId": account,
            },
            {
                "LastName": "Berg",
                "FirstName": "Bo",
                "Email": "bo@example.com",
                "HasOptedOutOfEmail": True,
            },
        ],
    )
    seed(
        info,
        "Lead",
        [
            {
                "LastName": "Lima",
                "Company": "Self",
                "Email": "ANA@example.com",
                "Status": "Open - Not Contacted",
            }
        ],
    )
    defs = definitions(project, SPEC)
    with dg.instance_for_test() as instance:
        first = run(defs, instance)
        assert first.success
        contact = metadata(first, "salesforce", "contact")
        assert (
            contact["mode"],
            contact["records read"],
            contact["current records in the copy"],
        ) == (
            "full",
            2,
            2,
        )
        for sobject in ("contact", "lead", "account"):
            assert checks(first, "salesforce", sobject) == dict.fromkeys(CHECKS, True)
        assert metadata(first, "people")["created"] == 2
        org_id = info["org_id"][:15]
        assert table(
            project,
            "SELECT Email, FirstName, email_opt_in, organization_key FROM people ORDER BY Email",
        ) == [
            ("ana@example.com", "Ana", True, f"{org_id}:{account}"),
            ("bo@example.com", "Bo", False, None),
        ]
        assert table(project, "SELECT organization_key, Name FROM organizations") == [
            (f"{org_id}:{account}", "Festival Shop")
        ]
        time.sleep(2.2)  # past the second the org's clock last named (see the reader tests)
        second = run(defs, instance)
        contact = metadata(second, "salesforce", "contact")
        assert (contact["mode"], contact["records read"]) == ("incremental", 0)
        assert metadata(second, "people")["records merged"] == 0
        assert all(checks(second, "salesforce", "contact").values())


def test_the_backfill_job_re_reads_a_period_for_every_object(project, sandbox):
    info = sandbox.info()
    seed(info, "Contact", [{"LastName": f"Fan {i}"} for i in range(3)])
    seed(info, "Account", [{"Name": "Shop"}])
    defs = definitions(project, SPEC)
    with dg.instance_for_test() as instance:
        assert run(defs, instance).success
        backfill = run(defs, instance, "crm_backfill", since="2020-01-01T00:00:00Z")
        assert backfill.success
        assert metadata(backfill, "salesforce", "contact")["records read"] == 3
        assert metadata(backfill, "salesforce", "contact")["mode"] == "backfill"
        assert metadata(backfill, "salesforce", "account")["records read"] == 1


def test_a_bad_period_fails_the_run_saying_what_to_write(project, sandbox):
    defs = definitions(project, SPEC)
    with dg.instance_for_test() as instance:
        result = run(defs, instance, "crm_backfill", since="last tuesday")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "not an ISO date-time; write e.g. 2026-01-31T00:00:00Z" in str(
        failure.event_specific_data.error.message
    )


ORDERS_SPEC: dict[str, Any] = {
    "name": "fulfilment",
    "read": {
        "objects": {
            "Order": {"fields": ["OrderNumber", "Status", "AccountId", "EffectiveDate"]},
            "OrderItem": {"fields": ["OrderId", "Quantity", "UnitPrice"]},
        },
        "lookback_seconds": 0,
    },
    "into": {"duckdb": "warehouse.duckdb"},
    "orders": True,
}


def test_order_download_returns_orders_with_their_items_since_the_last_read(project, sandbox, sf):
    """Needs the sandbox's OrderItem object (sandbox branch)."""
    info = sandbox.info()
    (account,) = seed(info, "Account", [{"Name": "Festival Shop"}])
    orders = seed(
        info,
        "Order",
        [
            {"AccountId": account, "EffectiveDate": "2026-11-20", "Status": "Draft"}
            for _ in range(3)
        ],
    )
    items = seed(
        info,
        "OrderItem",
        [
            {"OrderId": orders[0], "Quantity": 1, "UnitPrice": 10},
            {"OrderId": orders[0], "Quantity": 2, "UnitPrice": 5},
            {"OrderId": orders[1], "Quantity": 3, "UnitPrice": 7},
        ],
    )
    defs = definitions(project, ORDERS_SPEC)
    with dg.instance_for_test() as instance:
        first = run(defs, instance, "fulfilment_ingest")
        assert first.success and metadata(first, "orders")["orders changed"] == 3
        time.sleep(2.2)
        sf.OrderItem.update(items[2], {"Quantity": 4})
        second = run(defs, instance, "fulfilment_ingest")
        changed = metadata(second, "orders")
        assert changed["orders changed"] == 1
        seq = changed["_orders_seq of this run"]
        rows = table(
            project,
            f"SELECT Id, [i.Quantity FOR i IN items] FROM orders WHERE _orders_seq = {seq}",
        )
        assert rows == [(orders[1], [4.0])]


def test_a_field_the_org_lacks_fails_the_read_with_what_to_fix(project, sandbox):
    body = {**SPEC, "read": {"objects": {"Contact": {"fields": ["Emial"]}}}, "merge": {}}
    defs = definitions(project, body)
    with dg.instance_for_test() as instance:
        result = run(defs, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.event_specific_data.error.message
    assert "sync crm: Contact has no field 'Emial'" in message and "did you mean Email" in message
    assert "the cursor is where it was" in message


def test_activities_follow_people_and_the_activity_objects(project):
    objects = {
        **SPEC["read"]["objects"],
        "Task": {"fields": ["Subject", "WhoId"], "retention_days": 90},
    }
    body = {**SPEC, "read": {**SPEC["read"], "objects": objects}}
    graph = definitions(project, body).resolve_asset_graph()
    assert graph.get(dg.AssetKey("activities")).parent_keys == {
        dg.AssetKey("people"),
        dg.AssetKey(["salesforce", "task"]),
    }


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"orders": True, "read": {"objects": {"Order": {}, "OrderItem": {}}}},
        {"read": {"objects": {"Task": {"fields": ["WhoId"]}}}},
        {"merge": {"people": None, "organizations": None}},
    ],
)
def test_an_ingest_spec_lists_every_table_its_assets_write(project, changes):
    """Syncs that read these tables are checked against `IngestSpec.tables()` when the specs
    load, so it must name every asset the factory builds, and nothing else."""
    objects = {**SPEC["read"]["objects"], **changes.get("read", {}).get("objects", {})}
    body = {**SPEC, **changes, "read": {**SPEC["read"], "objects": objects}}
    if "merge" in changes:
        body["merge"] = {k: v for k, v in changes["merge"].items() if v is not None}
    built = definitions(project, body).resolve_asset_graph().get_all_asset_keys()
    (loaded,) = load_specs(project / "syncs")
    assert {table_key(t) for t in loaded.spec.tables()} == built
