"""Hints turn Salesforce error codes into what to do next."""

from __future__ import annotations

import pytest

from sf_assets.salesforce.hints import GENERIC_HINT, hint

SPECIFIC = [
    ("LOGIN_MUST_USE_SECURITY_TOKEN", ["security token", "trusted IP"]),
    ("INVALID_LOGIN", ["password", "security token"]),
    ("INVALID_SESSION_ID", ["logs in again"]),
    ("INVALID_FIELD", ["field-level security", "permission set"]),
    ("INVALID_FIELD_FOR_INSERT_UPDATE", ["mapping"]),
    ("REQUIRED_FIELD_MISSING", ["required field"]),
    ("STRING_TOO_LONG", ["longer than the field"]),
    ("DUPLICATE_VALUE", ["unique"]),
    ("DUPLICATE_EXTERNAL_ID", ["external id"]),
    ("INVALID_EMAIL_ADDRESS", ["email"]),
    ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["picklist"]),
    ("UNABLE_TO_LOCK_ROW", ["lock", "retried"]),
    ("MALFORMED_ID", ["id"]),
    ("INVALID_CROSS_REFERENCE_KEY", ["parent"]),
    ("ENTITY_IS_DELETED", ["Recycle Bin"]),
    ("FIELD_INTEGRITY_EXCEPTION", ["rule"]),
]


@pytest.mark.parametrize(("code", "words"), SPECIFIC)
def test_each_known_code_has_its_own_actionable_hint(code: str, words: list[str]) -> None:
    text = hint(code, "whatever Salesforce said")
    assert text != GENERIC_HINT
    for word in words:
        assert word.lower() in text.lower(), (code, word)


def test_request_limit_hint_tells_daily_from_concurrent() -> None:
    daily = hint("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    concurrent = hint("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
    assert "daily API allocation" in daily and "24-hour" in daily
    assert "recorded" in daily  # says what sf-assets did
    assert "in flight" in concurrent and "retried" in concurrent
    assert daily != concurrent


def test_unknown_codes_get_the_generic_fallback() -> None:
    assert hint("SOMETHING_NEW", "message") == GENERIC_HINT
    assert hint("", "") == GENERIC_HINT


def test_a_code_at_the_start_of_a_message_is_recognised() -> None:
    assert hint("", "STRING_TOO_LONG: data value too large") == hint("STRING_TOO_LONG")
