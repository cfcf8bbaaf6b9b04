"""What a read of one object selects and filters, derived from the org's describe and kept
with the cursor.

Describing an object costs an API call; an incremental read every 15 minutes would spend one
on it each time for an answer that rarely changes. So the plan is reused while the object's
part of the spec is unchanged and the describe is less than a day old; a query the org refuses
for a field (a field deleted or hidden since) is retried once with a fresh describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sf_assets.salesforce.describe import ObjectInfo
from sf_assets.salesforce.reader.fields import Selection, select_fields
from sf_assets.salesforce.reader.filters import compile_filter
from sf_assets.specs.ingest import ObjectRead

DESCRIBE_EVERY = timedelta(hours=24)


@dataclass(frozen=True)
class Plan:
    selection: Selection
    filter: str | None
    spec: str  # the object's part of the spec, as JSON
    described_at: datetime

    @classmethod
    def described(cls, obj: ObjectInfo, read: ObjectRead, *, sync: str, now: datetime) -> Plan:
        return cls(
            select_fields(obj, read, sync=sync),
            compile_filter(read.filter, obj, sync=sync),
            read.model_dump_json(),
            now,
        )

    def fits(self, read: ObjectRead, now: datetime) -> bool:
        """Whether this plan still answers for `read` without describing again."""
        return self.spec == read.model_dump_json() and now - self.described_at < DESCRIBE_EVERY

    def to_json(self) -> dict[str, Any]:
        return {
            "object": self.selection.object,
            "fields": [[name, kind] for name, kind in self.selection.types.items()],
            "filter": self.filter,
            "spec": self.spec,
            "described_at": self.described_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Plan | None:
        if not data:
            return None
        return cls(
            Selection(data["object"], {name: kind for name, kind in data["fields"]}),
            data["filter"],
            data["spec"],
            datetime.fromisoformat(data["described_at"]),
        )
