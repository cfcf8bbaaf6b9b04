"""`sf-assets demo`: the contacts sync end to end against the local sandbox org.

It makes a sample warehouse of ticket buyers in three batches, starts the sandbox org (as its
own process, reached over HTTPS like any org), lets the sync's sensor find the batches, and
materializes them one partition at a time in a real Dagster instance. Then it runs every batch
again to show that nothing is sent twice, and says how to browse the result in the UI
(`sf-assets ui`). Everything it keeps lives in `.sf-assets/demo/` of the project folder, apart
from anything of the user's: it never writes a file of theirs (not `.env`, not the staging file
of real syncs in `.sf-assets/`), and the UI command takes the sandbox's settings from the org
it starts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from resources.https import TrustingSession
from sf_assets.assets.sensors import evaluate_tick
from sf_assets.cli.demo_data import change_one_product, write_integrations, write_warehouse
from sf_assets.cli.demo_ingest import read_into_warehouse, split_specs
from sf_assets.cli.local_org import local_org
from sf_assets.definitions import build_definitions
from sf_assets.specs import AnySyncSpec, LoadedSpec, load_specs

SYNC_ORDER = (
    "contacts_to_salesforce",
    "customers_to_contacts",
    "checkouts_to_salesforce",
    "transactions_to_salesforce",
    "shipments_to_orders",
    "inventory_levels",
    "survey_responses",
    "products_catalog",
    "order_lines_to_emarsys",
)
CATALOG = "products_catalog"
DEMO_STATE = Path(".sf-assets") / "demo"  # the demo's own files, relative to the project
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the summary says it all


def run_demo(project: Path | None = None, org_port: int = 0) -> int:
    project = (project or Path.cwd()).resolve()
    state = project / DEMO_STATE
    reset(state)
    warehouse = state / "warehouse.duckdb"
    batches = write_warehouse(warehouse)
    print(f"sample warehouse: {sum(batches.values())} ticket buyers in {len(batches)} batches")
    with local_org(state, state=state / "org.duckdb", port=org_port) as info:
        print(f"sandbox org ready at {info['instance_url']}\n")
        order_numbers, skus = seed_org(info)
        write_integrations(warehouse, order_numbers, skus)
        configure_environment(info, state, project)
        specs = ordered(load_specs(project / "syncs"))
        defs = build_definitions(specs)
        writes, reads, round_trip = split_specs(specs)
        failed = 0
        with dg.DagsterInstance.get() as instance, progress_bar() as progress:
            task = progress.add_task("syncs run", total=2 * len(specs) + 1)
            for first in (True, False):
                print(
                    "first run of every sync, batch by batch:"
                    if first
                    else "\nsecond run of everything (nothing may be sent twice):"
                )
                for loaded in writes:
                    failed += run_sync(defs, instance, loaded.spec, discover=first)
                    progress.advance(task)
                failed += read_into_warehouse(
                    defs, instance, reads, info, warehouse, QUIET, first=first
                )
                progress.advance(task, len(reads))
                for loaded in round_trip:
                    failed += run_sync(defs, instance, loaded.spec, discover=first)
                    progress.advance(task)
            change_one_product(warehouse)
            print("\none product changed in the warehouse; the catalogue runs again:")
            failed += run_sync(
                defs, instance, next(s.spec for s in specs if s.spec.name == CATALOG)
            )
            progress.advance(task)
    print_ui_help()
    if failed:
        print(f"\n{failed} run(s) failed: each says why above, and the UI keeps its logs.")
    return 1 if failed else 0


def progress_bar() -> Progress:
    """How far the demo is (rich: the summaries print above the bar, and a pipe gets only
    the summaries)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )


def ordered(specs: list[LoadedSpec]) -> list[LoadedSpec]:
    """Contacts before the customers matched to them, checkouts before their transactions."""
    rank = {name: i for i, name in enumerate(SYNC_ORDER)}
    return sorted(specs, key=lambda s: (rank.get(s.spec.name, len(rank)), s.spec.name))


