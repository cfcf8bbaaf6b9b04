"""The assets of one Salesforce writeback sync: `S/source` → `S/mapped` → `S/written` →
`S/rejects`, partitioned by batch id when the dataset has a batch column.

Each asset keeps its data in the staging store rather than passing frames through an IO
manager: the staging store is the one place that knows about DuckDB (so it can move to a shared
database), an empty batch is still a batch, and the ledger lives next to the rows it describes.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dagster as dg
import polars as pl

from sf_assets.connections import resource_key
from sf_assets.datasets import Dataset
from sf_assets.describe import ObjectInfo, describe_object
from sf_assets.mapping import map_batch
from sf_assets.object_setup import ObjectSetupError, ensure_object
from sf_assets.preflight import check_spec
from sf_assets.resend import WriteConfig, resend_mode, retry_job, rows_to_consider
from sf_assets.specs import LoadedSpec, SyncSpec
from sf_assets.staging import StagingStore
from sf_assets.writer import WriteJob, write_batch

WHOLE_DATASET = "all"  # the batch id of a sync whose dataset has no batch column
SAMPLE_ROWS = 10
REQUIRED_CHECK = "required_fields_present"
UNIQUE_CHECK = "match_keys_unique"


def batch_partitions(spec: SyncSpec) -> dg.DynamicPartitionsDefinition | None:
    if not spec.batched:
        return None
    return dg.DynamicPartitionsDefinition(name=f"{spec.name}_batches")


def pool_name(spec: SyncSpec) -> str:
    """One pool per org, shared by every step that calls it, so API limits hold across runs."""
    return f"salesforce_{spec.connection}"


def batch_of(context: dg.AssetExecutionContext) -> str:
    return context.partition_key if context.has_partition_key else WHOLE_DATASET


def markdown_table(frame: pl.DataFrame, limit: int = SAMPLE_ROWS) -> str:
    if frame.is_empty():
        return "_none_"
    head = frame.head(limit)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for row in head.iter_rows():
        cells = ["" if v is None else str(v).replace("|", "\\|").replace("\n", " ") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    if frame.height > limit:
        lines.append(f"\n_{frame.height - limit} more_")
    return "\n".join(lines)


def mapping_table(spec: SyncSpec, obj: ObjectInfo | None = None) -> str:
    lines = ["| source column | Salesforce field | type |", "|---|---|---|"]
    for field_name, column in spec.mapping.items():
        info = obj.field(field_name) if obj else None
        lines.append(
            f"| {column} | {spec.target.object}.{field_name} | {info.type if info else ''} |"
        )
    return "\n".join(lines)


def counts_by(frame: pl.DataFrame, column: str) -> dict[str, int]:
    if frame.is_empty():
        return {}
    grouped = frame.group_by(column).len().sort("len", descending=True)
    return {str(k): int(n) for k, n in grouped.iter_rows()}


def source_asset(loaded: LoadedSpec, common: dict[str, Any]) -> dg.AssetsDefinition:
    """`S/source`: the batch (or the whole dataset) read and staged; shared by every target."""
    spec = loaded.spec
    name = spec.name

    @dg.asset(
        key=[name, "source"],
        kinds={"duckdb"},
        description=f"Rows of {_source_label(spec)} staged for writing, one batch per partition.",
        **common,
    )
    def source(context: dg.AssetExecutionContext, staging: StagingStore) -> dg.MaterializeResult:
        batch = batch_of(context)
        dataset = Dataset(loaded)
        frame = dataset.read_batch(batch) if spec.batched else dataset.read_all()
        staging.replace_batch(name, "source", batch, frame)
        return dg.MaterializeResult(
            metadata={
                "batch": batch,
                "rows": frame.height,
                "columns": ", ".join(c for c in frame.columns if c != "_row"),
            }
        )

    return source


def build_writeback(loaded: LoadedSpec) -> dg.Definitions:
    """Assets, checks, job and sensor of one sync."""
    spec = loaded.spec
    name = spec.name
    partitions = batch_partitions(spec)
    sf_key = resource_key(spec.connection)
    description = spec.description or (
        f"{spec.target.operation.capitalize()} {spec.target.object} records from "
        f"{_source_label(spec)}, matched on {spec.target.match_on}."
    )
    description = description.rstrip(".") + "."
    common: dict[str, Any] = {"group_name": name, "partitions_def": partitions}

    source = source_asset(loaded, common)

    @dg.asset(
        key=[name, "mapped"],
        deps=[source],
        kinds={"polars", "salesforce"},
        pool=pool_name(spec),
        required_resource_keys={sf_key, "staging"},
        check_specs=[
            dg.AssetCheckSpec(
                REQUIRED_CHECK,
                asset=[name, "mapped"],
                blocking=True,
                description="Every field Salesforce requires has a value.",
            ),
            dg.AssetCheckSpec(
                UNIQUE_CHECK,
                asset=[name, "mapped"],
                blocking=True,
                description=f"No {spec.target.match_on} appears twice in the batch.",
            ),
        ],
        description=f"The batch in {spec.target.object}'s shape; rows that fail validation "
        "go to rejects with the reason.",
        **common,
    )
    def mapped(context: dg.AssetExecutionContext) -> Iterator[Any]:
        staging: StagingStore = context.resources.staging
        batch = batch_of(context)
        frame = staging.load_batch(name, "source", batch)
        client = getattr(context.resources, sf_key).client()
        setup = _set_up_object(loaded, client, frame)
        obj = describe_object(client, spec.target.object)
        _preflight(spec, obj, frame)
        result = map_batch(spec, obj, frame, batch)
        staging.replace_batch(name, "mapped", batch, result.rows)
        staging.replace_batch(name, "mapping_rejects", batch, result.rejects)
        yield dg.MaterializeResult(
            metadata={
                "batch": batch,
                "rows in": frame.height,
                "mapped": result.rows.height,
                "rejected": result.rejects.height,
                "rejected by reason": counts_by(result.rejects, "code"),
                "rejects sample": dg.MetadataValue.md(
                    markdown_table(result.rejects.select("row", "key", "column", "code", "reason"))
                ),
                "field mapping": dg.MetadataValue.md(mapping_table(spec, obj)),
                **setup,
            }
        )
        yield from _checks(spec, obj, result.rows)

    @dg.asset(
        key=[name, "written"],
        deps=[mapped],
        kinds={"salesforce"},
        pool=pool_name(spec),
        required_resource_keys={sf_key, "staging"},
        freshness_policy=(
            dg.FreshnessPolicy.time_window(
                fail_window=timedelta(minutes=spec.freshness.max_lag_minutes)
            )
            if spec.freshness
            else None
        ),
        description=f"{description} Every row's outcome is in the ledger.",
        **common,
    )
    def written(context: dg.AssetExecutionContext, config: WriteConfig) -> dg.MaterializeResult:
        staging: StagingStore = context.resources.staging
        salesforce = getattr(context.resources, sf_key)
        batch = batch_of(context)
        resend = resend_mode(spec, config)
        rows = rows_to_consider(
            staging, spec, batch, staging.load_batch(name, "mapped", batch), config
        )
        obj = describe_object(salesforce.client(), spec.target.object)
        report = write_batch(
            WriteJob(
                spec=spec,
                batch=batch,
                mapped=rows,
                salesforce=salesforce,
                staging=staging,
                run_id=context.run.run_id,
                log=context.log,
                object_fields={f.name: f.type for f in obj.fields.values()},
                resend=resend,
                external_ids=frozenset(f.name for f in obj.fields.values() if f.external_id),
            )
        )
        return dg.MaterializeResult(
            metadata={
                "batch": batch,
                "resend": "rejects only" if config.retry_rejects_only else resend,
                "rows in": report.rows_in,
                "already written": report.already_written,
                "sent": report.sent,
                "created": report.created,
                "updated": report.updated,
                "failed": report.failed,
                "not found": report.not_found,
                "rejected before sending": staging.load_batch(
                    name, "mapping_rejects", batch
                ).height,
                "api": report.api,
                "API calls used": report.api_calls,
                "bulk job ids": ", ".join(report.bulk_job_ids) or "none",
                "duration (s)": round(report.duration_seconds, 3),
                "failures sample": dg.MetadataValue.md(markdown_table(report.failures)),
                "field mapping": dg.MetadataValue.md(mapping_table(spec, obj)),
            }
        )

    @dg.asset(
        key=[name, "rejects"],
        deps=[mapped, written],
        kinds={"duckdb"},
        description="Rows of the batch that were not written, with the reason: rejected while "
        "mapping, or refused by Salesforce (latest attempt).",
        **common,
    )
    def rejects(context: dg.AssetExecutionContext, staging: StagingStore) -> dg.MaterializeResult:
        batch = batch_of(context)
        combined = collect_rejects(staging, spec, batch)
        staging.replace_batch(name, "rejects", batch, combined)
        return dg.MaterializeResult(
            metadata={
                "batch": batch,
                "rejected": combined.height,
                "by reason": counts_by(combined, "code"),
                "sample": dg.MetadataValue.md(
                    markdown_table(combined.select("stage", "row", "key", "code", "reason"))
                ),
                "table": f'{name}__rejects (staging database, column "_batch")',
            }
        )

    assets = [source, mapped, written, rejects]
    job = dg.define_asset_job(f"{name}_writeback", selection=dg.AssetSelection.assets(*assets))
    sensors = [batch_sensor(loaded, partitions, job)] if partitions else []
    return dg.Definitions(assets=assets, jobs=[job, retry_job(spec, assets)], sensors=sensors)


def _source_label(spec: SyncSpec) -> str:
    source = spec.source
    for attribute in ("table", "parquet", "csv"):
        value = getattr(source, attribute, None)
        if value:
            return value
    return "a SQL query"


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


def _preflight(spec: SyncSpec, obj: ObjectInfo, frame: pl.DataFrame) -> None:
    """Spec errors stop the run before any row is mapped or sent."""
    findings = check_spec(spec, obj, dict(frame.schema) if frame.width else None)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise dg.Failure(
            description=f"sync {spec.name}: the mapping does not fit {spec.target.object}:\n"
            + "\n".join(f.line() for f in errors)
        )


def _checks(spec: SyncSpec, obj: ObjectInfo, rows: pl.DataFrame) -> Iterator[dg.AssetCheckResult]:
    required = [
        f.name
        for f in obj.fields.values()
        if f.required_on_create and spec.target.operation in ("insert", "upsert")
    ]
    missing = {
        field: int(rows[field].null_count()) if field in rows.columns else rows.height
        for field in required
    }
    missing = {k: v for k, v in missing.items() if v}
    yield dg.AssetCheckResult(
        check_name=REQUIRED_CHECK,
        passed=not missing,
        metadata={"required fields": ", ".join(required) or "none", "rows missing": missing},
    )
    duplicated = rows.filter(pl.col("_key").is_duplicated()) if rows.height else rows
    yield dg.AssetCheckResult(
        check_name=UNIQUE_CHECK,
        passed=duplicated.is_empty(),
        metadata={
            "duplicate keys": duplicated["_key"].unique().to_list()[:20]
            if duplicated.height
            else []
        },
    )


def collect_rejects(staging: StagingStore, spec: SyncSpec, batch: str) -> pl.DataFrame:
    """Mapping rejects plus rows whose latest attempt Salesforce refused."""
    mapping = staging.load_batch(spec.name, "mapping_rejects", batch)
    mapping_part = (
        mapping.select(
            pl.lit("mapping").alias("stage"),
            pl.col("row").cast(pl.Int64),
            pl.col("key").cast(pl.Utf8),
            pl.col("code").cast(pl.Utf8),
            pl.col("reason").cast(pl.Utf8),
            pl.lit(None, pl.Utf8).alias("hint"),
        )
        if mapping.height
        else _empty_rejects()
    )
    latest = staging.latest_outcomes(spec.name, batch)
    failed = latest.filter(pl.col("status") == "failed") if latest.height else latest
    salesforce_part = _empty_rejects()
    if failed.height:
        mapped = staging.load_batch(spec.name, "mapped", batch)
        rows = mapped.select("_key", "_row") if mapped.height else _no_rows()
        salesforce_part = failed.join(
            rows, left_on="source_key", right_on="_key", how="left"
        ).select(
            pl.lit("salesforce").alias("stage"),
            pl.col("_row").cast(pl.Int64).alias("row"),
            pl.col("source_key").cast(pl.Utf8).alias("key"),
            pl.col("error_code").cast(pl.Utf8).alias("code"),
            pl.format("{}: {}", pl.col("error_code"), pl.col("error_message")).alias("reason"),
            pl.col("hint").cast(pl.Utf8),
        )
    return pl.concat([mapping_part, salesforce_part]).sort("row", nulls_last=True)


def _no_rows() -> pl.DataFrame:
    return pl.DataFrame(schema={"_key": pl.Utf8, "_row": pl.Int64})


def _empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "stage": pl.Utf8,
            "row": pl.Int64,
            "key": pl.Utf8,
            "code": pl.Utf8,
            "reason": pl.Utf8,
            "hint": pl.Utf8,
        }
    )


def batch_sensor(
    loaded: LoadedSpec, partitions: dg.DynamicPartitionsDefinition, job: Any
) -> dg.SensorDefinition:
    """Finds batches newer than the highest one written, adds them as partitions, and asks for
    one run each; the batch id is the run key, so a batch is never requested twice."""
    spec = loaded.spec

    @dg.sensor(
        name=f"{spec.name}_batches",
        job=job,
        minimum_interval_seconds=spec.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"New batches of {_source_label(spec)} become partitions and runs.",
    )
    def batches(context: dg.SensorEvaluationContext, staging: StagingStore) -> dg.SensorResult:
        ids = Dataset(loaded).batch_ids()
        fresh = newer_than(ids, staging.watermark(spec.name))
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        added = [b for b in fresh if b not in known]
        return dg.SensorResult(
            run_requests=[dg.RunRequest(partition_key=b, run_key=b) for b in fresh],
            dynamic_partitions_requests=[partitions.build_add_request(added)] if added else [],
        )

    return batches


def newer_than(ids: list[str], watermark: str | None) -> list[str]:
    """Batch ids after the watermark in the dataset's own order (the reader sorts them)."""
    if watermark is None:
        return ids
    if watermark in ids:
        return ids[ids.index(watermark) + 1 :]
    return [b for b in ids if _order_key(b) > _order_key(watermark)]


def _order_key(batch: str) -> tuple[int, int | str]:
    return (0, int(batch)) if batch.isdigit() else (1, batch)
