"""Expected shapes of real Salesforce responses, for contract tests against the sandbox org.

Everything here is a *fact about the wire format* (key names, JSON value types, which keys may
be null or absent, HTTP status codes, header names, value formats), restated in our own data
structures.  No response bodies, ids or org data from the sources are reproduced.

Where the facts come from
-------------------------
Real recordings (captured from live orgs):

* [FX]  forcedotcom/sf-fx-runtime-nodejs, ``mappings/*.json`` (WireMock mappings, API v51-v55):
  ``create.json``, ``update.json``, ``delete.json``, ``delete-already-deleted.json``,
  ``create-invalid-field.json``, ``create-required-field-missing.json``,
  ``create-invalid-picklist-value.json``, ``create-unknown-object.json``,
  ``create-invalid-token.json``, ``create-invalid-api-version.json``,
  ``update-malformed-id.json``, ``update-invalid-field.json``, ``query.json``,
  ``query-with-next-records-url.json``, ``query-with-next-records-url-2.json``,
  ``query-unknown-column.json``, ``query-malformed-soql.json``,
  ``query-with-associated-data.json``, ``query-with-subquery.json``.
* [CCI] SFDO-Tooling/CumulusCI, ``cumulusci/tests/shared_cassettes/``
  ``GET_sobjects_Account_describe.yaml`` (API v48), ``GET_sobjects_Contact_describe.yaml``
  (newer API, adds ``associateEntityType``/``sobjectDescribeOption``),
  ``GET_sobjects_Global_describe.yaml`` (API v52, trimmed by the project's own script), and
  ``cumulusci/tasks/bulkdata/tests/cassettes/TestUpsert.test_upsert__rest.yaml`` and
  ``TestUpsert.test_upsert_complex_external_id_field_rest__duplicate_error.yaml``
  (sObject Collections create/upsert, ``limits/recordCount``, query, single create).
  Caveat: the CCI Account describe was hand-edited by that project (its added custom fields
  report ``custom: false``), so only key names/types are taken from it, never flag values.
* [AIR] airbytehq/airbyte,
  ``airbyte-integrations/connectors/source-salesforce/unit_tests/resource/http/response/job_response.json``
  (Bulk 2.0 query-job create response, API v57).
* [JSF] jsforce/jsforce, ``test/bulk2.test.ts`` (Bulk 2.0 result rows asserted against a live org).

Salesforce documentation (developer.salesforce.com):

* [D-JOB]  https://developer.salesforce.com/docs/platform/api-asynch/guide/get-job-info.html
  (ingest job info fields), .../create-job.html, .../get-job-successful-results.htm,
  .../get_job_failed_results.htm, .../query_get_job_results.htm (Sforce-Locator headers).
* [D-UPD]  https://developer.salesforce.com/docs/platform/api-rest/guide/dome-get-updated.md
* [D-DEL]  https://developer.salesforce.com/docs/platform/api-rest/guide/dome-get-deleted.md
* [D-VER]  https://developer.salesforce.com/docs/platform/api-rest/guide/dome-versions.md
* [D-LIM]  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_limits.htm
  and .../headers_api_usage.htm (Sforce-Limit-Info).
* [D-COL]  https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-create.html
* [D-UPS]  https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html
* [D-OAU]  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_username_password_oauth_flow.htm
* [D-SOAP] https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_login_loginresult.htm
  (LoginResult members); SOAP fault layout as used by many public client test fixtures
  (e.g. simple-salesforce/simple-salesforce ``simple_salesforce/tests/test_login.py``).

Each constant's comment names its source tag.  "(docs)" means only documented, not seen in a
recording; "(unverified)" means neither.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------------------------------------
# 1. A tiny shape language
# ---------------------------------------------------------------------------------------------

NoneType = type(None)

#: Any JSON number.  ``json.loads`` yields ``float`` for ``59.0`` but ``int`` for ``60``.
NUMBER: tuple[type, ...] = (int, float)
#: Any JSON scalar (describe ``defaultValue`` can be a bool, a string or a number).
SCALAR: tuple[type, ...] = (str, bool, int, float)


class _AnyValue:
    """Matches every JSON value (including null)."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _AnyValue()


@dataclass(frozen=True)
class Field:
    """One value: its allowed JSON types plus flags.

    ``spec``      a type, a tuple of types, or a nested shape (Obj / dict / ListOf / MapOf).
    ``nullable``  JSON null is also accepted.
    ``optional``  the key may be absent from the enclosing object (only meaningful as a value
                  inside an object shape).
    ``choices``   if given, the value must be one of these.
    ``pattern``   if given, a string value must fully match this regex.
    """

    spec: Spec
    nullable: bool = False
    optional: bool = False
    choices: tuple[Any, ...] | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Obj:
    """A JSON object.  ``closed=True`` rejects keys that the shape does not name."""

    fields: Mapping[str, Spec]
    closed: bool = False


@dataclass(frozen=True)
class ListOf:
    """A JSON array whose every element matches ``item``, with optional length bounds."""

    item: Spec
    min_len: int = 0
    max_len: int | None = None


@dataclass(frozen=True)
class MapOf:
    """A JSON object used as a map: arbitrary keys, every value matches ``value``."""

    value: Spec


#: What may appear where a shape is expected.
Spec = type | tuple[type, ...] | Field | Obj | ListOf | MapOf | Mapping[str, Any] | _AnyValue


def nullable(spec: Spec, **kw: Any) -> Field:
    """Shorthand: ``spec`` or null."""
    return Field(spec, nullable=True, **kw)


