"""The code location `dg dev` loads: the assets of every sync spec in `syncs/` (or
`$SF_ASSETS_SYNCS_DIR`), built by the factory of the spec's kind, sharing the state store and
the connections the specs name. Connection settings come from the environment and `.env` (see
connections.py).

A spec that does not load takes nothing else down: it becomes one asset in the group
`broken_specs` whose description is the error, so the UI shows which file is broken and why
while every other sync and sensor keeps working.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

import dagster as dg

from sf_assets.assets.ingest import build_ingest
from sf_assets.assets.sales_upload import build_sales_upload
from sf_assets.assets.writeback import build_writeback
from sf_assets.connections import connection_resources, load_env_file, staging_from_env
from sf_assets.specs import BrokenSpec, LoadedSpec, SpecError, read_specs, syncs_dir

BROKEN_GROUP = "broken_specs"

# One asset factory per spec kind (`SyncSpec.kind`, `EmarsysSyncSpec.kind`).
FACTORIES: dict[str, Callable[[LoadedSpec], dg.Definitions]] = {
    "salesforce": build_writeback,
    "emarsys": build_sales_upload,
    "ingest": build_ingest,
}


def build_definitions(
    specs: list[LoadedSpec],
    broken: Sequence[BrokenSpec] = (),
    executor: dg.ExecutorDefinition = dg.in_process_executor,
) -> dg.Definitions:
    """The code location. Its jobs run their steps in one process by default: each job is a
    short chain whose steps keep nothing in memory for the next (each reads the state store),
    and a process per step costs seconds of imports, most of a small batch's latency; a run
    killed mid-step resumes from the lease and the ledger all the same. Pass another executor
    (multiprocess, `k8s_job_executor`, ...) to put steps elsewhere; with steps on other
    machines the state must be in PostgreSQL, which the steps check."""
    return dg.Definitions.merge(
        *(FACTORIES[item.spec.kind](item) for item in specs),
        dg.Definitions(
            assets=[broken_spec_asset(item) for item in broken],
            resources={"staging": staging_from_env(), **connection_resources(specs)},
            executor=executor,
        ),
    )


def broken_spec_asset(broken: BrokenSpec) -> dg.AssetsDefinition:
    """A stand-in for a spec that does not load: its description says what to fix, and
    materializing it fails with the same message (nothing else happens)."""
    key = re.sub(r"[^A-Za-z0-9_]", "_", broken.file.stem)

    @dg.asset(
        key=[BROKEN_GROUP, key],
        group_name=BROKEN_GROUP,
        kinds={"yaml"},
        description=f"Broken sync spec {broken.file.name}: fix the file, then reload the "
        f"code location.\n\n```\n{broken.message}\n```",
        metadata={"file": dg.MetadataValue.path(str(broken.file)), "error": broken.message},
    )
    def broken_spec() -> None:
        raise dg.Failure(description=broken.message)

    return broken_spec


def load_definitions(executor: dg.ExecutorDefinition = dg.in_process_executor) -> dg.Definitions:
    load_env_file()
    directory = syncs_dir()
    if not directory.is_dir():
        raise SpecError(
            f"the syncs folder {directory} does not exist, so there is no sync to load: "
            "create it (sf-assets init), or point SF_ASSETS_SYNCS_DIR (or "
            "SF_ASSETS_PROJECT_DIR, the folder that holds syncs/) at the right place"
        )
    folder = read_specs(directory)
    for item in folder.broken:
        logging.getLogger("sf_assets").warning("skipping a broken sync spec: %s", item.message)
    return build_definitions(folder.specs, folder.broken, executor)


defs = load_definitions()
