"""Run config `plan_only: true` on `S/written`: the run says what it would write, as an
observation of the asset, and writes nothing (no materialization, no ledger rows, no jobs, no
records in the org)."""

from __future__ import annotations

import dagster as dg

from sf_assets.state import DuckDBStateStore
from tests.assets.test_writeback import (
    GOOD,
    SYNC,
    batch,
    contacts,
    definitions,
    project,  # noqa: F401 - the fixture
    run_batch,
    spec,
    write_warehouse,
)


def test_plan_only_observes_the_plan_and_writes_nothing(project, http):  # noqa: F811
    http.admin("POST", "records/Contact", json=[{"LastName": "Old", "External_Id__c": "f-1"}])
    rows = [
        *GOOD,
        {"contact_id": "f-3", "last_name": None, "email": "x@example.com", "tickets": "1"},
    ]
    write_warehouse(project, batch("b1", rows))
    defs = definitions(project, spec("rest"))
    staging = DuckDBStateStore(path=str(project / "staging.duckdb"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(f"{SYNC}_batches", ["b1"])
        mapped = dg.AssetSelection.assets([SYNC, "source"], [SYNC, "mapped"])
        defs.resolve_implicit_global_asset_job_def()
        staged = dg.materialize(
            [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)],
            selection=mapped,
            partition_key="b1",
            instance=instance,
            resources=defs.resources,
        )
        assert staged.success
        planned = dg.materialize(
            [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)],
            selection=dg.AssetSelection.assets([SYNC, "written"]),
            partition_key="b1",
            instance=instance,
            resources=defs.resources,
            run_config={"ops": {f"{SYNC}__written": {"config": {"plan_only": True}}}},
        )
        assert planned.success
        assert [e.asset_key.path for e in planned.get_asset_materialization_events()] == []
        (observation,) = [
            e.event_specific_data.asset_observation
            for e in planned.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        ]
        plan = {k: v.value for k, v in observation.metadata.items()}
        assert (plan["create"], plan["update"], plan["reject"]) == (1, 1, 1)
        assert staging.ledger(SYNC).is_empty() and staging.jobs(SYNC).is_empty()
        assert list(contacts(http)) == ["f-1"] and contacts(http)["f-1"]["LastName"] == "Old"

        written = run_batch(defs, instance, "b1")  # the real run afterwards writes the plan
    assert written.success
    assert sorted(contacts(http)) == ["f-1", "f-2"]
