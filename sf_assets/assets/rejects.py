"""`S/rejects` of a writeback: rows rejected while mapping plus rows Salesforce refused."""

from __future__ import annotations

import polars as pl

from sf_assets.specs import SyncSpec
from sf_assets.state import StateStore


def collect_rejects(
    staging: StateStore, spec: SyncSpec, batch: str, *, refused: bool = True
) -> pl.DataFrame:
    """Mapping rejects plus rows whose latest attempt Salesforce refused; `refused=False`
    when the batch is written (every key settled), which spares reading its ledger."""
    mapping = staging.load_batch(spec.name, "mapping_rejects", batch)
    mapping_part = (
        mapping.select(
            pl.lit("mapping").alias("stage"),
            pl.col("row").cast(pl.Int64),
            pl.col("key").cast(pl.Utf8),
            pl.col("code").cast(pl.Utf8),
            pl.col("reason").cast(pl.Utf8),
            pl.lit(None, pl.Utf8).alias("hint"),
        )
        if mapping.height
        else empty_rejects()
    )
    if not refused:
        return mapping_part.sort("row", nulls_last=True)
    failed = staging.latest_outcomes(spec.name, batch, ("failed",))
    salesforce_part = empty_rejects()
    if failed.height:
        mapped = staging.load_batch(spec.name, "mapped", batch)
        rows = mapped.select("_key", "_row") if mapped.height else no_rows()
        salesforce_part = failed.join(
            rows, left_on="source_key", right_on="_key", how="left"
        ).select(
            pl.lit("salesforce").alias("stage"),
            pl.col("_row").cast(pl.Int64).alias("row"),
            pl.col("source_key").cast(pl.Utf8).alias("key"),
            pl.col("error_code").cast(pl.Utf8).alias("code"),
            pl.format("{}: {}", pl.col("error_code"), pl.col("error_message")).alias("reason"),
            pl.col("hint").cast(pl.Utf8),
        )
    return pl.concat([mapping_part, salesforce_part]).sort("row", nulls_last=True)


def no_rows() -> pl.DataFrame:
    return pl.DataFrame(schema={"_key": pl.Utf8, "_row": pl.Int64})


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "stage": pl.Utf8,
            "row": pl.Int64,
            "key": pl.Utf8,
            "code": pl.Utf8,
            "reason": pl.Utf8,
            "hint": pl.Utf8,
        }
    )
