"""The sandbox program as a user runs it (`sf-assets sandbox`): a separate process with an info
file, stopped the way a terminal stops it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

INFO_KEYS = {
    "instance_url",
    "login_url",
    "ca_bundle",
    "username",
    "password",
    "security_token",
    "client_id",
    "client_secret",
    "api_version",
    "emarsys_url",
    "emarsys_token",
    "merchant_id",
}
SF_ASSETS = str(Path(sys.executable).parent / "sf-assets")


@contextmanager
def running_sandbox(workdir: Path, *extra: str) -> Iterator[dict[str, Any]]:
    info_file = workdir / "info.json"
    process = subprocess.Popen(
        [SF_ASSETS, "sandbox", "--port", "0", "--info-file", str(info_file), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not info_file.exists():
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the sandbox did not write its info file"
            time.sleep(0.05)
        yield json.loads(info_file.read_text())
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert not info_file.exists(), "a stopped sandbox must not leave a stale info file"


def admin(info: dict[str, Any], method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(
        method,
        f"{info['instance_url']}/__admin/{path}",
        verify=info["ca_bundle"],
        timeout=30,
        **kwargs,
    )
    response.raise_for_status()
    return response.json()
