"""The assets of one ingest spec: a raw copy per object (`salesforce/contact`, ...), then the
tables merged from them (`people`, `organizations`, `orders`), a job and a schedule.

Every asset is keyed by the warehouse table it writes (see lineage.py), so a writeback sync
that reads one of these tables shows it upstream. The raw copies keep their cursors in the
state store; the merged tables keep theirs there too (per source object, the last `_sf_seq`
merged), moved only after the merged rows are committed. Run config on a raw copy asks for a
full refresh, a key comparison, or a backfill of a period; the job `<spec>_backfill` takes one
period for every object.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg
import polars as pl

from sf_assets.assets.ingest_checks import check_specs, read_checks
from sf_assets.assets.lineage import table_key
from sf_assets.assets.metadata import table
from sf_assets.connections import resource_key
from sf_assets.merge.activities import Activities, ActivitySources
from sf_assets.merge.orders import Orders
from sf_assets.merge.organizations import Organizations
from sf_assets.merge.people import People
from sf_assets.merge.tables import MergeReport, Source
from sf_assets.salesforce.describe import UnknownObjectError
from sf_assets.salesforce.reader import ReadOptions, ReadReport, Warehouse, read_object
from sf_assets.salesforce.reader.fields import FieldSelectionError
from sf_assets.salesforce.reader.filters import FilterError
from sf_assets.salesforce.reader.read import stream_name
from sf_assets.specs import IngestSpec, LoadedSpec
from sf_assets.specs.ingest import MERGED_SCHEMA, table_name
from sf_assets.state import StateStore
from sf_assets.state.cursors import StateCursors
from sf_assets.state.placement import require_shared_state

# What the spec asks for that the org does not have: a clear failure, not a stack trace.
SPEC_ERRORS = (UnknownObjectError, FieldSelectionError, FilterError)


class ReadConfig(dg.Config):
    """Run config of a raw copy; by default a read takes what changed since its cursor."""

    full_refresh: bool = False
    reconcile: bool = False
    since: str | None = None  # ISO date-time with a zone: re-read records stamped from here
    until: str | None = None  # ... up to here; the cursor stays where it is

    def options(self) -> ReadOptions:
        return ReadOptions(
            full_refresh=self.full_refresh,
            reconcile=self.reconcile,
            since=_moment("since", self.since),
            until=_moment("until", self.until),
        )


class BackfillConfig(dg.Config):
    """A period re-read for every object of the spec."""

    since: str
    until: str | None = None


def build_ingest(loaded: LoadedSpec) -> dg.Definitions:
    spec: IngestSpec = loaded.spec
    warehouse = Warehouse(loaded.resolve(spec.into.duckdb), spec.into.raw_schema)
    raw = {name: raw_copy(spec, name, warehouse) for name in spec.read.objects}
    merged = merged_assets(spec, warehouse, raw)
    assets = [*raw.values(), *merged]
    job = dg.define_asset_job(f"{spec.name}_ingest", selection=dg.AssetSelection.assets(*assets))
    backfill = dg.define_asset_job(
        f"{spec.name}_backfill",
        selection=dg.AssetSelection.assets(*raw.values()),
        config=dg.ConfigMapping(
            config_fn=lambda period: {
                "ops": {raw_asset.op.name: {"config": period} for raw_asset in raw.values()}
            },
            config_schema=BackfillConfig.to_config_schema(),
        ),
        description="Re-read the records stamped in a period, for every object; cursors stay.",
    )
    schedules = (
        [
            dg.ScheduleDefinition(
                name=f"{spec.name}_reads",
                job=job,
                cron_schedule=spec.schedule,
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description=f"Incremental reads of {', '.join(spec.read.objects)}.",
            )
        ]
        if spec.schedule
        else []
    )
    return dg.Definitions(assets=assets, jobs=[job, backfill], schedules=schedules)


def raw_key(spec: IngestSpec, sobject: str) -> dg.AssetKey:
    return table_key(spec.raw_table(sobject))


def raw_copy(spec: IngestSpec, sobject: str, warehouse: Warehouse) -> dg.AssetsDefinition:
    """`salesforce/<object>`: the object's records, kept current by incremental reads."""
    key = raw_key(spec, sobject)
    sf_key = resource_key(spec.connection)
    read = spec.read.objects[sobject]
    scope = "records matching the spec's filter" if read.filter else "every record"
    if read.retention_days:
        scope += f" created in the last {read.retention_days} days"

    @dg.asset(
        key=key,
        group_name=spec.name,
        kinds={"salesforce", "duckdb"},
        pool=f"salesforce_{spec.connection}",
        required_resource_keys={sf_key, "staging"},
        check_specs=check_specs(key),
        description=f"Salesforce {sobject}: {scope}, copied into "
        f"{spec.raw_table(sobject)} and kept current by (SystemModstamp, "
        "Id) keyset reads; deleted records flagged IsDeleted, records that left the filter "
        "_sf_archived.",
    )
    def copy(context: dg.AssetExecutionContext, config: ReadConfig) -> Iterator[Any]:
        staging: StateStore = require_shared_state(context, context.resources.staging)
        cursors = StateCursors(staging)
        try:
            report = read_object(
                spec,
                sobject,
                getattr(context.resources, sf_key),
                warehouse=warehouse,
                cursors=cursors,
                run_id=context.run.run_id,
                log=context.log,
                options=config.options(),
            )
        except SPEC_ERRORS as error:
            raise dg.Failure(
                description=f"sync {spec.name}: {str(error).removeprefix(f'sync {spec.name}: ')}; "
                "nothing was read and the cursor is where it was"
            ) from None
        yield dg.MaterializeResult(metadata=read_metadata(report, warehouse))
        yield from read_checks(report, warehouse, cursors, stream_name(spec.name, sobject))

    return copy


