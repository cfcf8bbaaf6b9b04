"""How a sync's assets are scheduled: partitioned (one dynamic partition per batch), pooled (the
Salesforce calls of one org share a pool) and kept fresh."""

from __future__ import annotations

from datetime import timedelta

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


def freshness_policy(spec: AnySyncSpec) -> dg.FreshnessPolicy | None:
    """Fail the written asset when nothing was written for the spec's `max_lag_minutes`."""
    if spec.freshness is None:
        return None
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=spec.freshness.max_lag_minutes)
    )


def batch_of(context: dg.AssetExecutionContext) -> str:
    return context.partition_key if context.has_partition_key else WHOLE_DATASET
