"""A run launcher for the topology test: every run starts as `dagster api execute_run` in a
fresh, empty temporary folder, the way DockerRunLauncher starts it in a fresh container (same
command, built by `ExecuteRunArgs.get_command_args()`). Nothing of a run's working directory is
seen by another run, the daemon or the code server; only the environment it inherits (the
instance's DAGSTER_HOME and the project's variables), as a container gets its env_vars."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from typing import Any, Self

import dagster._check as check
from dagster._core.launcher.base import LaunchRunContext, RunLauncher
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass
from dagster._serdes.config_class import ConfigurableClassData

PID_TAG = "sf_assets_test/run_worker_pid"
FOLDER_TAG = "sf_assets_test/run_folder"


class TempFolderRunLauncher(RunLauncher, ConfigurableClass):
    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        self._inst_data = inst_data
        self._workers: dict[str, subprocess.Popen[bytes]] = {}
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        command = ExecuteRunArgs(
            job_origin=check.not_none(context.job_code_origin),
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        ).get_command_args()
        folder = tempfile.mkdtemp(prefix=f"run-{run.run_id[:8]}-")
        worker = subprocess.Popen(
            command, cwd=folder, env=dict(os.environ), stdin=subprocess.DEVNULL
        )
        self._workers[run.run_id] = worker
        self._instance.add_run_tags(run.run_id, {PID_TAG: str(worker.pid), FOLDER_TAG: folder})
        self._instance.report_engine_event(
            f"started run worker {worker.pid} in {folder}", run, cls=self.__class__
        )

    def terminate(self, run_id: str) -> bool:
        worker = self._workers.get(run_id)
        if worker is None or worker.poll() is not None:
            return False
        worker.terminate()
        return True

    def dispose(self) -> None:
        for worker in self._workers.values():
            if worker.poll() is None:
                worker.terminate()
            worker.wait(timeout=30)
