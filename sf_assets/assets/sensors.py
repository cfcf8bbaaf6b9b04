"""The sensor of a batched sync: batches of the dataset that are not written become partitions
and runs, and the tick says what it left alone and why.

By default (`batches: all_pending`) it asks for every batch id present in the source that the
state store does not hold as written, oldest first in batch order (numeric when every id is
numeric): a batch that lands late with a lower id is asked for too (tagged and shown as late),
an empty batch is written as empty and hides nothing, and ids need not increase (UUIDs work).
With `batches: after_highest` it asks only for batches after the highest non-empty batch
written, the strict watermark some teams want: a batch that lands late is then never written
by the sensor.

A batch whose run failed, or ended with rows unwritten, is asked for again after a back-off
that doubles per attempt (`batch_retry`); the run key carries the attempt, so each attempt is
one run. A batch with a run still going is left alone, and so is a batch the target holds back
(an Emarsys upload in doubt waits for a person).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from sf_assets.assets.metadata import source_label
from sf_assets.assets.partitions import BATCH_TAG, SYNC_TAG, batch_tags
from sf_assets.sources import Dataset
from sf_assets.sources.dataset import sort_batch_ids
from sf_assets.specs import AnySyncSpec, LoadedSpec
from sf_assets.specs.base import BatchRetry
from sf_assets.state import WRITTEN, StateStore

# Pending batches looked at per tick (the rest wait for later ticks, and the tick says so).
BATCHES_PER_TICK = 100
# Why the target holds a batch back, if it does (e.g. an Emarsys upload in doubt).
HoldReason = Callable[[StateStore, str, str], str | None]


@dataclass(frozen=True)
class Attempt:
    """An earlier run of a batch that the sensor asked for."""

    run_id: str
    finished: bool
    ended: datetime | None


@dataclass(frozen=True)
class Request:
    batch: str
    attempt: int
    late: bool


@dataclass
class Plan:
    requests: list[Request]
    skipped: list[tuple[str, str]]  # (batch, why)

    def summary(self) -> str:
        if not self.skipped:
            return "every batch of the source is written"
        shown = "; ".join(f"{batch}: {why}" for batch, why in self.skipped[:20])
        more = f" (and {len(self.skipped) - 20} more)" if len(self.skipped) > 20 else ""
        return f"{len(self.skipped)} batch(es) not requested: {shown}{more}"


# Dagster's sensor daemon loops every 5 s and evaluates a sensor when at least its minimum
# interval has passed since its last tick began. That tick began a moment after its loop did,
# so an interval equal to a multiple of the loop (5 s) falls a moment short at the loop it is
# due and waits for the next one: a 5 s sensor looked every 10 s (measured: ticks at 22:16:09,
# :19, :29, :39). One second of slack keeps each look at the loop it is due.
DAEMON_SLACK_SECONDS = 1


def daemon_interval(seconds: int) -> int:
    """The minimum interval to give Dagster for a sensor that should look every `seconds`."""
    return max(1, seconds - DAEMON_SLACK_SECONDS)


def batch_sensor(
    loaded: LoadedSpec,
    partitions: dg.DynamicPartitionsDefinition,
    job: Any,
    hold: HoldReason | None = None,
) -> dg.SensorDefinition:
    """The sync's sensor; see the module docstring."""
    spec = loaded.spec

    @dg.sensor(
        name=f"{spec.name}_batches",
        job=job,
        minimum_interval_seconds=daemon_interval(spec.sensor_interval_seconds),
        default_status=dg.DefaultSensorStatus(spec.sensor_status.upper()),
        description=f"Batches of {source_label(spec)} not written yet become partitions and "
        "runs; failed ones are asked for again after a back-off.",
    )
    def batches(context: dg.SensorEvaluationContext, staging: StateStore) -> dg.SensorResult:
        ids = Dataset(loaded).batch_ids()
        statuses = staging.batch_statuses(spec.name)
        candidates, skipped = candidate_batches(spec, ids, statuses)
        runs = earlier_runs(context.instance, spec.name, candidates)
        held = {b: why for b in candidates if hold and (why := hold(staging, spec.name, b))}
        plan = plan_requests(
            spec, candidates, statuses, runs, held, now=datetime.now(UTC), skipped=skipped
        )
        for batch, why in plan.skipped:
            context.log.info(f"{spec.name} batch {batch} not requested: {why}")
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        added = [r.batch for r in plan.requests if r.batch not in known]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    partition_key=r.batch,
                    run_key=f"{r.batch}#{r.attempt}",
                    tags=batch_tags(spec.name, r.batch, r.attempt, late=r.late),
                )
                for r in plan.requests
            ],
            dynamic_partitions_requests=[partitions.build_add_request(added)] if added else [],
            skip_reason=None if plan.requests else plan.summary(),
        )

    return batches


