"""What the written asset tells a person: the batch's totals even after a re-run that sent
nothing, a failed WARN check and a pointer to the retry job when Salesforce refused rows, and
rejects as a table whose every row has a hint."""

from __future__ import annotations

import dagster as dg

from tests.assets.test_writeback import (
    GOOD,
    SYNC,
    batch,
    definitions,
    metadata,
    project,  # noqa: F401 - the fixture
    run_batch,
    spec,
    write_warehouse,
)


def test_refused_rows_fail_the_warn_check_and_point_at_the_retry_job(project, http):  # noqa: F811
    http.admin("POST", "records/Contact", json=[{"LastName": "Owner", "External_Id__c": "F-9"}])
    rows = [*GOOD, {"contact_id": "f-9", "last_name": "Dup", "email": "d@x.com", "tickets": "1"}]
    rows.append({"contact_id": "f-4", "last_name": None, "email": "n@x.com", "tickets": "1"})
    write_warehouse(project, batch("b1", rows))
    insert = {"object": "Contact", "operation": "insert", "match_on": "External_Id__c"}
    defs = definitions(project, spec("rest", target=insert))
    with dg.instance_for_test() as instance:
        first = run_batch(defs, instance, "b1")
        again = run_batch(defs, instance, "b1")
    (check,) = [
        e
        for e in first.get_asset_check_evaluations()
        if e.check_name == "salesforce_refused_no_rows"
    ]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["refused by Salesforce"].value == 1
    assert f"launch the job {SYNC}_retry_rejects for batch b1" in check.metadata["next step"].value

    written = metadata(again, "written")
    # The re-run sends only the refused row again (it is refused again) and creates nothing,
    # yet its materialization still says what the whole batch holds.
    assert (written["sent"], written["created"], written["failed"]) == (1, 0, 1)
    assert written["batch written so far"] == 2
    assert written["batch by outcome"] == {"created": 2, "failed": 1}
    assert f"{SYNC}_retry_rejects for batch b1" in written["next step"]

    table = metadata(again, "rejects")["sample"]
    by_stage = {r.data["stage"]: r.data for r in table.records}
    assert set(by_stage) == {"mapping", "salesforce"}
    assert by_stage["mapping"]["code"] == "REQUIRED_FIELD_MISSING"
    assert all(r.data["hint"] for r in table.records), "every reject says what to do"
    assert [c.name for c in table.schema.columns] == [
        "stage",
        "row",
        "key",
        "code",
        "reason",
        "hint",
    ]