def seed_org(info: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Records the org already holds before any sync runs: orders awaiting shipment and the
    inventory items of the warehouse (created through the sandbox's admin endpoint, as if
    someone had entered them in Salesforce)."""
    session = TrustingSession(info["ca_bundle"])
    admin = f"{info['instance_url']}/__admin/records"
    (account,) = session.post(f"{admin}/Account", json=[{"Name": "Festival Shop"}]).json()
    orders = [
        {"AccountId": account["id"], "EffectiveDate": "2026-11-20", "Status": "Draft"}
        for _ in range(20)
    ]
    session.post(f"{admin}/Order", json=orders).raise_for_status()
    # Someone entered one new customer twice by hand: the customers sync, matching on Email,
    # must refuse that row (MULTIPLE_MATCHES) rather than guess which Contact it means.
    twins = [{"LastName": "Customer7", "Email": "new7@example.org"}] * 2
    session.post(f"{admin}/Contact", json=twins).raise_for_status()
    items = [{"Name": f"Item {i}", "SKU__c": f"SKU-{i:04d}"} for i in range(1, 9)]
    session.post(f"{admin}/Inventory_Item__c", json=items).raise_for_status()
    order_numbers = sorted(r["OrderNumber"] for r in session.get(f"{admin}/Order").json())
    columns = ["order", "timestamp", "customer", "item", "price", "quantity", "s_channel"]
    session.put(f"{info['instance_url']}/__admin/emarsys/columns", json=columns).raise_for_status()
    return order_numbers, [item["SKU__c"] for item in items]


def run_sync(
    defs: dg.Definitions, instance: dg.DagsterInstance, spec: AnySyncSpec, discover: bool = True
) -> int:
    """Runs the sync (every batch of it, one by one) and says how many of those runs failed."""
    if spec.batched:
        found = discover_batches(defs, instance, spec.name) if discover else []
        batches = found or instance.get_dynamic_partitions(f"{spec.name}_batches")
    else:
        batches = [None]
    failed = 0
    for batch in batches:
        metadata = materialize(defs, instance, spec.name, batch)
        print_summary(spec.name, batch or "whole dataset", metadata)
        failed += not metadata["success"]
    return failed


def reset(state: Path) -> None:
    """Start every demo from scratch, so its story is the same each time."""
    for name in ("staging.duckdb", "org.duckdb", "dagster_home", "warehouse.duckdb"):
        target = state / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    (state / "dagster_home").mkdir(parents=True)
    (state / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")


def configure_environment(info: dict[str, Any], state: Path, project: Path) -> None:
    os.environ.update(connection_variables(info, state, info["login_url"]))
    os.environ["DAGSTER_HOME"] = str(state / "dagster_home")
    os.environ["SF_ASSETS_SYNCS_DIR"] = str(project / "syncs")


def connection_variables(info: dict[str, Any], state: Path, login_url: str) -> dict[str, str]:
    return {
        "SF_LOGIN_URL": login_url,
        "SF_USERNAME": info["username"],
        "SF_PASSWORD": info["password"],
        "SF_SECURITY_TOKEN": info["security_token"],
        "SF_CA_BUNDLE": info["ca_bundle"],
        "SF_API_VERSION": info["api_version"],
        "SF_ASSETS_STAGING": str(state / "staging.duckdb"),
        "EMARSYS_URL": login_url,  # the sandbox serves the Emarsys endpoint beside the org
        "EMARSYS_TOKEN": info["emarsys_token"],
        "EMARSYS_MERCHANT_ID": info["merchant_id"],
        "EMARSYS_CA_BUNDLE": info["ca_bundle"],
    }


def discover_batches(defs: dg.Definitions, instance: dg.DagsterInstance, sync: str) -> list[str]:
    """One real sensor tick: it adds the partitions and asks for a run per batch."""
    result = evaluate_tick(defs, f"{sync}_batches", instance)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return [request.partition_key for request in result.run_requests or []]


def materialize(
    defs: dg.Definitions, instance: dg.DagsterInstance, sync: str, batch: str | None
) -> dict[str, Any]:
    names = {job.name for job in defs.jobs or []}
    job = defs.resolve_job_def(
        f"{sync}_writeback" if f"{sync}_writeback" in names else f"{sync}_upload"
    )
    result = job.execute_in_process(
        instance=instance, partition_key=batch, raise_on_error=False, run_config=QUIET
    )
    metadata: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        step = event.asset_key.path[-1]
        metadata[step] = {k: v.value for k, v in event.materialization.metadata.items()}
    metadata["success"] = result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    if failures:
        error = failures[0].event_specific_data.error
        metadata["error"] = error.message.strip().splitlines()[0] if error else "unknown"
    return metadata


def print_summary(sync: str, batch: str, metadata: dict[str, Any]) -> None:
    source = metadata.get("source", {})
    mapped = metadata.get("mapped", {})
    if "uploaded" in metadata or "lines in" in mapped:
        print_upload_summary(sync, batch, metadata)
        return
    written = metadata.get("written", {})
    rejects = metadata.get("rejects", {})
    reasons = ", ".join(f"{code} {n}" for code, n in list(rejects.get("by reason", {}).items())[:3])
    parts = [
        f"{source.get('rows', 0)} rows",
        f"sent {written.get('sent', 0)}"
        + (f" via {written['api']}" if written.get("sent") else ""),
        f"created {written.get('created', 0)}",
        f"updated {written.get('updated', 0)}",
    ]
    if written.get("not found"):
        parts.append(f"not found {written['not found']}")
    parts.append(f"API calls {written.get('API calls used', 0)}")
    if not written.get("sent") and "batch written so far" in written:
        parts.append(f"batch holds {written['batch written so far']}")
    parts.append(f"rejected {rejects.get('rejected', 0)}" + (f" ({reasons})" if reasons else ""))
    print(f"  {sync:<27} {batch:<14} " + ", ".join(parts))
    if "object setup" in mapped and "created" in str(mapped["object setup"]):
        print(f"  {'':<27} {'':<14} {mapped['object setup']}")
    if not metadata["success"]:
        print(f"  {'':<27} {'':<14} run failed: {metadata.get('error', 'see the Dagster UI')}")


def print_upload_summary(sync: str, batch: str, metadata: dict[str, Any]) -> None:
    mapped = metadata.get("mapped", {})
    uploaded = metadata.get("uploaded", {})
    reasons = ", ".join(f"{code} {n}" for code, n in mapped.get("rejected by reason", {}).items())
    print(
        f"  {sync:<27} {batch:<14} {mapped.get('lines in', 0)} lines, uploaded "
        f"{uploaded.get('uploaded', 0)} ({uploaded.get('state', '-')}), rejected "
        f"{mapped.get('rejected', 0)}" + (f" ({reasons})" if reasons else "")
    )
    if not metadata["success"]:
        print(f"  {'':<27} {'':<14} run failed: {metadata.get('error', 'see the Dagster UI')}")


def print_ui_help() -> None:
    print(
        f"\nBrowse it in the Dagster UI (history and partitions persist in {DEMO_STATE}/):\n"
        "  uv run sf-assets ui --port 3000 --org-port 8443\n"
        "(it starts the sandbox org on the demo's state and `dg dev`; your own .env is not used)"
    )
