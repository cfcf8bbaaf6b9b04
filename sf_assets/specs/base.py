"""What every sync of a dataset declares, whatever its target: a name, the source, how fresh it
must stay, how its sensor finds batches and retries failed ones, and how many rejects a batch
may have."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sf_assets.specs.common import NAME_PATTERN, Freshness, SensorStatus, SpecModel
from sf_assets.specs.sources import Source


class BatchRetry(SpecModel):
    """How the sensor asks again for a batch whose run failed or left rows unwritten: after
    `first_after_minutes`, doubling each attempt up to `max_after_minutes`, at most
    `max_attempts` runs in all (then the tick says so and a person materializes it)."""

    first_after_minutes: float = Field(5, gt=0, description="Wait before the second attempt.")
    max_after_minutes: float = Field(360, gt=0, description="Longest wait between attempts.")
    max_attempts: int = Field(10, ge=1, description="Runs the sensor asks for, first included.")

    @model_validator(mode="after")
    def waits_grow(self) -> BatchRetry:
        if self.max_after_minutes < self.first_after_minutes:
            raise ValueError("max_after_minutes must be at least first_after_minutes")
        return self


class DatasetSync(SpecModel):
    """The fields a writeback and an Emarsys upload share."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name; becomes the asset prefix.")
    description: str | None = None
    source: Source
    freshness: Freshness | None = None
    sensor_interval_seconds: int = Field(30, ge=5, description="How often the sensor looks.")
    batches: Literal["all_pending", "after_highest"] = Field(
        "all_pending",
        description="Which batches the sensor asks for. all_pending: every batch of the source "
        "not written completely, oldest first, late ones (below the highest written) included. "
        "after_highest: only batches after the highest one written; a batch that lands late "
        "with a lower id is never written by the sensor.",
    )
    batch_retry: BatchRetry = Field(
        default_factory=BatchRetry, description="When the sensor asks again for a failed batch."
    )
    max_reject_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Largest share of a batch's rows that may be rejected while mapping; above "
        "it a blocking check stops the batch before anything is sent (a renamed column or a "
        "changed format rejects most rows, and writing the rest would hide it).",
    )
    sensor_status: SensorStatus = Field(
        "stopped",
        description="How the sync's sensor starts when the code location first loads it. "
        "Stopped (Dagster's own default) means deploying a new sync never writes into an org by "
        "surprise: start the sensor in the UI when the first batch looks right. A status set "
        "in the UI wins over this.",
    )

    @property
    def batched(self) -> bool:
        return self.source.batch_column is not None
