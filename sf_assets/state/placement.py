"""Refuse state that other machines cannot see: a run whose steps may start on other machines
must keep its state in the shared PostgreSQL store, or every step and every re-run sees another
empty DuckDB file (a re-run would send everything again).

Dagster decides where runs and steps go in two places, and sf-assets looks at both before a
step reads or sends anything: the instance's run launcher (anything but `DefaultRunLauncher`,
which starts runs as processes of the same machine: Docker, Kubernetes, ECS and custom
launchers put a run elsewhere) and the job's executor (anything but the in-process and
multiprocess executors: `docker_executor`, `k8s_job_executor`, `celery_executor` and other
step-delegating executors put each step elsewhere).
"""

from __future__ import annotations

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher

from sf_assets.state.store import StateStore

# Executors that run every step on the run's own machine.
LOCAL_EXECUTORS = frozenset(
    {"in_process", "multiprocess", "multi_or_in_process_executor", "execute_in_process_executor"}
)
STATE_URL = "SF_ASSETS_STATE_URL"

StepContext = dg.AssetExecutionContext | dg.AssetCheckExecutionContext | dg.OpExecutionContext


def elsewhere(instance: dg.DagsterInstance, executor: str) -> str | None:
    """What puts this run's work on other machines, or None when everything stays here."""
    launcher = instance.run_launcher
    if not isinstance(launcher, DefaultRunLauncher):
        return f"the instance's run launcher {type(launcher).__name__} starts runs elsewhere"
    if executor not in LOCAL_EXECUTORS:
        return f"the job's executor {executor!r} starts steps on machines of their own"
    return None


def require_shared_state(context: StepContext, store: StateStore) -> StateStore:
    """The store, once it is known that every machine of the run sees the same state; else
    the step fails before anything is read or sent, saying what to set."""
    if store.shared:
        return store
    step = context.op_execution_context if hasattr(context, "op_execution_context") else context
    reason = elsewhere(step.instance, step.job_def.executor_def.name)
    if reason is None:
        return store
    raise dg.Failure(
        description=(
            f"sf-assets keeps its state in the DuckDB file {store.location}, which only this "
            f"machine sees, but {reason}: every step and every re-run would start from an "
            f"empty ledger and send rows again. Nothing was sent. Set {STATE_URL} to a "
            "PostgreSQL database that every machine reaches (postgresql://user@host:5432/db), "
            "or run with the default run launcher and the multiprocess executor."
        ),
        allow_retries=False,
    )
