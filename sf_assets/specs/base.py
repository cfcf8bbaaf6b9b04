"""What every sync of a dataset declares, whatever its target: a name, the source, how fresh it
must stay and how often its sensor looks."""

from __future__ import annotations

from pydantic import Field

from sf_assets.specs.common import NAME_PATTERN, Freshness, SensorStatus, SpecModel
from sf_assets.specs.sources import Source


class DatasetSync(SpecModel):
    """The fields a writeback and an Emarsys upload share."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name; becomes the asset prefix.")
    description: str | None = None
    source: Source
    freshness: Freshness | None = None
    sensor_interval_seconds: int = Field(30, ge=5, description="How often the sensor looks.")
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