def optional(spec: Spec, **kw: Any) -> Field:
    """Shorthand: key may be missing; when present it must match ``spec``."""
    return Field(spec, optional=True, **kw)


def closed(fields: Mapping[str, Spec]) -> Obj:
    """Shorthand for an object shape that allows no extra keys."""
    return Obj(fields, closed=True)


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return " | ".join(_type_name(x) for x in t)
    return "null" if t is NoneType else t.__name__


def _json_type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _isinstance_json(value: Any, types: type | tuple[type, ...]) -> bool:
    """``isinstance`` that keeps JSON booleans apart from JSON numbers."""
    wanted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):
        return bool in wanted
    return isinstance(value, wanted)


def assert_shape(value: Any, shape: Spec, path: str = "$") -> None:
    """Raise ``AssertionError`` naming the path of the first mismatch between value and shape.

    Extra keys in an object are allowed unless the shape is ``Obj(..., closed=True)``.
    A plain ``dict`` shape is an open object shape.
    """
    if isinstance(shape, _AnyValue):
        return
    if isinstance(shape, Field):
        if value is None and shape.nullable:
            return
        assert_shape(value, shape.spec, path)
        if shape.choices is not None and value not in shape.choices:
            raise AssertionError(f"{path}: {value!r} is not one of {shape.choices!r}")
        if (
            shape.pattern is not None
            and isinstance(value, str)
            and not re.fullmatch(shape.pattern, value)
        ):
            raise AssertionError(f"{path}: {value!r} does not match /{shape.pattern}/")
        return
    if isinstance(shape, (type, tuple)):
        if not _isinstance_json(value, shape):
            raise AssertionError(
                f"{path}: expected {_type_name(shape)}, got {_json_type_name(value)} ({value!r:.60})"
            )
        return
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            raise AssertionError(f"{path}: expected list, got {_json_type_name(value)}")
        if len(value) < shape.min_len:
            raise AssertionError(
                f"{path}: expected at least {shape.min_len} items, got {len(value)}"
            )
        if shape.max_len is not None and len(value) > shape.max_len:
            raise AssertionError(
                f"{path}: expected at most {shape.max_len} items, got {len(value)}"
            )
        for i, item in enumerate(value):
            assert_shape(item, shape.item, f"{path}[{i}]")
        return
    if isinstance(shape, MapOf):
        if not isinstance(value, dict):
            raise AssertionError(f"{path}: expected dict, got {_json_type_name(value)}")
        for key, item in value.items():
            assert_shape(item, shape.value, f"{path}.{key}")
        return
    if isinstance(shape, Mapping):
        shape = Obj(shape)
    if isinstance(shape, Obj):
        if not isinstance(value, dict):
            raise AssertionError(f"{path}: expected dict, got {_json_type_name(value)}")
        for key, spec in shape.fields.items():
            if key not in value:
                if isinstance(spec, Field) and spec.optional:
                    continue
                raise AssertionError(f"{path}: missing key {key!r}")
            assert_shape(value[key], spec, f"{path}.{key}")
        if shape.closed:
            extra = sorted(set(value) - set(shape.fields))
            if extra:
                raise AssertionError(f"{path}: unexpected keys {extra!r}")
        return
    raise TypeError(f"{path}: not a shape: {shape!r}")


def message_matches(pattern: str, message: str) -> re.Match[str] | None:
    """Full-match one of the ``MSG_*_RE`` formats against an error message (multi-line safe)."""
    return re.fullmatch(pattern, message, flags=re.DOTALL)


def shape_errors(value: Any, shape: Spec, path: str = "$") -> str | None:
    """Like :func:`assert_shape` but returns the message (or None) instead of raising."""
    try:
        assert_shape(value, shape, path)
    except AssertionError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------
# 2. Value formats
# ---------------------------------------------------------------------------------------------

#: REST / Bulk datetime values: millisecond precision, numeric offset WITHOUT a colon; the
#: recordings and docs always show ``+0000`` (UTC).  [FX] job/record timestamps, [AIR], [D-DEL].
REST_DATETIME_RE = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}"
#: Date-only fields are plain ``yyyy-mm-dd`` strings.  [FX] update.json request body.
REST_DATE_RE = r"\d{4}-\d{2}-\d{2}"

#: Record ids on the wire are 18 case-sensitive alphanumerics: a 3-char key prefix (object
#: type, e.g. Account ``001``, Contact ``003``, User ``005``, Bulk job ``750``, query locator
#: ``01g``), 12 more chars, and a 3-char case-checksum suffix drawn from ``A-Z0-5``.
#: [FX] all ids; prefixes from [CCI] global describe ``keyPrefix``.
RECORD_ID_RE = r"[a-zA-Z0-9]{15}[A-Z0-5]{3}"
ID_KEY_PREFIX_LEN = 3
#: ``keyPrefix`` values seen in [CCI] global/sObject describe (Account, Contact, Opportunity, User,
#: Organization).  Useful for checking the sandbox keeps the real prefixes.
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Organization": "00D",
    "Case": "500",
    "Campaign": "701",
}
BULK_JOB_ID_PREFIX = "750"  # [AIR], [D-JOB]
QUERY_LOCATOR_PREFIX = "01g"  # [FX] query-with-next-records-url*.json

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def id_checksum(id15: str) -> str:
    """The 3-char suffix that turns a 15-char id into its 18-char form.

    Each 5-char chunk contributes one char: bit *i* is set when char *i* is an uppercase letter.
    Real orgs validate it: [FX] update-malformed-id.json sends an 18-char id whose suffix is
    wrong and gets 400 MALFORMED_ID.
    """
    if len(id15) != 15:
        raise ValueError("need a 15-char id")
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_CHECKSUM_ALPHABET[bits])
    return "".join(out)


