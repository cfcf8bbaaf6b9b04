"""Writing one batch: take the batch's lease, finish what an earlier run left open, send only
rows without a successful outcome, retry locked rows, and settle the batch.

Rows are matched to outcomes by their source key, so re-materializing a written batch sends
nothing (and calls nothing), and a partly written batch sends only what is missing. The lease
(sf_assets.state.lease) makes this hold when two runs of the batch meet: the second waits, or
fails naming the first, before it reads what is left to send. An insert never creates a key
that an earlier batch of the sync created. The last commit records whether the batch is
written (every row settled) or incomplete (rows refused or never sent), and frees the lease.
"""

from __future__ import annotations

import random
import time
from functools import partial

import polars as pl

from sf_assets.rows import repeated
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.errors import BulkJobTimedOut, OutcomeUnknown, SalesforceApiError
from sf_assets.salesforce.retry import reason
from sf_assets.salesforce.writer import bulk, matched, outcomes, rest, selection
from sf_assets.salesforce.writer.context import OUTCOME_VIEW, WriteContext
from sf_assets.salesforce.writer.errors import DailyApiLimitExceeded, WriteError
from sf_assets.salesforce.writer.model import FAILURE_SCHEMA, WriteJob, WriteReport
from sf_assets.salesforce.writer.resume import resume_open_jobs
from sf_assets.specs import SyncSpec
from sf_assets.state import INCOMPLETE, SUCCESS_STATUSES, WRITTEN, BatchLease, Settlement

# Rows at which `api: auto` switches from sObject Collections to Bulk API 2.0, measured with
# bench/crossover.py under the sandbox's realistic timing model (a REST call 150 ms plus 5 ms a
# record, a Bulk job queued 2 s then 2,000 rows/s; sources in the sandbox's timing module), five
# interleaved rounds, REST sending five calls side by side (BENCHMARKS.md, "Choosing REST or
# Bulk"). Time alone, Bulk is quicker from between 3,000 and 5,000 rows (REST 5.7 s in 15 calls
# against Bulk 6.6 s in 11 at 3,000; 8.8 s in 25 against 6.7 s in 11 at 5,000). A Bulk job
# spends 10-13 calls whatever its size and REST one per 200 rows, so each call is weighed as
# 0.25 s (four calls to save a second): from 3,000 rows Bulk costs no more. A sync overrides
# it with `bulk_from_rows`.
AUTO_BULK_THRESHOLD = 3000
REQUIRED_COLUMNS = ("_row", "_key", "_hash")


def choose_api(spec: SyncSpec, rows: int) -> str:
    """The spec's API, or for `auto` Bulk from the spec's `bulk_from_rows` (else the default)."""
    if spec.api != "auto":
        return spec.api
    threshold = spec.bulk_from_rows or AUTO_BULK_THRESHOLD
    return "bulk" if rows >= threshold else "rest"


def write_batch(job: WriteJob) -> WriteReport:
    """Write the batch's rows that Salesforce has not confirmed yet; see the module doc."""
    started = time.monotonic()
    missing = [c for c in REQUIRED_COLUMNS if c not in job.mapped.columns]
    if missing:
        raise ValueError(f"the mapped frame lacks the columns {', '.join(missing)}")
    lease = BatchLease(
        job.staging, job.spec.name, job.batch, job.run_id, run_status=job.run_status, log=job.log
    )
    with lease, Api(job.salesforce, job.log, job.options) as api:
        ctx = WriteContext(job, api, lease)
        ctx.before = job.staging.latest_outcomes(ctx.sync, ctx.batch).select(OUTCOME_VIEW)
        already = written_keys(ctx).len()
        ctx.api_name = choose_api(job.spec, job.mapped.height - already)
        try:
            resume_open_jobs(ctx)
            skip_created_before(ctx)
            send_all(ctx, pending_rows(ctx))
        except WriteError as error:
            error.report = report(ctx, already, started)
            raise
        except BulkJobTimedOut as error:
            raise WriteError(str(error), report(ctx, already, started)) from None
        except (SalesforceApiError, OutcomeUnknown) as error:
            raise stopped(ctx, error, report(ctx, already, started)) from None
        return settle(ctx, report(ctx, already, started))


def written_keys(ctx: WriteContext) -> pl.Series:
    """Keys of the mapped frame this write does not send: confirmed ones, or for change
    detection the unchanged ones (`selection` has the rules)."""
    return selection.skipped_keys(ctx.job)


