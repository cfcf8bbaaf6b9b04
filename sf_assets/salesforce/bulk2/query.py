"""Bulk API 2.0 query jobs: one job reads a whole object (or a filtered part of it) as CSV
pages, for far fewer calls than REST query pages of 2,000 records.

Used by the writer to look many keys up at once, and by anything that reads objects whole.
Pages are handed out one at a time, so memory holds one page, not the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sf_assets.salesforce.api import Api
from sf_assets.salesforce.bulk2.polling import poll_job

JOBS = "jobs/query"
# Records per result page: about 15 MB of CSV for Id and an email, so four pages read a
# million Contacts while one page stays small next to the batch itself.
PAGE_RECORDS = 250_000


def create(api: Api, soql: str, *, include_deleted: bool = False) -> str:
    """A query job; `include_deleted` makes it a queryAll (deleted and archived records too).
    Repeating a create whose answer was lost leaves at most an extra job behind: safe."""
    body = {"operation": "queryAll" if include_deleted else "query", "query": soql}
    return api.call("POST", JOBS, idempotent=True, json=body).json()["id"]


def poll(api: Api, job_id: str, if_late: str, *, rows: int | None = None) -> dict[str, Any]:
    """The job's info once it has finished; `if_late` says what a timeout leaves behind, and
    `rows`, the records the query should return when a count told, lets the wait follow the
    job's progress (see polling.py)."""
    return poll_job(api, f"{JOBS}/{job_id}", f"Bulk query job {job_id}", if_late, rows=rows)


def pages(api: Api, job_id: str) -> Iterator[bytes]:
    """The CSV result pages of a completed job, following `Sforce-Locator` until `null`."""
    for content, _ in pages_from(api, job_id, None):
        yield content


def pages_from(api: Api, job_id: str, locator: str | None) -> Iterator[tuple[bytes, str | None]]:
    """The result pages from `locator` on (None: the first), each with the locator of the page
    after it (None after the last), so that a reader can resume a job where it stopped.

    Each page is asked for while the caller works on the one before (parsing it, committing
    it), so a read takes about as long as its download rather than the sum of both; one page
    more is held meanwhile."""
    with api.threads(1) as pool:
        pending = pool.submit(_page, api, job_id, locator)
        while True:
            content, following = pending.result()
            if following is not None:
                pending = pool.submit(_page, api, job_id, following)
            yield content, following
            if following is None:
                return


def _page(api: Api, job_id: str, locator: str | None) -> tuple[bytes, str | None]:
    """One result page and the locator of the next (None after the last)."""
    path = f"{JOBS}/{job_id}/results?maxRecords={PAGE_RECORDS}"
    if locator:
        path += f"&locator={locator}"
    response = api.call("GET", path, idempotent=True)
    following = response.headers.get("Sforce-Locator")
    return response.content, following if following and following != "null" else None
