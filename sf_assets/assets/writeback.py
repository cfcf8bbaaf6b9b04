"""The assets of one Salesforce writeback sync: `S/source` → `S/mapped` → `S/written` →
`S/rejects`, partitioned by batch id when the dataset has a batch column.

Each asset keeps its data in the state store rather than passing frames through an IO
manager: the store is the one place that knows how state is kept (so it can move to a shared
database), an empty batch is still a batch, and the ledger lives next to the rows it describes.
Every Salesforce call of these steps goes through the shared HTTP layer (retried, scrubbed),
describe included; errors a person must act on fail the step naming the sync and batch.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl

from resources.salesforce import SalesforceResource
from sf_assets.assets.checks import (
    OTHER_SYNC_CHECK,
    REFUSED_CHECK,
    REJECT_SHARE_CHECK,
    keys_of_other_syncs,
    refused_check,
    reject_share,
)
from sf_assets.assets.metadata import (
    batch_totals,
    counts_by,
    mapping_table,
    rejects_table,
    retry_pointer,
    source_label,
)
from sf_assets.assets.partitions import (
    WHOLE_DATASET,
    batch_of,
    batch_partitions,
    freshness_policy,
    is_late,
    pool_name,
    run_status,
)
from sf_assets.assets.rejects import collect_rejects
from sf_assets.assets.resend import WriteConfig, resend_mode, retry_job, rows_to_consider
from sf_assets.assets.sensors import batch_sensor, written_batches
from sf_assets.assets.source import source_asset
from sf_assets.connections import resource_key
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.describe import ObjectInfo, UnknownObjectError
from sf_assets.salesforce.describe_cache import DescribeCache
from sf_assets.salesforce.errors import OutcomeUnknown, SalesforceApiError
from sf_assets.salesforce.mapping import MappedBatch, map_batch, reuse
from sf_assets.salesforce.object_setup import ObjectSetupError, ensure_object
from sf_assets.salesforce.options import ApiOptions
from sf_assets.salesforce.plan import plan_write, write_job
from sf_assets.salesforce.preflight import check_spec
from sf_assets.salesforce.writer import WriteError, WriteJob, write_batch
from sf_assets.salesforce.writer.wire import match_text
from sf_assets.sources import Dataset
from sf_assets.sources.staged import staged_fingerprint
from sf_assets.specs import LoadedSpec, SyncSpec
from sf_assets.state import WRITTEN, StateError, StateStore
from sf_assets.state.placement import require_shared_state


def build_writeback(loaded: LoadedSpec) -> dg.Definitions:
    """Assets, checks, job and sensor of one sync."""
    spec = loaded.spec
    name = spec.name
    partitions = batch_partitions(spec)
    sf_key = resource_key(spec.connection)
    description = spec.description or (
        f"{spec.target.operation.capitalize()} {spec.target.object} records from "
        f"{source_label(spec)}, matched on {spec.target.match_on}."
    )
    description = description.rstrip(".") + "."
    common: dict[str, Any] = {"group_name": name, "partitions_def": partitions}

    source = source_asset(loaded, common)

    mapped_checks = [
        dg.AssetCheckSpec(
            REJECT_SHARE_CHECK,
            asset=[name, "mapped"],
            blocking=True,
            description=f"At most {spec.max_reject_share:.0%} of the batch's rows were "
            "rejected while mapping (max_reject_share).",
        )
    ]
    if spec.target.operation == "insert":
        mapped_checks.append(
            dg.AssetCheckSpec(
                OTHER_SYNC_CHECK,
                asset=[name, "mapped"],
                blocking=True,
                description=f"No {spec.target.match_on} of the batch was created in "
                f"{spec.target.object} by another sync.",
            )
        )

    @dg.asset(
        key=[name, "mapped"],
        deps=[source],
        kinds={"polars", "salesforce"},
        pool=pool_name(spec),
        required_resource_keys={sf_key, "staging"},
        check_specs=mapped_checks,
        description=f"The batch in {spec.target.object}'s shape; rows that fail validation "
        "go to rejects with the reason.",
        **common,
    )
    def mapped(context: dg.AssetExecutionContext) -> Iterator[Any]:
        staging: StateStore = require_shared_state(context, context.resources.staging)
        salesforce: SalesforceResource = getattr(context.resources, sf_key)
        batch = batch_of(context)
        source_rows = staged_fingerprint(staging, name, batch)
        kept = reuse.reusable(staging, spec, batch, source_rows)
        if kept is not None:
            yield from _mapped_before(spec, staging, batch, kept)
            return
        result, rows_in, obj, setup = _map_staged(loaded, staging, batch, salesforce, context)
        staging.replace_batch(name, "mapped", batch, result.rows)
        staging.replace_batch(name, "mapping_rejects", batch, result.rejects)
        rejected = result.rejects["row"].n_unique() if result.rejects.height else 0
        counts = reuse.Mapped(rows_in, result.rows.height, rejected)
        reuse.remember(staging, spec, batch, source_rows, counts)
        yield dg.MaterializeResult(
            metadata={
                "batch": batch,
                "rows in": rows_in,
                "mapped": result.rows.height,
                "rejected": result.rejects.height,
                "rejected by reason": counts_by(result.rejects, "code"),
                "rejects sample": rejects_table(result.rejects, stage="mapping"),
                "field mapping": mapping_table(spec, obj),
                **setup,
            }
        )
        yield reject_share(spec, rows_in, result.rejects)
        if spec.target.operation == "insert":
            values = _match_values(spec, obj, result.rows)
            yield keys_of_other_syncs(spec, staging, values)

    @dg.asset(
        key=[name, "written"],
        deps=[mapped],
        kinds={"salesforce"},
        pool=pool_name(spec),
        required_resource_keys={sf_key, "staging"},
        freshness_policy=freshness_policy(spec),
        description=f"{description} Every row's outcome is in the ledger. Run config "
        "`plan_only: true` says what a run would write and writes nothing.",
        output_required=False,
        **common,
    )
    def written(context: dg.AssetExecutionContext, config: WriteConfig) -> Iterator[Any]:
        staging: StateStore = require_shared_state(context, context.resources.staging)
        salesforce: SalesforceResource = getattr(context.resources, sf_key)
        batch = batch_of(context)
        resend = resend_mode(spec, config)
        if resend == "unsent" and not (config.retry_rejects_only or config.plan_only):
            kept = reuse.settled(staging, spec, batch)
            if kept is not None:  # every row is settled: nothing to send, nothing to call
                yield dg.MaterializeResult(metadata=_written_before(spec, batch, kept))
                return
        batch_rows = staging.load_batch(name, "mapped", batch)
        rows = rows_to_consider(staging, spec, batch, batch_rows, config)
        obj = _describe(spec, batch, salesforce, context)
        job = write_job(
            spec,
            obj,
            batch,
            rows,
            salesforce=salesforce,
            staging=staging,
            run_id=context.run.run_id,
            log=context.log,
            resend=resend,
            run_status=run_status(context.instance),
            batch_keys=batch_rows["_key"] if batch_rows.height else None,
        )
        if config.plan_only:
            log_plan(context, job, staging)
            return
        late = is_late(batch, written_batches(staging.batch_statuses(name), non_empty=True))
        try:
            report = write_batch(job)
        except (WriteError, StateError) as error:
            raise dg.Failure(description=f"sync {name} batch {batch}: {error}") from None
        if report.status == WRITTEN:
            reuse.remember_written(staging, spec, batch)
        yield dg.MaterializeResult(
            metadata={
                "batch": batch,
                "late batch": late,
                "batch status": report.status,
                "resend": "rejects only" if config.retry_rejects_only else resend,
                "rows in": report.rows_in,
                "already written": report.already_written,
                "sent": report.sent,
                "created": report.created,
                "updated": report.updated,
                "failed": report.failed,
                "not found": report.not_found,
                "skipped (created by an earlier batch)": report.skipped,
                **batch_totals(report.batch_outcomes),
                "rejected before sending": staging.load_batch(
                    name, "mapping_rejects", batch
                ).height,
                "api": report.api,
                "API calls used": report.api_calls,
                "bulk job ids": ", ".join(report.bulk_job_ids) or "none",
                "duration (s)": round(report.duration_seconds, 3),
                "failures sample": rejects_table(
                    report.failures.select(
                        pl.col("_row").alias("row"),
                        pl.col("_key").alias("key"),
                        pl.col("error_code").alias("code"),
                        pl.col("error_message").alias("reason"),
                        "hint",
                    ),
                    stage="salesforce",
                ),
                "field mapping": mapping_table(spec, obj),
                **retry_pointer(name, batch, report.batch_outcomes.get("failed", 0)),
            }
        )

    def log_plan(context: dg.AssetExecutionContext, job: WriteJob, staging: StateStore) -> None:
        """The plan as an observation of the written asset: visible in the run and on the
        asset's page, without a materialization (nothing was written)."""
        plan = plan_write(
            job, job.mapped.height, staging.load_batch(name, "mapping_rejects", job.batch)
        )
        context.log.info(
            "plan for %s batch %s (nothing written): %s",
            name,
            job.batch,
            ", ".join(f"{k} {v}" for k, v in plan.counts().items()),
        )
        context.log_event(
            dg.AssetObservation(
                asset_key=[name, "written"],
                partition=job.batch if context.has_partition_key else None,
                metadata={
                    "plan": "what a run would do; nothing was written",
                    **plan.counts(),
                    "rejects": rejects_table(plan.rejects),
                },
            )
        )

    @dg.asset(
        key=[name, "rejects"],
        deps=[mapped, written],
        kinds={"duckdb"},
        description="Rows of the batch that were not written, with the reason: rejected while "
        "mapping, or refused by Salesforce (latest attempt).",
        **common,
    )
    def rejects(context: dg.AssetExecutionContext, staging: StateStore) -> dg.MaterializeResult:
        require_shared_state(context, staging)
        batch = batch_of(context)
        combined = collect_rejects(
            staging, spec, batch, refused=not _is_written(staging, spec, batch)
        )
        staging.replace_batch(name, "rejects", batch, combined)
        return dg.MaterializeResult(
            metadata={
                "batch": batch,
                "rejected": combined.height,
                "by reason": counts_by(combined, "code"),
                "sample": rejects_table(combined),
                "table": f'{name}__rejects (state store, column "_batch")',
                **retry_pointer(name, batch, int((combined["stage"] == "salesforce").sum())),
            }
        )

    @dg.asset_check(
        asset=written,
        name=REFUSED_CHECK,
        description="Every row of the batch is written (WARN when Salesforce refused rows: the "
        f"batch stays incomplete, the sensor asks for it again, {name}_retry_rejects re-sends "
        "them once fixed).",
    )
    def rows_refused(
        context: dg.AssetCheckExecutionContext, staging: StateStore
    ) -> dg.AssetCheckResult:
        # A check of its own (not a check spec of `written`, which may skip its output in a
        # plan): it reads the run's batch (checks with own partitions are a preview in Dagster).
        run = context.op_execution_context
        batch = run.partition_key if run.has_partition_key else WHOLE_DATASET
        return refused_check(staging, name, batch)

    assets = [source, mapped, written, rejects]
    # Its steps run in one process unless the code location says otherwise (definitions.py).
    job = dg.define_asset_job(f"{name}_writeback", selection=dg.AssetSelection.assets(*assets))
    sensors = [batch_sensor(loaded, partitions, job)] if partitions else []
    return dg.Definitions(
        assets=assets,
        asset_checks=[rows_refused],
        jobs=[job, retry_job(spec, assets)],
        sensors=sensors,
    )