def skip_created_before(ctx: WriteContext) -> None:
    """An insert sends no key that an earlier batch of the sync created: the ledger is keyed by
    sync and key, so the row settles as `skipped`, pointing at the record that exists."""
    if ctx.job.spec.target.operation != "insert":
        return
    settled = ctx.job.staging.successful_keys(ctx.sync, ctx.batch).implode()
    pending = ctx.job.mapped.filter(~pl.col("_key").is_in(settled))["_key"]
    created = ctx.job.staging.created_keys(ctx.sync, pending).filter(pl.col("batch") != ctx.batch)
    if created.is_empty():
        return
    skipped = outcomes.rows(
        created["_key"], "skipped", job_id=None, target_ids=created["target_id"]
    ).with_columns(
        pl.lit("ALREADY_CREATED").alias("error_code"),
        pl.format(
            "batch {} of this sync already created {}; an insert never creates a key twice",
            created["batch"],
            created["target_id"],
        ).alias("error_message"),
    )
    ctx.log.info(
        "%s batch %s: %d keys were created by earlier batches of the sync; not inserted again",
        ctx.sync,
        ctx.batch,
        skipped.height,
    )
    ctx.record(skipped, api="none")


def pending_rows(ctx: WriteContext) -> pl.DataFrame:
    """Rows to send, once earlier runs' open jobs are resolved; `auto` chooses by their count."""
    mapped = ctx.job.mapped
    pending = mapped.filter(~pl.col("_key").is_in(written_keys(ctx).implode()))
    ctx.api_name = choose_api(ctx.job.spec, pending.height)
    ctx.progress.start(pending.height, ctx.api_name)
    ctx.log.info(
        "%s batch %s: %d rows, %d already written, %d to send via %s",
        ctx.sync,
        ctx.batch,
        mapped.height,
        mapped.height - pending.height,
        pending.height,
        ctx.api_name,
    )
    return pending


def send_all(ctx: WriteContext, pending: pl.DataFrame) -> None:
    """Send every pending row, then the rows that met a lock again, a few rounds at most."""
    rows = reject_unmatchable(ctx, pending)
    if rows.is_empty():
        return
    send = bulk.send if ctx.api_name == "bulk" else rest.send
    if ctx.target.looks_up:
        send = partial(matched.send, via=send)
    rounds = ctx.options.lock_retries + 1
    for number in range(rounds):
        ctx.first_round = number == 0
        locked = send(ctx, rows)
        if locked.is_empty() or number == rounds - 1:
            return
        delay = ctx.options.retry_initial_seconds * 2**number * (1 + random.random())
        ctx.log.warning(
            "%d rows failed with UNABLE_TO_LOCK_ROW; sending them again (round %d of %d) in %.1f s",
            locked.len(),
            number + 2,
            rounds,
            delay,
        )
        time.sleep(delay)
        rows = rows.filter(pl.col("_key").is_in(locked.implode()))


def settle(ctx: WriteContext, result: WriteReport) -> WriteReport:
    """The final commit: the batch is written when every key of it has a settling outcome,
    else incomplete (the sensor asks for it again); the lease is released with it."""
    job = ctx.job
    rows, refused = batch_rows(job).len(), result.refused
    settlement = Settlement(WRITTEN if refused == 0 else INCOMPLETE, rows, refused, job.run_id)
    ctx.settle(settlement)
    if refused:
        ctx.log.warning(
            "%s batch %s is incomplete: %d of its %d rows are not written; the sensor asks for "
            "it again after a back-off, and S_retry_rejects re-sends them once fixed",
            ctx.sync,
            ctx.batch,
            refused,
            rows,
        )
    result.status = settlement.status
    return result


def batch_rows(job: WriteJob) -> pl.Series:
    """Every key of the batch (the mapped frame may hold only some, for a retry of rejects)."""
    return job.batch_keys if job.batch_keys is not None else job.mapped["_key"]


def unmatchable(ctx: WriteContext, pending: pl.DataFrame) -> pl.DataFrame:
    """Keys (`_key`, `_match`) of pending rows whose match_on value is empty or shared."""
    keys = ctx.keys
    shared = keys.filter(pl.col("_match").is_duplicated())["_match"]
    bad = keys.filter(
        pl.col("_match").is_null()
        | (pl.col("_match") == "")
        | pl.col("_match").is_in(shared.implode())
    )
    return bad.filter(pl.col("_key").is_in(pending["_key"].implode()))


def reject_unmatchable(ctx: WriteContext, pending: pl.DataFrame) -> pl.DataFrame:
    """Rows whose match_on value is empty or shared with another row cannot be tied to their
    results (nor found after a lost answer): they fail here, with the reason, unsent."""
    bad = unmatchable(ctx, pending)
    if bad.is_empty():
        return pending
    ctx.log.warning(
        "%d rows have an empty or repeated %s; not sent", bad.height, ctx.target.match_on
    )
    failed = outcomes.rows(
        bad["_key"],
        "failed",
        job_id=None,
        code="INVALID_MATCH_KEY",
        message=f"{ctx.target.match_on} is empty or repeated within the batch",
    )
    ctx.record(failed, api="none")
    return pending.filter(~pl.col("_key").is_in(bad["_key"].implode()))


