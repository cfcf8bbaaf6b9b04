"""The assets of one Emarsys sales-data sync: `S/source` → `S/mapped` → `S/uploaded`,
partitioned by batch id.

Emarsys keeps every line it receives, so a line sent twice counts twice in every revenue report
until support reloads the history. Every guard therefore runs before the upload: the mapped
step rejects lines that break the file rules or already went out in an earlier batch, a
blocking check stops a batch that lost too many lines that way, and the upload (one run at a
time per batch, under the batch's lease) refuses a batch whose earlier attempt may have arrived
(it waits for an operator to say whether it did) and sends only lines never recorded: lines
added to a sent batch go out as a delta of their own.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl

from resources.emarsys import EmarsysLoginError, EmarsysRejected
from sf_assets.assets.checks import LINES_CHECK, REJECT_SHARE_CHECK, lines_held_back, reject_share
from sf_assets.assets.metadata import counts_by, rejects_table
from sf_assets.assets.partitions import batch_of, batch_partitions, freshness_policy, run_status
from sf_assets.assets.sensors import batch_sensor
from sf_assets.assets.source import source_asset
from sf_assets.connections import emarsys_key
from sf_assets.emarsys.ledger import SalesLedger
from sf_assets.emarsys.lines import LinesSpec, check_columns, map_lines
from sf_assets.emarsys.upload import AlreadySent, UncertainBatch, upload_batch
from sf_assets.rows import REJECT_SCHEMA
from sf_assets.specs import EmarsysSyncSpec, LoadedSpec
from sf_assets.state import StateError, StateStore
from sf_assets.state.placement import require_shared_state


def lines_spec(spec: EmarsysSyncSpec) -> LinesSpec:
    return LinesSpec(
        sync=spec.name,
        mapping=dict(spec.mapping),
        columns=list(spec.target.columns),
        price=spec.target.price,
    )


def build_sales_upload(loaded: LoadedSpec) -> dg.Definitions:
    spec = loaded.spec
    assert isinstance(spec, EmarsysSyncSpec)
    name = spec.name
    partitions = batch_partitions(spec)
    key = emarsys_key(spec.connection)
    common: dict[str, Any] = {"group_name": name, "partitions_def": partitions}
    source = source_asset(loaded, common)
    share = dg.AssetCheckSpec(
        REJECT_SHARE_CHECK,
        asset=[name, "mapped"],
        blocking=True,
        description=f"At most {spec.max_reject_share:.0%} of the batch's lines were held back "
        "while mapping (max_reject_share).",
    )

    @dg.asset(
        key=[name, "mapped"],
        deps=[source],
        kinds={"polars"},
        check_specs=[share],
        description="The batch as Emarsys sales-data lines; lines that break the file rules or "
        "were sent before are rejected with the reason.",
        **common,
    )
    def mapped(context: dg.AssetExecutionContext, staging: StateStore) -> Iterator[Any]:
        require_shared_state(context, staging)
        batch = batch_of(context)
        problems = check_columns(list(spec.target.columns), dict(spec.mapping))
        if problems:
            raise dg.Failure(description=f"sync {name}: " + "; ".join(problems))
        frame = staging.load_batch(name, "source", batch)
        result = map_lines(lines_spec(spec), frame, batch)
        ledger = SalesLedger(staging, name)
        rows, repeats = drop_sent_lines(name, batch, result.rows, ledger)
        rejects = pl.concat([result.rejects, repeats], how="vertical_relaxed")
        staging.replace_batch(name, "mapped", batch, rows)
        staging.replace_batch(name, "rejects", batch, rejects)
        yield dg.MaterializeResult(
            metadata={
                "batch": batch,
                "lines in": frame.height,
                "lines to upload": rows.height,
                "rejected": rejects.height,
                "rejected by reason": counts_by(rejects, "code"),
                "rejects sample": rejects_table(rejects, stage="mapping"),
                "columns": ", ".join(spec.target.columns),
            }
        )
        yield reject_share(spec, frame.height, result.rejects)  # lines sent before are no fault

    @dg.asset(
        key=[name, "uploaded"],
        deps=[mapped],
        kinds={"emarsys"},
        required_resource_keys={key, "staging"},
        freshness_policy=freshness_policy(spec),
        check_specs=[
            dg.AssetCheckSpec(
                LINES_CHECK,
                asset=[name, "uploaded"],
                description="Every line of the batch went to Emarsys (WARN when lines were "
                "held back while mapping).",
            )
        ],
        description=(spec.description or "Order lines uploaded to Emarsys Smart Insight.")
        + " A batch goes out once; a lost answer leaves it uncertain until released.",
        **common,
    )
    def uploaded(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        staging: StateStore = require_shared_state(context, context.resources.staging)
        batch = batch_of(context)
        rows = staging.load_batch(name, "mapped", batch)
        ledger = SalesLedger(staging, name)
        try:
            report = upload_batch(
                getattr(context.resources, key),
                ledger,
                rows,
                list(spec.target.columns),
                batch,
                context.run.run_id,
                context.log,
                run_status=run_status(context.instance),
            )
        except (
            UncertainBatch,
            AlreadySent,
            EmarsysRejected,
            EmarsysLoginError,
            StateError,
        ) as error:
            raise dg.Failure(description=f"sync {name} batch {batch}: {error}") from None
        return dg.MaterializeResult(
            metadata={
                "batch": batch,
                "lines in": report.lines_in,
                "uploaded": report.uploaded,
                "sent before": report.already_sent,
                "upload part": report.part or 0,
                "state": report.state,
                "gzip": report.gzipped,
                "bytes": report.bytes,
                "duration (s)": round(report.duration_seconds, 3),
            },
            check_results=[lines_held_back(staging.load_batch(name, "rejects", batch))],
        )

    assets = [source, mapped, uploaded]
    job = dg.define_asset_job(f"{name}_upload", selection=dg.AssetSelection.assets(*assets))
    sensors = [batch_sensor(loaded, partitions, job, hold=upload_in_doubt)] if partitions else []
    return dg.Definitions(assets=assets, jobs=[job], sensors=sensors)


def upload_in_doubt(store: StateStore, sync: str, batch: str) -> str | None:
    """The sensor leaves a batch alone while an upload of it is uncertain: only a person can
    say whether it arrived."""
    found = SalesLedger(store, sync).uncertain_part(batch)
    if found is None:
        return None
    return (
        f"its upload may have reached Emarsys; check, then `sf-assets emarsys release {sync} "
        f"{batch} --sent` or `--not-sent`"
    )


def drop_sent_lines(
    sync: str, batch: str, rows: pl.DataFrame, ledger: SalesLedger
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines that already went out in another batch are rejected, naming that batch; lines of
    this same batch stay (re-materializing a sent batch uploads nothing, see upload_batch)."""
    if rows.is_empty():
        return rows, pl.DataFrame(schema=REJECT_SCHEMA)
    sent = ledger.already_sent(rows["_key"]).filter(pl.col("batch") != batch)
    if sent.is_empty():
        return rows, pl.DataFrame(schema=REJECT_SCHEMA)
    repeated = rows.join(sent, on="_key", how="inner")
    rejects = repeated.select(
        pl.lit(sync).alias("sync"),
        pl.lit(batch).alias("batch"),
        pl.col("_row").cast(pl.Int64).alias("row"),
        pl.col("_key").str.replace("\x1f", " / ").alias("key"),
        pl.lit("order").alias("column"),
        pl.lit(None, pl.Utf8).alias("field"),
        pl.col("_key").str.replace("\x1f", " / ").alias("value"),
        pl.lit("ALREADY_SENT").alias("code"),
        pl.format(
            f"{sync} batch {batch} row {{}}: order line {{}} already went out in batch {{}}; "
            "Emarsys would count it twice",
            pl.col("_row"),
            pl.col("_key").str.replace("\x1f", " / "),
            pl.col("batch"),
        ).alias("reason"),
    )
    return rows.join(sent, on="_key", how="anti"), rejects
