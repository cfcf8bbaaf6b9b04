"""The SOQL a read sends: the selected fields, the spec's filter, the retention window and the
keyset bounds, always ordered by (SystemModstamp, Id).

That order is what makes a read resumable: the last row read is a position, and everything
after it is `SystemModstamp > X OR (SystemModstamp = X AND Id > Y)`. Many records share one
SystemModstamp (a bulk update stamps thousands alike), so the Id breaks ties; a cursor on the
timestamp alone either skips or re-reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sf_assets.salesforce.reader.filters import soql_datetime
from sf_assets.salesforce.soql import quote_string

ORDER = "ORDER BY SystemModstamp, Id"


@dataclass(frozen=True)
class Position:
    """A point in (SystemModstamp, Id) order: the last row read, or a time to start from."""

    modstamp: datetime
    record_id: str | None = None  # None: from this time on, inclusive

    def condition(self) -> str:
        at = soql_datetime(self.modstamp)
        if self.record_id is None:
            return f"SystemModstamp >= {at}"
        return (
            f"(SystemModstamp > {at} OR (SystemModstamp = {at} "
            f"AND Id > {quote_string(self.record_id)}))"
        )

    def key(self) -> tuple[datetime, str]:
        return (self.modstamp, self.record_id or "")


@dataclass(frozen=True)
class Statement:
    """One SELECT over an object, built from parts that are each already safe SOQL."""

    object: str
    fields: tuple[str, ...]
    conditions: tuple[str, ...] = ()
    ordered: bool = True

    def after(self, position: Position | None) -> Statement:
        """The same statement, from `position` on."""
        if position is None:
            return self
        return Statement(
            self.object, self.fields, (*self.conditions, position.condition()), self.ordered
        )

    def where(self, condition: str | None) -> Statement:
        if condition is None:
            return self
        return Statement(self.object, self.fields, (*self.conditions, condition), self.ordered)

    def selecting(self, fields: tuple[str, ...]) -> Statement:
        return Statement(self.object, fields, self.conditions, self.ordered)

    def soql(self) -> str:
        text = f"SELECT {', '.join(self.fields)} FROM {self.object}"
        if self.conditions:
            if len(self.conditions) == 1:
                text += f" WHERE {self.conditions[0]}"
            else:
                text += " WHERE " + " AND ".join(f"({c})" for c in self.conditions)
        return f"{text} {ORDER}" if self.ordered else text

    def count(self) -> str:
        """`SELECT COUNT()` over the same records."""
        return Statement(self.object, ("COUNT()",), self.conditions, ordered=False).soql()


def until(moment: datetime) -> str:
    """Records stamped before `moment` (the end of a backfill period)."""
    return f"SystemModstamp < {soql_datetime(moment)}"


def created_since(moment: datetime) -> str:
    """Records created from `moment` on (a retention window)."""
    return f"CreatedDate >= {soql_datetime(moment)}"
