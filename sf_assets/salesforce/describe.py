"""What a Salesforce object looks like, read from the org's own describe.

Mapping and preflight need a handful of facts per field (type, length, precision, whether it can
be written, whether it identifies a record). They read them from the live describe rather than
from a hand-kept list so that a sync is always checked against the org it writes to.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.util import exception_handler

from sf_assets.names import close_names
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.errors import SalesforceApiError

# API names are letters, digits and underscores; anything else would change the request path.
OBJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Salesforce int fields describe their size in `digits` and leave `precision` at 0.
INT_TYPE = "int"
# Field types by how their values travel: ids, decimals (JSON numbers), and every number
# (unquoted in SOQL).
ID_TYPES = frozenset({"id", "reference"})
DECIMAL_TYPES = frozenset({"double", "currency", "percent"})
NUMBER_TYPES = DECIMAL_TYPES | {INT_TYPE}


class UnknownObjectError(LookupError):
    """The org has no object by this name, or the connected user cannot see it."""

    def __init__(self, name: str, suggestions: tuple[str, ...] = ()) -> None:
        hint = f" (did you mean {' or '.join(suggestions)}?)" if suggestions else ""
        super().__init__(
            f"Salesforce object {name!r} does not exist in this org or is not visible to this "
            f"user{hint}"
        )
        self.name = name
        self.suggestions = suggestions


@dataclass(frozen=True)
class FieldInfo:
    """One field of an object, as the describe call reports it."""

    name: str
    label: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    case_sensitive: bool = False
    picklist: tuple[str, ...] = ()  # active values only: inactive ones cannot be written
    restricted_picklist: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None

    @property
    def required_on_create(self) -> bool:
        """Salesforce's rule: createable, not nillable and without a default (so not booleans)."""
        return self.createable and not self.nillable and not self.defaulted_on_create

    @property
    def matchable(self) -> bool:
        """Whether the field identifies at most one record, so a key can be matched on it."""
        return self.external_id or self.id_lookup or self.unique or self.name == "Id"

    def type_label(self) -> str:
        """The type as Setup shows it: `string(80)`, `double(18,2)`, `reference(Account)`."""
        if self.type in ("string", "textarea", "email", "phone", "url", "picklist") and self.length:
            return f"{self.type}({self.length})"
        if self.type in DECIMAL_TYPES and self.precision:
            return f"{self.type}({self.precision},{self.scale})"
        if self.type == INT_TYPE and self.precision:
            return f"{self.type}({self.precision})"
        if self.reference_to:
            return f"{self.type}({', '.join(self.reference_to)})"
        return self.type

    def keys(self) -> list[str]:
        """How the field identifies records: what `match_on` can use."""
        flags = [("external id", self.external_id), ("idLookup", self.id_lookup)]
        flags.append(("unique", self.unique))
        return [name for name, on in flags if on]

    @classmethod
    def from_describe(cls, item: dict[str, Any]) -> FieldInfo:
        """Build from one entry of the describe's `fields` list."""
        precision = int(item.get("precision") or 0)
        if item.get("type") == INT_TYPE and not precision:
            precision = int(item.get("digits") or 0)
        return cls(
            name=item["name"],
            label=item.get("label") or item["name"],
            type=item.get("type") or "string",
            length=int(item.get("length") or 0),
            precision=precision,
            scale=int(item.get("scale") or 0),
            nillable=bool(item.get("nillable", True)),
            createable=bool(item.get("createable", False)),
            updateable=bool(item.get("updateable", False)),
            defaulted_on_create=bool(item.get("defaultedOnCreate", False)),
            external_id=bool(item.get("externalId", False)),
            id_lookup=bool(item.get("idLookup", False)),
            unique=bool(item.get("unique", False)),
            case_sensitive=bool(item.get("caseSensitive", False)),
            picklist=tuple(
                value["value"]
                for value in item.get("picklistValues") or ()
                if value.get("active", True)
            ),
            restricted_picklist=bool(item.get("restrictedPicklist", False)),
            reference_to=tuple(item.get("referenceTo") or ()),
            relationship_name=item.get("relationshipName"),
        )


