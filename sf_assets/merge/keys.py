"""Merge keys as they are compared: an email in any letter case, or a phone number in any
punctuation, is the same key.

Text is trimmed and lower-cased; a value made only of digits and phone punctuation (spaces,
dots, dashes, brackets, a leading +) keeps its digits and the +, so `+1 (555) 010-0100` and
`+1-555-010-0100` meet. Empty keys are no keys: they never match anyone.
"""

from __future__ import annotations

import re

PHONE = re.compile(r"^\+?[\d\s().\-/]+$")


def normalized(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if not text:
        return None
    if PHONE.match(text) and any(c.isdigit() for c in text):
        digits = re.sub(r"\D", "", text)
        return ("+" if text.startswith("+") else "") + digits
    return text
