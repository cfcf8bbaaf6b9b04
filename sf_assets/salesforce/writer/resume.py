"""Finishing what an earlier run of the same batch left open, before anything new is sent.

An open record means rows left (or may have left) for Salesforce without their outcome
reaching the ledger: the process died, or a limit stopped it. Salesforce is asked what
happened: a Bulk job's own state and result files, or, for a window of collections calls, a
lookup of its keys (inserts) — repeatable operations are simply sent again.
"""

from __future__ import annotations

import polars as pl

from sf_assets.salesforce.errors import SalesforceApiError
from sf_assets.salesforce.writer import bulk, lookup, outcomes
from sf_assets.salesforce.writer.context import WriteContext
from sf_assets.state.store import OpenJob


def resume_open_jobs(ctx: WriteContext) -> int:
    """Resolve every open job of the batch; returns how many there were."""
    jobs = ctx.job.staging.open_jobs(ctx.sync, ctx.batch)
    for job in jobs:
        ctx.log.info(
            "resuming %s write %s of run %s (%d rows, last known state %s)",
            job.api,
            job.job_id,
            job.run_id,
            len(job.keys),
            job.state,
        )
        if job.api == "bulk":
            resume_bulk(ctx, job)
        else:
            resume_rest(ctx, job)
    return len(jobs)


def unsettled(ctx: WriteContext, job: OpenJob) -> pl.Series:
    """The job's keys that have no successful outcome yet."""
    keys = pl.Series("_key", job.keys, dtype=pl.Utf8)
    return keys.filter(~keys.is_in(ctx.job.staging.successful_keys(ctx.sync, ctx.batch).implode()))


def resume_rest(ctx: WriteContext, job: OpenJob) -> None:
    keys = unsettled(ctx, job)
    answered = outcomes.empty()
    if ctx.target.operation == "insert" and not keys.is_empty():
        found = lookup.existing(ctx, keys, job.created_at)
        answered = outcomes.rows(
            found["_key"], "created", job_id=job.job_id, target_ids=found["target_id"]
        )
    ctx.record(answered, api="rest", close_jobs=[(job.job_id, "Resolved")])
    ctx.log.info(
        "write %s resolved: %d rows found written, %d left to send",
        job.job_id,
        answered.height,
        keys.len() - answered.height,
    )


def resume_bulk(ctx: WriteContext, job: OpenJob) -> None:
    ctx.bulk_job_ids.append(job.job_id)
    started = bulk.Started(job.job_id, pl.Series("_key", job.keys, dtype=pl.Utf8), job.created_at)
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
    bulk.finish(ctx, started, last_round=True)


def vanished(ctx: WriteContext, job: bulk.Started) -> None:
    """Salesforce no longer knows the job (deleted after seven days, or never created)."""
    ctx.log.warning("Bulk job %s is unknown to Salesforce; resolving its rows", job.job_id)
    keys = job.keys.filter(
        ~job.keys.is_in(ctx.job.staging.successful_keys(ctx.sync, ctx.batch).implode())
    )
    resolved = bulk.resolve_unknown(ctx, bulk.Started(job.job_id, keys, job.created_at), keys)
    ctx.record(resolved, api="bulk", close_jobs=[(job.job_id, "Missing")])
