"""Staging a source batch only when its rows changed, on a real DuckDB state file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from sf_assets.sources.staged import fingerprint, stage_source, staged_fingerprint
from sf_assets.state import DuckDBStateStore

ROWS = pl.DataFrame({"_row": [1, 2], "email": ["a@example.com", "b@example.com"]})


@pytest.fixture
def store(tmp_path: Path) -> DuckDBStateStore:
    return DuckDBStateStore(path=str(tmp_path / "staging.duckdb"))


def test_the_same_rows_are_staged_once(store: DuckDBStateStore) -> None:
    assert stage_source(store, "s", "b1", ROWS) is True
    assert stage_source(store, "s", "b1", ROWS.clone()) is False
    assert store.load_batch("s", "source", "b1").equals(ROWS)
    assert staged_fingerprint(store, "s", "b1") == fingerprint(ROWS)


@pytest.mark.parametrize(
    "changed",
    [
        ROWS.with_columns(pl.Series("email", ["a@example.com", "c@example.com"])),
        pl.concat([ROWS, pl.DataFrame({"_row": [3], "email": ["c@example.com"]})]),
        ROWS.head(1),
        ROWS.with_columns(pl.col("_row").cast(pl.Int32)),
        ROWS.rename({"email": "mail"}),
    ],
    ids=["value", "row added", "row removed", "type", "column name"],
)
def test_changed_rows_are_staged_again(store: DuckDBStateStore, changed: pl.DataFrame) -> None:
    stage_source(store, "s", "b1", ROWS)
    assert stage_source(store, "s", "b1", changed) is True
    assert store.load_batch("s", "source", "b1").equals(changed)
    assert staged_fingerprint(store, "s", "b1") == fingerprint(changed) != fingerprint(ROWS)


def test_a_crash_while_restaging_leaves_no_fingerprint_of_the_old_rows(
    store: DuckDBStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise a later run whose source is back to the old rows would keep the new ones."""
    stage_source(store, "s", "b1", ROWS)
    original = DuckDBStateStore.replace_batch

    def crashing(self, sync, kind, batch, frame):  # the process dies storing the rows
        if kind == "source":
            raise KeyboardInterrupt
        original(self, sync, kind, batch, frame)

    monkeypatch.setattr(DuckDBStateStore, "replace_batch", crashing)
    with pytest.raises(KeyboardInterrupt):
        stage_source(store, "s", "b1", ROWS.head(1))
    monkeypatch.undo()
    assert staged_fingerprint(store, "s", "b1") is None
    assert stage_source(store, "s", "b1", ROWS) is True
