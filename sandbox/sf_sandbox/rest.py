"""The REST API: versions, describe, single-record DML, sObject Collections, query, getUpdated /
getDeleted and limits.

Handlers translate JSON to the write engine's text rows and its outcomes back to Salesforce's
answers; the rules themselves live in `writes.py` so REST and Bulk cannot disagree.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sf_sandbox.app import SUPPORTED_VERSIONS, SalesforceJSON, org_of
from sf_sandbox.cursors import invalid_locator
from sf_sandbox.errors import SalesforceError, malformed_json, not_found
from sf_sandbox.ids import ID_PATTERN
from sf_sandbox.org import Org, Session
from sf_sandbox.schema import SObject
from sf_sandbox.soql import CompiledQuery, SelectPath, parent_id_column
from sf_sandbox.store import quote, utc_now
from sf_sandbox.timing import pause
from sf_sandbox.values import NULL, parse_datetime
from sf_sandbox.writes import WriteRequest, normalize_ids

V = "/services/data/v{version}"
PAGE_SIZE = 2000
MIN_PAGE_SIZE = 200
COLLECTION_LIMIT = 200
UPDATED_REACH_DAYS = 30  # getUpdated looks back at most 30 days


# -- JSON in ---------------------------------------------------------------------------------


async def json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if content_type and "json" not in content_type and "xml" not in content_type:
        raise SalesforceError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content type '{content_type.split(';')[0]}' not supported",
        )
    try:
        return json.loads(raw.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise malformed_json(f"Unexpected character in the request body: {error}") from None


def wire_text(value: Any) -> str:
    """A JSON scalar as the text the write engine reads (JSON null clears the field)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise malformed_json(f"Cannot deserialize a JSON {type(value).__name__} into a field value")


