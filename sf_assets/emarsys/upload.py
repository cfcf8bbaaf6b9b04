"""Upload one batch of mapped lines to Emarsys so that no line is ever sent twice.

The order of steps is the whole point: the batch is recorded as uncertain (every line key
included) before the POST, so a crash or a lost answer leaves the lines counted as sent; only a
200 makes them sent, only a refusal (nothing stored) frees them. A batch in doubt is never sent
again automatically: a person checks Emarsys and releases it with the CLI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from resources.emarsys import (
    EmarsysLoginError,
    EmarsysMaybeSent,
    EmarsysRejected,
    EmarsysResource,
    EmarsysUnreachable,
)
from sf_assets.emarsys.csv_file import body_for, build_csv
from sf_assets.emarsys.ledger import SENT, UNCERTAIN, SalesLedger
from sf_assets.rows import KEY


@dataclass
class UploadReport:
    lines_in: int
    duplicates: int  # lines of the batch already in the ledger (always 0 when uploaded)
    uploaded: int
    gzipped: bool
    bytes: int
    state: str  # "sent" (now or before), "empty" (nothing to send)
    duration_seconds: float


class UncertainBatch(Exception):
    """The batch may have reached Emarsys: a person must check and release it."""

    def __init__(self, sync: str, batch: str, order: str | None, cause: str = "") -> None:
        example = f"order {order!r}" if order else "an order"
        because = f" ({cause})" if cause else ""
        super().__init__(
            f"{sync} batch {batch} may have reached Emarsys: its upload was sent but no answer "
            f"came back{because}. Its lines count as sent and nothing will upload them again "
            f"until you decide. Check the Sales Data page / Smart Insight for {example} of this "
            f"batch, then release it: `sf-assets emarsys release {sync} {batch} --sent` if it is "
            f"there, `sf-assets emarsys release {sync} {batch} --not-sent` if it is not (the next "
            "run then uploads it)."
        )
        self.sync = sync
        self.batch = batch


class AlreadySent(Exception):
    """Some lines of the batch already went out (or may have) in another batch."""


def upload_batch(
    resource: EmarsysResource,
    ledger: SalesLedger,
    rows: pl.DataFrame,
    columns: list[str],
    batch: str,
    run_id: str,
    log: Any,
) -> UploadReport:
    """Send the batch at most once; see the module docstring for the order of steps."""
    started = time.perf_counter()

    def report(uploaded: int, state: str, size: int = 0, gzipped: bool = False) -> UploadReport:
        elapsed = time.perf_counter() - started
        return UploadReport(rows.height, 0, uploaded, gzipped, size, state, elapsed)

    state = ledger.batch_state(batch)
    if state == SENT:
        log.info(f"{ledger.sync} batch {batch} was already sent to Emarsys; nothing to upload")
        return report(0, SENT)
    if state == UNCERTAIN:
        raise UncertainBatch(ledger.sync, batch, ledger.first_order(batch))
    if rows.height == 0:
        log.info(f"{ledger.sync} batch {batch}: no lines to upload")
        return report(0, "empty")
    _refuse_lines_already_sent(ledger, rows, batch)

    csv = build_csv(rows, columns)
    body, gzipped = body_for(csv)
    first_order = str(rows["order"][0]) if "order" in rows.columns else None
    ledger.mark_uncertain(batch, rows[KEY], run_id, first_order)
    log.info(
        f"{ledger.sync} batch {batch}: uploading {rows.height} lines "
        f"({len(body)} bytes{', gzipped' if gzipped else ''})"
    )
    try:
        answer = resource.upload(body, gzipped=gzipped)
    except (EmarsysRejected, EmarsysLoginError, EmarsysUnreachable):
        ledger.forget(batch)  # nothing was stored (or nothing even left this machine)
        raise
    except EmarsysMaybeSent as error:
        raise UncertainBatch(ledger.sync, batch, first_order, str(error)) from error
    # Anything else (a bug, Ctrl-C mid-send) propagates with the batch left uncertain.
    ledger.mark_sent(batch, run_id)
    log.info(f"{ledger.sync} batch {batch}: Emarsys answered {answer!r}")
    return report(rows.height, SENT, len(body), gzipped)


def _refuse_lines_already_sent(ledger: SalesLedger, rows: pl.DataFrame, batch: str) -> None:
    """The caller should have dropped them; sending them anyway would count them twice."""
    if rows[KEY].n_unique() != rows.height:
        raise AlreadySent(f"{ledger.sync} batch {batch} holds the same line key more than once")
    found = ledger.already_sent(rows[KEY])
    if found.height:
        first = found.row(0, named=True)
        order, _, item = first["_key"].partition("\x1f")
        raise AlreadySent(
            f"{ledger.sync} batch {batch}: {found.height} line(s) already went to Emarsys in "
            f"another batch, e.g. order {order!r} item {item!r} in batch {first['batch']}; "
            "drop them from the batch (sending them again would count them twice)"
        )