@dataclass(frozen=True)
class ObjectInfo:
    """An sObject and its fields, keyed by their canonical API names."""

    name: str
    label: str
    fields: dict[str, FieldInfo]
    createable: bool = True
    updateable: bool = True
    _by_lower: dict[str, FieldInfo] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_lower = {name.lower(): info for name, info in self.fields.items()}
        object.__setattr__(self, "_by_lower", by_lower)

    def field(self, name: str) -> FieldInfo | None:
        """The field called `name`, ignoring case as every Salesforce API does."""
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldInfo | None:
        """The lookup field behind a relationship name, e.g. `Account` -> AccountId."""
        lowered = name.lower()
        for info in self.fields.values():
            if info.relationship_name and info.relationship_name.lower() == lowered:
                return info
        return None

    def close_field_names(self, name: str, limit: int = 3) -> list[str]:
        """Field names that look like a misspelt `name`, best first."""
        return close_names(name, self.fields, limit)

    @classmethod
    def from_describe(cls, payload: dict[str, Any]) -> ObjectInfo:
        """Build from the JSON of `GET sobjects/<name>/describe`."""
        fields = {item["name"]: FieldInfo.from_describe(item) for item in payload["fields"]}
        return cls(
            name=payload["name"],
            label=payload.get("label") or payload["name"],
            fields=fields,
            createable=bool(payload.get("createable", True)),
            updateable=bool(payload.get("updateable", True)),
        )


def describe_object(sf: Salesforce, name: str) -> ObjectInfo:
    """Describe one object of the org (for commands outside a run); an unknown object raises
    UnknownObjectError with the names it may have meant."""
    if not OBJECT_NAME.fullmatch(name):
        raise UnknownObjectError(name)
    path = f"sobjects/{name}/describe"
    response = sf.session.request("GET", sf.base_url + path, headers=dict(sf.headers))
    if response.status_code == HTTPStatus.NOT_FOUND:
        raise UnknownObjectError(name, tuple(_close_object_names(sf, name)))
    if response.status_code >= HTTPStatus.MULTIPLE_CHOICES:
        exception_handler(response, path)
    return ObjectInfo.from_describe(response.json())


def _close_object_names(sf: Salesforce, name: str) -> list[str]:
    """Suggestions from the global describe; only asked for on the error path."""
    try:
        objects = sf.describe()["sobjects"]
    except (SalesforceError, KeyError, TypeError):
        return []
    return close_names(name, [item["name"] for item in objects])


@dataclass(frozen=True)
class Described:
    """A describe answer: the payload, or None when the org said it has not changed."""

    payload: dict[str, Any] | None
    date: str | None  # the org's `Date` header: the moment this answer holds for


def describe_with_retries(api: Api, name: str, modified_since: str | None = None) -> Described:
    """Describe one object through the shared HTTP layer, so a 503, the concurrency limit or an
    expired session is retried (and logged in again) like every other call of a run.

    With `modified_since` the call is conditional: orgs answer 304 with no body when neither
    the object's metadata nor the org-wide settings that shape it changed since that date,
    which costs a call but no payload. An unknown object raises UnknownObjectError, any other
    refusal SalesforceApiError.
    """
    if not OBJECT_NAME.fullmatch(name):
        raise UnknownObjectError(name)
    headers = {"If-Modified-Since": modified_since} if modified_since else None
    try:
        response = api.call("GET", f"sobjects/{name}/describe", idempotent=True, headers=headers)
    except SalesforceApiError as error:
        if error.status != HTTPStatus.NOT_FOUND:
            raise
        try:
            objects = api.call("GET", "sobjects", idempotent=True).json()["sobjects"]
        except (SalesforceApiError, KeyError, TypeError, ValueError):
            objects = []
        suggestions = close_names(name, [item["name"] for item in objects])
        raise UnknownObjectError(name, tuple(suggestions)) from None
    date = response.headers.get("Date")
    if response.status_code == HTTPStatus.NOT_MODIFIED and modified_since:
        return Described(None, date)
    return Described(response.json(), date)