def records_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows of wire text; a nested `{"Account": {"External_Id__c": "A1"}}` becomes the
    column `Account.External_Id__c`, the same spelling a Bulk CSV header uses."""
    rows: list[dict[str, str]] = []
    for record in records:
        if not isinstance(record, dict):
            raise malformed_json("Each record must be a JSON object")
        row: dict[str, str] = {}
        for key, value in record.items():
            if key == "attributes":
                continue
            if isinstance(value, dict):
                for parent_key, parent_value in value.items():
                    if parent_key != "attributes":
                        row[f"{key}.{parent_key}"] = wire_text(parent_value)
            else:
                row[key] = wire_text(value)
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if not columns:  # records with no fields still count as rows
        return pl.DataFrame({"__no_fields": [None] * len(rows)}, schema={"__no_fields": pl.Utf8})
    return pl.DataFrame(
        {c: [row.get(c) for row in rows] for c in columns}, schema=dict.fromkeys(columns, pl.Utf8)
    )


# -- JSON out --------------------------------------------------------------------------------


DATETIME_JSON = "%Y-%m-%dT%H:%M:%S.%3f+0000"


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"
    if isinstance(value, date):
        return value.isoformat()
    return value


def record_url(org: Org, sobject: SObject, record_id: str) -> str:
    return f"/services/data/v{org.api_version}/sobjects/{sobject.name}/{record_id}"


def render_record(org: Org, sobject: SObject, row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attributes": {"type": sobject.name, "url": record_url(org, sobject, row["Id"])}
    }
    for field in sobject.fields.values():
        if field.name in row:
            out[field.name] = json_value(row[field.name])
    return out


def outcome_errors(outcome: dict[str, Any], key: str = "statusCode") -> list[dict[str, Any]]:
    return [{key: outcome["code"], "message": outcome["message"], "fields": outcome["fields"]}]


def single_error(outcome: dict[str, Any]) -> SalesforceError:
    return SalesforceError(400, outcome["code"], outcome["message"], outcome["fields"])


# -- versions, describe, limits ----------------------------------------------------------------


async def versions(request: Request) -> Response:
    return SalesforceJSON(
        [
            {"label": f"Release {v}", "url": f"/services/data/v{v}", "version": v}
            for v in sorted(SUPPORTED_VERSIONS, key=float)
        ]
    )


async def resources(request: Request) -> Response:
    base = f"/services/data/v{request.path_params['version']}"
    names = ["sobjects", "query", "queryAll", "limits", "composite", "jobs"]
    return SalesforceJSON({name: f"{base}/{name}" for name in names})


async def global_describe(request: Request) -> Response:
    org = org_of(request)
    return SalesforceJSON(
        {
            "encoding": "UTF-8",
            "maxBatchSize": COLLECTION_LIMIT,
            "sobjects": [o.summary(org.api_version) for o in org.schema.objects.values()],
        }
    )


async def sobject_describe(request: Request) -> Response:
    """The object's describe; with `If-Modified-Since` at or after the org's last schema
    change, a 304 with no body (what a real org answers, and what makes revalidating cheap)."""
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    if org.describe_unchanged_since(request.headers.get("if-modified-since")):
        return Response(status_code=304)
    return SalesforceJSON(sobject.describe(org.api_version, org.schema))


async def sobject_basic(request: Request) -> Response:
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    if request.method == "POST":
        return await create(request, org, sobject)
    recent = org.store.query(
        f"SELECT Id, Name FROM {quote(sobject.name)} WHERE NOT IsDeleted "
        "ORDER BY LastModifiedDate DESC LIMIT 10"
        if sobject.field("Name")
        else f"SELECT Id FROM {quote(sobject.name)} WHERE NOT IsDeleted LIMIT 10"
    )
    return SalesforceJSON(
        {
            "objectDescribe": sobject.summary(org.api_version),
            "recentItems": [render_record(org, sobject, row) for row in recent.to_dicts()],
        }
    )


async def limits(request: Request) -> Response:
    return SalesforceJSON(org_of(request).limits())


# -- single records ----------------------------------------------------------------------------


async def create(request: Request, org: Org, sobject: SObject) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise malformed_json("Expected a JSON object for the record")
    outcome = org.write(
        WriteRequest(sobject, "insert", records_frame([body]), strict_types=True)
    ).row(0, named=True)
    if not outcome["success"]:
        raise single_error(outcome)
    return SalesforceJSON(
        {"id": outcome["id"], "success": True, "errors": []},
        status_code=201,
        headers={"Location": record_url(org, sobject, outcome["id"])},
    )


def resolve_record_id(org: Org, sobject: SObject, raw_id: str) -> str:
    """The stored id for a URL id, or the answer Salesforce gives for a bad one."""
    ids = normalize_ids(pl.Series([raw_id]))
    record_id = ids[0]
    if record_id is None or not record_id.startswith(sobject.key_prefix):
        raise SalesforceError(
            400, "MALFORMED_ID", f"Record ID: id value of incorrect type: {raw_id}", ["Id"]
        )
    found = org.store.records(sobject, [record_id], include_deleted=True)
    if found.is_empty():
        raise not_found()
    if found["IsDeleted"][0]:
        raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
    return record_id


async def record(request: Request) -> Response:
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    raw_id = request.path_params["record_id"]
    if not ID_PATTERN.match(raw_id) and request.method == "GET":
        raise SalesforceError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {raw_id}",
        )
    record_id = resolve_record_id(org, sobject, raw_id)
    if request.method == "GET":
        return retrieve(request, org, sobject, record_id)
    if request.method == "DELETE":
        outcome = org.write(WriteRequest(sobject, "delete", pl.DataFrame({"Id": [record_id]}))).row(
            0, named=True
        )
        if not outcome["success"]:
            raise single_error(outcome)
        return Response(status_code=204)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise malformed_json("Expected a JSON object for the record")
    frame = records_frame([body]).with_columns(pl.lit(record_id).alias("Id"))
    outcome = org.write(WriteRequest(sobject, "update", frame, strict_types=True)).row(
        0, named=True
    )
    if not outcome["success"]:
        raise single_error(outcome)
    return Response(status_code=204)


def retrieve(request: Request, org: Org, sobject: SObject, record_id: str) -> Response:
    row = org.store.records(sobject, [record_id]).to_dicts()[0]
    wanted = request.query_params.get("fields")
    if wanted:
        names = []
        for name in wanted.split(","):
            field = sobject.field(name.strip())
            if field is None:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name.strip()}' on entity '{sobject.name}'. If you are "
                    "attempting to use a custom field, be sure to append the '__c' after the "
                    "custom field name. Please reference your WSDL or the describe call for the "
                    "appropriate names.",
                )
            names.append(field.name)
        row = {k: v for k, v in row.items() if k in names or k == "Id"}
    return SalesforceJSON(render_record(org, sobject, row))


async def by_external_id(request: Request) -> Response:
    """GET a record by an external id, or upsert one (PATCH)."""
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    field = sobject.field(request.path_params["field"])
    value = request.path_params["value"]
    if field is None or not (field.is_matchable or field.unique):
        raise SalesforceError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: "
            f"{request.path_params['field']}",
        )
    if request.method == "GET":
        return fetch_by_external_id(org, sobject, field.name, value)
    if request.method == "DELETE":
        ids = matching_ids(org, sobject, field.name, value, field.case_sensitive)
        if not ids:
            raise not_found()
        if len(ids) > 1:
            return multiple_choices(org, sobject, ids)
        org.write(WriteRequest(sobject, "delete", pl.DataFrame({"Id": ids})))
        return Response(status_code=204)
    return await upsert_one(request, org, sobject, field.name, value)


def matching_ids(
    org: Org, sobject: SObject, field: str, value: str, case_sensitive: bool
) -> list[str]:
    found = org.store.find(sobject, field, pl.Series([value]), case_insensitive=not case_sensitive)
    return found.filter(~pl.col("IsDeleted"))["Id"].to_list()


def multiple_choices(org: Org, sobject: SObject, ids: list[str]) -> Response:
    return SalesforceJSON([record_url(org, sobject, i) for i in ids], status_code=300)


def fetch_by_external_id(org: Org, sobject: SObject, field: str, value: str) -> Response:
    ids = matching_ids(org, sobject, field, value, sobject.field(field).case_sensitive)
    if not ids:
        raise not_found()
    if len(ids) > 1:
        return multiple_choices(org, sobject, ids)
    row = org.store.records(sobject, ids).to_dicts()[0]
    return SalesforceJSON(render_record(org, sobject, row))


async def upsert_one(
    request: Request, org: Org, sobject: SObject, field: str, value: str
) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise malformed_json("Expected a JSON object for the record")
    ids = matching_ids(org, sobject, field, value, sobject.field(field).case_sensitive)
    if len(ids) > 1:
        return multiple_choices(org, sobject, ids)
    body = {k: v for k, v in body.items() if k.lower() != field.lower()}
    if field == "Id":
        operation, frame = "update", records_frame([body]).with_columns(pl.lit(value).alias("Id"))
    else:
        operation = "upsert"
        frame = records_frame([body]).with_columns(pl.lit(value).alias(field))
    if request.query_params.get("updateOnly", "").lower() == "true" and not ids:
        raise not_found()
    outcome = org.write(
        WriteRequest(sobject, operation, frame, external_id_field=field, strict_types=True)
    ).row(0, named=True)
    if not outcome["success"]:
        raise single_error(outcome)
    created = bool(outcome["created"])
    return SalesforceJSON(
        {"id": outcome["id"], "success": True, "errors": [], "created": created},
        status_code=201 if created else 200,
        headers={"Location": record_url(org, sobject, outcome["id"])} if created else None,
    )


# -- sObject Collections ------------------------------------------------------------------------


async def records_time(org: Org, count: int) -> None:
    """An sObject Collections call takes longer the more records it carries."""
    await pause(org.timing.rest_record_ms * count)


async def collection_records(request: Request) -> tuple[list[dict[str, Any]], bool]:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise malformed_json("Expected a JSON object with a records array")
    records = body["records"]
    if len(records) > COLLECTION_LIMIT:
        raise SalesforceError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    return records, bool(body.get("allOrNone", False))


def record_type(org: Org, record: dict[str, Any], default: str | None = None) -> SObject:
    attributes = record.get("attributes") if isinstance(record, dict) else None
    name = attributes.get("type") if isinstance(attributes, dict) else default
    if not name:
        raise SalesforceError(
            400, "INVALID_TYPE", "When using composite sobjects, each record must specify its type"
        )
    sobject = org.schema.get(name)
    if sobject is None:
        raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
    return sobject


async def collections(request: Request) -> Response:
    org = org_of(request)
    if request.method == "DELETE":
        return await collection_delete(request, org)
    if request.method == "GET":
        raise not_found()
    records, all_or_none = await collection_records(request)
    await records_time(org, len(records))
    operation = "insert" if request.method == "POST" else "update"
    groups: dict[str, list[int]] = {}
    types: dict[str, SObject] = {}
    for index, rec in enumerate(records):
        sobject = record_type(org, rec)
        if operation == "insert" and isinstance(rec, dict) and ("id" in rec or "Id" in rec):
            pass  # the engine answers INVALID_FIELD_FOR_INSERT_UPDATE for this row
        groups.setdefault(sobject.name, []).append(index)
        types[sobject.name] = sobject
    requests_by_type = {
        name: WriteRequest(
            types[name],
            operation,
            records_frame([records[i] for i in indexes]),
            all_or_none=all_or_none,
            strict_types=True,
        )
        for name, indexes in groups.items()
    }
    return SalesforceJSON(run_collection(org, groups, requests_by_type, all_or_none, False))


def run_collection(
    org: Org,
    groups: dict[str, list[int]],
    requests_by_type: dict[str, WriteRequest],
    all_or_none: bool,
    with_created: bool,
) -> list[dict[str, Any]]:
    """Results in request order; allOrNone across several object types checks all first."""
    if all_or_none and len(groups) > 1:
        checks = {
            name: org.write(replace_request(req, dry_run=True))
            for name, req in requests_by_type.items()
        }
        if not all(outcome["success"].all() for outcome in checks.values()):
            return collect(groups, checks, with_created, rolled_back=True)
    outcomes = {name: org.write(req) for name, req in requests_by_type.items()}
    return collect(groups, outcomes, with_created, rolled_back=False)


def replace_request(request: WriteRequest, **changes: Any) -> WriteRequest:
    return WriteRequest(**{**request.__dict__, **changes})


def collect(
    groups: dict[str, list[int]],
    outcomes: dict[str, pl.DataFrame],
    with_created: bool,
    rolled_back: bool,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any] | None] = [None] * sum(len(v) for v in groups.values())
    for name, indexes in groups.items():
        for index, outcome in zip(indexes, outcomes[name].iter_rows(named=True), strict=True):
            results[index] = collection_item(outcome, with_created, rolled_back)
    return [r for r in results if r is not None]


def collection_item(
    outcome: dict[str, Any], with_created: bool, rolled_back: bool
) -> dict[str, Any]:
    if outcome["success"] and not rolled_back:
        item: dict[str, Any] = {"id": outcome["id"], "success": True, "errors": []}
        if with_created:
            item["created"] = bool(outcome["created"])
        return item
    if outcome["success"]:
        outcome = {
            **outcome,
            "code": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request "
            "was using AllOrNone header",
            "fields": [],
        }
    return {"success": False, "errors": outcome_errors(outcome)}


async def collection_upsert(request: Request) -> Response:
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    field = sobject.field(request.path_params["field"])
    if field is None or not field.is_matchable:
        raise SalesforceError(
            400,
            "INVALID_FIELD",
            f"Field name provided, {request.path_params['field']} is not an External ID or "
            f"indexed field for {sobject.name}",
        )
    if request.method == "GET":
        raise not_found()
    records, all_or_none = await collection_records(request)
    await records_time(org, len(records))
    for rec in records:
        if record_type(org, rec, sobject.name).name != sobject.name:
            raise SalesforceError(
                400, "INVALID_TYPE", f"Records must all be of type {sobject.name} for an upsert"
            )
    write = WriteRequest(
        sobject,
        "upsert",
        records_frame(records),
        external_id_field=field.name,
        all_or_none=all_or_none,
        strict_types=True,
    )
    groups = {sobject.name: list(range(len(records)))}
    return SalesforceJSON(run_collection(org, groups, {sobject.name: write}, all_or_none, True))


async def collection_delete(request: Request, org: Org) -> Response:
    raw = [i for i in request.query_params.get("ids", "").split(",") if i]
    if len(raw) > COLLECTION_LIMIT:
        raise SalesforceError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    await records_time(org, len(raw))
    all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
    groups: dict[str, list[int]] = {}
    requests_by_type: dict[str, WriteRequest] = {}
    bad: dict[int, dict[str, Any]] = {}
    for index, value in enumerate(raw):
        sobject = org.schema.by_prefix(value[:3])
        if sobject is None:
            bad[index] = {
                "success": False,
                "errors": [
                    {"statusCode": "MALFORMED_ID", "message": f"malformed id {value}", "fields": []}
                ],
            }
            continue
        groups.setdefault(sobject.name, []).append(index)
    for name, indexes in groups.items():
        ids = pl.DataFrame({"Id": [raw[i] for i in indexes]})
        requests_by_type[name] = WriteRequest(
            org.schema.get(name), "delete", ids, all_or_none=all_or_none
        )
    results = run_collection(org, groups, requests_by_type, all_or_none, False)
    ordered = iter(results)
    merged = [bad[i] if i in bad else next(ordered) for i in range(len(raw))]
    for item, value in zip(merged, raw, strict=True):
        item.setdefault("id", value)
    return SalesforceJSON(merged)


# -- query -----------------------------------------------------------------------------------


def page_size(request: Request) -> int:
    """Rows per page: 2,000, or what `Sforce-Query-Options: batchSize=N` asks for within
    the 200-2,000 Salesforce allows (it treats the size as a hint, so does the sandbox)."""
    options = request.headers.get("sforce-query-options", "")
    for option in options.split(","):
        name, _, value = option.partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return min(max(int(value), MIN_PAGE_SIZE), PAGE_SIZE)
    return PAGE_SIZE


def first_page(org: Org, request: Request, soql: str, include_deleted: bool) -> dict[str, Any]:
    """Run the query once; whatever does not fit on the first page waits behind a cursor."""
    compiled = org.compile(soql, include_deleted=include_deleted)
    if compiled.count_only:
        total = int(org.store.scalar(compiled.count_sql, compiled.params))
        return {"totalSize": total, "done": True, "records": []}
    rows = org.store.query(compiled.sql, compiled.params)
    size = page_size(request)
    if rows.height <= size:
        return query_page(org, compiled, rows, rows.height, None)
    cursor = org.cursors.add(session_of(request).user_id, compiled, rows)
    return query_page(org, compiled, rows.slice(0, size), rows.height, (cursor.locator, size))


def query_page(
    org: Org,
    compiled: CompiledQuery,
    page: pl.DataFrame,
    total: int,
    following: tuple[str, int] | None,
) -> dict[str, Any]:
    """One page of a query answer; `following` is the locator and offset of the next page."""
    result: dict[str, Any] = {"totalSize": total, "done": following is None}
    if following is not None:
        locator, offset = following
        result["nextRecordsUrl"] = f"/services/data/v{org.api_version}/query/{locator}-{offset}"
    result["records"] = render_query_rows(org, compiled, page)
    return result


def session_of(request: Request) -> Session:
    return request.scope["state"]["session"]


def render_query_rows(
    org: Org, compiled: CompiledQuery, page: pl.DataFrame
) -> list[dict[str, Any]]:
    """Query rows as Salesforce nests them: each parent is an object with its own attributes,
    or null when the lookup is empty. The page's instants and dates become text in one polars
    pass and each path's route through its parents is worked out once per page, so a page
    costs the org little more than its JSON (a real org's page cost does not grow with how the
    sandbox stores its records)."""
    sobject = compiled.sobject
    routes = [(path, parent_route(org, sobject, path)) for path in compiled.paths]
    records = []
    for row in json_columns(page).iter_rows(named=True):
        out: dict[str, Any] = {
            "attributes": {"type": sobject.name, "url": record_url(org, sobject, row["__id"])}
        }
        for path, route in routes:
            target: dict[str, Any] | None = out
            for part, parent, id_column in route:
                if part not in target:
                    parent_id = row[id_column]
                    target[part] = (
                        {
                            "attributes": {
                                "type": parent.name,
                                "url": record_url(org, parent, parent_id),
                            }
                        }
                        if parent_id is not None
                        else None
                    )
                target = target[part]
                if target is None:
                    break
            else:
                target[path.parts[-1]] = row[path.column]
        records.append(out)
    return records


def parent_route(org: Org, sobject: SObject, path: SelectPath) -> list[tuple[str, SObject, str]]:
    """Each relationship a selected path goes through: its name, the parent object and the
    column holding the parent's Id."""
    route = []
    current = sobject
    for depth, part in enumerate(path.parts[:-1]):
        current = org.schema.get(current.relationship(part).reference_to[0])
        route.append((part, current, parent_id_column(path.parts[: depth + 1])))
    return route


