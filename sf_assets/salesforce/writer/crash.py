"""A test hook that kills the process at a named point of a write, the way a lost worker or
an out-of-memory kill would, so that tests can prove a later run recovers exactly once."""

from __future__ import annotations

import os

CRASH_ENV = "SF_ASSETS_TEST_CRASH_AFTER"
EXIT_CODE = 137  # what a SIGKILL looks like to the parent


def crash_point(name: str) -> None:
    """Exit at once, without cleanup, when the test hook names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(EXIT_CODE)
