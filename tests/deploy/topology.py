"""Dagster's production topology as processes on this machine: an instance on PostgreSQL
storage configured from `deploy/dagster.yaml` (queued run coordinator, tag limits, run retries),
a code server, and the daemon; runs are started by `launcher.TempFolderRunLauncher` and steps
by `executor.temp_folder_executor`, each in an empty folder of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
DEPLOY = REPOSITORY / "deploy"
BIN = Path(sys.executable).parent
DAGSTER = [str(BIN / "dagster")]
LOCATION = "tests.deploy.location"
FINISHED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def instance_config(postgres_url: str) -> dict[str, Any]:
    """deploy/dagster.yaml as shipped, with the test's database and run launcher in place of
    the compose file's host names and Docker."""
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    driver = postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    config["storage"] = {"postgres": {"postgres_url": driver}}
    config["run_launcher"] = {"module": "tests.deploy.launcher", "class": "TempFolderRunLauncher"}
    return config


@dataclass
class Topology:
    home: Path
    env: dict[str, str]
    workspace: Path
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    def launch(self, job: str, partition: str) -> subprocess.Popen[bytes]:
        """`dagster job launch` as a person would from a shell, through the queue."""
        tags = f'{{"dagster/partition": "{partition}"}}'
        return subprocess.Popen(
            [
                str(BIN / "dagster"),
                "job",
                "launch",
                "-w",
                str(self.workspace),
                "-j",
                job,
                "--tags",
                tags,
            ],
            env=self.env,
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def topology(folder: Path, env: dict[str, str], postgres_url: str) -> Iterator[Topology]:
    """Start the code server and the daemon; stop them (and every run and step worker they
    left) at the end."""
    home = folder / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(postgres_url)))
    port = free_port()
    workspace = folder / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "grpc_server": {
                            "host": "localhost",
                            "port": port,
                            "location_name": "sf_assets",
                        }
                    }
                ]
            }
        )
    )
    env = {
        **env,
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(REPOSITORY),
        "PYTHONUNBUFFERED": "1",
    }
    # dagster-postgres creates its tables on first use: once, here, not by three processes.
    with dg.DagsterInstance.from_config(str(home)):
        pass
    logs = folder / "logs"
    logs.mkdir()
    started = Topology(home, env, workspace, logs)
    try:
        started.processes.append(
            _start(
                [
                    str(BIN / "dagster"),
                    "api",
                    "grpc",
                    "-m",
                    "tests.deploy.location",
                    "-h",
                    "localhost",
                    "-p",
                    str(port),
                ],
                env,
                folder / "code_server",
                logs / "code_server.log",
            )
        )
        _wait_for_code_server(port, env, started.processes[0], logs / "code_server.log")
        started.processes.append(
            _start(
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                env,
                folder / "daemon",
                logs / "daemon.log",
            )
        )
        yield started
    finally:
        for process in reversed(started.processes):
            _stop(process)
        with started.instance() as instance:
            for run in instance.get_runs():
                _stop_worker(run.tags.get("sf_assets_test/run_worker_pid"))


def _start(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    cwd.mkdir()
    with log.open("wb") as out:
        return subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_for_code_server(
    port: int, env: dict[str, str], process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the code server exited:\n{log.read_text()}")
        check = subprocess.run(
            [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port)],
            env=env,
            capture_output=True,
        )
        if check.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"the code server never answered:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _stop_worker(pid: str | None) -> None:
    """A run worker still alive at the end (a failed test): it was started by the daemon."""
    if pid is None:
        return
    with suppress(ProcessLookupError, PermissionError):
        os.kill(int(pid), signal.SIGKILL)


def wait_for_runs(
    running: Topology, instance: dg.DagsterInstance, count: int, timeout: float
) -> list[dg.DagsterRun]:
    """Once at least `count` runs exist and all have finished: every run. If they do not, the
    error shows the daemon's last lines about each unfinished run (its run and step workers
    write there), so that a slow run can be told from a stuck one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs()
        if len(runs) >= count and all(run.status in FINISHED for run in runs):
            return runs
        time.sleep(1)
    runs = instance.get_runs()
    statuses = {run.run_id: run.status.value for run in runs}
    daemon = (running.logs / "daemon.log").read_text(errors="replace").splitlines()
    unfinished = "\n".join(
        line
        for run in runs
        if run.status not in FINISHED
        for line in [line for line in daemon if run.run_id in line][-15:]
    )
    raise AssertionError(
        f"runs did not finish in {timeout:.0f} s: {statuses}\nthe daemon on the unfinished "
        f"runs:\n{unfinished}"
    )


def failure_messages(instance: dg.DagsterInstance, run_id: str) -> str:
    """Every step failure's message and description in the run, as one text."""
    texts = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = record.dagster_event.step_failure_data
        if data.error is not None:
            texts.append(data.error.message)
        if data.user_failure_data is not None and data.user_failure_data.description:
            texts.append(data.user_failure_data.description)
    return "\n".join(texts)
