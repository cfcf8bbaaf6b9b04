"""An unchanged re-run of a written batch costs no API call: its source rows are not staged
again, its staged mapping is kept (no describe, nothing mapped again) and nothing is sent; rows
that landed in the batch since, a changed spec or an unsettled batch map again. Real Dagster
instance, real DuckDB state, the sandbox over HTTPS."""

from __future__ import annotations

import dagster as dg

from tests.assets.test_writeback import (
    GOOD,
    SYNC,
    batch,
    contacts,
    definitions,
    metadata,
    project,  # noqa: F401 (fixture)
    run_batch,
    spec,
    write_warehouse,
)


def calls(http) -> int:
    return int(http.admin("GET", "calls")["total"])


def test_an_unchanged_rerun_makes_no_api_call_and_reports_the_batch(project, http):  # noqa: F811
    write_warehouse(project, batch("b1", GOOD))
    defs = definitions(project, spec("bulk"))
    with dg.instance_for_test() as instance:
        first = run_batch(defs, instance, "b1")
        assert first.success and metadata(first, "written")["created"] == 2
        before = calls(http)
        again = run_batch(defs, instance, "b1")
        assert again.success
        assert calls(http) == before
        mapped, written = metadata(again, "mapped"), metadata(again, "written")
    assert (mapped["rows in"], mapped["mapped"], mapped["rejected"]) == (2, 2, 0)
    assert "kept" in mapped["mapping"]
    assert metadata(first, "source")["staged"] == "yes"
    assert metadata(again, "source")["staged"].startswith("no")
    assert written["sent"] == 0 and written["API calls used"] == 0
    assert written["batch written so far"] == 2 and written["batch status"] == "written"


def test_a_changed_mapping_maps_the_written_batch_again(project, http):  # noqa: F811
    write_warehouse(project, batch("b1", GOOD))
    with dg.instance_for_test() as instance:
        assert run_batch(definitions(project, spec("rest")), instance, "b1").success
        changed = spec("rest")
        del changed["mapping"]["Ticket_Count__c"]
        before = calls(http)
        again = run_batch(definitions(project, changed), instance, "b1")
        assert again.success
        assert calls(http) > before  # described again
        mapped = metadata(again, "mapped")
    assert "mapping" not in mapped and mapped["mapped"] == 2
    assert "Ticket_Count__c" not in str(mapped["field mapping"])


def test_a_batch_that_did_not_get_written_is_mapped_and_sent_again(project, http):  # noqa: F811
    """Only a written batch is kept: one whose Bulk job failed is mapped again and sent."""
    write_warehouse(project, batch("b1", GOOD))
    defs = definitions(project, spec("bulk"))
    with dg.instance_for_test() as instance:
        http.admin("PATCH", "faults", json={"fail_bulk_jobs": "InvalidBatch : outage"})
        assert not run_batch(defs, instance, "b1").success
        http.admin("PATCH", "faults", json={"fail_bulk_jobs": None})
        again = run_batch(defs, instance, "b1")
        assert again.success
        mapped, written = metadata(again, "mapped"), metadata(again, "written")
    assert "mapping" not in mapped
    assert written["sent"] == 2 and written["created"] == 2


def test_the_writeback_job_runs_its_steps_in_one_process(project):  # noqa: F811
    """A process per step costs seconds each (imports, definitions): the write job's chain
    runs in the run's own process."""
    defs = definitions(project, spec("bulk"))
    job = defs.resolve_job_def("fans_writeback")
    assert job.executor_def is dg.in_process_executor


def test_rows_that_land_in_a_written_batch_are_sent_by_its_rerun(project, http):  # noqa: F811
    late = {"contact_id": "f-3", "last_name": "Three", "email": "three@example.com", "tickets": "3"}
    write_warehouse(project, batch("b1", GOOD))
    defs = definitions(project, spec("bulk"))
    with dg.instance_for_test() as instance:
        assert run_batch(defs, instance, "b1").success
        write_warehouse(project, batch("b1", [*GOOD, late]))
        again = run_batch(defs, instance, "b1")
        assert again.success
        source, mapped, written = (metadata(again, s) for s in ("source", "mapped", "written"))
        third = run_batch(defs, instance, "b1")
        assert third.success
    assert (source["staged"], source["rows"]) == ("yes", 3)
    assert "mapping" not in mapped and mapped["mapped"] == 3
    assert (written["sent"], written["created"], written["already written"]) == (1, 1, 2)
    assert sorted(contacts(http)) == ["f-1", "f-2", "f-3"]
    assert contacts(http)["f-3"]["LastName"] == "Three"
    assert metadata(third, "written")["API calls used"] == 0, f"{SYNC} settled: nothing to call"