def json_columns(page: pl.DataFrame) -> pl.DataFrame:
    """The page with instants and dates as the JSON answer writes them (`json_value`)."""
    return page.with_columns(
        pl.col(pl.Datetime).dt.strftime(DATETIME_JSON), pl.col(pl.Date).dt.strftime("%Y-%m-%d")
    )


async def query(request: Request) -> Response:
    org = org_of(request)
    soql = request.query_params.get("q")
    if not soql:
        raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
    include_deleted = request.url.path.rstrip("/").endswith("queryAll")
    # Running a big query takes a while: other requests are answered meanwhile.
    answer = await asyncio.to_thread(first_page, org, request, soql, include_deleted)
    return SalesforceJSON(answer)


async def query_more(request: Request) -> Response:
    """A later page, cut from the cursor's snapshot. Any offset into it may be asked for
    again (a client retrying a page whose answer was lost gets the same rows)."""
    org = org_of(request)
    locator, _, offset_text = request.path_params["locator"].rpartition("-")
    if not offset_text.isdigit():
        raise invalid_locator()
    cursor = org.cursors.get(locator, session_of(request).user_id)
    offset = int(offset_text)
    if offset > cursor.total:
        raise invalid_locator()
    size = page_size(request)
    page = cursor.rows.slice(offset, size)
    end = offset + page.height
    following = (cursor.locator, end) if end < cursor.total else None
    answer = await asyncio.to_thread(query_page, org, cursor.query, page, cursor.total, following)
    return SalesforceJSON(answer)


