"""The ledger of sales lines sent to Emarsys, kept in the staging DuckDB file.

Emarsys appends every upload and cannot delete a duplicate, so this ledger is the only thing
between a retry and revenue counted twice. A batch is recorded as `uncertain` (with every line
key) before its POST, and becomes `sent` only after the 200; a refusal removes the record. If
the process dies or the answer is lost in between, the batch stays `uncertain` and its lines
count as sent until a person confirms in Emarsys and releases it: holding back a line that did
not arrive is fixable later, sending one twice is not.
"""

from __future__ import annotations

import duckdb
import polars as pl

from sf_assets.sql import first_row
from sf_assets.state.store import StagingStore

SENT, UNCERTAIN = "sent", "uncertain"

SCHEMA = """
CREATE TABLE IF NOT EXISTS emarsys_batches (
    sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, state VARCHAR NOT NULL,
    line_count BIGINT NOT NULL, first_order VARCHAR, run_id VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS emarsys_lines (
    sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, line_key VARCHAR NOT NULL
);
"""


class SalesLedger:
    """Batches and line keys of one sync; every call is one short connection or transaction."""

    def __init__(self, staging: StagingStore, sync: str) -> None:
        self.staging = staging
        self.sync = sync
        with self.staging.connect() as connection:
            connection.execute(SCHEMA)

    def batch_state(self, batch: str) -> str | None:
        """`sent`, `uncertain`, or None when the batch was never (or not successfully) sent."""
        found = self._batch_row(batch)
        return found[0] if found else None

    def first_order(self, batch: str) -> str | None:
        """An order of the batch, so a person can look it up in Emarsys."""
        found = self._batch_row(batch)
        return found[1] if found else None

    def batches(self) -> pl.DataFrame:
        """Every recorded batch of the sync, for the CLI and for tests."""
        with self.staging.connect() as connection:
            return connection.sql(
                "SELECT * FROM emarsys_batches WHERE sync = ? ORDER BY updated_at, batch",
                params=[self.sync],
            ).pl()

    def already_sent(self, keys: pl.Series) -> pl.DataFrame:
        """`_key`, `batch` of the given keys already recorded (sent or uncertain) in any batch."""
        wanted = pl.DataFrame({"_key": keys.cast(pl.Utf8)}).unique()
        with self.staging.connect() as connection:
            connection.register("wanted", wanted)
            return connection.sql(
                "SELECT w._key, l.batch FROM wanted w "
                "JOIN emarsys_lines l ON l.line_key = w._key AND l.sync = ? "
                "ORDER BY l.batch, w._key",
                params=[self.sync],
            ).pl()

    def mark_uncertain(
        self, batch: str, keys: pl.Series, run_id: str, first_order: str | None = None
    ) -> None:
        """Before the POST: the batch and its lines are in flight, so they count as sent."""
        lines = pl.DataFrame({"line_key": keys.cast(pl.Utf8)})
        with self.staging.transaction() as connection:
            connection.register("incoming", lines)
            self._delete(connection, batch)
            connection.execute(
                "INSERT INTO emarsys_lines SELECT ?, ?, line_key FROM incoming",
                [self.sync, batch],
            )
            connection.execute(
                "INSERT INTO emarsys_batches VALUES (?, ?, ?, ?, ?, ?, now())",
                [self.sync, batch, UNCERTAIN, lines.height, first_order, run_id],
            )

    def mark_sent(self, batch: str, run_id: str) -> None:
        """After the 200: the batch's lines are in Emarsys."""
        with self.staging.transaction() as connection:
            connection.execute(
                "UPDATE emarsys_batches SET state = ?, run_id = ?, updated_at = now() "
                "WHERE sync = ? AND batch = ?",
                [SENT, run_id, self.sync, batch],
            )

    def forget(self, batch: str) -> None:
        """After a refusal: nothing was stored, so the batch and its lines are free again."""
        with self.staging.transaction() as connection:
            self._delete(connection, batch)

    def release(self, batch: str, *, sent: bool) -> int:
        """A person's answer for an uncertain batch; the number of lines it concerns."""
        found = self._batch_row(batch)
        if found is None or found[0] != UNCERTAIN:
            state = found[0] if found else "not recorded"
            raise ValueError(
                f"{self.sync} batch {batch} is {state}, not uncertain: there is nothing to release"
            )
        count = int(found[2])
        if sent:
            self.mark_sent(batch, run_id="release")
        else:
            self.forget(batch)
        return count

    def _batch_row(self, batch: str) -> tuple[str, str | None, int] | None:
        with self.staging.connect() as connection:
            found = first_row(
                connection.execute(
                    "SELECT state, first_order, line_count FROM emarsys_batches "
                    "WHERE sync = ? AND batch = ?",
                    [self.sync, batch],
                )
            )
        return (found[0], found[1], found[2]) if found else None

    def _delete(self, connection: duckdb.DuckDBPyConnection, batch: str) -> None:
        for table in ("emarsys_lines", "emarsys_batches"):
            connection.execute(
                f"DELETE FROM {table} WHERE sync = ? AND batch = ?", [self.sync, batch]
            )
