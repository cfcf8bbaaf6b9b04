"""Uploading sales lines to the sandbox's Emarsys endpoint over HTTPS, at most once each."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from sf_sandbox.server import SandboxServer

from resources.emarsys import (
    EmarsysLoginError,
    EmarsysRejected,
    EmarsysResource,
    EmarsysUnreachable,
)
from resources.https import TrustingSession
from sf_assets.emarsys.csv_file import GZIP_ABOVE_BYTES
from sf_assets.emarsys.ledger import SalesLedger
from sf_assets.emarsys.lines import LinesSpec, map_lines
from sf_assets.emarsys.upload import AlreadySent, UncertainBatch, upload_batch
from sf_assets.state import StateStore

COLUMNS = ["order", "timestamp", "customer", "item", "price", "quantity"]
SPEC = LinesSpec("sales", {c: c for c in COLUMNS}, COLUMNS, "unit_price")
LOG = logging.getLogger("test")


def lines(orders: list[str], items: list[str] | None = None) -> pl.DataFrame:
    n = len(orders)
    source = pl.DataFrame(
        {
            "order": orders,
            "timestamp": ["2026-11-22T09:30:00Z"] * n,
            "customer": ["C-1"] * n,
            "item": items or [f"SKU-{i}" for i in range(n)],
            "price": [9.99] * n,
            "quantity": [2] * n,
        }
    )
    mapped = map_lines(SPEC, source, "unused")
    assert mapped.rejects.height == 0
    return mapped.rows


@pytest.fixture
def info(sandbox: SandboxServer) -> dict[str, Any]:
    return sandbox.info()


@pytest.fixture
def resource(info: dict[str, Any]) -> EmarsysResource:
    return EmarsysResource(
        token=info["emarsys_token"],
        merchant_id=info["merchant_id"],
        base_url=info["emarsys_url"],
        ca_bundle=info["ca_bundle"],
        timeout_seconds=30,
    )


@pytest.fixture
def ledger(state_store: StateStore) -> SalesLedger:
    return SalesLedger(state_store, "sales")


def admin(info: dict[str, Any], method: str, path: str, **kwargs: Any) -> Any:
    session = TrustingSession(info["ca_bundle"])
    response = session.request(method, f"{info['emarsys_url']}/__admin/emarsys/{path}", **kwargs)
    response.raise_for_status()
    return response.json()


def received(info: dict[str, Any]) -> list[dict[str, Any]]:
    return admin(info, "GET", "lines")


def test_a_batch_uploads_once(
    info: dict[str, Any], resource: EmarsysResource, ledger: SalesLedger
) -> None:
    rows = lines(["A-1", "A-1", "A-2"])
    report = upload_batch(resource, ledger, rows, COLUMNS, "b1", "run-1", LOG)
    assert (report.uploaded, report.state, report.gzipped) == (3, "sent", False)
    got = received(info)
    assert [(r["order"], r["item"], r["price"]) for r in got] == [
        ("A-1", "SKU-0", "19.98"),
        ("A-1", "SKU-1", "19.98"),
        ("A-2", "SKU-2", "19.98"),
    ]
    again = upload_batch(resource, ledger, rows, COLUMNS, "b1", "run-2", LOG)
    assert (again.uploaded, again.state) == (0, "sent")
    assert len(received(info)) == 3


def test_a_line_sent_in_an_earlier_batch_is_refused_before_any_post(
    info: dict[str, Any], resource: EmarsysResource, ledger: SalesLedger
) -> None:
    upload_batch(resource, ledger, lines(["A-1"], ["SKU-1"]), COLUMNS, "b1", "run-1", LOG)
    with pytest.raises(AlreadySent, match="batch b1"):
        upload_batch(
            resource, ledger, lines(["A-1", "A-2"], ["SKU-1", "SKU-2"]), COLUMNS, "b2", "r", LOG
        )
    assert len(received(info)) == 1
    assert ledger.batch_state("b2") is None


def test_an_empty_batch_uploads_nothing(
    info: dict[str, Any], resource: EmarsysResource, ledger: SalesLedger
) -> None:
    report = upload_batch(resource, ledger, lines([]), COLUMNS, "b1", "run-1", LOG)
    assert (report.uploaded, report.state) == (0, "empty")
    assert admin(info, "GET", "uploads") == []


def test_wrong_column_order_is_rejected_and_the_ledger_is_unchanged(
    info: dict[str, Any], resource: EmarsysResource, ledger: SalesLedger
) -> None:
    agreed = ["order", "item", "timestamp", "customer", "price", "quantity"]
    admin(info, "PUT", "columns", json=agreed)
    with pytest.raises(EmarsysRejected) as caught:
        upload_batch(resource, ledger, lines(["A-1"]), COLUMNS, "b1", "run-1", LOG)
    assert caught.value.status == 400
    assert "order,item,timestamp,customer,price,quantity" in caught.value.message
    assert ledger.batch_state("b1") is None
    assert ledger.already_sent(pl.Series(["A-1\x1fSKU-0"])).height == 0
    report = upload_batch(resource, ledger, lines(["A-1"]), agreed, "b1", "run-2", LOG)
    assert report.state == "sent"


def test_the_sandbox_accepts_awkward_text(
    info: dict[str, Any], resource: EmarsysResource, ledger: SalesLedger
) -> None:
    rows = lines(["A,1", 'A"2'], ['Shirt, "blue"\nM', " Café\t "])
    upload_batch(resource, ledger, rows, COLUMNS, "b1", "run-1", LOG)
    got = received(info)
    assert [(r["order"], r["item"]) for r in got] == [("A,1", 'Shirt, "blue" M'), ('A"2', "Café")]


def test_a_large_body_is_gzipped(
    info: dict[str, Any], resource: EmarsysResource, ledger: SalesLedger
) -> None:
    count = 25_000
    rows = lines([f"ORDER-{i:08d}" for i in range(count)])
    report = upload_batch(resource, ledger, rows, COLUMNS, "b1", "run-1", LOG)
    assert report.gzipped and report.bytes < GZIP_ABOVE_BYTES
    uploads = admin(info, "GET", "uploads")
    assert [(u["gzip"], u["line_count"]) for u in uploads] == [(True, count)]


def test_wrong_token_is_a_login_error_that_does_not_show_the_token(
    info: dict[str, Any], ledger: SalesLedger
) -> None:
    secret = "not-the-token-5f1c2a"
    wrong = EmarsysResource(
        token=secret,
        merchant_id=info["merchant_id"],
        base_url=info["emarsys_url"],
        ca_bundle=info["ca_bundle"],
    )
    assert secret not in repr(wrong)
    with pytest.raises(EmarsysLoginError) as caught:
        upload_batch(wrong, ledger, lines(["A-1"]), COLUMNS, "b1", "run-1", LOG)
    assert "sales-data API token" in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert ledger.batch_state("b1") is None


def test_unreachable_is_safe_to_retry(ledger: SalesLedger) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = EmarsysResource(token="t", merchant_id="m", base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(EmarsysUnreachable):
        upload_batch(closed, ledger, lines(["A-1"]), COLUMNS, "b1", "run-1", LOG)
    assert ledger.batch_state("b1") is None


class Swallower:
    """A TCP server that reads each request, then hangs up without answering."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        self.requests = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests += 1


