"""What a user must see in the Dagster UI after the demo, looked at in a real browser: a
sync's lineage, its batch partitions, the blocking checks' results, a rejects table with
reasons and hints, a failed WARN check where Salesforce refused rows, the written asset's
batch totals, and progress lines in a run's log. Every test leaves a screenshot."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot

# One worker runs them all: they share the session's demo and `dg dev`.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200), pytest.mark.xdist_group("browser")]
LOCATION = "sf_assets"
CONTACTS = "contacts_to_salesforce"
CUSTOMERS = "customers_to_contacts"  # the org holds two Contacts with one customer's email
BULK_BATCH = "20261122-1000"
expect.set_options(timeout=30_000)  # the UI fills in node details and tables as data arrives


def visit(page: Page, url: str, ready: str) -> None:
    """Open a page of the app and wait for its content."""
    page.goto(url)
    page.get_by_text(ready, exact=False).first.wait_for()


def test_lineage_shows_source_mapped_written_rejects(page: Page, dagster_ui: str) -> None:
    visit(page, f"{dagster_ui}/locations/{LOCATION}/asset-groups/{CONTACTS}/lineage", "written")
    for name in ("source", "mapped", "written", "rejects"):
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    screenshot(page, "1-lineage")
    expect(page.get_by_text("3 partitions").first).to_be_visible()


def test_a_broken_spec_is_shown_beside_the_working_syncs(page: Page, dagster_ui: str) -> None:
    visit(page, f"{dagster_ui}/assets/broken_specs/leads_draft", "Broken sync spec")
    expect(page.get_by_text("Broken sync spec leads_draft.yaml").first).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"api: Input should be 'auto', 'rest' or 'bulk'")).first
    ).to_be_visible()
    screenshot(page, "0-broken-spec")
    visit(page, f"{dagster_ui}/locations/{LOCATION}/asset-groups/{CONTACTS}/lineage", "written")


def test_each_batch_is_a_partition(page: Page, dagster_ui: str) -> None:
    visit(page, f"{dagster_ui}/assets/{CONTACTS}/written?view=partitions", "20261122-0900")
    for batch in ("20261122-0900", "20261122-0930", BULK_BATCH):
        expect(page.get_by_text(batch, exact=True).first).to_be_visible()
    expect(page.get_by_text("Materialized (3)")).to_be_visible()
    screenshot(page, "2-partitions")


def test_blocking_checks_passed(page: Page, dagster_ui: str) -> None:
    visit(page, f"{dagster_ui}/assets/{CONTACTS}/mapped?view=checks", "reject_share_within_limit")
    page.get_by_text("reject_share_within_limit", exact=True).first.click()
    expect(page.get_by_text("blocking", exact=True).first).to_be_visible()
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
    expect(page.get_by_text("Succeeded").first).to_be_visible()
    screenshot(page, "3-blocking-checks")


def test_rejects_table_shows_reasons_and_hints(page: Page, dagster_ui: str) -> None:
    visit(page, f"{dagster_ui}/assets/{CUSTOMERS}/rejects", "MULTIPLE_MATCHES")
    hint = page.get_by_text(re.compile(r"^Several records share this match_on value")).first
    hint.scroll_into_view_if_needed()
    expect(hint).to_be_visible()
    for header in ("stage", "row", "key", "code", "reason", "hint"):
        expect(page.get_by_role("columnheader", name=header, exact=True).first).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"2 Contact records have Email 'new7@example.org'"))
    ).to_be_visible()
    screenshot(page, "4-rejects-with-hints")


def test_refused_rows_fail_the_warn_check(page: Page, dagster_ui: str) -> None:
    visit(
        page, f"{dagster_ui}/assets/{CUSTOMERS}/written?view=checks", "salesforce_refused_no_rows"
    )
    expect(page.get_by_text("non-blocking", exact=True).first).to_be_visible()
    expect(page.get_by_text("Failed", exact=True).first).to_be_visible()
    expect(
        page.get_by_text(f"{CUSTOMERS}_retry_rejects for batch 20261122-0930").first
    ).to_be_visible()
    screenshot(page, "5-warn-check-failed")


def test_written_asset_states_the_batch_totals(page: Page, dagster_ui: str) -> None:
    """The latest materialization is a re-run that sent nothing; it still says what the batch
    holds."""
    visit(page, f"{dagster_ui}/assets/{CONTACTS}/written", "batch written so far")
    row = page.get_by_role("row").filter(has_text="batch written so far").first
    expect(row).to_contain_text("3999")
    expect(page.get_by_role("row").filter(has_text=re.compile(r"^\s*sent")).first).to_contain_text(
        "0"
    )
    screenshot(page, "6-written-totals")


def test_trends_per_batch_are_plotted(page: Page, dagster_ui: str) -> None:
    """Counts are plain numbers, so Dagster plots them per batch: rows and rejects of each."""
    visit(page, f"{dagster_ui}/assets/{CONTACTS}/mapped", "rejected by reason")
    page.get_by_role("button", name="Plots").first.click()
    for plot in ("rows in", "rejected", "mapped"):
        expect(page.get_by_text(plot, exact=True).first).to_be_visible()
    # plotted by partition (the axes themselves are drawn on a canvas)
    expect(
        page.get_by_text("the highest data point for each materialized event label")
    ).to_be_visible()
    screenshot(page, "7-plots-per-batch")


def test_run_log_shows_progress(page: Page, dagster_ui: str, demo_project: Path) -> None:
    run_id = first_run_of(demo_project, f"{CONTACTS}_writeback", BULK_BATCH)
    visit(page, f"{dagster_ui}/runs/{run_id}", "RUN_SUCCESS")
    page.get_by_placeholder("Filter…").or_(page.get_by_placeholder("Filter...")).first.fill(
        "rows sent"
    )
    line = page.get_by_text(re.compile(r"3999 of 3999 rows sent via bulk \(100%\)")).first
    expect(line).to_be_visible()
    screenshot(page, "8-run-log-rows-sent")
    page.get_by_placeholder("Filter…").or_(page.get_by_placeholder("Filter...")).first.fill(
        "records processed"
    )
    expect(
        page.get_by_text(re.compile(r"JobComplete, 3999 records processed, 0 failed")).first
    ).to_be_visible()
    screenshot(page, "9-run-log-bulk-job-state")


def first_run_of(project: Path, job: str, batch: str) -> str:
    """The demo's first run of the batch (the one that wrote it), from the demo's instance."""
    home = project / ".sf-assets" / "demo" / "dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(
            filters=dg.RunsFilter(job_name=job, tags={"dagster/partition": batch})
        )
    return runs[-1].run_id  # newest first: the last is the first run
