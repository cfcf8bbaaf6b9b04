"""Ingest cursors: how far each read of a Salesforce object (and each merge of the copies) has
come, kept in sf-assets' state store beside the write ledger.

A cursor moves only after the rows it covers are committed in the warehouse, so a crash between
the two re-reads a little and never skips anything (rows are upserted by Id, so reading them
again is harmless). Every commit is also appended to a history, which the monotonic check and an
on-call engineer read. A cursor is a small JSON document that the reader defines; nothing
secret is ever in it.

The reader sees cursors through `CursorStore` (four calls), so that it does not depend on the
rest of the state store; `StateCursors` serves them from any state backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sf_assets.state.model import CursorCommit
from sf_assets.state.store import StateStore


class CursorStore(Protocol):
    def read(self, stream: str) -> dict[str, Any] | None: ...

    def commit(self, cursors: Mapping[str, Mapping[str, Any]], *, run_id: str) -> None: ...

    def list(self, prefix: str = "") -> dict[str, dict[str, Any]]: ...

    def history(self, stream: str) -> list[CursorCommit]: ...


class StateCursors:
    """Cursors in the state store, whichever backend holds it."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def read(self, stream: str) -> dict[str, Any] | None:
        return self.store.cursor(stream)

    def commit(self, cursors: Mapping[str, Mapping[str, Any]], *, run_id: str) -> None:
        self.store.commit_cursors(cursors, run_id=run_id)

    def list(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        return self.store.cursors(prefix)

    def history(self, stream: str) -> list[CursorCommit]:
        return self.store.cursor_history(stream)