def _map_staged(
    loaded: LoadedSpec,
    staging: StateStore,
    batch: str,
    salesforce: SalesforceResource,
    context: dg.AssetExecutionContext,
) -> tuple[MappedBatch, int, ObjectInfo, dict[str, str]]:
    """The staged source rows mapped, and how many there were. The source frame is let go
    here, before the mapped rows are staged: holding both while DuckDB takes the copy was the
    step's peak memory at 1,000,000 rows."""
    spec = loaded.spec
    frame = staging.load_batch(spec.name, "source", batch)
    setup = _set_up_object(loaded, salesforce.client(), frame)
    obj = _describe(spec, batch, salesforce, context)
    _preflight(spec, obj, frame)
    return map_batch(spec, obj, frame, batch), frame.height, obj, setup


def _mapped_before(
    spec: SyncSpec, staging: StateStore, batch: str, kept: reuse.Mapped
) -> Iterator[Any]:
    """A written batch mapped by this same spec: what its mapping staged, not done again."""
    rejects = staging.load_batch(spec.name, "mapping_rejects", batch)
    yield dg.MaterializeResult(
        metadata={
            "batch": batch,
            "rows in": kept.rows_in,
            "mapped": kept.mapped,
            "rejected": rejects.height,
            "rejected by reason": counts_by(rejects, "code"),
            "rejects sample": rejects_table(rejects, stage="mapping"),
            "field mapping": mapping_table(spec),
            "mapping": "the batch is written and the spec is unchanged: the staged mapping "
            "is kept (no describe, nothing mapped again)",
        }
    )
    yield reject_share(spec, kept.rows_in, rejects)


