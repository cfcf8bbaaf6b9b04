"""Errors a write raises. Every message is written for the person reading a failed run and
never carries a secret: the HTTP layer scrubs them before they get here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sf_assets.writer.model import WriteReport


class SalesforceApiError(Exception):
    """Salesforce answered a call with an error status."""

    def __init__(self, status: int, code: str, message: str, what: str) -> None:
        super().__init__(f"{what} answered HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def daily_limit(self) -> bool:
        return self.code == "REQUEST_LIMIT_EXCEEDED" and "Concurrent" not in self.message

    @property
    def concurrency_limit(self) -> bool:
        return self.code == "REQUEST_LIMIT_EXCEEDED" and "Concurrent" in self.message


class OutcomeUnknown(Exception):
    """A call whose request may have reached Salesforce but whose answer never arrived."""


class WriteError(Exception):
    """A write that stopped before every row was answered; `report` says what was done."""

    def __init__(self, message: str, report: WriteReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class DailyApiLimitExceeded(WriteError):
    """The org's daily API allocation is used up: retrying now cannot help."""


class BulkJobFailed(WriteError):
    """Salesforce failed a whole Bulk API job."""


class InDoubt(Exception):
    """Sending stopped while some rows' fate was unknown: their job stays open, so the next
    run resolves them from Salesforce instead of sending them again."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause
