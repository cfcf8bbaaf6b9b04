"""Reading the sandbox org over HTTPS into a real DuckDB warehouse, with cursors in a real state
store: the fixtures every reader test shares."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from resources.https import TrustingSession
from sf_assets.cli.local_org import salesforce_resource
from sf_assets.salesforce.options import ApiOptions
from sf_assets.salesforce.reader import ReadOptions, ReadReport, Warehouse, read_object
from sf_assets.specs.ingest import IngestSpec
from sf_assets.state import DuckDBStateStore
from sf_assets.state.cursors import StateCursors

FAST = ApiOptions(poll_seconds=0.05, max_poll_seconds=0.2, retry_initial_seconds=0.01)
LOG = logging.getLogger("tests.reader")


def ingest_spec(objects: dict[str, Any], **read: Any) -> IngestSpec:
    """A spec reading `objects` with no look-back (tests wait out the second the org's clock
    is known to), unless the test sets one."""
    return IngestSpec.model_validate(
        {
            "name": "crm",
            "read": {"objects": objects, "lookback_seconds": 0, **read},
            "into": {"duckdb": "warehouse.duckdb"},
        }
    )


class Org:
    """The sandbox org as a test drives it: admin seeding (no API calls) and plain HTTPS."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.base = info["instance_url"]
        self.http = TrustingSession(info["ca_bundle"])

    def seed(self, sobject: str, records: list[dict[str, Any]]) -> list[str]:
        """Records created in one request, so they share one SystemModstamp."""
        response = self.http.post(f"{self.base}/__admin/records/{sobject}", json=records)
        response.raise_for_status()
        outcome = response.json()
        assert all(item["success"] for item in outcome), outcome
        return [item["id"] for item in outcome]

    def records(self, sobject: str, *, deleted: bool = False) -> list[dict[str, Any]]:
        flag = "true" if deleted else "false"
        response = self.http.get(f"{self.base}/__admin/records/{sobject}?include_deleted={flag}")
        response.raise_for_status()
        return response.json()

    def faults(self, **changes: Any) -> None:
        self.http.patch(f"{self.base}/__admin/faults", json=changes).raise_for_status()

    def calls(self) -> int:
        return int(self.http.get(f"{self.base}/__admin/calls").json()["total"])


class Reading:
    """One project's warehouse and state store, and a way to read an object into them."""

    def __init__(self, root: Path, org: Org) -> None:
        self.root = root
        self.org = org
        self.warehouse = Warehouse(root / "warehouse.duckdb", "salesforce")
        self.store = DuckDBStateStore(path=str(root / "state.duckdb"))
        self.cursors = StateCursors(self.store)
        self.runs = 0

    def read(
        self,
        spec: IngestSpec,
        sobject: str,
        *,
        log: logging.Logger = LOG,
        salesforce: Any = None,
        **options: Any,
    ) -> ReadReport:
        self.runs += 1
        return read_object(
            spec,
            sobject,
            salesforce or salesforce_resource(self.org.info),
            warehouse=self.warehouse,
            cursors=self.cursors,
            run_id=f"run-{self.runs}",
            log=log,
            options=ReadOptions(**options),
            api_options=FAST,
        )

    def copy(self, sobject: str) -> pl.DataFrame:
        with duckdb.connect(str(self.warehouse.path), read_only=True) as con:
            con.execute("SET TimeZone = 'UTC'")
            return con.sql(f"SELECT * FROM salesforce.{sobject.lower()} ORDER BY Id").pl()


@pytest.fixture
def org(sandbox) -> Org:
    return Org(sandbox.info())


@pytest.fixture
def reading(tmp_path: Path, org: Org) -> Reading:
    return Reading(tmp_path, org)


def settle() -> None:
    """Let the org's clock pass the `Date` its answers give, so that records stamped before
    now lie outside the next read's look-back. The header names whole seconds, and the
    sandbox's server refreshes it once a second, so it may lag the records by up to two."""
    time.sleep(2.2)


class OnLog(logging.Handler):
    """Runs `action` once, when the reader logs a line containing `text`: the moment a test
    needs to act at (e.g. right after the first commit), without hooks in the reader."""

    def __init__(self, text: str, action: Callable[[], None]) -> None:
        super().__init__()
        self.text = text
        self.action: Callable[[], None] | None = action
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if self.action is not None and self.text in record.getMessage():
            action, self.action = self.action, None
            action()


def logger_acting(name: str, text: str, action: Callable[[], None]) -> logging.Logger:
    log = logging.getLogger(f"tests.reader.{name}")
    log.setLevel(logging.INFO)
    log.handlers = [OnLog(text, action)]
    log.propagate = False
    return log
