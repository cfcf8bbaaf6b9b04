"""Change detection for a dataset without a batch column, forced resends and the retry of
rejects, in a real Dagster instance against the sandbox org over HTTPS."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from sf_assets.state import DuckDBStateStore
from tests.assets.test_writeback import (
    GOOD,
    SYNC,
    batch,
    contacts,
    definitions,
    metadata,
    project,  # noqa: F401  (fixture)
    run_batch,
    spec,
    write_warehouse,
)

ROWS = [
    *GOOD,
    {"contact_id": "f-3", "last_name": "Three", "email": "three@example.com", "tickets": "3"},
    {"contact_id": "f-4", "last_name": "Four", "email": "four@example.com", "tickets": "4"},
]
WHOLE = {"duckdb": "warehouse.duckdb", "table": "crm.fans", "batch_column": None}
INSERT = {"object": "Contact", "operation": "insert", "match_on": "External_Id__c"}


def written_config(**flags: bool) -> dict[str, Any]:
    return {"ops": {f"{SYNC}__written": {"config": flags}}}


def run_whole(
    defs: dg.Definitions, instance: dg.DagsterInstance, job: str = "writeback", **flags: bool
) -> dict[str, Any]:
    """Run a job of the unbatched sync; the `written` metadata."""
    result = defs.resolve_job_def(f"{SYNC}_{job}").execute_in_process(
        instance=instance, run_config=written_config(**flags) if flags else None
    )
    assert result.success
    return metadata(result, "written")


def sent(written: dict[str, Any]) -> tuple[int, int, int]:
    return written["sent"], written["created"], written["updated"]


def ledger(project) -> Any:  # noqa: F811
    return DuckDBStateStore(path=str(project / "staging.duckdb")).ledger(SYNC)


@pytest.mark.parametrize("api", ["rest", "bulk"])
def test_unbatched_sync_sends_only_new_and_changed_rows(project, http, api):  # noqa: F811
    write_warehouse(project, ROWS)
    defs = definitions(project, spec(api, source=WHOLE))
    assert f"{SYNC}_batches" not in {s.name for s in defs.sensors or []}
    with dg.instance_for_test() as instance:
        first = run_whole(defs, instance)
        assert (first["batch"], first["resend"]) == ("all", "changed")
        assert sent(first) == (4, 4, 0)

        unchanged = run_whole(defs, instance)
        assert sent(unchanged) == (0, 0, 0)
        assert unchanged["API calls used"] == 0
        assert unchanged["already written"] == 4

        changed = [dict(r) for r in ROWS]
        changed[2]["tickets"] = "30"
        write_warehouse(project, changed)
        one = run_whole(defs, instance)
        assert sent(one) == (1, 0, 1)
        assert contacts(http)["f-3"]["Ticket_Count__c"] == 30.0

        new = {"contact_id": "f-5", "last_name": "Five", "email": "5@example.com", "tickets": "5"}
        write_warehouse(project, [*changed, new])
        added = run_whole(defs, instance)
        assert sent(added) == (1, 1, 0)
        assert sorted(contacts(http)) == ["f-1", "f-2", "f-3", "f-4", "f-5"]

        forced = run_whole(defs, instance, force_full_resend=True)
        assert (forced["resend"], *sent(forced)) == ("all", 5, 0, 5)
        assert run_whole(defs, instance)["sent"] == 0
    attempts = ledger(project).group_by("source_key").len()
    assert dict(attempts.iter_rows()) == {"f-1": 2, "f-2": 2, "f-3": 3, "f-4": 2, "f-5": 2}


def test_a_deleted_source_row_is_not_deleted_in_salesforce(project, http):  # noqa: F811
    write_warehouse(project, ROWS)
    defs = definitions(project, spec(source=WHOLE))
    with dg.instance_for_test() as instance:
        run_whole(defs, instance)
        write_warehouse(project, ROWS[:3])
        assert run_whole(defs, instance)["sent"] == 0
    assert "f-4" in contacts(http)


def test_retry_sends_only_rows_salesforce_refused_once_the_org_is_fixed(project, http, sf):  # noqa: F811
    owner = http.admin(
        "POST", "records/Contact", json=[{"LastName": "Owner", "External_Id__c": "F-9"}]
    )
    rows = [
        *GOOD,
        {"contact_id": "f-9", "last_name": "Dup", "email": "d@example.com", "tickets": "1"},
    ]
    write_warehouse(project, batch("b1", rows))
    defs = definitions(project, spec("rest", target=INSERT))
    with dg.instance_for_test() as instance:
        first = run_batch(defs, instance, "b1")
        assert (metadata(first, "written")["created"], metadata(first, "written")["failed"]) == (
            2,
            1,
        )
        assert metadata(first, "rejects")["by reason"] == {"DUPLICATE_VALUE": 1}

        sf.Contact.delete(owner_id(owner, http))  # the fix: the org no longer holds the value
        retry = defs.resolve_job_def(f"{SYNC}_retry_rejects").execute_in_process(
            instance=instance, partition_key="b1"
        )
        assert retry.success
        written = metadata(retry, "written")
        assert (written["resend"], written["rows in"], *sent(written)) == (
            "rejects only",
            1,
            1,
            1,
            0,
        )
        assert metadata(retry, "rejects")["rejected"] == 0
    assert sorted(contacts(http)) == ["f-1", "f-2", "f-9"]
    history = ledger(project).filter(source_key="f-9").sort("attempt")
    assert history.select("attempt", "status", "error_code").rows() == [
        (1, "failed", "DUPLICATE_VALUE"),
        (2, "created", None),
    ]
    assert ledger(project).filter(source_key="f-1")["attempt"].to_list() == [1]


def test_retry_of_an_unbatched_sync_remaps_rows_rejected_while_mapping(project, http):  # noqa: F811
    bad = {"contact_id": "f-3", "last_name": "Three", "email": "no-at-sign", "tickets": "3"}
    write_warehouse(project, [*GOOD, bad])
    defs = definitions(project, spec(source=WHOLE))
    with dg.instance_for_test() as instance:
        first = run_whole(defs, instance)
        assert sent(first) == (2, 2, 0)
        fixed = {**bad, "email": "three@example.com"}
        new = {"contact_id": "f-4", "last_name": "Four", "email": "4@example.com", "tickets": "4"}
        write_warehouse(project, [*GOOD, fixed, new])
        retry = run_whole(defs, instance, job="retry_rejects")
        assert (retry["rows in"], *sent(retry)) == (1, 1, 1, 0)
        assert sorted(contacts(http)) == ["f-1", "f-2", "f-3"]
        assert run_whole(defs, instance)["sent"] == 1  # the new row waits for a regular run
    assert sorted(contacts(http)) == ["f-1", "f-2", "f-3", "f-4"]


def owner_id(created: Any, http) -> str:
    """Id of the record seeded in the org (from the seeding answer, else by looking it up)."""
    if (
        isinstance(created, list)
        and created
        and isinstance(created[0], dict)
        and "Id" in created[0]
    ):
        return created[0]["Id"]
    return next(
        r["Id"] for r in http.admin("GET", "records/Contact") if r["External_Id__c"] == "F-9"
    )
