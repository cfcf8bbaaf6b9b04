"""The demo's other direction: Salesforce read back into the warehouse, merged, enriched and
written back, so that the whole loop is one lineage graph in the UI.

After the writeback syncs have filled the org, a few Leads (some of them people who are
Contacts already, spelt differently) and Tasks are entered through the sandbox's admin
endpoint, as a salesperson would. The ingest specs copy Contacts, Leads, Accounts, Tasks and
Orders into the warehouse and merge people; the demo then gives every person a fan tier in
DuckDB (the enrichment a marketing team would write) and the `tiers_to_contacts` sync writes
it back to the Contacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from resources.https import TrustingSession
from sf_assets.assets.lineage import source_deps, table_key
from sf_assets.specs import IngestSpec, LoadedSpec


def split_specs(
    specs: list[LoadedSpec],
) -> tuple[list[LoadedSpec], list[LoadedSpec], list[LoadedSpec]]:
    """(syncs that run first, ingest specs, syncs that read what the ingest specs write)."""
    reading = [s for s in specs if isinstance(s.spec, IngestSpec)]
    produced = {table_key(t) for s in reading for t in s.spec.tables()}  # type: ignore[union-attr]
    downstream = [
        s
        for s in specs
        if s not in reading and set(source_deps(getattr(s.spec, "source", None))) & produced
    ]
    first = [s for s in specs if s not in reading and s not in downstream]
    return first, reading, downstream


def read_into_warehouse(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    reading: list[LoadedSpec],
    info: dict[str, Any],
    warehouse: Path,
    run_config: dict[str, Any],
    *,
    first: bool,
) -> int:
    """Run every ingest spec once (after seeding Leads and Tasks on the first round) and give
    the merged people their fan tier; says how many of the runs failed."""
    if first:
        seed_sales_activity(info)
    print(
        "\nreading Salesforce into the warehouse:" if first else "\nreading again (changes only):"
    )
    failed = 0
    for loaded in reading:
        result = defs.resolve_job_def(f"{loaded.spec.name}_ingest").execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config
        )
        print_reads(loaded.spec.name, result)
        failed += not result.success
    enrich(warehouse)
    return failed


def seed_sales_activity(info: dict[str, Any]) -> None:
    """Leads, Tasks and order lines as the sales team enters them: three Leads are people who
    already are Contacts (their email in another case, or only their phone), one is new, and
    one is closed, outside the spec's filter."""
    http = TrustingSession(info["ca_bundle"])
    admin = f"{info['instance_url']}/__admin/records"
    leads = [
        {"LastName": "Buyer1", "FirstName": "Fan1", "Email": "FAN1@example.com", "Company": "Self"},
        {"LastName": "Buyer2", "Company": "Self", "Email": "Fan2@Example.com"},
        {"LastName": "Buyer23", "Company": "Self", "Phone": "+1-555-000-4000"},
        {"LastName": "Newcomer", "FirstName": "Nia", "Email": "nia@example.com", "Company": "Band"},
        {"LastName": "Walk-in", "Company": "Self", "Status": "Closed - Not Converted"},
    ]
    opened = [{"Status": "Open - Not Contacted", **lead} for lead in leads]
    outcome = http.post(f"{admin}/Lead", json=opened)
    outcome.raise_for_status()
    lead_ids = [item["id"] for item in outcome.json() if item.get("success")]
    tasks = [
        {"Subject": "Call about the tour", "Status": "Completed", "Priority": "Normal", "WhoId": i}
        for i in lead_ids[:2]
    ]
    http.post(f"{admin}/Task", json=tasks).raise_for_status()
    orders = sorted(r["Id"] for r in http.get(f"{admin}/Order").json())[:2]
    items = [
        {"OrderId": order, "Quantity": quantity, "UnitPrice": 25, "Description": "Tour shirt"}
        for order, quantity in zip(orders, (1, 3), strict=True)
    ]
    answer = http.post(f"{admin}/OrderItem", json=items)
    if answer.status_code == 404:
        print("  (this org has no OrderItem object: the orders are read without items)")
    else:
        answer.raise_for_status()


def enrich(warehouse: Path) -> None:
    """The marketing team's own step: a fan tier per person, from how much is known of them."""
    with duckdb.connect(str(warehouse)) as con:
        tables = {
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        if "people" not in tables:
            return
        con.execute("ALTER TABLE people ADD COLUMN IF NOT EXISTS fan_tier VARCHAR")
        con.execute(
            """
            UPDATE people SET fan_tier = CASE
                WHEN linked.records >= 2 THEN 'Gold'
                WHEN people.organization_key IS NOT NULL THEN 'Silver'
                ELSE 'Bronze' END
            FROM (SELECT person_id, count(*) AS records FROM people_sources WHERE current
                  GROUP BY person_id) AS linked
            WHERE linked.person_id = people.person_id
            """
        )


def print_reads(name: str, result: dg.ExecuteInProcessResult) -> None:
    for event in result.get_asset_materialization_events():
        values = {k: v.value for k, v in event.materialization.metadata.items()}
        key = "/".join(event.asset_key.path)
        if "records read" in values:
            print(
                f"  {key:<27} {values['mode']:<12} {values['records read']} records via "
                f"{values['api']}, {values['current records in the copy']} current, "
                f"{values['flagged deleted']} deleted, API calls {values['API calls used']}"
            )
        elif "records merged" in values:
            print(
                f"  {key:<27} {'merge':<12} {values['records merged']} records: created "
                f"{values['created']}, updated {values['updated']}"
            )
        else:
            shown = ", ".join(f"{k} {v}" for k, v in values.items() if isinstance(v, int))
            print(f"  {key:<27} {'build':<12} {shown}")
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        error = failure.event_specific_data.error if failure else None
        message = error.message.strip().splitlines()[0] if error else "see the Dagster UI"
        print(f"  {name:<27} {'':<12} run failed: {message}")
