"""SOQL built from values that came from data or from a user: every value is escaped, never
pasted into a query as it is."""

from __future__ import annotations

from sf_assets.salesforce.describe import NUMBER_TYPES


def quote_string(value: str) -> str:
    """A SOQL string literal: backslashes and single quotes escaped, so no value can end the
    literal and change the query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def literal(value: str, field_type: str | None) -> str:
    """`value` as a literal for a field of `field_type`: numbers bare, everything else quoted."""
    return value if field_type in NUMBER_TYPES else quote_string(value)
