"""`sf-assets sandbox` as a user runs it: a separate process, an info file, state that survives a
restart, and faults from a file."""

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


def test_info_file_names_everything_a_client_needs(tmp_path):
    with running_sandbox(tmp_path) as info:
        assert set(info) >= INFO_KEYS
        assert info["instance_url"].startswith("https://127.0.0.1:")
        versions = requests.get(
            f"{info['instance_url']}/services/data", verify=info["ca_bundle"], timeout=30
        )
        assert versions.status_code == 200
        assert (tmp_path / "info.json").stat().st_mode & 0o077 == 0


def test_state_file_keeps_records_and_credentials_across_restarts(tmp_path):
    state = tmp_path / "org.duckdb"
    with running_sandbox(tmp_path, "--state", str(state)) as first:
        admin(first, "POST", "records/Account", json=[{"Name": "Survivor"}])
    with running_sandbox(tmp_path, "--state", str(state)) as second:
        assert [r["Name"] for r in admin(second, "GET", "records/Account")] == ["Survivor"]
    for secret in ("password", "security_token", "client_secret", "emarsys_token"):
        assert first[secret] == second[secret], f"{secret} changed across a restart"


def test_faults_file_is_applied(tmp_path):
    faults = tmp_path / "faults.yaml"
    faults.write_text("daily_api_limit: 1\nlatency_ms: 5\n")
    with running_sandbox(tmp_path, "--faults", str(faults)) as info:
        assert admin(info, "GET", "faults")["daily_api_limit"] == 1


def test_bad_faults_file_is_a_clear_error(tmp_path):
    faults = tmp_path / "faults.yaml"
    faults.write_text("latency_ms: soon\n")
    completed = subprocess.run(
        [SF_ASSETS, "sandbox", "--info-file", str(tmp_path / "i.json"), "--faults", str(faults)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "cannot use the faults file" in completed.stderr and "latency_ms" in completed.stderr