def is_valid_record_id(value: str) -> bool:
    """True for a well-formed 18-char id with a correct checksum suffix."""
    return bool(re.fullmatch(RECORD_ID_RE, value)) and id_checksum(value[:15]) == value[15:]


#: ``attributes.url`` of a record and the ``Location`` header of a create:
#: ``/services/data/vNN.N/sobjects/<Type>/<id>`` (absolute path, no host).  [FX] create.json, query.json.
SOBJECT_URL_RE = r"/services/data/v\d+\.\d/sobjects/\w+/[a-zA-Z0-9]{18}"
#: ``nextRecordsUrl``: absolute path ``/services/data/vNN.N/query/<locator>-<offset>`` where the
#: locator is an 18-char id starting ``01g`` and the offset counts rows already served
#: (``-2000``, ``-4000`` ... with the default 2000-row pages).  [FX] query-with-next-records-url*.json.
#: (queryAll paging path not seen in a recording; allowed here as ``queryAll`` (unverified).)
NEXT_RECORDS_URL_RE = r"/services/data/v\d+\.\d/(?:query|queryAll)/01g[a-zA-Z0-9]{15}-\d+"
QUERY_PAGE_SIZE = 2000  # [FX] locator offsets step by 2000
#: Bulk 2.0 ``contentUrl`` has NO leading slash.  [D-JOB]
BULK_CONTENT_URL_RE = r"services/data/v\d+\.\d/jobs/ingest/750[a-zA-Z0-9]{15}/batches"

#: ``Sforce-Limit-Info`` header: ``api-usage=<used>/<max>``, optionally followed by
#: ``; per-app-api-usage=...`` or similar.  [FX] every authenticated 2xx/4xx mapping, [D-LIM].
SFORCE_LIMIT_INFO_RE = r"api-usage=(?P<used>\d+)/(?P<max>\d+)(?:;.*)?"


def parse_limit_info(header_value: str) -> tuple[int, int]:
    """``'api-usage=51/100000'`` -> ``(51, 100000)``; AssertionError if malformed."""
    m = re.fullmatch(SFORCE_LIMIT_INFO_RE, header_value.strip())
    assert m, f"Sforce-Limit-Info not in api-usage=N/M form: {header_value!r}"
    return int(m["used"]), int(m["max"])


# ---------------------------------------------------------------------------------------------
# 3. HTTP: content types, header names, status codes
# ---------------------------------------------------------------------------------------------

#: Every JSON body (success and error) - note: no space before ``charset``.  [FX], [CCI]
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
#: 204 responses (update, delete) carry no body and no Content-Type.  [FX] update.json, delete.json
NO_CONTENT_HAS_CONTENT_TYPE = False
#: SOAP login answers are XML.  (docs / client fixtures)
SOAP_CONTENT_TYPE_PREFIX = "text/xml"
#: Bulk 2.0 result downloads are CSV.  [D-JOB] (exact header value unverified)
CSV_CONTENT_TYPE_PREFIX = "text/csv"

HEADER_LIMIT_INFO = "Sforce-Limit-Info"
HEADER_LOCATION = "Location"  # on 201 create: value matches SOBJECT_URL_RE  [FX] create.json
HEADER_WWW_AUTHENTICATE = "WWW-Authenticate"  # value "Token" on 401  [FX] create-invalid-token.json
HEADER_SFORCE_LOCATOR = (
    "Sforce-Locator"  # Bulk 2.0 query results; literal "null" on last page [D-JOB]
)
HEADER_SFORCE_NUMBER_OF_RECORDS = "Sforce-NumberOfRecords"  # Bulk 2.0 query results [D-JOB]
WWW_AUTHENTICATE_ON_401 = "Token"

#: Where ``Sforce-Limit-Info`` was present / absent in the recordings.  [FX]
#: Present on authenticated successes and on 400/404 errors of authenticated calls; ABSENT on
#: the 401 INVALID_SESSION_ID answer and on the 404 for a bad version segment.
LIMIT_INFO_PRESENT_ON = ("create 201", "update 204", "delete 204", "query 200", "errors 400/404")
LIMIT_INFO_ABSENT_ON = ("401 INVALID_SESSION_ID", "404 unknown API version")

# Success status codes --------------------------------------------------------------------
CREATE_STATUS = 201  # [FX] create.json; [CCI] POST sobjects/Account/
UPDATE_STATUS = 204  # [FX] update.json
DELETE_STATUS = 204  # [FX] delete.json
UPSERT_CREATED = 201  # [D-UPS] (API >= 46)
UPSERT_UPDATED = 200  # [D-UPS] (API >= 46; 204 with no body before v46)
UPSERT_MULTIPLE_MATCHES = 300  # [D-UPS] (docs)
QUERY_STATUS = 200  # [FX] query.json
DESCRIBE_STATUS = 200  # [CCI]
COLLECTIONS_STATUS = 200  # [CCI] POST/PATCH composite/sobjects, also when items fail [D-COL]
BULK_JOB_CREATE_STATUS = 200  # [D-JOB] (ingest and query job create answer 200, not 201)
BULK_UPLOAD_STATUS = 201  # [D-JOB] PUT .../batches, empty body
BULK_JOB_DELETE_STATUS = 204  # [D-JOB] (docs)

