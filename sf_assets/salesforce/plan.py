"""What a write of one batch would do, worked out without writing anything.

The plan asks the writer's own functions the questions a write asks (which rows the ledger
settles, which API `auto` would choose, which rows cannot be matched, which records the keys
match) and stops before the first write call: no ledger row, no job record, no staged batch
changes, and the org only answers queries. The API calls are counted the way the writer
spends them: 200 records per collections call, about four calls per Bulk job plus its polls,
and the lookups the writer repeats before it writes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import polars as pl

from resources.salesforce import SalesforceResource
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.describe import ObjectInfo
from sf_assets.salesforce.hints import hint, reject_hint
from sf_assets.salesforce.writer import WriteJob, choose_api, lookup, selection
from sf_assets.salesforce.writer import batch as writer_batch
from sf_assets.salesforce.writer.context import WriteContext
from sf_assets.salesforce.writer.rest import COLLECTION_SIZE
from sf_assets.specs import SyncSpec
from sf_assets.state import StateStore
from sf_assets.state.lease import RunStatus

BULK_CALLS_PER_JOB = 5  # create, upload, close, successful results, failed results
PLAN_REJECT_SCHEMA = {
    "stage": pl.Utf8,
    "row": pl.Int64,
    "key": pl.Utf8,
    "code": pl.Utf8,
    "reason": pl.Utf8,
    "hint": pl.Utf8,
}


@dataclass
class Plan:
    sync: str
    batch: str
    operation: str
    rows_in: int  # source rows of the batch
    unchanged: int  # written before (or unchanged since): a run leaves them alone
    create: int
    update: int
    delete: int
    not_found: int  # update-only / delete keys with no record: recorded, not written
    rejects: pl.DataFrame  # stage, row, key, code, reason, hint
    api: str  # "rest" | "bulk": what `api: auto` would choose for the rows to send
    write_calls: int  # API calls the write would spend (Bulk: plus one per status poll)
    read_calls: int  # API calls this plan spent on its lookups (queries only)
    notes: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return self.create + self.update + self.delete

    def counts(self) -> dict[str, int]:
        return {
            "rows in": self.rows_in,
            "create": self.create,
            "update": self.update,
            "delete": self.delete,
            "leave unchanged": self.unchanged,
            "not found": self.not_found,
            "reject": self.rejects.height,
            "API calls to write": self.write_calls,
            "API calls spent planning": self.read_calls,
        }


def plan_write(job: WriteJob, rows_in: int, mapping_rejects: pl.DataFrame) -> Plan:
    """The plan of writing `job.mapped`; `mapping_rejects` are the rows mapping set aside."""
    skipped = selection.skipped_keys(job)
    pending = job.mapped.filter(~pl.col("_key").is_in(skipped.implode()))
    api_name = choose_api(job.spec, pending.height)
    with Api(job.salesforce, job.log, job.options) as api:
        ctx = WriteContext(job, api)
        ctx.api_name = api_name
        bad = writer_batch.unmatchable(ctx, pending)
        sendable = pending.filter(~pl.col("_key").is_in(bad["_key"].implode()))
        plan = Plan(
            sync=job.spec.name,
            batch=job.batch,
            operation=ctx.target.operation,
            rows_in=rows_in,
            unchanged=skipped.len(),
            create=0,
            update=0,
            delete=0,
            not_found=0,
            rejects=pl.concat([reject_rows(mapping_rejects), unmatchable_rows(ctx, job, bad)]),
            api=api_name,
            write_calls=0,
            read_calls=0,
        )
        settle(ctx, plan, sendable)
        plan.read_calls = api.calls
    return plan


def settle(ctx: WriteContext, plan: Plan, rows: pl.DataFrame) -> None:
    """Count what each sendable row would become and the calls that would take."""
    if rows.is_empty():
        return
    operation = ctx.target.operation
    if operation == "insert":
        plan.create = rows.height
        plan.write_calls = calls(plan.api, rows.height)
        return
    found = lookup.matching(ctx, rows["_key"])
    count = pl.col("ids").list.len()
    matched = found.filter(count == 1).height
    missing = found.filter(count == 0).height
    several = found.filter(count > 1)
    plan.rejects = pl.concat([plan.rejects, multiple_rows(ctx, several)])
    creating = ctx.target.creates_missing and operation != "delete"
    if operation == "delete":
        plan.delete = matched
        plan.notes += delete_share_note(ctx, matched)
    else:
        plan.update = matched
    plan.create = missing if creating else 0
    plan.not_found = 0 if creating else missing
    lookups = ctx.api.calls if ctx.target.looks_up else 0  # the writer looks up the same way
    if ctx.target.looks_up:
        plan.write_calls = lookups + calls(plan.api, matched) + calls(plan.api, plan.create)
    else:
        plan.write_calls = calls(plan.api, matched + plan.create)


def calls(api: str, rows: int) -> int:
    """Calls to send `rows` records: collections of 200, or one Bulk job (polls not counted)."""
    if rows == 0:
        return 0
    return BULK_CALLS_PER_JOB if api == "bulk" else math.ceil(rows / COLLECTION_SIZE)


def delete_share_note(ctx: WriteContext, deleting: int) -> list[str]:
    if deleting == 0:
        return []
    share = ctx.job.spec.target.max_delete_share
    total = lookup.record_count(ctx)
    if deleting <= share * total:
        return []
    return [
        f"the write would refuse to run: it deletes {deleting} of {total} "
        f"{ctx.target.object} records, more than target.max_delete_share ({share:.0%}) allows"
    ]


def reject_rows(mapping_rejects: pl.DataFrame) -> pl.DataFrame:
    if mapping_rejects.is_empty():
        return pl.DataFrame(schema=PLAN_REJECT_SCHEMA)
    return mapping_rejects.select(
        pl.lit("mapping").alias("stage"),
        pl.col("row").cast(pl.Int64),
        pl.col("key").cast(pl.Utf8),
        pl.col("code").cast(pl.Utf8),
        pl.col("reason").cast(pl.Utf8),
        pl.col("code")
        .map_elements(lambda code: reject_hint("mapping", code), return_dtype=pl.Utf8)
        .alias("hint"),
    )


def unmatchable_rows(ctx: WriteContext, job: WriteJob, bad: pl.DataFrame) -> pl.DataFrame:
    reason = f"{ctx.target.match_on} is empty or repeated within the batch"
    return keyed_rejects(job, bad["_key"], "INVALID_MATCH_KEY", [reason] * bad.height)


def multiple_rows(ctx: WriteContext, several: pl.DataFrame) -> pl.DataFrame:
    reasons = [
        f"{len(ids)} {ctx.target.object} records have {ctx.target.match_on} {value!r}"
        for value, ids in several.select("_match", "ids").iter_rows()
    ]
    return keyed_rejects(ctx.job, several["_key"], "MULTIPLE_MATCHES", reasons)


def keyed_rejects(job: WriteJob, keys: pl.Series, code: str, reasons: list[str]) -> pl.DataFrame:
    """Rejects the write itself would record, named by source row."""
    if keys.is_empty():
        return pl.DataFrame(schema=PLAN_REJECT_SCHEMA)
    frame = pl.DataFrame(
        {"key": keys.cast(pl.Utf8), "reason": reasons}, schema_overrides={"reason": pl.Utf8}
    )
    rows = job.mapped.select(
        pl.col("_key").alias("key"), pl.col("_row").cast(pl.Int64).alias("row")
    )
    return frame.join(rows, on="key", how="left").select(
        pl.lit("salesforce").alias("stage"),
        "row",
        "key",
        pl.lit(code).alias("code"),
        pl.format("{}: {}", pl.lit(code), pl.col("reason")).alias("reason"),
        pl.lit(hint(code)).alias("hint"),
    )


def write_job(
    spec: SyncSpec,
    obj: ObjectInfo,
    batch: str,
    mapped: pl.DataFrame,
    *,
    salesforce: SalesforceResource,
    staging: StateStore,
    run_id: str,
    log: logging.Logger,
    resend: str,
    run_status: RunStatus | None = None,
    batch_keys: pl.Series | None = None,
) -> WriteJob:
    """The write of `mapped` into `obj`, as the written asset and the plan both describe it."""
    return WriteJob(
        spec=spec,
        batch=batch,
        mapped=mapped,
        salesforce=salesforce,
        staging=staging,
        run_id=run_id,
        log=log,
        object_fields={f.name: f.type for f in obj.fields.values()},
        resend=resend,
        external_ids=frozenset(f.name for f in obj.fields.values() if f.external_id),
        run_status=run_status,
        batch_keys=batch_keys,
    )
