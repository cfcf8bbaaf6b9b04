"""Waiting for a Bulk API 2.0 job (ingest or query) to reach a final state."""

from __future__ import annotations

import time
from typing import Any

from sf_assets.progress import JobProgress
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.errors import BulkJobTimedOut

FINISHED = ("JobComplete", "Failed", "Aborted")


def poll_job(api: Api, path: str, what: str, if_late: str) -> dict[str, Any]:
    """The job's info once it has finished, polling at a growing interval; `if_late` tells
    the user what a timeout leaves behind."""
    options = api.options
    wait = options.poll_seconds
    deadline = time.monotonic() + options.bulk_timeout_seconds
    progress = JobProgress(api.log, what)
    while True:
        current = api.call("GET", path, idempotent=True).json()
        progress.update(current)
        if current["state"] in FINISHED:
            return current
        if time.monotonic() > deadline:
            raise BulkJobTimedOut(
                f"{what} is still {current['state']} after "
                f"{options.bulk_timeout_seconds:.0f} s; {if_late}"
            )
        time.sleep(wait)
        wait = min(wait * 1.5, options.max_poll_seconds)
