"""How a sync's assets are partitioned (one dynamic partition per batch) and which pool their
Salesforce calls share."""

from __future__ import annotations

import dagster as dg

from sf_assets.specs import AnySyncSpec, SyncSpec

WHOLE_DATASET = "all"  # the batch id of a sync whose dataset has no batch column


def batch_partitions(spec: AnySyncSpec) -> dg.DynamicPartitionsDefinition | None:
    if not spec.batched:
        return None
    return dg.DynamicPartitionsDefinition(name=f"{spec.name}_batches")


def pool_name(spec: SyncSpec) -> str:
    """One pool per org, shared by every step that calls it, so API limits hold across runs."""
    return f"salesforce_{spec.connection}"


def batch_of(context: dg.AssetExecutionContext) -> str:
    return context.partition_key if context.has_partition_key else WHOLE_DATASET
