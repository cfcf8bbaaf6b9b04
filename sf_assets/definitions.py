"""The code location `dagster dev -w workspace.yaml` loads: one writeback per sync spec in
`syncs/` (or `$SF_ASSETS_SYNCS_DIR`), sharing the staging store and the Salesforce connections
the specs name. Connection settings come from the environment (see connections.py)."""

from __future__ import annotations

import dagster as dg

from sf_assets.connections import (
    emarsys_from_env,
    emarsys_key,
    resource_key,
    salesforce_from_env,
    staging_from_env,
)
from sf_assets.sales_upload import build_sales_upload
from sf_assets.specs import EmarsysSyncSpec, LoadedSpec, load_specs
from sf_assets.writeback import build_writeback


def build_definitions(specs: list[LoadedSpec]) -> dg.Definitions:
    emarsys = [item for item in specs if isinstance(item.spec, EmarsysSyncSpec)]
    salesforce = [item for item in specs if not isinstance(item.spec, EmarsysSyncSpec)]
    resources: dict[str, object] = {"staging": staging_from_env()}
    for connection in sorted({item.spec.connection for item in salesforce} | {"default"}):
        resources[resource_key(connection)] = salesforce_from_env(connection)
    for connection in sorted({item.spec.connection for item in emarsys}):
        resources[emarsys_key(connection)] = emarsys_from_env(connection)
    return dg.Definitions.merge(
        *(build_writeback(item) for item in salesforce),
        *(build_sales_upload(item) for item in emarsys),
        dg.Definitions(resources=resources),
    )


defs = build_definitions(load_specs())
