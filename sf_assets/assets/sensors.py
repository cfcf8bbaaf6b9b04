"""The sensor of a batched sync: new batches of the dataset become partitions and runs."""

from typing import Any

import dagster as dg

from sf_assets.assets.metadata import source_label
from sf_assets.sources import Dataset
from sf_assets.specs import LoadedSpec
from sf_assets.state.store import StagingStore


def batch_sensor(
    loaded: LoadedSpec, partitions: dg.DynamicPartitionsDefinition, job: Any
) -> dg.SensorDefinition:
    """Finds batches newer than the highest one written, adds them as partitions, and asks for
    one run each; the batch id is the run key, so a batch is never requested twice."""
    spec = loaded.spec

    @dg.sensor(
        name=f"{spec.name}_batches",
        job=job,
        minimum_interval_seconds=spec.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus(spec.sensor_status.upper()),
        description=f"New batches of {source_label(spec)} become partitions and runs.",
    )
    def batches(context: dg.SensorEvaluationContext, staging: StagingStore) -> dg.SensorResult:
        ids = Dataset(loaded).batch_ids()
        fresh = newer_than(ids, staging.watermark(spec.name))
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        added = [b for b in fresh if b not in known]
        return dg.SensorResult(
            run_requests=[dg.RunRequest(partition_key=b, run_key=b) for b in fresh],
            dynamic_partitions_requests=[partitions.build_add_request(added)] if added else [],
        )

    return batches


def newer_than(ids: list[str], watermark: str | None) -> list[str]:
    """Batch ids after the watermark in the dataset's own order (the reader sorts them)."""
    if watermark is None:
        return ids
    if watermark in ids:
        return ids[ids.index(watermark) + 1 :]
    return [b for b in ids if _order_key(b) > _order_key(watermark)]


def _order_key(batch: str) -> tuple[int, int | str]:
    return (0, int(batch)) if batch.isdigit() else (1, batch)
