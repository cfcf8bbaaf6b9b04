"""Which failed calls are worth another try, and how long to keep trying.

Only faults that say nothing about the data are retried: 503s and other 5xx, the org's
concurrent-request limit, an expired session (after logging in again) and, for calls that are
safe to repeat, a lost connection. The daily API limit and every 4xx about the request itself
are final, because repeating them only spends more of the org's allocation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from sf_assets.salesforce.errors import OutcomeUnknown, SalesforceApiError
from sf_assets.salesforce.options import ApiOptions


def retryable(error: BaseException, *, idempotent: bool) -> bool:
    """Whether `error` is a passing fault that another try may get past."""
    if isinstance(error, OutcomeUnknown):
        return idempotent
    if not isinstance(error, SalesforceApiError):
        return False
    if error.code == "REQUEST_LIMIT_EXCEEDED":
        return error.concurrency_limit
    if error.code == "INVALID_SESSION_ID" or error.status == 503:
        return True
    # Other 5xx may come after the server acted: only repeat what is safe to repeat.
    return error.status >= 500 and idempotent


def reason(error: BaseException | None) -> str:
    if isinstance(error, SalesforceApiError):
        return f"HTTP {error.status} {error.code}"
    return type(error).__name__ if error else "unknown"


def policy(
    options: ApiOptions, *, idempotent: bool, log: logging.Logger, what: Callable[[], str]
) -> Retrying:
    """Backoff with jitter, bounded both in attempts and in total time."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed (%s); retry %d of %d in %.1f s",
            what(),
            reason(error),
            state.attempt_number,
            options.retry_attempts - 1,
            state.next_action.sleep if state.next_action else 0.0,
        )

    return Retrying(
        retry=retry_if_exception(lambda error: retryable(error, idempotent=idempotent)),
        wait=wait_exponential_jitter(
            multiplier=options.retry_initial_seconds,
            max=options.retry_max_seconds,
            jitter=options.retry_initial_seconds,
        ),
        stop=stop_after_attempt(options.retry_attempts) | stop_after_delay(options.retry_seconds),
        before_sleep=before_sleep,
        reraise=True,
    )
