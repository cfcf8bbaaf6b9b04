"""Committing a read's chunks on one worker thread while the next page downloads.

Writing a chunk to DuckDB (and moving the cursor after it) takes about as long as fetching the
next page, so the two overlap: one worker commits the chunks strictly in order, and the reader
hands it a chunk only once the previous one is committed, so memory holds two at most and a
commit's error surfaces at the next hand-over. A chunk that was handed over is committed even
when the scan fails afterwards: its rows and cursor are consistent on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType


class Committer:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
        self._pending: Future[None] | None = None

    def submit(self, commit: Callable[[], None]) -> None:
        self.wait()
        self._pending = self._pool.submit(commit)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> Committer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
