"""The state store backends every store test runs against: each entry makes a fresh, empty
store in a test's temporary folder. A new backend is one more entry here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sf_assets.state import DuckDBStateStore, StateStore

BACKENDS: dict[str, Callable[[Path], StateStore]] = {
    "duckdb": lambda folder: DuckDBStateStore(path=str(folder / "state" / "staging.duckdb")),
}