def _written_before(spec: SyncSpec, batch: str, kept: reuse.Mapped) -> dict[str, Any]:
    """A re-run of a written batch: what the batch holds, from its status, sending nothing."""
    return {
        "batch": batch,
        "batch status": WRITTEN,
        "resend": "unsent",
        "rows in": kept.mapped,
        "already written": kept.mapped,
        "sent": 0,
        "batch written so far": kept.mapped,
        "batch refused": 0,
        "rejected before sending": kept.rejected,
        "api": "none",
        "API calls used": 0,
        "bulk job ids": "none",
        "field mapping": mapping_table(spec),
    }


def _is_written(staging: StateStore, spec: SyncSpec, batch: str) -> bool:
    statuses = staging.batch_statuses(spec.name)
    return statuses.filter(pl.col("batch") == batch)["status"].to_list() == [WRITTEN]


def _set_up_object(loaded: LoadedSpec, client: Any, frame: pl.DataFrame) -> dict[str, str]:
    """With create_object, the object must exist (created from the mapping) before describe."""
    spec = loaded.spec
    if spec.target.create_object is None:
        return {}
    try:
        report = ensure_object(client, spec, Dataset(loaded).columns(), frame)
    except ObjectSetupError as error:
        raise dg.Failure(description=str(error)) from None
    return {"object setup": report.summary()}