# -- getUpdated / getDeleted -------------------------------------------------------------------


def window(request: Request, earliest: datetime, reach_days: float) -> tuple[datetime, datetime]:
    """The (start, end) of a getUpdated/getDeleted call, refused the way the org refuses
    it: a start older than the org keeps track of is INVALID_REPLICATION_DATE."""
    frame = pl.DataFrame(
        {"raw": [request.query_params.get("start"), request.query_params.get("end")]}
    )
    parsed = frame.select(parse_datetime(pl.col("raw")))["raw"].to_list()
    if None in parsed:
        raise SalesforceError(
            400,
            "INVALID_DATE_FORMAT",
            "start and end must be date-times in ISO 8601 form, e.g. 2024-01-31T10:00:00+00:00",
        )
    start, end = parsed
    if end < start:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", "start date must be before end date")
    if start < earliest:
        raise SalesforceError(
            400,
            "INVALID_REPLICATION_DATE",
            f"startDate cannot be more than {reach_days:g} days ago",
        )
    return start, min(end, utc_now())


async def updated(request: Request) -> Response:
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    start, end = window(request, utc_now() - timedelta(days=UPDATED_REACH_DAYS), UPDATED_REACH_DAYS)
    ids = org.store.query(
        f"SELECT Id FROM {quote(sobject.name)} WHERE NOT IsDeleted "
        "AND SystemModstamp >= ? AND SystemModstamp < ? ORDER BY SystemModstamp",
        [start, end],
    )["Id"].to_list()
    return SalesforceJSON({"ids": ids, "latestDateCovered": json_value(end)})


