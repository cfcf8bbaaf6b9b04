"""The ledger of sales lines sent to Emarsys, kept in the state store.

Emarsys appends every upload and cannot delete a duplicate, so this ledger is the only thing
between a retry and revenue counted twice. A batch goes out in one or more parts: the first
upload, then one delta part for lines added to the batch after it was sent. Each part is
recorded as `uncertain` (with every line key, unique per sync) before its POST, in the same
transaction that checks no part is in doubt and no line is recorded already, and becomes
`sent` only after the 200; a refusal removes it. If the process dies or the answer is lost in
between, the part stays uncertain and its lines count as sent until a person confirms in
Emarsys and releases it: holding back a line that did not arrive is fixable later, sending
one twice is not.
"""

from __future__ import annotations

import polars as pl

from sf_assets.state import StateStore
from sf_assets.state.model import SENT, UNCERTAIN

__all__ = ["SENT", "UNCERTAIN", "SalesLedger"]


class SalesLedger:
    """Uploads and line keys of one sync."""

    def __init__(self, store: StateStore, sync: str) -> None:
        self.store = store
        self.sync = sync

    def batch_state(self, batch: str) -> str | None:
        """`uncertain` while a part is in doubt, `sent` once every part is, None when nothing
        of the batch was (successfully) sent."""
        parts = self.store.emarsys_uploads(self.sync, batch)
        if parts.is_empty():
            return None
        return UNCERTAIN if (parts["state"] == UNCERTAIN).any() else SENT

    def uncertain_part(self, batch: str) -> tuple[int, str | None, int] | None:
        """(part, an order of it, its line count) of the batch's part in doubt, if any."""
        parts = self.store.emarsys_uploads(self.sync, batch).filter(pl.col("state") == UNCERTAIN)
        if parts.is_empty():
            return None
        row = parts.row(0, named=True)
        return int(row["part"]), row["first_order"], int(row["line_count"])

    def uploads(self) -> pl.DataFrame:
        """Every recorded upload part of the sync, for the CLI and for tests."""
        return self.store.emarsys_uploads(self.sync)

    def already_sent(self, keys: pl.Series) -> pl.DataFrame:
        """`_key`, `batch` of the given keys already recorded (sent or uncertain) in any batch."""
        return self.store.emarsys_lines(self.sync, keys).select("_key", "batch")

    def release(self, batch: str, *, sent: bool) -> int:
        """A person's answer for an uncertain part of the batch; the number of lines concerned."""
        found = self.uncertain_part(batch)
        if found is None:
            state = self.batch_state(batch) or "not recorded"
            raise ValueError(
                f"{self.sync} batch {batch} is {state}, not uncertain: there is nothing to release"
            )
        part = found[0]
        if sent:
            return self.store.confirm_emarsys_upload(self.sync, batch, part, run_id="release")
        return self.store.forget_emarsys_upload(self.sync, batch, part)
