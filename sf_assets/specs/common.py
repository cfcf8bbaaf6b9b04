"""What every spec kind shares: strict, frozen models, names, and freshness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SensorStatus = Literal["stopped", "running"]


class SpecError(ValueError):
    """A sync spec that cannot be used; the message names the file and the field."""


class SpecModel(BaseModel):
    """Unknown keys are errors (a typo must not be ignored) and a loaded spec never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Freshness(SpecModel):
    max_lag_minutes: int = Field(gt=0, description="Fail when nothing was written for this long.")
