"""Looking many keys up with one Bulk API 2.0 query job instead of thousands of SOQL IN calls.

An IN list travels in a URL, so a few hundred keys fit one REST call: 100,000 keys cost over
three hundred calls. A Bulk query job cannot take the keys either (a SOQL statement is capped
at 100,000 characters, about 3,000 emails), so it reads `Id` and the match_on field of every
record that has a value and the keys are matched here, page by page, the way Salesforce
compares them (trimmed, text case-insensitively). Only the records that match are kept, so
memory holds one result page plus the matches, not the object. The job reads the whole object
whatever the key count, which is why it only pays off for large key sets (see
lookup.BULK_LOOKUP_KEYS).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import polars as pl

from sf_assets.writer.context import WriteContext
from sf_assets.writer.errors import WriteError
from sf_assets.writer.polling import poll_job

JOBS = "jobs/query"
# Records per result page: about 15 MB of CSV for Id and an email, so four pages read a
# million Contacts while one page stays small next to the batch itself.
PAGE_RECORDS = 250_000


def soql(ctx: WriteContext) -> str:
    """Every record that has a match_on value: a record without one can match no key."""
    field, sobject = ctx.target.match_on, ctx.target.object
    return f"SELECT Id, {field} FROM {sobject} WHERE {field} != null"


def records(ctx: WriteContext, wanted: pl.Series, normalize: pl.Expr) -> pl.DataFrame:
    """`Id`, `_found` (the match_on value as stored) of every record whose value, normalized
    by `normalize` (an expression on `_found`), is one of `wanted` (already normalized)."""
    job_id = create(ctx, soql(ctx))
    final = poll(ctx, job_id)
    if final["state"] != "JobComplete":
        raise WriteError(
            f"Salesforce did not complete Bulk query job {job_id} looking up "
            f"{ctx.target.match_on} ({final['state']}: "
            f"{final.get('errorMessage') or 'no message'}); nothing was written"
        )
    keep = pl.Series(wanted, dtype=pl.Utf8).implode()
    found = [page.filter(normalize.is_in(keep)) for page in pages(ctx, job_id)]
    return pl.concat(found) if found else pl.DataFrame(schema={"Id": pl.Utf8, "_found": pl.Utf8})


def create(ctx: WriteContext, query: str) -> str:
    """A query job (not queryAll: deleted records must not match); returns its id."""
    body = {"operation": "query", "query": query}
    return ctx.api.call("POST", JOBS, idempotent=True, json=body).json()["id"]


def poll(ctx: WriteContext, job_id: str) -> dict[str, Any]:
    """The job's info once it has finished."""
    return poll_job(ctx, f"{JOBS}/{job_id}", f"Bulk query job {job_id}", "nothing was written")


def pages(ctx: WriteContext, job_id: str) -> Iterator[pl.DataFrame]:
    """The result pages as `Id`, `_found` frames, following `Sforce-Locator` until `null`."""
    locator: str | None = None
    while True:
        path = f"{JOBS}/{job_id}/results?maxRecords={PAGE_RECORDS}"
        if locator:
            path += f"&locator={locator}"
        response = ctx.api.call("GET", path, idempotent=True)
        yield parse(response.content, ctx.target.match_on)
        locator = response.headers.get("Sforce-Locator")
        if not locator or locator == "null":
            return


def parse(data: bytes, match_on: str) -> pl.DataFrame:
    """One result page as text columns; the header names the fields as the query spelled them."""
    if not data.strip():
        return pl.DataFrame(schema={"Id": pl.Utf8, "_found": pl.Utf8})
    frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
    by_lower = {name.lower(): name for name in frame.columns}
    return frame.select(
        pl.col(by_lower["id"]).alias("Id"), pl.col(by_lower[match_on.lower()]).alias("_found")
    ).drop_nulls("_found")
