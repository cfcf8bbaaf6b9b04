"""Real processes for concurrency and crash tests.

`python -m tests.worker` imports Dagster and sf-assets once, says it is ready, then runs tasks
read as JSON lines from stdin and answers each with a JSON line: materialize a partition of a
sync against a shared Dagster instance, or write one batch with the writer. Tests start the
work, watch the org, the Dagster event log or the state file from outside, and kill the
process (SIGKILL) at the moment they need; nothing in the product knows about it.

`WorkerPool` keeps warm spares, so a test pays for a process start only once in a while.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

READY = "ready"


# -- the child ----------------------------------------------------------------------------------


def materialize(
    env: dict[str, str],
    syncs: str,
    dagster_home: str,
    job: str,
    partition: str,
    run_id: str,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from sf_assets.definitions import build_definitions
    from sf_assets.specs import load_specs

    os.environ.update(env)
    defs = build_definitions(load_specs(Path(syncs)))
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(dagster_home)) as instance:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            partition_key=partition,
            run_id=run_id,
            tags=tags or {},
            raise_on_error=False,
        )
    failures = [
        str(event.event_specific_data.error) for event in result.all_events if event.is_step_failure
    ]
    materialized = {
        "/".join(event.asset_key.path): {
            k: v.value for k, v in event.materialization.metadata.items() if _plain(v.value)
        }
        for event in result.get_asset_materialization_events()
    }
    return {"success": result.success, "failures": failures, "materialized": materialized}


def write(
    spec: dict[str, Any],
    batch: str,
    frame: str,
    state: str,
    info: dict[str, Any],
    options: dict[str, Any],
    object_fields: dict[str, str],
    run_id: str,
    external_ids: list[str] | None = None,
) -> dict[str, Any]:
    import logging

    import polars as pl

    from sf_assets.cli.local_org import salesforce_resource
    from sf_assets.salesforce.writer import WriteJob, WriteOptions, write_batch
    from sf_assets.specs import SyncSpec
    from tests.state.backends import store_from_spec

    report = write_batch(
        WriteJob(
            spec=SyncSpec.model_validate(spec),
            batch=batch,
            mapped=pl.read_parquet(frame),
            salesforce=salesforce_resource(info),
            staging=store_from_spec(state),
            run_id=run_id,
            log=logging.getLogger("worker"),
            object_fields=object_fields,
            options=WriteOptions(**options),
            external_ids=frozenset(external_ids) if external_ids is not None else None,
        )
    )
    return {"sent": report.sent, "created": report.created, "status": report.status}


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


TASKS = {"materialize": materialize, "write": write}


def warm_up() -> None:
    """Import and run once what every task needs, so that a task starts at once."""
    import dagster as dg

    import sf_assets.definitions
    import sf_assets.salesforce.writer  # noqa: F401

    @dg.asset
    def warm() -> None:
        return None

    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize([warm], instance=instance)


def serve() -> None:
    """Answer tasks on the original stdout; everything else printed goes to stderr."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import dagster  # noqa: F401  (imported once, before any task)
    import polars  # noqa: F401

    import sf_assets.definitions
    import sf_assets.salesforce.writer  # noqa: F401

    baseline = dict(os.environ)
    answers.write(json.dumps({READY: os.getpid()}) + "\n")
    for line in sys.stdin:
        task = json.loads(line)
        os.environ.clear()
        os.environ.update(baseline)
        try:
            answer = TASKS[task["kind"]](**task["args"])
        except Exception as error:  # reported to the test, which decides
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer, default=str) + "\n")


# -- the test side ------------------------------------------------------------------------------


PRODUCT_PREFIXES = ("SF_", "EMARSYS_", "DAGSTER_")


def product_free_environment() -> dict[str, str]:
    """This process's environment without the product's settings: a spare started while one
    test had set, say, SF_ASSETS_STATE_URL would otherwise carry it into every later task as
    part of its baseline; each task brings all of its own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(PRODUCT_PREFIXES)}


class Worker:
    """One child process; `start` a task, then `result` or `kill`."""

    def __init__(self) -> None:
        handle, self.log_path = tempfile.mkstemp(prefix="worker-", suffix=".log")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
            env=product_free_environment(),
            start_new_session=True,
        )
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        os.close(handle)  # the child has its own copy
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.answers.put(json.loads(line))
        self.answers.put({"error": "the worker exited", "exit": self.process.wait()})

    def wait_ready(self, timeout: float = 120) -> Worker:
        if not self.ready:
            answer = self.answers.get(timeout=timeout)
            if READY not in answer:
                raise RuntimeError(f"worker did not start: {answer}; see {self.log_path}")
            self.ready = True
        return self

    def start(self, kind: str, **args: Any) -> None:
        self.wait_ready()
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"kind": kind, "args": args}) + "\n")
        self.process.stdin.flush()

    def result(self, timeout: float = 180) -> dict[str, Any]:
        return self.answers.get(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as a lost machine or the OOM killer would; the process is reaped."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def close(self) -> None:
        """Stop the process (if it still runs) and remove its log."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        Path(self.log_path).unlink(missing_ok=True)


class WorkerPool:
    """Warm workers: `take` hands out a started one and starts a spare in its place;
    `give_back` returns a worker whose task finished, for the next test."""

    def __init__(self, spares: int = 2) -> None:
        self.spares = spares
        self.started: list[Worker] = []
        self.idle: list[Worker] = [self._new() for _ in range(spares)]

    def _new(self) -> Worker:
        worker = Worker()
        self.started.append(worker)
        return worker

    def take(self) -> Worker:
        worker = self.idle.pop(0) if self.idle else self._new()
        while len(self.idle) < self.spares:
            self.idle.append(self._new())
        return worker.wait_ready()

    def give_back(self, worker: Worker) -> None:
        if worker.process.poll() is None and worker.answers.empty():
            self.idle.append(worker)
        else:
            worker.close()

    def close(self) -> None:
        for worker in self.started:
            worker.close()


if __name__ == "__main__":
    serve()
