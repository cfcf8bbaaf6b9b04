"""Errors of a call to Salesforce, shared by everything that talks to the org. Messages never
carry a secret: the HTTP layer scrubs them before they get here."""

from __future__ import annotations


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


class BulkJobTimedOut(Exception):
    """A Bulk API job did not finish within the time allowed; the message says what it leaves."""
