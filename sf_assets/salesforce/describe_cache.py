"""One describe per run, revalidated cheaply between runs.

A run maps a batch and then writes it, and each step needs the object's describe (fields,
types, external ids); a describe of a real object is hundreds of kilobytes and counts against
the org's daily API allocation like any call. So the payload is kept in a small file per org,
connection and object:

- a later step of the same run (same run id, possibly another process) reads the file and makes
  no call at all: the mapping was checked against that describe, so writing against it too is
  what keeps the two consistent;
- a new run asks the org with `If-Modified-Since` (the date of the kept payload): a 304 costs
  one call and no body, anything else is a fresh payload that replaces the kept one.

An org that ignores the header answers 200 every time, which is correct, only not cheaper. The
files hold describe payloads only: no session, token or record data.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

from resources.salesforce import SalesforceResource
from sf_assets.connections import staging_from_env
from sf_assets.project import in_project
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.describe import (
    OBJECT_NAME,
    ObjectInfo,
    UnknownObjectError,
    describe_with_retries,
)
from sf_assets.state import DuckDBStateStore

DIRECTORY_VARIABLE = "SF_ASSETS_DESCRIBE_CACHE"
SHARED_STATE_FOLDER = ".sf-assets/describe"  # with PostgreSQL state: a cache per machine
# `If-Modified-Since` has whole seconds; asking from a second earlier than the answer's date
# never misses a change made in the same second as the describe.
CLOCK_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True)
class _Entry:
    payload: dict[str, Any]
    since: str  # HTTP date to revalidate from
    run_id: str | None  # the run that last fetched or revalidated it


class DescribeCache:
    """Describe payloads kept in `directory`, shared by every process of a deployment."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def from_env(cls) -> DescribeCache:
        """`$SF_ASSETS_DESCRIBE_CACHE`, else a `describe` folder beside the DuckDB state
        file, so that whatever keeps the pipeline's state keeps this too; with a shared
        state database, `.sf-assets/describe` in the project folder: on a machine of its own
        a step finds no payload and asks the org again (conditionally when it has one),
        which costs a call and is never wrong."""
        configured = os.environ.get(DIRECTORY_VARIABLE)
        if configured:
            return cls(in_project(configured))
        store = staging_from_env()
        if isinstance(store, DuckDBStateStore):
            return cls(Path(store.path).parent / "describe")
        return cls(in_project(SHARED_STATE_FOLDER))

    def describe(self, api: Api, name: str, *, run_id: str | None) -> ObjectInfo:
        """The object's describe: kept if this run already has it (no login, no call), else
        asked for again through `api` (retried), conditionally when a payload is kept."""
        if not OBJECT_NAME.fullmatch(name):
            raise UnknownObjectError(name)
        path = self.directory / org_folder(api.salesforce) / f"{name.lower()}.json"
        entry = _read(path)
        if entry is not None and run_id is not None and entry.run_id == run_id:
            return ObjectInfo.from_describe(entry.payload)
        described = describe_with_retries(api, name, entry.since if entry else None)
        if described.payload is not None:
            payload = described.payload
        else:  # 304 Not Modified, which only a conditional request (so a kept entry) gets
            assert entry is not None
            payload = entry.payload
        _write(path, _Entry(payload, _since(described.date), run_id))
        return ObjectInfo.from_describe(payload)


def org_folder(salesforce: SalesforceResource) -> str:
    """One folder per login: where it goes, as whom, through which app and API version.
    Known before logging in, and users of different connections may see different fields."""
    who = [
        salesforce.auth_flow,
        salesforce.login_url,
        salesforce.instance_url or "",
        salesforce.username or "",
        salesforce.client_id or "",
        salesforce.api_version,
    ]
    return hashlib.sha256("|".join(who).encode()).hexdigest()[:16]


def _since(date: str | None) -> str:
    """The date to revalidate from: the org's own clock when it sent one, minus the margin."""
    try:
        moment = parsedate_to_datetime(date) if date else datetime.now(UTC)
    except (TypeError, ValueError):
        moment = datetime.now(UTC)
    return format_datetime((moment - CLOCK_MARGIN).astimezone(UTC), usegmt=True)


def _read(path: Path) -> _Entry | None:
    """The kept entry; a missing or unreadable file is simply not a cache hit."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _Entry(data["payload"], data["since"], data.get("run_id"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path: Path, entry: _Entry) -> None:
    """Write beside the target and rename over it, so that a reader in another process sees
    the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"since": entry.since, "run_id": entry.run_id, "payload": entry.payload}
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False
    ) as handle:
        json.dump(data, handle)
    os.replace(handle.name, path)