def read_metadata(report: ReadReport, warehouse: Warehouse) -> dict[str, Any]:
    position = report.cursor.position
    return {
        "mode": report.mode,
        "why": report.reason or "changes since the cursor",
        "api": " then ".join(report.apis) or "none",
        "records read": report.records,
        "flagged deleted": report.deleted,
        "flagged archived (left the filter)": report.archived,
        "pruned (outside retention)": report.pruned,
        "keys compared with the org": report.reconciled,
        "current records in the copy": warehouse.current_count(report.object),
        "API calls used": report.api_calls,
        "bulk job ids": ", ".join(report.bulk_job_ids) or "none",
        "duration (s)": round(report.seconds, 3),
        "cursor": f"{position.modstamp.isoformat()} {position.record_id}" if position else "none",
        "table": dg.MetadataValue.text(warehouse.table(report.object)),
    }


def merged_assets(
    spec: IngestSpec, warehouse: Warehouse, raw: dict[str, dg.AssetsDefinition]
) -> list[dg.AssetsDefinition]:
    found = []
    people = people_asset(spec, warehouse, raw) if spec.merge.people is not None else None
    if people is not None:
        found.append(people)
    if spec.merge.organizations is not None:
        found.append(organizations_asset(spec, warehouse, raw))
    if spec.orders:
        found.append(orders_asset(spec, warehouse, raw))
    if people is not None and spec.activity_objects():
        found.append(activities_asset(spec, warehouse, raw, people))
    return found


def _source(spec: IngestSpec, sobject: str) -> Source:
    return Source(sobject, spec.into.raw_schema, table_name(spec.object_name(sobject)))


def _upstream(spec: IngestSpec, raw: dict[str, dg.AssetsDefinition], *objects: str) -> list[Any]:
    return [raw[spec.object_name(o)] for o in objects]


def people_asset(
    spec: IngestSpec, warehouse: Warehouse, raw: dict[str, dg.AssetsDefinition]
) -> dg.AssetsDefinition:
    config = spec.merge.people
    assert config is not None
    stream = f"{spec.name}/people"
    keys = config.keys
    fallback = f", then {keys.fallback}" if keys.fallback else ""

    @dg.asset(
        key=table_key(f"{MERGED_SCHEMA}.people"),
        group_name=spec.name,
        deps=_upstream(spec, raw, *config.sources),
        kinds={"duckdb"},
        description=f"People merged from {' and '.join(config.sources)} ({config.strategy}, "
        f"keys {keys.primary}{fallback}, {keys.match}); people_sources links every record "
        "to its person.",
    )
    def people(context: dg.AssetExecutionContext, staging: StateStore) -> dg.MaterializeResult:
        require_shared_state(context, staging)
        cursors = StateCursors(staging)
        since = cursors.read(stream) or {}
        sources = [_source(spec, name) for name in config.sources]
        report = People(config, warehouse, MERGED_SCHEMA).merge(sources, since)
        cursors.commit({stream: {**since, **report.seen}}, run_id=context.run.run_id)
        return dg.MaterializeResult(metadata=merge_metadata(report, "people"))

    return people


