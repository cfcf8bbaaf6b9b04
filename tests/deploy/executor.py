"""A step-delegating executor for the topology test: each step starts as `dagster api
execute_step` in a fresh, empty temporary folder of its own, the way `docker_executor` or
`k8s_job_executor` starts it in a container or pod (same command, built by
`ExecuteStepArgs.get_command_args()`), so no two steps share a working directory."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator

import dagster as dg
from dagster._core.definitions.executor_definition import multiple_process_executor_requirements
from dagster._core.events import DagsterEvent
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.step_delegating import (
    CheckStepHealthResult,
    StepDelegatingExecutor,
    StepHandler,
    StepHandlerContext,
)


class TempFolderStepHandler(StepHandler):
    def __init__(self) -> None:
        super().__init__()
        self._workers: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def name(self) -> str:
        return "TempFolderStepHandler"

    def _key(self, context: StepHandlerContext) -> str:
        [step_key] = context.execute_step_args.step_keys_to_execute or []
        return f"{context.execute_step_args.run_id}:{step_key}"

    def launch_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        [step_key] = step_handler_context.execute_step_args.step_keys_to_execute or []
        folder = tempfile.mkdtemp(prefix=f"step-{step_key[:30]}-")
        worker = subprocess.Popen(
            step_handler_context.execute_step_args.get_command_args(),
            cwd=folder,
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
        )
        self._workers[self._key(step_handler_context)] = worker
        yield DagsterEvent.step_worker_starting(
            step_handler_context.get_step_context(step_key),
            message=f"step worker {worker.pid} started in {folder}",
            metadata={"folder": folder, "pid": worker.pid},
        )

    def check_step_health(self, step_handler_context: StepHandlerContext) -> CheckStepHealthResult:
        worker = self._workers.get(self._key(step_handler_context))
        if worker is None or worker.poll() in (None, 0):
            return CheckStepHealthResult.healthy()
        return CheckStepHealthResult.unhealthy(f"step worker exited with {worker.returncode}")

    def terminate_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        worker = self._workers.get(self._key(step_handler_context))
        if worker is not None and worker.poll() is None:
            worker.terminate()
        yield from ()


@dg.executor(
    name="temp_folder_steps",
    requirements=multiple_process_executor_requirements(),
)
def temp_folder_executor(init_context: dg.InitExecutorContext) -> StepDelegatingExecutor:
    return StepDelegatingExecutor(
        TempFolderStepHandler(), retries=RetryMode.DISABLED, sleep_seconds=0.2
    )
