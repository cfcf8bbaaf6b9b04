"""Start and stop the local sandbox org as a separate process, and read its info file.

The pipeline reaches the sandbox exactly as it reaches a real org: over HTTPS, with the login
URL, credentials and CA bundle from the info file. Nothing here imports the sandbox.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from resources.salesforce import SalesforceResource

START_TIMEOUT_SECONDS = 60


def salesforce_resource(info: dict[str, Any]) -> SalesforceResource:
    """The Salesforce resource for an org described by an info file (username-password login)."""
    return SalesforceResource(
        auth_flow="password",
        login_url=info["login_url"],
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        ca_bundle=info["ca_bundle"],
        api_version=info["api_version"],
    )


@contextmanager
def local_org(
    workdir: Path, *, state: Path | None = None, port: int = 0, timing: str = "instant"
) -> Iterator[dict[str, Any]]:
    """Run `sf-assets sandbox` in the background for the duration of the block.

    `timing` is the org's timing profile: `instant` answers at once (tests, the demo),
    `realistic` takes as long as a real org would (benchmarks that weigh API choices).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    info_file = workdir / "sandbox-info.json"
    info_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "sf_sandbox",
        "--port",
        str(port),
        "--info-file",
        str(info_file),
        "--timing",
        timing,
    ]
    if state is not None:
        command += ["--state", str(state)]
    log = (workdir / "sandbox.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        info = wait_for_info(info_file, process)
        info["pid"] = process.pid
        yield info
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_for_info(info_file: Path, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not info_file.exists():
        if process.poll() is not None:
            raise RuntimeError(
                f"the sandbox org exited with code {process.returncode}; "
                f"see {info_file.parent / 'sandbox.log'}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sandbox org did not start within {START_TIMEOUT_SECONDS} s")
        time.sleep(0.05)
    return json.loads(info_file.read_text(encoding="utf-8"))