async def deleted(request: Request) -> Response:
    """Deletions still in the recycle bin. A window reaching back past the bin's retention,
    or past the last time it was emptied, cannot be answered: the org says
    INVALID_REPLICATION_DATE and the reader has to read the object again in full."""
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    retention = org.faults.config.deleted_retention_days
    bin_start = org.recycle_bin_start()
    start, end = window(request, bin_start, retention)
    emptied = org.store.recycle_bin_emptied_through(sobject)
    if emptied is not None and start <= emptied:
        raise SalesforceError(
            400,
            "INVALID_REPLICATION_DATE",
            "startDate is before the earliest date available, "
            f"{json_value(emptied)}: the recycle bin was emptied since",
        )
    earliest = max(bin_start, emptied) if emptied is not None else bin_start
    rows = org.store.query(
        f"SELECT Id, SystemModstamp FROM {quote(sobject.name)} WHERE IsDeleted "
        "AND SystemModstamp >= ? AND SystemModstamp < ? ORDER BY SystemModstamp",
        [start, end],
    )
    return SalesforceJSON(
        {
            "deletedRecords": [
                {"id": r["Id"], "deletedDate": json_value(r["SystemModstamp"])}
                for r in rows.iter_rows(named=True)
            ],
            "earliestDateAvailable": json_value(earliest),
            "latestDateCovered": json_value(end),
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/services/data", versions, methods=["GET"]),
        Route(V, resources, methods=["GET"]),
        Route(V + "/limits", limits, methods=["GET"]),
        Route(V + "/sobjects", global_describe, methods=["GET"]),
        Route(V + "/sobjects/{sobject}", sobject_basic, methods=["GET", "POST"]),
        Route(V + "/sobjects/{sobject}/describe", sobject_describe, methods=["GET"]),
        Route(V + "/sobjects/{sobject}/updated", updated, methods=["GET"]),
        Route(V + "/sobjects/{sobject}/deleted", deleted, methods=["GET"]),
        Route(V + "/sobjects/{sobject}/{record_id}", record, methods=["GET", "PATCH", "DELETE"]),
        Route(
            V + "/sobjects/{sobject}/{field}/{value:path}",
            by_external_id,
            methods=["GET", "PATCH", "DELETE"],
        ),
        Route(V + "/composite/sobjects", collections, methods=["GET", "POST", "PATCH", "DELETE"]),
        Route(
            V + "/composite/sobjects/{sobject}/{field}",
            collection_upsert,
            methods=["PATCH", "GET"],
        ),
        Route(V + "/query", query, methods=["GET"]),
        Route(V + "/queryAll", query, methods=["GET"]),
        Route(V + "/query/{locator}", query_more, methods=["GET"]),
        Route(V + "/queryAll/{locator}", query_more, methods=["GET"]),
    ]
