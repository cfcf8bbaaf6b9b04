"""The org: schema, records, users and sessions, API usage, faults and timing, shared by every
endpoint."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import polars as pl
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sf_sandbox.cursors import QueryCursors
from sf_sandbox.errors import SalesforceError
from sf_sandbox.faults import FaultConfig, Faults
from sf_sandbox.schema import (
    Field,
    Schema,
    SObject,
    field_definition,
    field_from_definition,
    load_schema,
    object_definition,
    object_from_definition,
)
from sf_sandbox.soql import CompiledQuery, compile_soql
from sf_sandbox.store import Store, first_row, utc_now
from sf_sandbox.timing import Timing
from sf_sandbox.writes import WriteEngine, WriteRequest

API_VERSION = "59.0"
ORG_ID = "00D5g0000000001EAA"
USERNAME = "integration@sandbox.sf-assets.dev"
# The Organization record, as a Developer Edition sandbox describes itself.
ORGANIZATION = {
    "Name": "sf-assets Sandbox",
    "OrganizationType": "Developer Edition",
    "InstanceName": "CS42",
    "IsSandbox": True,
    "IsReadOnly": False,
    "Country": "US",
    "PrimaryContact": "Sandbox Integration",
    "DefaultLocaleSidKey": "en_US",
    "LanguageLocaleKey": "en_US",
    "TimeZoneSidKey": "GMT",
    "FiscalYearStartMonth": 1,
}


def new_jwt_private_key_pem() -> str:
    """The connected app's JWT signing key: the org checks assertions with its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class Credentials:
    """What a user of the org can log in with: made at the first start, and kept with the
    records when the org has a state file, so a restarted org accepts the same logins."""

    username: str = USERNAME
    password: str = field(default_factory=lambda: "Pw-" + secrets.token_urlsafe(12))
    security_token: str = field(default_factory=lambda: secrets.token_hex(12).upper())
    client_id: str = field(default_factory=lambda: "3MVG9" + secrets.token_urlsafe(30))
    client_secret: str = field(default_factory=lambda: secrets.token_hex(32).upper())
    refresh_token: str = field(default_factory=lambda: "5Aep" + secrets.token_urlsafe(40))
    emarsys_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    merchant_id: str = field(default_factory=lambda: secrets.token_hex(8).upper())
    jwt_private_key_pem: str = field(default_factory=new_jwt_private_key_pem, repr=False)


@dataclass
class Session:
    token: str
    user_id: str
    calls: int = 0