def organizations_asset(
    spec: IngestSpec, warehouse: Warehouse, raw: dict[str, dg.AssetsDefinition]
) -> dg.AssetsDefinition:
    config = spec.merge.organizations
    assert config is not None
    stream = f"{spec.name}/organizations"

    @dg.asset(
        key=table_key(f"{MERGED_SCHEMA}.organizations"),
        group_name=spec.name,
        deps=_upstream(spec, raw, "Account"),
        kinds={"duckdb"},
        description=f"Organizations from Accounts, keyed by (org id, account id) so that "
        f"companies of two orgs never merge ({config.strategy}).",
    )
    def organizations(
        context: dg.AssetExecutionContext, staging: StateStore
    ) -> dg.MaterializeResult:
        cursors = StateCursors(staging)
        since = cursors.read(stream) or {}
        report = Organizations(config, warehouse, MERGED_SCHEMA).merge(
            _source(spec, "Account"), since.get("Account", 0)
        )
        cursors.commit({stream: {**since, **report.seen}}, run_id=context.run.run_id)
        return dg.MaterializeResult(metadata=merge_metadata(report, "organizations"))

    return organizations


def orders_asset(
    spec: IngestSpec, warehouse: Warehouse, raw: dict[str, dg.AssetsDefinition]
) -> dg.AssetsDefinition:
    stream = f"{spec.name}/orders"

    @dg.asset(
        key=table_key(f"{MERGED_SCHEMA}.orders"),
        group_name=spec.name,
        deps=_upstream(spec, raw, "Order", "OrderItem"),
        kinds={"duckdb"},
        description="Orders with their items (one row per order, items as a list), rebuilt "
        "when the header or an item changes; `_orders_seq` tells a fulfilment service what "
        "changed since it last read.",
    )
    def orders(context: dg.AssetExecutionContext, staging: StateStore) -> dg.MaterializeResult:
        require_shared_state(context, staging)
        cursors = StateCursors(staging)
        since = cursors.read(stream) or {}
        report = Orders(warehouse, MERGED_SCHEMA).merge(
            _source(spec, "Order"), _source(spec, "OrderItem"), since
        )
        cursors.commit({stream: report.seen}, run_id=context.run.run_id)
        return dg.MaterializeResult(
            metadata={
                "orders changed": len(report.changed),
                "_orders_seq of this run": report.seq,
                "changed (first 20)": ", ".join(report.changed[:20]) or "none",
            }
        )

    return orders


def activities_asset(
    spec: IngestSpec,
    warehouse: Warehouse,
    raw: dict[str, dg.AssetsDefinition],
    people: dg.AssetsDefinition,
) -> dg.AssetsDefinition:
    objects = spec.activity_objects()

    def source(name: str) -> Source | None:
        return _source(spec, name) if name in objects else None

    @dg.asset(
        key=table_key(f"{MERGED_SCHEMA}.activities"),
        group_name=spec.name,
        deps=[people, *_upstream(spec, raw, *objects)],
        kinds={"duckdb"},
        description="Activities of people: Opportunities through their primary contact role, "
        "Tasks through WhoId; rebuilt from the copies on every run.",
    )
    def activities(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        count = Activities(warehouse, MERGED_SCHEMA).rebuild(
            ActivitySources(
                opportunities=source("Opportunity"),
                contact_roles=source("OpportunityContactRole"),
                tasks=source("Task"),
            )
        )
        return dg.MaterializeResult(
            metadata={
                "activities": count,
                "from": ", ".join(objects),
                "table": dg.MetadataValue.text(f"{MERGED_SCHEMA}.activities"),
            }
        )

    return activities


def merge_metadata(report: MergeReport, merged_table: str) -> dict[str, Any]:
    return {
        "records merged": report.records,
        "created": report.created,
        "updated": report.updated,
        "no longer current": report.unlinked,
        "table": dg.MetadataValue.text(f"{MERGED_SCHEMA}.{merged_table}"),
        "merged up to (_sf_seq)": table(
            pl.DataFrame(
                {"object": list(report.seen), "_sf_seq": list(report.seen.values())},
                schema={"object": pl.Utf8, "_sf_seq": pl.Int64},
            )
        ),
    }


def _moment(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise dg.Failure(
            description=f"run config {name}: {text!r} is not an ISO date-time; write e.g. "
            "2026-01-31T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise dg.Failure(description=f"run config {name}: {text!r} needs a time zone, e.g. Z")
    return moment