def written_batches(statuses: pl.DataFrame, *, non_empty: bool = False) -> list[str]:
    done = statuses.filter(pl.col("status") == WRITTEN)
    if non_empty:
        done = done.filter(pl.col("rows").fill_null(1) > 0)
    return done["batch"].to_list()


def candidate_batches(
    spec: AnySyncSpec, ids: list[str], statuses: pl.DataFrame
) -> tuple[list[str], list[tuple[str, str]]]:
    """Source batches the sensor may ask for, in batch order, and the ones it leaves out."""
    written = set(written_batches(statuses))
    skipped: list[tuple[str, str]] = []
    pending = [b for b in ids if b not in written]
    if spec.batches == "after_highest":
        highest_written = written_batches(statuses, non_empty=True)
        order = sort_batch_ids(sorted(set(ids) | set(highest_written)))
        top = max((order.index(b) for b in highest_written), default=-1)
        below = [b for b in pending if order.index(b) < top]
        skipped += [
            (b, f"below the highest batch written ({order[top]}) and batches: after_highest")
            for b in below
        ]
        pending = [b for b in pending if order.index(b) > top]
    if len(pending) > BATCHES_PER_TICK:
        later = pending[BATCHES_PER_TICK:]
        skipped.append((later[0], f"and {len(later) - 1} more pending batches wait for a tick"))
        pending = pending[:BATCHES_PER_TICK]
    return pending, skipped


def earlier_runs(
    instance: dg.DagsterInstance, sync: str, batches: Sequence[str]
) -> dict[str, list[Attempt]]:
    """The runs the sensor asked for per batch, newest first (one query for all batches)."""
    if not batches:
        return {}
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={SYNC_TAG: sync, BATCH_TAG: list(batches)})
    )
    runs: dict[str, list[Attempt]] = {}
    for record in sorted(records, key=lambda r: r.create_timestamp, reverse=True):
        run = record.dagster_run
        if record.end_time:
            ended = datetime.fromtimestamp(record.end_time, UTC)
        else:
            ended = record.update_timestamp.replace(tzinfo=record.update_timestamp.tzinfo or UTC)
        runs.setdefault(run.tags[BATCH_TAG], []).append(Attempt(run.run_id, run.is_finished, ended))
    return runs


def backoff(retry: BatchRetry, attempts: int) -> timedelta:
    """The wait after `attempts` runs: first_after_minutes, doubling, at most max_after_minutes."""
    minutes = min(retry.first_after_minutes * 2 ** (attempts - 1), retry.max_after_minutes)
    return timedelta(minutes=minutes)


def plan_requests(
    spec: AnySyncSpec,
    candidates: list[str],
    statuses: pl.DataFrame,
    runs: dict[str, list[Attempt]],
    held: dict[str, str],
    *,
    now: datetime,
    skipped: list[tuple[str, str]],
) -> Plan:
    """Which candidate batches to ask for now (oldest first), and why the others wait."""
    plan = Plan([], list(skipped))
    written = written_batches(statuses, non_empty=True)
    order = sort_batch_ids(sorted(set(candidates) | set(written)))
    highest = max((order.index(b) for b in written), default=-1)
    incomplete = dict(
        statuses.filter(pl.col("status") != WRITTEN).select("batch", "updated_at").iter_rows()
    )
    for batch in candidates:
        if batch in held:
            plan.skipped.append((batch, held[batch]))
            continue
        attempts = runs.get(batch, [])
        if attempts and not attempts[0].finished:
            plan.skipped.append((batch, f"run {attempts[0].run_id} is still going"))
            continue
        count, ended = len(attempts), attempts[0].ended if attempts else None
        if not attempts and batch in incomplete:  # written by hand, with rows left unwritten
            count, ended = 1, incomplete[batch]
        if count >= spec.batch_retry.max_attempts:
            plan.skipped.append(
                (
                    batch,
                    f"gave up after {count} attempts (batch_retry.max_attempts); fix the cause "
                    "and materialize the partition by hand",
                )
            )
            continue
        if count and ended is not None and now < ended + backoff(spec.batch_retry, count):
            due = ended + backoff(spec.batch_retry, count)
            why = f"attempt {count} did not write it; attempt {count + 1} is due at {due:%H:%M:%S} UTC"
            plan.skipped.append((batch, why))
            continue
        plan.requests.append(Request(batch, count + 1, order.index(batch) < highest))
    return plan


def evaluate_tick(defs: dg.Definitions, name: str, instance: dg.DagsterInstance) -> Any:
    """One tick of a sensor evaluated as the daemon evaluates it: only the resources the
    sensor asks for (a connection it never touches needs no credentials), and the context
    closed when the tick is done, so its instance and resources are released here and not by
    the garbage collector at some later moment."""
    sensor = defs.resolve_sensor_def(name)
    resources = {
        key: value
        for key, value in (defs.resources or {}).items()
        if key in sensor.required_resource_keys
    }
    with dg.build_sensor_context(
        instance_ref=instance.get_ref(), definitions=defs, resources=resources
    ) as context:
        return sensor.evaluate_tick(context)