class Org:
    def __init__(
        self,
        *,
        schema_path: Path | None = None,
        state_path: Path | None = None,
        faults: FaultConfig | None = None,
        timing: Timing | None = None,
        credentials: Credentials | None = None,
        api_version: str = API_VERSION,
    ) -> None:
        self.api_version = api_version
        self.org_id = ORG_ID
        self.schema: Schema = load_schema(schema_path)
        self.store = Store(self.schema, state_path)
        self._replay_schema_changes()
        # When any object's describe last changed (here: the schema loaded, or the Metadata
        # API created an object or field). One stamp for the whole org, since adding a lookup
        # changes the parent's describe too (childRelationships).
        self.schema_changed_at = utc_now()
        self.credentials = credentials or self._stored_credentials()
        self.faults = Faults(faults)
        # Replaced whole (never changed in place) by the admin endpoint, so a job or a call
        # that took a reference keeps one consistent set of figures.
        self.timing = timing or Timing.of("instant")
        self.lock = threading.Lock()
        self.sessions: dict[str, Session] = {}
        self.calls_by_path: dict[str, int] = {}
        self.in_flight = 0
        self.started = time.time()
        self.user_id = self._ensure_integration_user()
        self._ensure_organization()
        self.store.checkpoint()  # the credentials go into the private state file at once
        self.engine = WriteEngine(
            self.schema, self.store, owner_id=lambda: self.user_id, lock_mask=self.faults.lock_mask
        )
        self.cursors = QueryCursors(lambda: self.faults.config)
        self.extensions: dict[str, Any] = {}  # per-feature state (bulk jobs, emarsys uploads)

    # -- users and sessions --------------------------------------------------------------

    def _stored_credentials(self) -> Credentials:
        names = [f.name for f in fields(Credentials)]
        self.store.con.execute(
            "CREATE TABLE IF NOT EXISTS _credentials ("
            + ", ".join(f"{name} VARCHAR" for name in names)
            + ")"
        )
        row = first_row(self.store.con.execute("SELECT * FROM _credentials"))
        if row is not None:
            return Credentials(*row)
        credentials = Credentials()
        self.store.con.execute(
            f"INSERT INTO _credentials VALUES ({', '.join(['?'] * len(names))})",
            [getattr(credentials, name) for name in names],
        )
        return credentials

    def _ensure_integration_user(self) -> str:
        """The user every session belongs to; records it creates are owned by it."""
        user = self.schema.get("User")
        existing = self.store.query(
            'SELECT Id FROM "User" WHERE Username = ?', [self.credentials.username]
        )
        if existing.height:
            return existing["Id"][0]
        user_id = self.store.new_ids(user, 1)[0]
        values = {
            "Username": self.credentials.username,
            "LastName": "Integration",
            "FirstName": "Sandbox",
            "Name": "Sandbox Integration",
            "Email": self.credentials.username,
            "IsActive": True,
        }
        self._insert_system_record(user, user_id, values, owner_id=user_id)
        return user_id

    def _ensure_organization(self) -> None:
        """The org's one Organization record, whose Id is the org id (00D…)."""
        organization = self.schema.get("Organization")
        if organization is None or self.store.count(organization):
            return
        record_id = self.store.new_ids(organization, 1)[0]
        if record_id != self.org_id:
            raise RuntimeError(f"the Organization record got id {record_id}, not {self.org_id}")
        self._insert_system_record(organization, record_id, ORGANIZATION, owner_id=self.user_id)

    def _insert_system_record(
        self, sobject: SObject, record_id: str, values: dict[str, Any], *, owner_id: str
    ) -> None:
        """A record the org makes for itself, with its audit fields, outside the API."""
        now = utc_now()
        row = {
            "Id": record_id,
            **values,
            "IsDeleted": False,
            "CreatedDate": now,
            "LastModifiedDate": now,
            "SystemModstamp": now,
            "CreatedById": owner_id,
            "LastModifiedById": owner_id,
        }
        self.store.insert(sobject, pl.DataFrame([row]))

    def open_session(self) -> str:
        token = f"{self.org_id[:15]}!" + secrets.token_urlsafe(48)
        with self.lock:
            self.sessions[token] = Session(token, self.user_id)
        return token

    def session_for(self, authorization: str | None) -> Session:
        """The session named by an `Authorization: Bearer` (or OAuth) header, or a 401."""
        token = ""
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() in ("bearer", "oauth"):
                token = value.strip()
        session = self.sessions.get(token)
        if session is None:
            raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        limit = self.faults.config.expire_sessions_after_calls
        if limit is not None and session.calls >= limit:
            with self.lock:
                self.sessions.pop(token, None)
            raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return session

    def expire_sessions(self) -> int:
        with self.lock:
            count = len(self.sessions)
            self.sessions.clear()
        return count

    # -- API usage ------------------------------------------------------------------------

    @property
    def api_calls_used(self) -> int:
        return self.faults.config.api_calls_used

    def count_call(self, session: Session, path: str) -> None:
        """Spend one call of the daily allocation, or refuse when it is gone."""
        config = self.faults.config
        with self.lock:
            if config.api_calls_used >= config.daily_api_limit:
                raise SalesforceError(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                )
            config.api_calls_used += 1
            session.calls += 1
            key = _path_family(path)
            self.calls_by_path[key] = self.calls_by_path.get(key, 0) + 1

    def limit_info(self) -> str:
        config = self.faults.config
        return f"api-usage={config.api_calls_used}/{config.daily_api_limit}"

    def limits(self) -> dict[str, dict[str, int]]:
        config = self.faults.config
        daily = {
            "Max": config.daily_api_limit,
            "Remaining": config.daily_api_limit - config.api_calls_used,
        }
        return {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyApiRequests": daily,
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "FileStorageMB": {"Max": 20, "Remaining": 20},
            "HourlyTimeBasedWorkflow": {"Max": 50, "Remaining": 50},
            "SingleEmail": {"Max": 15, "Remaining": 15},
        }

    # -- records ----------------------------------------------------------------------------

    def sobject(self, name: str) -> SObject:
        """The object called `name`, or the NOT_FOUND Salesforce answers for unknown ones."""
        found = self.schema.get(name)
        if found is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return found

    def write(self, request: WriteRequest) -> pl.DataFrame:
        return self.engine.write(request)

    def compile(self, soql: str, *, include_deleted: bool) -> CompiledQuery:
        """A query as this org runs it: queryAll sees deleted records only while they are in
        the recycle bin (`deleted_retention_days`)."""
        return compile_soql(
            soql,
            self.schema,
            include_deleted=include_deleted,
            deleted_since=self.recycle_bin_start() if include_deleted else None,
        )

    def recycle_bin_start(self) -> datetime:
        """Deleted records older than this have left the recycle bin for good."""
        return utc_now() - timedelta(days=self.faults.config.deleted_retention_days)

    # -- objects and fields created through the Metadata API --------------------------------

    def add_object(self, sobject: SObject) -> None:
        self.schema.add(sobject)
        self.store.ensure_table(sobject)
        self.store.save_schema_change("object", object_definition(sobject))
        self.schema_changed_at = utc_now()

    def add_field(self, sobject: SObject, new_field: Field) -> None:
        sobject.add_field(new_field)
        self.store.ensure_table(sobject)
        self.store.save_schema_change(
            "field", {"object": sobject.name, "field": field_definition(new_field)}
        )
        self.schema_changed_at = utc_now()

    def describe_unchanged_since(self, header: str | None) -> bool:
        """Whether an `If-Modified-Since` date is at or after the last schema change, so a
        describe may answer 304 with no body. An unreadable date is ignored, as HTTP says."""
        if not header:
            return False
        try:
            since = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return self.schema_changed_at.replace(tzinfo=UTC) <= since

    def _replay_schema_changes(self) -> None:
        """Bring back what the Metadata API created before a restart; what the schema file
        has meanwhile come to define itself is left as the file says."""
        for kind, definition in self.store.schema_changes():
            if kind == "object" and self.schema.get(definition["name"]) is None:
                sobject = object_from_definition(definition)
                self.schema.add(sobject)
                self.store.ensure_table(sobject)
            elif kind == "field":
                sobject = self.schema.get(definition["object"])
                new_field = field_from_definition(definition["field"])
                if sobject is not None and sobject.field(new_field.name) is None:
                    sobject.add_field(new_field)
                    self.store.ensure_table(sobject)

    def close(self) -> None:
        self.store.close()


def _path_family(path: str) -> str:
    """`/services/data/v59.0/sobjects/Contact/003…` counts under `sobjects`."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 4 and parts[0] == "services" and parts[1] == "data":
        return parts[3]
    return "/".join(parts[:2])