# Error (status, errorCode) pairs -------------------------------------------------------------
DELETE_AGAIN = (404, "ENTITY_IS_DELETED")  # [FX] delete-already-deleted.json
UNKNOWN_OBJECT = (404, "NOT_FOUND")  # [FX] create-unknown-object.json
INVALID_API_VERSION = (404, "NOT_FOUND")  # [FX] create-invalid-api-version.json
INVALID_TOKEN = (401, "INVALID_SESSION_ID")  # [FX] create-invalid-token.json; [JSF] bulk2
MALFORMED_ID = (400, "MALFORMED_ID")  # [FX] update-malformed-id.json
INVALID_FIELD = (400, "INVALID_FIELD")  # [FX] create/update-invalid-field.json (DML)
INVALID_FIELD_SOQL = (400, "INVALID_FIELD")  # [FX] query-unknown-column.json
MALFORMED_QUERY = (400, "MALFORMED_QUERY")  # [FX] query-malformed-soql.json
REQUIRED_FIELD_MISSING = (400, "REQUIRED_FIELD_MISSING")  # [FX] create-required-field-missing.json
RESTRICTED_PICKLIST = (
    400,
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
)  # [FX] create-invalid-picklist-value.json
BULK_QUERY_NOT_COMPLETE = (412, "JOB_NOT_COMPLETE")  # (docs, unverified)

#: Does the error item carry a ``fields`` key, and what is in it?  [FX]
#: absent  -> INVALID_FIELD (DML and SOQL), NOT_FOUND, INVALID_SESSION_ID, MALFORMED_QUERY
#: []      -> ENTITY_IS_DELETED
#: [names] -> REQUIRED_FIELD_MISSING (the missing API names), MALFORMED_ID (["Id"]),
#:            INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST (the field API name)
ERROR_FIELDS_KEY: dict[str, str] = {
    "INVALID_FIELD": "absent",
    "NOT_FOUND": "absent",
    "INVALID_SESSION_ID": "absent",
    "MALFORMED_QUERY": "absent",
    "ENTITY_IS_DELETED": "empty",
    "REQUIRED_FIELD_MISSING": "names",
    "MALFORMED_ID": "names",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": "names",
}

# ---------------------------------------------------------------------------------------------
# 4. Error message formats (regexes; group names describe the variable parts)
# ---------------------------------------------------------------------------------------------

#: Fixed texts.  [FX]
MSG_NOT_FOUND = "The requested resource does not exist"  # unknown sObject and bad version
MSG_ENTITY_IS_DELETED = "entity is deleted"
MSG_INVALID_SESSION = "Session expired or invalid"

#: DML with an unknown field name (create and update alike).  [FX]
MSG_INVALID_FIELD_DML_RE = r"No such column '(?P<field>[^']+)' on sobject of type (?P<sobject>\w+)"
#: SOQL with an unknown column.  The message is multi-line: it starts with a newline, echoes the
#: SOQL, then a line of spaces with a caret under the bad token, then
#: ``ERROR at Row:<r>:Column:<c>``, then ``No such column '<f>' on entity '<o>'.`` followed by a
#: fixed advisory sentence about appending ``__c`` and consulting describe.  [FX]
MSG_INVALID_FIELD_SOQL_RE = (
    r"\n(?P<soql>[^\n]*)\n(?P<caret> *\^)\n"
    r"ERROR at Row:(?P<row>\d+):Column:(?P<column>\d+)\n"
    r"No such column '(?P<field>[^']+)' on entity '(?P<sobject>\w+)'\..*"
)
#: Unparseable SOQL (first bad token).  [FX]
MSG_MALFORMED_QUERY_TOKEN_RE = r"unexpected token: (?P<token>.+)"
#: Missing required field(s): bracketed API names; ``fields`` lists the same names.  [FX]
#: (Separator for several names is not in a recording; ", " assumed.)
MSG_REQUIRED_FIELD_MISSING_RE = r"Required fields are missing: \[(?P<fields>[^\]]*)\]"
#: Bad restricted-picklist value: the FIELD LABEL (not API name) leads the message; ``fields``
#: carries the API name.  [FX]
MSG_RESTRICTED_PICKLIST_RE = (
    r"(?P<label>[^:]+): bad value for restricted picklist field: (?P<value>.*)"
)
#: Malformed record id in the URL: label of the id field ("Record ID" for the record itself),
#: then the offending value; ``fields`` is ``["Id"]``.  [FX]
MSG_MALFORMED_ID_RE = r"(?P<label>[^:]+): id value of incorrect type: (?P<value>.+)"
MSG_MALFORMED_ID_LABEL = "Record ID"

# ---------------------------------------------------------------------------------------------
# 5. REST shapes
# ---------------------------------------------------------------------------------------------

_ID = Field(str, pattern=RECORD_ID_RE)
_DT = Field(str, pattern=REST_DATETIME_RE)

#: ``GET /services/data/`` -> JSON array of these.  ``version`` is a STRING like "59.0".  [D-VER]
VERSIONS_ITEM = closed(
    {
        "label": str,
        "url": Field(str, pattern=r"/services/data/v\d+\.\d"),
        "version": Field(str, pattern=r"\d+\.\d"),
    }
)
VERSIONS_LIST = ListOf(VERSIONS_ITEM, min_len=1)

# Errors ----------------------------------------------------------------------------------
#: REST (and Bulk 2.0 JSON) error answers are a JSON ARRAY of these.  Only these three keys
#: were recorded; the shape stays open because some codes (duplicate rules) are documented to
#: add detail keys.  [FX]
ERROR_ITEM = {
    "message": str,
    "errorCode": Field(str, pattern=r"[A-Z][A-Z0-9_]*"),
    "fields": optional(ListOf(str)),
}
ERROR_LIST = ListOf(ERROR_ITEM, min_len=1)

