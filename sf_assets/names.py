"""Suggestions for a misspelt name (a field, an object, a source column): every error that
says "no such X" offers the closest names that exist, compared without case."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

CUTOFF = 0.6  # difflib's ratio below which a name is no longer a plausible misspelling


def close_names(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Candidates that look like a misspelt `name`, compared without case, best first."""
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=limit, cutoff=CUTOFF)
    return [by_lower[match] for match in matches]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """` (did you mean a or b?)`, or nothing when no name is close."""
    close = close_names(name, candidates)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def comparable(name: str) -> str:
    """A name as a person means it: `Last_Name__c`, `last name` and `LastName` are alike."""
    return re.sub(r"[^a-z0-9]", "", name.lower().removesuffix("__c"))
