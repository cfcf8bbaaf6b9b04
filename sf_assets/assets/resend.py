"""What one run of a sync's `written` asset sends, chosen by run config.

A sync without a batch column is read whole each run and sends only new or changed rows
(change detection on the content hash in the ledger; rows deleted from the source are not
deleted in Salesforce). A batched sync sends only the rows of its batch without a success, so a
written key in a batch is never resent. Two run-config flags change that for one run:

- `force_full_resend`: send every row, ignoring the ledger (outcomes are still recorded). An
  insert or delete still never repeats a key that succeeded, since that would not be idempotent.
- `retry_rejects_only`: send only the rows the last run rejected. The job `<sync>_retry_rejects`
  sets it and materializes the whole chain, so the rows are re-read and re-mapped from the
  current source: a data fix is picked up, and a row rejected while mapping is sent once it maps.
  Rows refused by Salesforce come from the ledger (latest attempt failed), rows rejected while
  mapping from the previous run's rejects; every attempt stays in the ledger.

Flags on the asset (rather than separate assets) keep one asset per table and one lineage: the
retry is a run of the same chain, with its own config visible in the run's launch config.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from sf_assets.specs import SyncSpec
from sf_assets.state import StateStore


class WriteConfig(dg.Config):
    """Run config of the `written` asset."""

    force_full_resend: bool = False
    retry_rejects_only: bool = False
    plan_only: bool = False  # say what the run would write (sf-assets plan), write nothing


def resend_mode(spec: SyncSpec, config: WriteConfig) -> str:
    """The writer's `resend` mode for this run (see sf_assets.salesforce.writer.selection)."""
    if config.force_full_resend and config.retry_rejects_only:
        raise dg.Failure(
            description="force_full_resend and retry_rejects_only exclude each other: "
            "choose one for the run"
        )
    if config.force_full_resend:
        return "all"
    return "unsent" if spec.batched else "changed"


def reject_keys(staging: StateStore, spec: SyncSpec, batch: str) -> pl.Series:
    """Keys still rejected: latest attempt refused by Salesforce, or rejected while mapping in
    the previous run (read before this run's rejects asset replaces the table)."""
    latest = staging.latest_outcomes(spec.name, batch)
    refused = (
        latest.filter(pl.col("status") == "failed")["source_key"].cast(pl.Utf8)
        if latest.height
        else pl.Series([], dtype=pl.Utf8)
    )
    previous = staging.load_batch(spec.name, "rejects", batch)
    unmapped = (
        previous.filter(pl.col("stage") == "mapping")["key"].cast(pl.Utf8).drop_nulls()
        if previous.height
        else pl.Series([], dtype=pl.Utf8)
    )
    return pl.concat([refused, unmapped]).unique()


def rows_to_consider(
    staging: StateStore, spec: SyncSpec, batch: str, rows: pl.DataFrame, config: WriteConfig
) -> pl.DataFrame:
    """The mapped rows this run may send: all of them, or for a retry only the rejected ones."""
    if not config.retry_rejects_only or rows.is_empty():
        return rows
    keys = reject_keys(staging, spec, batch)
    return rows.filter(pl.col("_key").is_in(keys.implode()))


def retry_job(spec: SyncSpec, assets: list[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    """`<sync>_retry_rejects`: the chain with `retry_rejects_only` on `written` (partitioned
    like the writeback job for a batched sync)."""
    written_op = f"{spec.name}__written"
    return dg.define_asset_job(
        f"{spec.name}_retry_rejects",
        selection=dg.AssetSelection.assets(*assets),
        config={"ops": {written_op: {"config": {"retry_rejects_only": True}}}},
        description="Re-send only the rows the last run rejected, re-mapped from the current "
        "source, after the data or the org was fixed.",
    )
