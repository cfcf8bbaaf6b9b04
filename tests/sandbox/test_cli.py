"""`sf-assets sandbox` as a user runs it: a separate process, an info file, state that survives a
restart, and faults from a file."""

from __future__ import annotations

import subprocess
import time

import requests
from sf_sandbox.timing import PROFILES

from sf_assets.cli.local_org import local_org
from tests.sandbox.processes import INFO_KEYS, SF_ASSETS, admin, running_sandbox


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


def test_the_program_takes_realistic_time_by_default(tmp_path):
    with running_sandbox(tmp_path) as info:
        timing = admin(info, "GET", "timing")
        started = time.perf_counter()
        requests.get(f"{info['instance_url']}/services/data", verify=info["ca_bundle"], timeout=30)
        took = time.perf_counter() - started

    assert timing == PROFILES["realistic"].model_dump()
    assert took >= timing["rest_call_ms"] / 1000


def test_the_timing_flag_and_the_settings_file_choose_the_timing(tmp_path):
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "daily_api_limit: 50\ntiming:\n  profile: realistic\n  bulk_queue_ms: 100\n"
    )

    with running_sandbox(tmp_path, "--timing", "instant") as info:
        flagged = admin(info, "GET", "timing")
    with running_sandbox(tmp_path, "--faults", str(settings)) as info:
        from_file = admin(info, "GET", "timing")
        faults = admin(info, "GET", "faults")
    with running_sandbox(tmp_path, "--faults", str(settings), "--timing", "instant") as info:
        overridden = admin(info, "GET", "timing")

    assert flagged == PROFILES["instant"].model_dump()
    assert from_file == {**PROFILES["realistic"].model_dump(), "bulk_queue_ms": 100.0}
    assert faults["daily_api_limit"] == 50
    assert overridden == PROFILES["instant"].model_dump()


def test_a_bad_timing_setting_is_a_clear_error(tmp_path):
    settings = tmp_path / "settings.yaml"
    settings.write_text("timing: glacial\n")

    completed = subprocess.run(
        [SF_ASSETS, "sandbox", "--info-file", str(tmp_path / "i.json"), "--faults", str(settings)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 2
    assert "unknown timing profile 'glacial': use realistic or instant" in completed.stderr


def test_local_org_starts_an_instant_org_unless_asked_for_realistic_timing(tmp_path):
    with local_org(tmp_path / "a") as info:
        default = admin(info, "GET", "timing")
    with local_org(tmp_path / "b", timing="realistic") as info:
        realistic = admin(info, "GET", "timing")

    assert default["profile"] == "instant"
    assert realistic == PROFILES["realistic"].model_dump()
