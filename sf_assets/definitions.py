"""The code location `dagster dev -w workspace.yaml` loads: the assets of every sync spec in
`syncs/` (or `$SF_ASSETS_SYNCS_DIR`), built by the factory of the spec's kind, sharing the state
store and the connections the specs name. Connection settings come from the environment (see
connections.py)."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from sf_assets.assets.ingest import build_ingest
from sf_assets.assets.sales_upload import build_sales_upload
from sf_assets.assets.writeback import build_writeback
from sf_assets.connections import connection_resources, staging_from_env
from sf_assets.specs import LoadedSpec, load_specs

# One asset factory per spec kind (`SyncSpec.kind`, `EmarsysSyncSpec.kind`).
FACTORIES: dict[str, Callable[[LoadedSpec], dg.Definitions]] = {
    "salesforce": build_writeback,
    "emarsys": build_sales_upload,
    "ingest": build_ingest,
}


def build_definitions(specs: list[LoadedSpec]) -> dg.Definitions:
    return dg.Definitions.merge(
        *(FACTORIES[item.spec.kind](item) for item in specs),
        dg.Definitions(resources={"staging": staging_from_env(), **connection_resources(specs)}),
    )


defs = build_definitions(load_specs())