#: Per-item error inside sObject Collections results uses ``statusCode`` (not ``errorCode``).
#: [D-COL] (no failure item in a recording)
COLLECTION_ERROR_ITEM = {
    "statusCode": Field(str, pattern=r"[A-Z][A-Z0-9_]*"),
    "message": str,
    "fields": ListOf(str),
}

# Single-record DML -------------------------------------------------------------------------
#: ``POST /sobjects/X/`` -> 201.  ``errors`` is an empty list on success.  [FX] create.json, [CCI]
CREATE_SUCCESS = closed(
    {"id": _ID, "success": Field(bool, choices=(True,)), "errors": ListOf(ANY, max_len=0)}
)
#: ``PATCH /sobjects/X/ExtField/value`` -> 201 (created true) / 200 (created false).  [D-UPS]
UPSERT_RESULT = closed(
    {
        "id": _ID,
        "success": Field(bool, choices=(True,)),
        "errors": ListOf(ANY, max_len=0),
        "created": bool,
    }
)

# sObject Collections --------------------------------------------------------------------------
#: Success item.  ``created`` appears on upsert items (PATCH composite/sobjects/X/Field) but NOT
#: on plain create items (POST composite/sobjects).  [CCI] TestUpsert cassettes.
COLLECTION_SUCCESS_ITEM = {
    "id": _ID,
    "success": Field(bool, choices=(True,)),
    "errors": ListOf(ANY, max_len=0),
    "created": optional(bool),
}
COLLECTION_UPSERT_SUCCESS_ITEM = {**COLLECTION_SUCCESS_ITEM, "created": bool}
#: Failure item: no usable id (absent, or null in some clients' experience), errors non-empty.
#: [D-COL] (unverified against a recording)
COLLECTION_FAILURE_ITEM = {
    "id": Field(str, optional=True, nullable=True),
    "success": Field(bool, choices=(False,)),
    "errors": ListOf(COLLECTION_ERROR_ITEM, min_len=1),
}

# Query -------------------------------------------------------------------------------------------
#: Every record in query / retrieve answers carries ``attributes``.  [FX] query*.json
#: (Aggregate-query rows are not covered here.)
RECORD_ATTRIBUTES = closed({"type": str, "url": Field(str, pattern=SOBJECT_URL_RE)})
#: A record: ``attributes`` plus the selected fields; unselected fields are absent, selected
#: null fields are present as JSON null.  [FX] query-with-next-records-url.json
QUERY_RECORD = {"attributes": RECORD_ATTRIBUTES}
#: Parent relationship in a SOQL result (``SELECT Owner.Name ...`` / ``Account.Name`` on Contact):
#: a nested record WITH its own attributes.  [FX] query-with-associated-data.json
#: (A null lookup renders as JSON null for the whole relationship key - (unverified).)
PARENT_RECORD = {"attributes": RECORD_ATTRIBUTES}

#: One page of ``GET /query?q=`` / ``GET <nextRecordsUrl>``.  ``nextRecordsUrl`` is present
#: exactly when ``done`` is false; ``totalSize`` is the grand total on every page.  [FX]
QUERY_PAGE = {
    "totalSize": int,
    "done": bool,
    "nextRecordsUrl": optional(str, pattern=NEXT_RECORDS_URL_RE),
    "records": ListOf(QUERY_RECORD),
}
#: Child subquery value: a nested query page; with NO children the key is JSON null (not an
#: empty page).  [FX] query-with-subquery.json, [CCI] TestUpsert.test_upsert__rest.yaml
CHILD_SUBQUERY = nullable(QUERY_PAGE)


def assert_query_page(page: Any, path: str = "$") -> None:
    """QUERY_PAGE plus the done/nextRecordsUrl coupling."""
    assert_shape(page, QUERY_PAGE, path)
    if page["done"]:
        assert "nextRecordsUrl" not in page, f"{path}: done page must not carry nextRecordsUrl"
    else:
        assert "nextRecordsUrl" in page, f"{path}: page with done=false needs nextRecordsUrl"


# Incremental ----------------------------------------------------------------------------------------
#: ``GET /sobjects/X/updated/?start=&end=``.  [D-UPD]
GET_UPDATED = closed({"ids": ListOf(_ID), "latestDateCovered": _DT})
DELETED_RECORD = closed({"id": _ID, "deletedDate": _DT})
#: ``GET /sobjects/X/deleted/?start=&end=``.  [D-DEL]
GET_DELETED = closed(
    {
        "deletedRecords": ListOf(DELETED_RECORD),
        "earliestDateAvailable": _DT,
        "latestDateCovered": _DT,
    }
)

# Limits --------------------------------------------------------------------------------------------
#: One ``/limits/`` entry.  Some entries also nest per-app sub-entries of the same shape, so
#: the object is open.  [D-LIM]
LIMIT_ENTRY = {"Max": int, "Remaining": int}
#: ``GET /limits/``: map of limit name -> LIMIT_ENTRY; these names must be present.  [D-LIM]
LIMITS = MapOf(LIMIT_ENTRY)
LIMITS_REQUIRED_NAMES = ("DailyApiRequests",)
#: Further names the project relies on (Bulk allocations); documented, not in a recording.
LIMITS_BULK_NAMES = ("DailyBulkApiBatches", "DailyBulkV2QueryJobs", "DailyBulkV2QueryFileStorageMB")
#: ``GET /limits/recordCount?sObjects=X`` -> ``{"sObjects": [{"count", "name"}]}``; the list is
#: empty for an object with no rows.  [CCI] duplicate_error cassette
RECORD_COUNT = closed({"sObjects": ListOf(closed({"count": int, "name": str}))})