def report(ctx: WriteContext, already: int, started: float) -> WriteReport:
    """Counts from what the writer holds: the batch's latest outcomes before this run,
    overlaid with every outcome this run recorded (the ledger is not read back)."""
    job = ctx.job
    recorded = this_run(ctx)
    latest = latest_outcomes(ctx, recorded)
    mine = recorded["status"]
    settled = latest.filter(pl.col("status").is_in(list(SUCCESS_STATUSES)))["source_key"]
    failures = (
        latest.filter(pl.col("status") == "failed")
        .join(job.mapped.select("_key", "_row"), left_on="source_key", right_on="_key")
        .select(pl.col("source_key").alias("_key"), "_row", "error_code", "error_message", "hint")
        .sort("_row")
        .cast(FAILURE_SCHEMA)
    )
    result = WriteReport(
        rows_in=job.mapped.height,
        already_written=already,
        sent=ctx.sent,
        created=int((mine == "created").sum()),
        updated=int((mine == "updated").sum()),
        failed=int((mine == "failed").sum()),
        api=ctx.api_name,
        api_calls=ctx.api.calls,
        bulk_job_ids=list(dict.fromkeys(ctx.bulk_job_ids)),
        duration_seconds=time.monotonic() - started,
        failures=failures,
        not_found=int((mine == "not_found").sum()),
        deleted=int((mine == "deleted").sum()),
        skipped=int((mine == "skipped").sum()),
        refused=int((~batch_rows(job).is_in(settled.implode())).sum()),
        batch_outcomes={
            status: count
            for status, count in latest.group_by("status")
            .len()
            .sort("len", descending=True)
            .iter_rows()
        },
    )
    log_report(ctx, result)
    return result


def this_run(ctx: WriteContext) -> pl.DataFrame:
    """The last outcome this run recorded for each key it recorded one for."""
    if not ctx.recorded:
        return pl.DataFrame(schema=ctx.before.schema)
    recorded = pl.concat(ctx.recorded)
    # A key is recorded twice only when it was sent again (a lock retry, a resumed job), so
    # only the candidates that hashes find are made unique: no hash table of every key.
    again = recorded.select(repeated(pl.col("source_key").hash()))["source_key"]
    if not again.any():
        return recorded
    once = recorded.filter(~again)
    return pl.concat([once, recorded.filter(again).unique("source_key", keep="last")])


def latest_outcomes(ctx: WriteContext, mine: pl.DataFrame) -> pl.DataFrame:
    """The batch's latest outcome per key, as the ledger now holds it, from `this_run`."""
    if ctx.before.is_empty():  # the batch's first write: no copy of this run's outcomes
        return mine
    earlier = ctx.before.join(mine.select("source_key"), on="source_key", how="anti")
    return pl.concat([earlier, mine.cast(earlier.schema)])


def log_report(ctx: WriteContext, result: WriteReport) -> None:
    ctx.log.info(
        "%s batch %s via %s: %d rows in, %d already written, %d sent: %d created, %d updated, "
        "%d failed; %d API calls (%s); %.1f s",
        ctx.sync,
        ctx.batch,
        result.api,
        result.rows_in,
        result.already_written,
        result.sent,
        result.created,
        result.updated,
        result.failed,
        result.api_calls,
        ctx.api.usage or "no calls",
        result.duration_seconds,
    )
    if result.failures.height:
        counts = result.failures.group_by("error_code").len().sort("len", descending=True)
        summary = ", ".join(f"{code} x{n}" for code, n in counts.iter_rows())
        ctx.log.warning("%d rows failed (%s); see the failures", result.failures.height, summary)


def stopped(ctx: WriteContext, error: Exception, partial: WriteReport) -> WriteError:
    """The error that ends a write Salesforce would not let finish, saying what is done."""
    written = partial.created + partial.updated + partial.deleted
    in_flight = ctx.job.staging.open_jobs(ctx.sync, ctx.batch)
    waiting = sum(len(job.keys) for job in in_flight)
    left = max(0, partial.rows_in - partial.already_written - written - waiting)
    progress = (
        f"{written} rows were written in this run ({partial.created} created, "
        f"{partial.updated} updated, {partial.deleted} deleted) and {partial.already_written} "
        "before it"
    )
    if in_flight:
        progress += (
            f"; {waiting} rows went to Salesforce in "
            + ", ".join(f"{job.api} write {job.job_id}" for job in in_flight)
            + ", whose answers are not read yet (Salesforce may hold them already: the next "
            "run reads those answers and sends none of these rows again)"
        )
    progress += (
        f"; {left} rows of batch {ctx.batch} are not sent yet. Every row Salesforce confirmed "
        "is in the ledger."
    )
    if isinstance(error, SalesforceApiError) and error.daily_limit:
        return DailyApiLimitExceeded(
            f"Salesforce refused further API calls for sync {ctx.sync}: the org's daily API "
            f"allocation is used up ({error.code}: {error.message}). {progress} Wait for the "
            "rolling 24-hour window to free calls, or raise the org's API allocation, then "
            f"re-materialize the batch: only the {left + waiting} rows left are settled.",
            partial,
        )
    return WriteError(
        f"Salesforce kept failing for sync {ctx.sync} ({reason(error)}: {error}) after "
        f"retries with backoff. {progress} Re-materialize the batch later: only the rows left "
        "are sent.",
        partial,
    )
