"""`S/source`: a batch (or the whole dataset) read from the warehouse and staged, the same for
every target."""

from typing import Any

import dagster as dg

from sf_assets.assets.lineage import source_deps
from sf_assets.assets.metadata import source_label
from sf_assets.assets.partitions import batch_of
from sf_assets.sources import Dataset
from sf_assets.sources.staged import stage_source
from sf_assets.specs import LoadedSpec
from sf_assets.state import StateStore
from sf_assets.state.placement import require_shared_state


def source_asset(loaded: LoadedSpec, common: dict[str, Any]) -> dg.AssetsDefinition:
    """`S/source`: the batch (or the whole dataset) read and staged; shared by every target."""
    spec = loaded.spec
    name = spec.name

    @dg.asset(
        key=[name, "source"],
        deps=source_deps(spec.source),
        kinds={"duckdb"},
        description=f"Rows of {source_label(spec)} staged for writing, one batch per partition.",
        **common,
    )
    def source(context: dg.AssetExecutionContext, staging: StateStore) -> dg.MaterializeResult:
        require_shared_state(context, staging)
        batch = batch_of(context)
        dataset = Dataset(loaded)
        frame = dataset.read_batch(batch) if spec.batched else dataset.read_all()
        restaged = stage_source(staging, name, batch, frame)
        return dg.MaterializeResult(
            metadata={
                "batch": batch,
                "rows": frame.height,
                "columns": ", ".join(c for c in frame.columns if c != "_row"),
                "staged": "yes" if restaged else "no: the same rows are staged already",
            }
        )

    return source