# Describe -----------------------------------------------------------------------------------------
_URLS = MapOf(str)

#: One entry of ``GET /sobjects`` ``sobjects``.  ``keyPrefix`` is null for some objects.
#: ``associateEntityType``/``associateParentEntity`` appear from mid-40s API versions.  [CCI] v52
GLOBAL_DESCRIBE_SOBJECT = {
    "activateable": bool,
    "associateEntityType": optional(str, nullable=True),
    "associateParentEntity": optional(str, nullable=True),
    "createable": bool,
    "custom": bool,
    "customSetting": bool,
    "deepCloneable": bool,
    "deletable": bool,
    "deprecatedAndHidden": bool,
    "feedEnabled": bool,
    "hasSubtypes": bool,
    "isInterface": bool,
    "isSubtype": bool,
    "keyPrefix": nullable(str, pattern=r"[a-zA-Z0-9]{3}"),
    "label": str,
    "labelPlural": str,
    "layoutable": bool,
    "mergeable": bool,
    "mruEnabled": bool,
    "name": str,
    "queryable": bool,
    "replicateable": bool,
    "retrieveable": bool,
    "searchable": bool,
    "triggerable": bool,
    "undeletable": bool,
    "updateable": bool,
    # sobject, describe and rowTemplate were in every entry; others vary by object.
    "urls": {"sobject": str, "describe": str, "rowTemplate": str},
}
#: ``GET /sobjects`` top level.  ``maxBatchSize`` is 200, ``encoding`` "UTF-8".  [CCI]
GLOBAL_DESCRIBE = {
    "encoding": str,
    "maxBatchSize": int,
    "sobjects": ListOf(GLOBAL_DESCRIBE_SOBJECT),
}

#: ``picklistValues`` entry.  [CCI]
PICKLIST_VALUE = closed(
    {"active": bool, "defaultValue": bool, "label": str, "validFor": nullable(str), "value": str}
)

#: ``fields[]`` entry of ``GET /sobjects/X/describe`` - every key both CCI recordings carry, in
#: both API versions.  Numbers: ``length``/``byteLength`` (chars / bytes, 0 for non-text),
#: ``precision``/``scale`` (double/currency/percent), ``digits`` (int fields).
#: ``defaultValue`` is null, or a JSON bool for checkboxes, or a string/number.  [CCI]
DESCRIBE_FIELD = {
    "aggregatable": bool,
    "aiPredictionField": bool,
    "autoNumber": bool,
    "byteLength": int,
    "calculated": bool,
    "calculatedFormula": nullable(str),
    "cascadeDelete": bool,
    "caseSensitive": bool,
    "compoundFieldName": nullable(str),
    "controllerName": nullable(str),
    "createable": bool,
    "custom": bool,
    "defaultValue": nullable(SCALAR),
    "defaultValueFormula": nullable(str),
    "defaultedOnCreate": bool,
    "dependentPicklist": bool,
    "deprecatedAndHidden": bool,
    "digits": int,
    "displayLocationInDecimal": bool,
    "encrypted": bool,
    "externalId": bool,
    "extraTypeInfo": nullable(str),
    "filterable": bool,
    "filteredLookupInfo": nullable(dict),
    "formulaTreatNullNumberAsZero": bool,
    "groupable": bool,
    "highScaleNumber": bool,
    "htmlFormatted": bool,
    "idLookup": bool,
    "inlineHelpText": nullable(str),
    "label": str,
    "length": int,
    "mask": nullable(str),
    "maskType": nullable(str),
    "name": str,
    "nameField": bool,
    "namePointing": bool,
    "nillable": bool,
    "permissionable": bool,
    "picklistValues": ListOf(PICKLIST_VALUE),
    "polymorphicForeignKey": bool,
    "precision": int,
    "queryByDistance": bool,
    "referenceTargetField": nullable(str),
    "referenceTo": ListOf(str),
    "relationshipName": nullable(str),
    "relationshipOrder": nullable(int),
    "restrictedDelete": bool,
    "restrictedPicklist": bool,
    "scale": int,
    "searchPrefilterable": bool,
    "soapType": str,
    "sortable": bool,
    "type": str,
    "unique": bool,
    "updateable": bool,
    "writeRequiresMasterRead": bool,
}
DESCRIBE_FIELD_KEYS: frozenset[str] = frozenset(DESCRIBE_FIELD)

#: ``type`` -> ``soapType`` pairs seen in [CCI] describes.
FIELD_SOAP_TYPES: dict[str, str] = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "textarea": "xsd:string",
    "picklist": "xsd:string",
    "phone": "xsd:string",
    "url": "xsd:string",
    "email": "xsd:string",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "address": "urn:address",
}
#: Numeric facts seen in [CCI]: Id/reference fields length 18 (byteLength 18); booleans,
#: numbers and dates length 0; geolocation doubles precision 18 scale 15; the standard currency
#: field precision 18 scale 0; the standard int field digits 8; string byteLength = 3 * length.
ID_FIELD_LENGTH = 18
STRING_BYTES_PER_CHAR = 3

