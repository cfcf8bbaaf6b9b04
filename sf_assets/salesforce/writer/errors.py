"""Errors a write raises. Every message is written for the person reading a failed run and
never carries a secret: the HTTP layer scrubs them before they get here (see
sf_assets.salesforce.errors for the errors of single calls)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sf_assets.salesforce.writer.model import WriteReport


class WriteError(Exception):
    """A write that stopped before every row was answered; `report` says what was done."""

    def __init__(self, message: str, report: WriteReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class DailyApiLimitExceeded(WriteError):
    """The org's daily API allocation is used up: retrying now cannot help."""


class BulkJobFailed(WriteError):
    """Salesforce failed a whole Bulk API job."""
