"""The code location `dagster dev -w workspace.yaml` loads: one writeback per sync spec in
`syncs/` (or `$SF_ASSETS_SYNCS_DIR`), sharing the staging store and the Salesforce connections
the specs name. Connection settings come from the environment (see connections.py)."""

from __future__ import annotations

import dagster as dg

from sf_assets.connections import resource_key, salesforce_from_env, staging_from_env
from sf_assets.specs import LoadedSpec, load_specs
from sf_assets.writeback import build_writeback


def build_definitions(specs: list[LoadedSpec]) -> dg.Definitions:
    connections = sorted({item.spec.connection for item in specs} | {"default"})
    resources = {resource_key(c): salesforce_from_env(c) for c in connections}
    return dg.Definitions.merge(
        *(build_writeback(item) for item in specs),
        dg.Definitions(resources={"staging": staging_from_env(), **resources}),
    )


defs = build_definitions(load_specs())