CHILD_RELATIONSHIP = closed(
    {
        "cascadeDelete": bool,
        "childSObject": str,
        "deprecatedAndHidden": bool,
        "field": str,
        "junctionIdListNames": ListOf(str),
        "junctionReferenceTo": ListOf(str),
        "relationshipName": nullable(str),
        "restrictedDelete": bool,
    }
)
RECORD_TYPE_INFO = {
    "active": bool,
    "available": bool,
    "defaultRecordTypeMapping": bool,
    "developerName": str,
    "master": bool,
    "name": str,
    "recordTypeId": Field(str, pattern=r"012[a-zA-Z0-9]{15}"),
    "urls": {"layout": str},
}

#: ``GET /sobjects/X/describe`` top level.  [CCI] (v48 Account + newer Contact)
SOBJECT_DESCRIBE = {
    "actionOverrides": list,
    "activateable": bool,
    "associateEntityType": optional(str, nullable=True),
    "associateParentEntity": optional(str, nullable=True),
    "childRelationships": ListOf(CHILD_RELATIONSHIP),
    "compactLayoutable": bool,
    "createable": bool,
    "custom": bool,
    "customSetting": bool,
    "deepCloneable": bool,
    "defaultImplementation": nullable(str),
    "deletable": bool,
    "deprecatedAndHidden": bool,
    "extendedBy": nullable(str),
    "extendsInterfaces": nullable(str),
    "feedEnabled": bool,
    "fields": ListOf(DESCRIBE_FIELD, min_len=1),
    "hasSubtypes": bool,
    "implementedBy": nullable(str),
    "implementsInterfaces": nullable(str),
    "isInterface": bool,
    "isSubtype": bool,
    "keyPrefix": nullable(str),
    "label": str,
    "labelPlural": str,
    "layoutable": bool,
    "listviewable": nullable(bool),
    "lookupLayoutable": nullable(bool),
    "mergeable": bool,
    "mruEnabled": bool,
    "name": str,
    "namedLayoutInfos": list,
    "networkScopeFieldName": nullable(str),
    "queryable": bool,
    "recordTypeInfos": ListOf(RECORD_TYPE_INFO),
    "replicateable": bool,
    "retrieveable": bool,
    "searchLayoutable": bool,
    "searchable": bool,
    "sobjectDescribeOption": optional(str),
    "supportedScopes": ListOf(closed({"label": str, "name": str})),
    "triggerable": bool,
    "undeletable": bool,
    "updateable": bool,
    "urls": {"sobject": str, "describe": str, "rowTemplate": str},
}

# ---------------------------------------------------------------------------------------------
# 6. Bulk API 2.0
# ---------------------------------------------------------------------------------------------

BULK_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
BULK_QUERY_OPERATIONS = ("query", "queryAll")
BULK_JOB_STATES = ("Open", "UploadComplete", "InProgress", "JobComplete", "Failed", "Aborted")
BULK_TERMINAL_STATES = ("JobComplete", "Failed", "Aborted")
COLUMN_DELIMITERS = ("COMMA", "BACKQUOTE", "CARET", "PIPE", "SEMICOLON", "TAB")
LINE_ENDINGS = ("LF", "CRLF")

_JOB_ID = Field(str, pattern=r"750[a-zA-Z0-9]{15}")

#: Keys every job info carries (ingest and query, create and poll).  ``apiVersion`` is a JSON
#: NUMBER (e.g. 57.0), although the doc table calls it a string.  [AIR], [D-JOB]
_BULK_JOB_COMMON = {
    "id": _JOB_ID,
    "operation": str,
    "object": str,
    "createdById": _ID,
    "createdDate": _DT,
    "systemModstamp": _DT,
    "state": Field(str, choices=BULK_JOB_STATES),
    "concurrencyMode": str,  # "Parallel"
    "contentType": Field(str, choices=("CSV",)),
    "apiVersion": NUMBER,
    "lineEnding": Field(str, choices=LINE_ENDINGS),
    "columnDelimiter": Field(str, choices=COLUMN_DELIMITERS),
}
_BULK_COUNTERS = {
    "numberRecordsProcessed": int,
    "numberRecordsFailed": int,
    "retries": int,
    "totalProcessingTime": int,
    "apiActiveProcessingTime": int,
    "apexProcessingTime": int,
}

#: Ingest job info, any state (all fields listed in the job-info docs).  [D-JOB]
BULK_INGEST_JOB_INFO = {
    **_BULK_JOB_COMMON,
    "operation": Field(str, choices=BULK_OPERATIONS),
    "externalIdFieldName": optional(str),  # upsert jobs
    "jobType": optional(str, choices=("V2Ingest",)),
    "contentUrl": optional(str, pattern=BULK_CONTENT_URL_RE),
    "assignmentRuleId": optional(str),
    "errorMessage": optional(str),  # set when state is Failed
    **{k: optional(v) for k, v in _BULK_COUNTERS.items()},
}
#: ``POST /jobs/ingest`` answer: state Open and a ``contentUrl``.  simple-salesforce checks
#: ``id`` and ``state == "Open"``.  [D-JOB]
BULK_INGEST_JOB_CREATED = {
    **BULK_INGEST_JOB_INFO,
    "state": Field(str, choices=("Open",)),
    "contentUrl": Field(str, pattern=BULK_CONTENT_URL_RE),
}
#: Poll answer in a terminal state: counters must be there (simple-salesforce reads
#: numberRecordsProcessed / numberRecordsFailed).  [D-JOB]
BULK_INGEST_JOB_FINISHED = {
    **BULK_INGEST_JOB_INFO,
    "state": Field(str, choices=BULK_TERMINAL_STATES),
    **_BULK_COUNTERS,
}
#: ``POST /jobs/query`` answer as recorded: starts at UploadComplete; NO ``jobType``, NO
#: counters, NO ``contentUrl`` in the create answer.  [AIR]
BULK_QUERY_JOB_CREATED = {
    **_BULK_JOB_COMMON,
    "operation": Field(str, choices=BULK_QUERY_OPERATIONS),
    "state": Field(str, choices=("UploadComplete",)),
    "jobType": optional(str, choices=("V2Query",)),
}
#: ``GET /jobs/query/<id>`` (docs add jobType "V2Query" and counters).  [D-JOB]
BULK_QUERY_JOB_INFO = {
    **_BULK_JOB_COMMON,
    "operation": Field(str, choices=BULK_QUERY_OPERATIONS),
    "jobType": optional(str, choices=("V2Query",)),
    "errorMessage": optional(str),
    **{k: optional(v) for k, v in _BULK_COUNTERS.items()},
}

