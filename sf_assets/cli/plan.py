"""`sf-assets plan SYNC [--batch B]`: what a run of the batch would do, before it does it.

The batch is read from the source and mapped exactly as a run would, then the writer's own
selection and lookup decide what each row would become (create, update, leave unchanged,
reject) and how many API calls writing it would spend. Nothing is written: the staging file
is only read (a missing one is not created), and the org only answers queries.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sf_assets.assets.resend import WriteConfig, resend_mode
from sf_assets.assets.sensors import candidate_batches
from sf_assets.cli.org import ConnectionProblem, login
from sf_assets.connections import salesforce_from_env, staging_from_env
from sf_assets.names import did_you_mean
from sf_assets.salesforce.describe import UnknownObjectError, describe_object
from sf_assets.salesforce.mapping import MappingError, map_batch
from sf_assets.salesforce.plan import Plan, plan_write, write_job
from sf_assets.salesforce.preflight import check_spec
from sf_assets.sources import Dataset, DatasetError
from sf_assets.specs import LoadedSpec, SyncSpec, read_specs
from sf_assets.state import DuckDBStateStore, StateStore

WHOLE_DATASET = "all"
SHOWN_REJECTS = 10
log = logging.getLogger("sf_assets.plan")


class PlanError(Exception):
    """A plan that cannot be made; the message says what to fix."""


def run_plan(sync: str, batch: str | None) -> int:
    try:
        loaded = find_sync(sync)
        plan = make_plan(loaded, batch)
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_plan(plan)
    return 0


def find_sync(name: str) -> LoadedSpec:
    folder = read_specs()
    specs = {item.spec.name: item for item in folder.specs}
    if name not in specs:
        broken = [b.message for b in folder.broken if b.file.stem == name]
        if broken:
            raise PlanError(broken[0])
        raise PlanError(f"no sync called {name!r}{did_you_mean(name, specs)}")
    loaded = specs[name]
    if not isinstance(loaded.spec, SyncSpec):
        raise PlanError(f"{name} uploads to Emarsys; plan covers Salesforce writebacks")
    return loaded


def make_plan(loaded: LoadedSpec, batch: str | None) -> Plan:
    spec = loaded.spec
    assert isinstance(spec, SyncSpec)
    with steps() as step:
        step("logging in and describing " + spec.target.object)
        try:
            obj = describe_object(login(spec.connection), spec.target.object)
        except (ConnectionProblem, UnknownObjectError) as error:
            raise PlanError(str(error)) from None
        with read_only_staging() as staging:
            step("reading the batch")
            batch, frame = read_batch(loaded, staging, batch)
            step(f"mapping {frame.height} rows")
            errors = [f for f in check_spec(spec, obj, dict(frame.schema)) if f.level == "error"]
            if errors:
                raise PlanError("\n".join(f.line() for f in errors))
            try:
                mapped = map_batch(spec, obj, frame, batch)
            except MappingError as error:
                raise PlanError(str(error)) from None
            step("asking the ledger and the org what each row would become")
            job = write_job(
                spec,
                obj,
                batch,
                mapped.rows,
                salesforce=salesforce_from_env(spec.connection, resolved=True),
                staging=staging,
                run_id="plan",
                log=log,
                resend=resend_mode(spec, WriteConfig()),
            )
            return plan_write(job, frame.height, mapped.rejects)


def read_batch(
    loaded: LoadedSpec, staging: StateStore, batch: str | None
) -> tuple[str, pl.DataFrame]:
    """The batch asked for; by default the oldest one not written yet (the one the sensor
    would run next), else the newest."""
    dataset = Dataset(loaded)
    try:
        if not loaded.spec.batched:
            return WHOLE_DATASET, dataset.read_all()
        ids = dataset.batch_ids()
        if batch is None:
            waiting, _ = candidate_batches(
                loaded.spec, ids, staging.batch_statuses(loaded.spec.name)
            )
            if not ids:
                raise PlanError(f"{loaded.spec.name}: the source has no batches yet")
            batch = waiting[0] if waiting else ids[-1]
        elif batch not in ids:
            raise PlanError(
                f"{loaded.spec.name}: the source has no batch {batch!r}"
                f"{did_you_mean(batch, ids)} (batches: {', '.join(ids[-10:]) or 'none'})"
            )
        return batch, dataset.read_batch(batch)
    except DatasetError as error:
        raise PlanError(str(error)) from None


@contextmanager
def read_only_staging() -> Iterator[StateStore]:
    """The staging store, or an empty one in a temporary folder when the file does not exist
    yet (so that planning never creates it)."""
    staging = staging_from_env(resolved=True)
    if Path(staging.path).exists():
        yield staging
        return
    with tempfile.TemporaryDirectory(prefix="sf-assets-plan-") as folder:
        yield DuckDBStateStore(path=str(Path(folder) / "staging.duckdb"))


@contextmanager
def steps() -> Iterator[Callable[[str], None]]:
    """A spinner with the current step on stderr (rich draws it only on a terminal)."""
    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("planning", total=None)
        yield lambda text: progress.update(task, description=text)


def print_plan(plan: Plan) -> None:
    print(f"plan for {plan.sync} batch {plan.batch} ({plan.operation}, via {plan.api}):")
    print(f"  {plan.rows_in} rows in the batch")
    print(f"  create           {plan.create}")
    print(f"  update           {plan.update}")
    if plan.operation == "delete":
        print(f"  delete           {plan.delete}")
    print(f"  leave unchanged  {plan.unchanged} (an earlier run settled them)")
    if plan.not_found:
        print(f"  not found        {plan.not_found} (no record has the key; nothing is created)")
    print(f"  reject           {plan.rejects.height}")
    for code, n in plan.rejects.group_by("code").len().sort("len", descending=True).iter_rows():
        print(f"    {code:<30} {n}")
    for row in plan.rejects.head(SHOWN_REJECTS).iter_rows(named=True):
        named = f"row {row['row']} " in row["reason"]  # mapping reasons name the row already
        print(f"    {row['reason']}" if named else f"    row {row['row']}: {row['reason']}")
    if plan.rejects.height > SHOWN_REJECTS:
        print(f"    … {plan.rejects.height - SHOWN_REJECTS} more")
    bulk = " plus one per status poll" if plan.api == "bulk" and plan.writes else ""
    print(f"  API calls to write: about {plan.write_calls}{bulk}")
    for note in plan.notes:
        print(f"  note: {note}")
    print(
        f"nothing was written: no ledger rows, no jobs, no staged batches changed; "
        f"the plan spent {plan.read_calls} API call(s) on queries"
    )
