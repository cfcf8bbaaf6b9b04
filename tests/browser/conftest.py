"""The demo's state served by `sf-assets ui` (the sandbox org + `dg dev`), and a real headless
Chromium driven by Playwright, for tests that look at the Dagster UI as a user does.

Screenshots go to `.sf-assets/screenshots/` of the repository (or `$SF_ASSETS_SCREENSHOTS`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, sync_playwright

REPOSITORY = Path(__file__).resolve().parents[2]
SF_ASSETS = str(Path(sys.executable).parent / "sf-assets")
CHROMIUM = os.environ.get("SF_ASSETS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(
    os.environ.get("SF_ASSETS_SCREENSHOTS", REPOSITORY / ".sf-assets" / "screenshots")
)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_START_SECONDS = 300
STOP_SECONDS = 60  # sf-assets ui gives dg dev and the org their own time to stop


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """The environment without connection settings of the person running the tests."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("SF_", "EMARSYS_", "DAGSTER_"))
    }


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with the repository's syncs after `sf-assets demo` ran in it."""
    project = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPOSITORY / "syncs", project / "syncs")
    shutil.copy(REPOSITORY / "workspace.yaml", project / "workspace.yaml")
    completed = subprocess.run(
        [SF_ASSETS, "demo"],
        cwd=project,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert not (project / ".env").exists(), "the demo must not write the user's .env"
    return project


BROKEN_SPEC = """
name: leads_to_salesforce
source: {duckdb: .sf-assets/demo/warehouse.duckdb, table: crm.ticket_buyers}
target: {object: Lead, operation: upsert, match_on: Email}
mapping: {Email: email, LastName: last_name, Company: company}
api: sometimes
"""


@pytest.fixture(scope="module")
def dagster_ui(demo_project: Path) -> Iterator[str]:
    """`sf-assets ui` on free ports, in its own process group, stopped by its PID; a spec
    with a mistake sits beside the demo's (as a user's half-written one would)."""
    (demo_project / "syncs" / "leads_draft.yaml").write_text(BROKEN_SPEC)
    port = free_port()
    log = (demo_project / "ui.log").open("w")
    process = subprocess.Popen(
        [SF_ASSETS, "ui", "--port", str(port), "--org-port", str(free_port())],
        cwd=demo_project,
        env=clean_environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, demo_project / "ui.log")
        yield url
    finally:
        by_sigterm = stop_group(process)
        log.close()
    # `sf-assets ui` must take `dg dev` (its own process group) down with it on SIGTERM.
    assert by_sigterm, "sf-assets ui did not stop on SIGTERM"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/server_info", timeout=5)


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + UI_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"sf-assets ui exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    pytest.fail(
        f"the Dagster UI did not answer within {UI_START_SECONDS} s:\n{log.read_text()[-3000:]}"
    )


def stop_group(process: subprocess.Popen[bytes]) -> bool:
    """SIGTERM to the process group we started, then SIGKILL if it lingers; whether SIGTERM
    was enough."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return sent == signal.SIGTERM
        try:
            process.wait(timeout=STOP_SECONDS)
            return sent == signal.SIGTERM
        except subprocess.TimeoutExpired:
            continue
    return False


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """The system's Chromium, headless, with an empty profile."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1920, "height": 1200},
        )
        context.set_default_timeout(60_000)
        # The community dialog opens a second after the first page loads and covers every
        # later click; its dismissal is remembered under this key, so set it before any page.
        context.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    tab = browser.new_page()
    try:
        yield tab
    finally:
        tab.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