@pytest.fixture
def swallower() -> Iterator[Swallower]:
    server = Swallower()
    yield server
    server.server.close()


def test_a_lost_answer_leaves_the_batch_uncertain_until_released(
    info: dict[str, Any],
    resource: EmarsysResource,
    ledger: SalesLedger,
    swallower: Swallower,
) -> None:
    lost = resource.model_copy(update={"base_url": f"http://127.0.0.1:{swallower.port}"})
    rows = lines(["A-1", "A-2"])
    with pytest.raises(UncertainBatch, match="order 'A-1'") as caught:
        upload_batch(lost, ledger, rows, COLUMNS, "b1", "run-1", LOG)
    assert "sf-assets emarsys release sales b1 --sent" in str(caught.value)
    assert swallower.requests == 1
    assert ledger.batch_state("b1") == "uncertain"
    # Neither a retry nor the same lines in another batch send anything.
    with pytest.raises(UncertainBatch):
        upload_batch(resource, ledger, rows, COLUMNS, "b1", "run-2", LOG)
    with pytest.raises(AlreadySent):
        upload_batch(resource, ledger, rows, COLUMNS, "b2", "run-2", LOG)
    assert swallower.requests == 1 and received(info) == []

    assert ledger.release("b1", sent=False) == 2
    assert ledger.batch_state("b1") is None
    with pytest.raises(ValueError, match="not uncertain"):
        ledger.release("b1", sent=True)
    upload_batch(resource, ledger, rows, COLUMNS, "b1", "run-3", LOG)
    assert len(received(info)) == 2


def test_release_as_sent_makes_the_batch_sent(
    info: dict[str, Any], resource: EmarsysResource, ledger: SalesLedger, swallower: Swallower
) -> None:
    lost = resource.model_copy(update={"base_url": f"http://127.0.0.1:{swallower.port}"})
    rows = lines(["A-1"])
    with pytest.raises(UncertainBatch):
        upload_batch(lost, ledger, rows, COLUMNS, "b1", "run-1", LOG)
    assert ledger.release("b1", sent=True) == 1
    report = upload_batch(resource, ledger, rows, COLUMNS, "b1", "run-2", LOG)
    assert (report.uploaded, report.state) == (0, "sent")
    assert received(info) == []


def test_lines_added_to_a_sent_batch_go_out_as_a_delta_and_nothing_twice(
    info: dict[str, Any], resource: EmarsysResource, ledger: SalesLedger
) -> None:
    first = upload_batch(resource, ledger, lines(["A-1", "A-2"]), COLUMNS, "b1", "run-1", LOG)
    assert (first.uploaded, first.part) == (2, 1)
    grown = lines(["A-1", "A-2", "A-3"])
    delta = upload_batch(resource, ledger, grown, COLUMNS, "b1", "run-2", LOG)
    assert (delta.uploaded, delta.already_sent, delta.part, delta.state) == (1, 2, 2, "sent")
    again = upload_batch(resource, ledger, grown, COLUMNS, "b1", "run-3", LOG)
    assert (again.uploaded, again.already_sent) == (0, 3)
    uploads = admin(info, "GET", "uploads")
    assert [u["line_count"] for u in uploads] == [2, 1]
    assert sorted(r["order"] for r in received(info)) == ["A-1", "A-2", "A-3"]
    assert ledger.uploads().select("part", "state", "line_count").rows() == [
        (1, "sent", 2),
        (2, "sent", 1),
    ]
    statuses = ledger.store.batch_statuses("sales")
    assert statuses.select("batch", "status", "rows", "run_id").rows() == [
        ("b1", "written", 3, "run-3")
    ]
    assert ledger.store.current_lease("sales", "b1") is None