#: Result CSV leading columns (then the uploaded columns).  [D-JOB], [JSF]
SUCCESSFUL_RESULTS_LEADING = ("sf__Id", "sf__Created")
FAILED_RESULTS_LEADING = ("sf__Id", "sf__Error")
#: ``sf__Created`` is the text "true"/"false": insert -> "true"; update AND delete -> "false".  [JSF]
SF_CREATED_VALUES = ("true", "false")
SF_CREATED_BY_OPERATION = {"insert": "true", "update": "false", "delete": "false"}
#: ``sf__Id`` of a failed insert row is the empty string.  [JSF]
FAILED_INSERT_SF_ID = ""
#: ``sf__Error``: ``<CODE>:<message>:<comma-free field list> --``.  The message itself may contain
#: colons, so the code ends at the first colon and the field list starts after the last.  The
#: "field list then space-dash-dash" ending is verified for one field [JSF]; the bare ``:--``
#: ending for no fields, and the separator for several fields, are (unverified).
SF_ERROR_RE = r"(?P<code>[A-Z][A-Z0-9_]*):(?P<message>.*):(?P<fields>[^:]*?) ?--"


def split_sf_error(value: str) -> tuple[str, str, list[str]]:
    """``sf__Error`` cell -> ``(code, message, [field, ...])``; AssertionError if malformed."""
    m = re.fullmatch(SF_ERROR_RE, value, flags=re.DOTALL)
    assert m, f"sf__Error not in CODE:message:FIELDS -- form: {value!r}"
    fields = [f for f in re.split(r"[,\s]+", m["fields"].strip()) if f]
    return m["code"], m["message"], fields


# ---------------------------------------------------------------------------------------------
# 7. Authentication
# ---------------------------------------------------------------------------------------------

#: ``POST /services/oauth2/token`` success.  ``issued_at`` is epoch MILLISECONDS as a string;
#: ``id`` is the identity URL ``https://<login host>/id/<orgId>/<userId>``; ``token_type``
#: "Bearer".  ``scope`` / ``refresh_token`` depend on the flow.  [D-OAU]
OAUTH_TOKEN_SUCCESS = {
    "access_token": str,
    "instance_url": Field(str, pattern=r"https://.+"),
    "id": Field(str, pattern=r"https://.+/id/00D[a-zA-Z0-9]{12,15}/005[a-zA-Z0-9]{12,15}"),
    "token_type": Field(str, choices=("Bearer",)),
    "issued_at": Field(str, pattern=r"\d{13}"),
    "signature": str,
    "scope": optional(str),
    "refresh_token": optional(str),
}
#: Token endpoint failure, e.g. error "invalid_grant" / description "authentication failure",
#: HTTP 400.  [D-OAU] (status unverified against a recording)
OAUTH_TOKEN_ERROR = {"error": str, "error_description": str}
OAUTH_ERROR_STATUS = 400

#: SOAP ``login`` success (HTTP 200): Envelope > Body > loginResponse > result, whose children
#: are UNPREFIXED (default namespace ``urn:partner.soap.sforce.com``).  [D-SOAP]
SOAP_PARTNER_NS = "urn:partner.soap.sforce.com"
SOAP_ENVELOPE_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_LOGIN_PATH = ("Envelope", "Body", "loginResponse", "result")
SOAP_LOGIN_RESULT_ELEMENTS = (
    "metadataServerUrl",
    "passwordExpired",
    "sandbox",
    "serverUrl",
    "sessionId",
    "userId",
    "userInfo",
)
#: ``userInfo`` children a client may read (organizationId, userName ... ).  [D-SOAP]
SOAP_USERINFO_ELEMENTS = ("organizationId", "organizationName", "userId", "userName", "userEmail")
#: SOAP login failure: HTTP 500, Envelope > Body > Fault with ``faultcode`` (``sf:CODE``; some
#: fixtures show the bare CODE), ``faultstring`` (``CODE: message``) and
#: ``detail`` > ``sf:LoginFault`` > ``sf:exceptionCode`` / ``sf:exceptionMessage``, where
#: ``sf`` = ``urn:fault.partner.soap.sforce.com``.  simple-salesforce reads the two
#: ``sf:exception*`` elements.  (docs / client fixtures)
SOAP_FAULT_STATUS = 500
SOAP_FAULT_NS = "urn:fault.partner.soap.sforce.com"
SOAP_FAULT_ELEMENTS = ("faultcode", "faultstring", "detail")
SOAP_LOGIN_FAULT_ELEMENTS = ("sf:LoginFault", "sf:exceptionCode", "sf:exceptionMessage")
SOAP_FAULTSTRING_RE = r"(?P<code>[A-Z][A-Z0-9_]*): (?P<message>.+)"
SOAP_INVALID_LOGIN_CODE = "INVALID_LOGIN"
