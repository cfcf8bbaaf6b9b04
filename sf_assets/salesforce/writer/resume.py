"""Finishing what an earlier run of the same batch left open, before anything new is sent.

An open record means rows left (or may have left) for Salesforce without their outcome
reaching the ledger: the process died, or a limit stopped it. This runs only once the batch's
lease is held, so the run that left the record is known to be gone. Each record carries what
is needed to read it back (operation, match field, the value sent for every key), whatever the
current write looks like, and Salesforce is asked what happened:

- a Bulk job: its own state and result files (an Open job was never processed: aborted, and
  its rows are sent again);
- a window of collections calls: inserts are looked up (only records this sync can have
  created), deletes by Id are settled for the ids that are gone, and updates and upserts are
  simply sent again, which is safe.
"""

from __future__ import annotations

import polars as pl

from sf_assets.salesforce.errors import SalesforceApiError
from sf_assets.salesforce.writer import bulk, lookup, outcomes
from sf_assets.salesforce.writer.context import WriteContext
from sf_assets.state import OpenJob


def resume_open_jobs(ctx: WriteContext) -> int:
    """Resolve every open job of the batch; returns how many there were."""
    jobs = ctx.job.staging.open_jobs(ctx.sync, ctx.batch)
    for job in jobs:
        ctx.log.info(
            "resuming %s %s write %s of run %s (%d rows by %s, last known state %s)",
            job.api,
            job.operation,
            job.job_id,
            job.run_id,
            len(job.keys),
            job.match_field,
            job.state,
        )
        if job.api == "bulk":
            resume_bulk(ctx, job)
        else:
            resume_rest(ctx, job)
    return len(jobs)


def sent_rows(ctx: WriteContext, job: OpenJob) -> pl.DataFrame:
    """`_key`, `_match` of the job's rows that have no settling outcome yet. A job recorded
    before the store kept its match values is read through the current write's keys."""
    sent = job.key_map() if job.match_field else ctx.key_map(job.keys)
    settled = ctx.job.staging.successful_keys(ctx.sync, ctx.batch).implode()
    return sent.filter(~pl.col("_key").is_in(settled))


def match_field(ctx: WriteContext, job: OpenJob) -> str:
    return job.match_field or ctx.target.match_on


def resume_rest(ctx: WriteContext, job: OpenJob) -> None:
    sent = sent_rows(ctx, job)
    answered = outcomes.empty()
    if not sent.is_empty() and job.operation == "insert":
        answered, _ = lookup.resolve_lost_inserts(
            ctx, sent, match_field(ctx, job), job.created_at, job_id=job.job_id
        )
    elif not sent.is_empty() and job.operation == "delete":
        gone = lookup.missing_ids(ctx, sent["_match"].drop_nulls().to_list())
        deleted = sent.filter(
            pl.col("_match").is_in(pl.Series(sorted(gone), dtype=pl.Utf8).implode())
        )
        answered = outcomes.rows(
            deleted["_key"], "deleted", job_id=job.job_id, target_ids=deleted["_match"]
        )
    ctx.record(answered, api="rest", close_jobs=[(job.job_id, "Resolved")], operation=job.operation)
    ctx.log.info(
        "write %s resolved: %d rows found written, %d left to send",
        job.job_id,
        answered.filter(pl.col("status") != "failed").height,
        sent.height - answered.height,
    )


def resume_bulk(ctx: WriteContext, job: OpenJob) -> None:
    ctx.bulk_job_ids.append(job.job_id)
    sent = sent_rows(ctx, job)
    started = bulk.Started(
        job.job_id, sent["_key"], job.created_at, job.operation, match_field(ctx, job), sent
    )
    try:
        state = bulk.info(ctx, job.job_id)["state"]
    except SalesforceApiError as error:
        if error.status != 404:
            raise
        vanished(ctx, started)
        return
    if state == "Open":  # never closed, so never processed: abort it and send the rows again
        ctx.log.info(
            "Bulk job %s was never closed; aborting it, its rows are sent again", job.job_id
        )
        bulk.abort(ctx, job.job_id)
        return
    bulk.finish(ctx, started)


def vanished(ctx: WriteContext, job: bulk.Started) -> None:
    """Salesforce no longer knows the job (deleted after seven days, or never created)."""
    ctx.log.warning("Bulk job %s is unknown to Salesforce; resolving its rows", job.job_id)
    resolved = bulk.resolve_unknown(ctx, job, job.keys)
    ctx.record(resolved, api="bulk", close_jobs=[(job.job_id, "Missing")], operation=job.operation)