def _describe(
    spec: SyncSpec, batch: str, salesforce: SalesforceResource, context: dg.AssetExecutionContext
) -> ObjectInfo:
    """The target object's describe: once per run (the cache), retried like every call; a
    refusal fails the step."""
    with Api(salesforce, context.log, ApiOptions()) as api:
        try:
            return DescribeCache.from_env().describe(
                api, spec.target.object, run_id=context.run.run_id
            )
        except UnknownObjectError as error:
            raise dg.Failure(description=f"sync {spec.name}: {error}") from None
        except (SalesforceApiError, OutcomeUnknown) as error:
            raise dg.Failure(
                description=f"sync {spec.name} batch {batch}: Salesforce would not describe "
                f"{spec.target.object} ({error}), even after retries with backoff; nothing "
                "was sent. Re-materialize the batch once the org answers again."
            ) from None


def _match_values(spec: SyncSpec, obj: ObjectInfo, rows: pl.DataFrame) -> pl.Series:
    """The batch's match field values as they are sent."""
    if rows.is_empty():
        return pl.Series([], dtype=pl.Utf8)
    fields = {f.name: f.type for f in obj.fields.values()}
    return match_text(rows, spec.target.match_on, fields)["_match"]


def _preflight(spec: SyncSpec, obj: ObjectInfo, frame: pl.DataFrame) -> None:
    """Spec errors stop the run before any row is mapped or sent."""
    findings = check_spec(spec, obj, dict(frame.schema) if frame.width else None)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise dg.Failure(
            description=f"sync {spec.name}: the mapping does not fit {spec.target.object}:\n"
            + "\n".join(f.line() for f in errors)
        )
