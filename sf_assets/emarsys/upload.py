"""Upload one batch of mapped lines to Emarsys so that no line is ever sent twice.

The order of steps is the whole point. The batch's lease is taken first (one run at a time per
batch, see sf_assets.state.lease); then one transaction checks that no part of the batch is in
doubt and no line is recorded anywhere and records the lines to send as an uncertain part, so a
crash or a lost answer leaves them counted as sent; only a 200 makes them sent, only a refusal
(nothing stored) frees them. A part in doubt is never sent again automatically: a person
checks Emarsys and releases it with the CLI.

A batch re-materialized after it was sent uploads only its lines that are not recorded yet, as
a delta part of their own; the lines already sent never go again. A batch with nothing new
uploads nothing.
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
from sf_assets.emarsys.ledger import SENT, SalesLedger
from sf_assets.rows import KEY
from sf_assets.state import WRITTEN, BatchLease, RunStatus, Settlement, UploadConflict


@dataclass
class UploadReport:
    lines_in: int
    already_sent: int  # lines of the batch an earlier upload of it sent (not sent again)
    uploaded: int
    gzipped: bool
    bytes: int
    state: str  # "sent" (now or before), "empty" (nothing to send)
    duration_seconds: float
    part: int | None = None  # the upload's part of the batch (2 and up: a delta)


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
    *,
    run_status: RunStatus | None = None,
) -> UploadReport:
    """Send the batch's lines not sent yet, at most once; see the module docstring."""
    started = time.perf_counter()
    keys = rows[KEY] if KEY in rows.columns else pl.Series(KEY, [], dtype=pl.Utf8)
    if keys.n_unique() != keys.len():
        raise AlreadySent(f"{ledger.sync} batch {batch} holds the same line key more than once")
    lease = BatchLease(ledger.store, ledger.sync, batch, run_id, run_status=run_status, log=log)
    with lease:
        uncertain = ledger.uncertain_part(batch)
        if uncertain is not None:
            raise UncertainBatch(ledger.sync, batch, uncertain[1])
        recorded = ledger.already_sent(keys)
        _refuse_lines_sent_elsewhere(ledger, recorded, batch)
        new = rows.filter(~pl.col(KEY).is_in(recorded[KEY].implode())) if rows.height else rows
        settled = Settlement(WRITTEN, rows.height, 0, run_id)

        def report(uploaded: int, state: str, size: int = 0, gzipped: bool = False) -> UploadReport:
            elapsed = time.perf_counter() - started
            return UploadReport(
                rows.height, recorded.height, uploaded, gzipped, size, state, elapsed
            )

        if new.is_empty():
            lease.settle(
                lambda token: ledger.store.settle_batch(ledger.sync, batch, settled, lease=token)
            )
            if recorded.height:
                log.info(f"{ledger.sync} batch {batch} was already sent to Emarsys; nothing new")
                return report(0, SENT)
            log.info(f"{ledger.sync} batch {batch}: no lines to upload")
            return report(0, "empty")
        if recorded.height:
            log.info(
                f"{ledger.sync} batch {batch}: {recorded.height} lines went out before; "
                f"uploading the {new.height} lines added since as a delta"
            )
        part, size, gzipped = _upload(resource, ledger, new, columns, batch, run_id, lease, log)
        lease.settle(
            lambda token: ledger.store.finish_emarsys_upload(
                ledger.sync, batch, part, lease=token, settle=settled
            )
        )
        result = report(new.height, SENT, size, gzipped)
        result.part = part
        return result


def _upload(
    resource: EmarsysResource,
    ledger: SalesLedger,
    rows: pl.DataFrame,
    columns: list[str],
    batch: str,
    run_id: str,
    lease: BatchLease,
    log: Any,
) -> tuple[int, int, bool]:
    """Record the lines as an uncertain part, POST them; (part, bytes, gzipped)."""
    csv = build_csv(rows, columns)
    body, gzipped = body_for(csv)
    first_order = str(rows["order"][0]) if "order" in rows.columns else None
    try:
        part = ledger.store.begin_emarsys_upload(
            ledger.sync, batch, rows[KEY], run_id=run_id, first_order=first_order, lease=lease.token
        )
    except UploadConflict as conflict:
        raise AlreadySent(
            f"{ledger.sync} batch {batch}: some of its lines were recorded by another run "
            f"while this one prepared the upload ({conflict}); nothing was sent. Re-run the "
            "batch: it uploads only what is still missing."
        ) from None
    log.info(
        f"{ledger.sync} batch {batch}: uploading {rows.height} lines as part {part} "
        f"({len(body)} bytes{', gzipped' if gzipped else ''})"
    )
    try:
        answer = resource.upload(body, gzipped=gzipped)
    except (EmarsysRejected, EmarsysLoginError, EmarsysUnreachable):
        ledger.store.forget_emarsys_upload(ledger.sync, batch, part)  # nothing was stored
        raise
    except EmarsysMaybeSent as error:
        raise UncertainBatch(ledger.sync, batch, first_order, str(error)) from error
    # Anything else (a bug, Ctrl-C mid-send) propagates with the part left uncertain.
    log.info(f"{ledger.sync} batch {batch}: Emarsys answered {answer!r}")
    return part, len(body), gzipped


def _refuse_lines_sent_elsewhere(ledger: SalesLedger, recorded: pl.DataFrame, batch: str) -> None:
    """The mapped step drops them; sending them anyway would count them twice."""
    elsewhere = recorded.filter(pl.col("batch") != batch)
    if elsewhere.is_empty():
        return
    first = elsewhere.row(0, named=True)
    order, _, item = first[KEY].partition("\x1f")
    raise AlreadySent(
        f"{ledger.sync} batch {batch}: {elsewhere.height} line(s) already went to Emarsys in "
        f"another batch, e.g. order {order!r} item {item!r} in batch {first['batch']}; "
        "drop them from the batch (sending them again would count them twice)"
    )
