"""How an incoming Salesforce record changes the person (or organization) it belongs to.

The three strategies of a marketing platform's merge, applied field by field:

- `append_only`: fields the person has keep their value; empty ones take the record's.
- `overwrite`: the record's values win; an empty value in the record leaves the field as it
  is, because a person merged from several records should not lose a phone number just
  because a Lead without one changed.
- `ignore`: an existing person is never changed (the record only creates new people).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Values = dict[str, Any]


def merged(current: Values, incoming: Values, columns: Iterable[str], strategy: str) -> Values:
    """`current` after `incoming` was merged into it under `strategy`; a new dict."""
    result = dict(current)
    if strategy == "ignore":
        return result
    for column in columns:
        value = incoming.get(column)
        if value is None:
            continue
        if strategy == "overwrite" or result.get(column) is None:
            result[column] = value
    return result
