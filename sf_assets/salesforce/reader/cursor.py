"""What a read of one object remembers between runs, as the JSON document the state store
keeps (see state/cursors.py): where the last committed record sits, how far back the next read
must look again, an unfinished Bulk job, and when keys were last compared with the org."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sf_assets.salesforce.reader.statements import Position


@dataclass(frozen=True)
class BulkState:
    """A Bulk query job whose pages are being committed; its records are unordered, so the
    highest position among the committed pages becomes the cursor only once all are in."""

    job_id: str
    locator: str | None
    highest: Position | None = None


@dataclass(frozen=True)
class CountCheck:
    """The last comparison of the copy's current records with `SELECT COUNT()`."""

    at: datetime
    copy: int
    org: int

    @property
    def passed(self) -> bool:
        return self.copy == self.org


@dataclass(frozen=True)
class ObjectCursor:
    position: Position | None = None  # last record committed, in (SystemModstamp, Id) order
    settled: datetime | None = None  # earlier than this, the org's records were all visible
    bulk: BulkState | None = None
    full_read_seq: int | None = None  # a full read in progress: its first commit's sequence
    fields: tuple[str, ...] = ()
    filter: str | None = None
    completed_at: datetime | None = None  # the last read that ran to its end
    reconciled_at: datetime | None = None  # the last comparison of every key with the org
    count: CountCheck | None = None
    plan: dict[str, Any] | None = None  # the describe-derived plan (see plan.py)

    def moved_to(self, position: Position | None) -> ObjectCursor:
        """The cursor at `position`, never behind where it was."""
        if position is None or (self.position and position.modstamp < self.position.modstamp):
            return self
        return replace(self, position=position)

    def to_json(self) -> dict[str, Any]:
        return {
            "position": _position_json(self.position),
            "settled": _time_json(self.settled),
            "bulk": None
            if self.bulk is None
            else {
                "job_id": self.bulk.job_id,
                "locator": self.bulk.locator,
                "highest": _position_json(self.bulk.highest),
            },
            "full_read_seq": self.full_read_seq,
            "fields": list(self.fields),
            "filter": self.filter,
            "completed_at": _time_json(self.completed_at),
            "reconciled_at": _time_json(self.reconciled_at),
            "count": None
            if self.count is None
            else {**asdict(self.count), "at": _time_json(self.count.at)},
            "plan": self.plan,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ObjectCursor:
        if not data:
            return cls()
        bulk = data.get("bulk")
        count = data.get("count")
        return cls(
            position=_position(data.get("position")),
            settled=_time(data.get("settled")),
            bulk=None
            if not bulk
            else BulkState(bulk["job_id"], bulk.get("locator"), _position(bulk.get("highest"))),
            full_read_seq=data.get("full_read_seq"),
            fields=tuple(data.get("fields") or ()),
            filter=data.get("filter"),
            completed_at=_time(data.get("completed_at")),
            reconciled_at=_time(data.get("reconciled_at")),
            count=None
            if not count
            else CountCheck(_time(count["at"]) or datetime.min, count["copy"], count["org"]),
            plan=data.get("plan"),
        )


def _time_json(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _position_json(position: Position | None) -> list[str | None] | None:
    if position is None:
        return None
    return [position.modstamp.isoformat(), position.record_id]


def _position(data: list[str | None] | None) -> Position | None:
    if not data or data[0] is None:
        return None
    return Position(datetime.fromisoformat(data[0]), data[1])
