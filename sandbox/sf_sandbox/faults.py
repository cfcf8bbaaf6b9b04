"""Faults an org can be told to show: the limits and failures a pipeline must survive.

They come from the `--faults` YAML/JSON file at start and can be changed while the server runs
through `PUT /__admin/faults`, so a test can let the first half of a batch through and then
turn the rate limit on. The org's retention windows live here too (how long deleted records
and query cursors last): they are limits a reader must survive, and a test shrinks them to
meet the moment they run out.
"""

from __future__ import annotations

import random
import threading

import polars as pl
from pydantic import BaseModel, ConfigDict, Field


class CallRule(BaseModel):
    """The calls a fault applies to: a path fragment and, if given, one method."""

    model_config = ConfigDict(extra="forbid")
    path_contains: str = ""
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.path_contains in path and (
            not self.method or self.method.upper() == method.upper()
        )


class LoseResponses(CallRule):
    """Process matching requests, then drop the connection instead of answering."""

    count: int = 1


class HoldAnswers(CallRule):
    """Process matching requests, then keep their answers back until this rule is cleared, so
    a test can act at the moment a client waits for an answer the org has already acted on."""

    held: int = Field(0, ge=0, description="Answers kept back right now (the org sets it).")


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    daily_api_limit: int = Field(15000, ge=0, description="DailyApiRequests Max.")
    api_calls_used: int = Field(0, ge=0, description="Calls already spent in the window.")
    concurrent_request_limit: int | None = Field(
        None, ge=1, description="Requests in flight at once before REQUEST_LIMIT_EXCEEDED."
    )
    expire_sessions_after_calls: int | None = Field(
        None, ge=0, description="Every session dies after this many calls (401)."
    )
    server_unavailable_rate: float = Field(0.0, ge=0, le=1, description="Share of 503s.")
    server_unavailable_next: int = Field(0, ge=0, description="The next N calls answer 503.")
    lock_row_rate: float = Field(0.0, ge=0, le=1, description="Share of UNABLE_TO_LOCK_ROW.")
    latency_ms: int = Field(0, ge=0, description="Added to every call.")
    drop_upload_after_bytes: int | None = Field(
        None, ge=0, description="Bulk uploads lose their connection after this many bytes."
    )
    fail_bulk_jobs: str | None = Field(
        None, description="Every Bulk ingest job ends Failed with this errorMessage."
    )
    lose_responses: LoseResponses | None = None
    hold_answers: HoldAnswers | None = None
    deleted_retention_days: float = Field(
        15, gt=0, description="Days deleted records stay in the recycle bin and in getDeleted."
    )
    query_cursor_timeout_seconds: float = Field(
        900, gt=0, description="Inactivity after which a query cursor (locator) expires."
    )
    query_cursors_per_user: int = Field(
        10, ge=1, description="Open query cursors per user; a new one releases the oldest."
    )
    seed: int = 0


class Faults:
    """The live fault settings plus the random sources they draw from: one per fault, so that
    how many calls a client happens to make (Bulk polls, say) never shifts which rows a seeded
    lock fault hits."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.lock = threading.Lock()
        self.config = FaultConfig()
        self.replace(config or self.config)

    def replace(self, config: FaultConfig) -> None:
        with self.lock:
            if _same_calls(self.config.hold_answers, config.hold_answers):
                config.hold_answers = self.config.hold_answers  # answers it holds stay held
            self.config = config
            self.unavailable_random = random.Random(f"{config.seed}:unavailable")
            self.lock_random = random.Random(f"{config.seed}:locks")

    def server_unavailable(self) -> bool:
        with self.lock:
            if self.config.server_unavailable_next > 0:
                self.config.server_unavailable_next -= 1
                return True
            rate = self.config.server_unavailable_rate
            return rate > 0 and self.unavailable_random.random() < rate

    def lock_mask(self, height: int) -> pl.Series | None:
        rate = self.config.lock_row_rate
        if rate <= 0:
            return None
        with self.lock:
            return pl.Series([self.lock_random.random() < rate for _ in range(height)])

    def hold_rule(self, method: str, path: str) -> HoldAnswers | None:
        """The rule that keeps this call's answer back, if one does."""
        rule = self.config.hold_answers
        return rule if rule is not None and rule.matches(method, path) else None

    def lose_response(self, method: str, path: str) -> bool:
        with self.lock:
            rule = self.config.lose_responses
            if rule is None or rule.count <= 0 or not rule.matches(method, path):
                return False
            rule.count -= 1
            return True


def _same_calls(old: CallRule | None, new: CallRule | None) -> bool:
    return (
        old is not None
        and new is not None
        and (old.path_contains, old.method) == (new.path_contains, new.method)
    )
