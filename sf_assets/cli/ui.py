"""`sf-assets ui`: the demo in the Dagster UI, on ports the user chooses.

It starts the sandbox org on the demo's saved state and then `dg dev` (or `dagster dev` where
the `dg` command is not installed) with the org's settings in its environment. `dg dev` runs
from `.sf-assets/demo/ui/` with an explicit workspace file, so Dagster loads no `.env` of the
project: the demo's UI never picks up, nor leaves behind, a user's connection settings.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from sf_assets.cli.demo import DEMO_STATE, connection_variables
from sf_assets.cli.local_org import local_org

STOP_TIMEOUT_SECONDS = 20


def run_ui(ui_port: int, org_port: int, project: Path | None = None) -> int:
    project = (project or Path.cwd()).resolve()
    state = project / DEMO_STATE
    if not (state / "dagster_home").is_dir():
        print("error: there is no demo to browse yet: run `sf-assets demo` first", file=sys.stderr)
        return 1
    stop_on_signals()
    workdir = state / "ui"
    workdir.mkdir(exist_ok=True)
    with local_org(state, state=state / "org.duckdb", port=org_port) as info:
        env = {
            **os.environ,
            **connection_variables(info, state, info["login_url"]),
            "DAGSTER_HOME": str(state / "dagster_home"),
            "SF_ASSETS_SYNCS_DIR": str(project / "syncs"),
        }
        command = [*dagster_dev(), "-w", str(project / "workspace.yaml"), "-p", str(ui_port)]
        print(f"sandbox org at {info['instance_url']}; Dagster UI at http://127.0.0.1:{ui_port}")
        process = subprocess.Popen(command, cwd=workdir, env=env, start_new_session=True)
        try:
            return process.wait()
        except KeyboardInterrupt:
            return stop(process)


def dagster_dev() -> list[str]:
    """`dg dev` as Dagster 1.13 recommends, from this environment; `dagster dev` without dg."""
    scripts = Path(sys.executable).parent
    dg = scripts / "dg"
    if dg.exists() or shutil.which("dg"):
        return [str(dg) if dg.exists() else "dg", "dev"]
    return [str(scripts / "dagster"), "dev"]


def stop_on_signals() -> None:
    """SIGTERM and SIGINT stop the UI cleanly, even when started from a shell that ignores
    them (children then get the default handlers back instead of inheriting the ignore)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM to `dg dev`'s process group, SIGKILL if it has not exited in time."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
            break
        except subprocess.TimeoutExpired:
            continue
    return 0
