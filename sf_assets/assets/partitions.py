"""How a sync's assets are scheduled: partitioned (one dynamic partition per batch), pooled (the
Salesforce calls of one org share a pool), kept fresh, and tagged so that runs of one batch can
be found, limited and told apart."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from sf_assets.sources.dataset import sort_batch_ids
from sf_assets.specs import AnySyncSpec, SyncSpec
from sf_assets.state import RunStatus

WHOLE_DATASET = "all"  # the batch id of a sync whose dataset has no batch column

# Tags of the runs the sensor asks for. `sf_assets/sync_batch` has one value per (sync, batch):
# a run queue limit of 1 per unique value keeps two runs of a batch from even starting
# together (README, "Exactly once"); the state store's lease is what guarantees it.
SYNC_TAG = "sf_assets/sync"
BATCH_TAG = "sf_assets/batch"
ATTEMPT_TAG = "sf_assets/attempt"
LATE_TAG = "sf_assets/late_batch"
SYNC_BATCH_TAG = "sf_assets/sync_batch"


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


def batch_tags(sync: str, batch: str, attempt: int, *, late: bool) -> dict[str, str]:
    tags = {
        SYNC_TAG: sync,
        BATCH_TAG: batch,
        ATTEMPT_TAG: str(attempt),
        SYNC_BATCH_TAG: f"{sync}/{batch}",
    }
    if late:
        tags[LATE_TAG] = "true"
    return tags


def is_late(batch: str, written: list[str]) -> bool:
    """Whether a batch after this one (in batch order: numeric when every id is) was written
    already: the batch landed late."""
    order = sort_batch_ids(sorted({batch, *written}))
    return any(order.index(other) > order.index(batch) for other in written if other != batch)


def run_status(instance: dg.DagsterInstance) -> RunStatus:
    """What this Dagster instance knows of a run, for the lease of a batch: "finished" (it
    succeeded, failed or was canceled), "active", or None when the instance has no such run."""

    def status(run_id: str) -> str | None:
        run = instance.get_run_by_id(run_id)
        if run is None:
            return None
        return "finished" if run.is_finished else "active"

    return status
