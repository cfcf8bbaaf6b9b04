"""How patient calls to the org are: retries for passing faults and Bulk job polling."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiOptions:
    """Production defaults; tests shorten the waits."""

    poll_seconds: float = 0.2  # first wait between Bulk job polls; grows to max_poll_seconds
    max_poll_seconds: float = 5.0
    bulk_timeout_seconds: float = 4 * 3600  # give up polling a job after this long
    retry_attempts: int = 8  # per HTTP call, for retryable faults
    retry_seconds: float = 300  # total time one HTTP call may spend retrying
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
