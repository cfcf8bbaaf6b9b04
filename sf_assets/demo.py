"""`sf-assets demo`: the contacts sync end to end against the local sandbox org.

It makes a sample warehouse of ticket buyers in three batches, starts the sandbox org (as its
own process, reached over HTTPS like any org), lets the sync's sensor find the batches, and
materializes them one partition at a time in a real Dagster instance. Then it runs every batch
again to show that nothing is sent twice, and says how to browse the result in the UI.
Everything it keeps lives in `.sf-assets/` of the project folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg

from sf_assets.definitions import build_definitions
from sf_assets.demo_data import write_warehouse
from sf_assets.local_org import local_org
from sf_assets.specs import load_specs

DEMO_SYNC = "contacts_to_salesforce"
UI_PORT = 8443
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the summary says it all


def run_demo(project: Path | None = None) -> int:
    project = (project or Path.cwd()).resolve()
    state = project / ".sf-assets"
    reset(state)
    batches = write_warehouse(state / "warehouse.duckdb")
    print(f"sample warehouse: {sum(batches.values())} ticket buyers in {len(batches)} batches")
    with local_org(state, state=state / "org.duckdb") as info:
        print(f"sandbox org ready at {info['instance_url']}\n")
        configure_environment(info, state, project)
        defs = build_definitions(
            [s for s in load_specs(project / "syncs") if s.spec.name == DEMO_SYNC]
        )
        with dg.DagsterInstance.get() as instance:
            found = discover_batches(defs, instance)
            print(f"sensor {DEMO_SYNC}_batches found batches: {', '.join(found)}\n")
            print("first run, batch by batch:")
            for batch in found:
                print_summary(batch, materialize(defs, instance, batch))
            print("\nsecond run of every batch (nothing may be sent twice):")
            for batch in found:
                print_summary(batch, materialize(defs, instance, batch))
    write_env_file(info, state, project)
    print_ui_help(project)
    return 0


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
    }


def discover_batches(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[str]:
    """One real sensor tick: it adds the partitions and asks for a run per batch."""
    sensor = defs.resolve_sensor_def(f"{DEMO_SYNC}_batches")
    context = dg.build_sensor_context(
        instance_ref=instance.get_ref(), definitions=defs, resources=defs.resources
    )
    result = sensor.evaluate_tick(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return [request.partition_key for request in result.run_requests or []]


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, batch: str) -> dict[str, Any]:
    job = defs.resolve_job_def(f"{DEMO_SYNC}_writeback")
    result = job.execute_in_process(
        instance=instance, partition_key=batch, raise_on_error=False, run_config=QUIET
    )
    metadata: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        step = event.asset_key.path[-1]
        metadata[step] = {k: v.value for k, v in event.materialization.metadata.items()}
    metadata["success"] = result.success
    return metadata


def print_summary(batch: str, metadata: dict[str, Any]) -> None:
    source = metadata.get("source", {})
    written = metadata.get("written", {})
    rejects = metadata.get("rejects", {})
    reasons = ", ".join(f"{code} {n}" for code, n in list(rejects.get("by reason", {}).items())[:4])
    print(
        f"  {batch}: {source.get('rows', 0):>5} rows in, sent {written.get('sent', 0):>5}"
        f"{' via ' + written['api'] if written.get('sent') else '         '}: "
        f"created {written.get('created', 0):>5}, updated {written.get('updated', 0):>4}, "
        f"failed {written.get('failed', 0)}, API calls {written.get('API calls used', 0):>2}; "
        f"rejected {rejects.get('rejected', 0)}{' (' + reasons + ')' if reasons else ''}"
        + ("" if metadata["success"] else "  [run failed: see the Dagster UI]")
    )


def write_env_file(info: dict[str, Any], state: Path, project: Path) -> None:
    """`dagster dev` reads `.env` from the project folder: point it at the sandbox org."""
    variables = connection_variables(info, state, f"https://127.0.0.1:{UI_PORT}")
    lines = [f"{k}={v}" for k, v in variables.items()]
    env_file = project / ".env"
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env_file.chmod(0o600)


def print_ui_help(project: Path) -> None:
    print(
        "\nBrowse it in the Dagster UI (history and partitions persist in .sf-assets/):\n"
        f"  uv run sf-assets sandbox --port {UI_PORT} --state .sf-assets/org.duckdb "
        "--info-file .sf-assets/sandbox-info.json &\n"
        "  DAGSTER_HOME=$PWD/.sf-assets/dagster_home uv run dagster dev -w workspace.yaml\n"
        "(.env, written just now, holds the sandbox's connection settings for dagster dev.)"
    )
