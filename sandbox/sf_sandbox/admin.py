"""Endpoints outside `/services` that tests and the demo use to steer and inspect the org:
faults, timing, API call counts, sessions and the records themselves. They spend no API calls
and take no modelled time."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sf_sandbox.app import SalesforceJSON, org_of
from sf_sandbox.errors import SalesforceError
from sf_sandbox.faults import FaultConfig
from sf_sandbox.org import Org
from sf_sandbox.rest import json_value, records_frame
from sf_sandbox.schema import SObject
from sf_sandbox.store import quote
from sf_sandbox.timing import Timing
from sf_sandbox.values import parse_column
from sf_sandbox.writes import WriteRequest, normalize_ids


async def faults(request: Request) -> Response:
    org = org_of(request)
    if request.method in ("PUT", "PATCH"):
        try:
            changes = json.loads(await request.body() or b"{}")
            base = org.faults.config.model_dump() if request.method == "PATCH" else {}
            org.faults.replace(FaultConfig.model_validate({**base, **changes}))
        except (json.JSONDecodeError, ValidationError, TypeError) as error:
            raise SalesforceError(400, "INVALID_FAULTS", str(error)) from None
    return SalesforceJSON(org.faults.config.model_dump())


async def timing(request: Request) -> Response:
    """The timing model: PUT replaces it (a profile name, or fields on top of `profile`,
    realistic when unnamed), PATCH changes the fields it names."""
    org = org_of(request)
    if request.method in ("PUT", "PATCH"):
        try:
            setting = json.loads(await request.body() or b"{}")
            base = org.timing if request.method == "PATCH" else None
            org.timing = Timing.from_setting(setting, base=base)
        except (json.JSONDecodeError, ValidationError, ValueError, TypeError) as error:
            raise SalesforceError(400, "INVALID_TIMING", str(error)) from None
    return SalesforceJSON(org.timing.model_dump())


async def calls(request: Request) -> Response:
    org = org_of(request)
    return SalesforceJSON(
        {
            "total": org.api_calls_used,
            "by_resource": dict(org.calls_by_path),
            "in_flight": org.in_flight,
            "sessions": len(org.sessions),
        }
    )


async def expire_sessions(request: Request) -> Response:
    return SalesforceJSON({"expired": org_of(request).expire_sessions()})


async def records(request: Request) -> Response:
    """Every record of an object (GET), records seeded without spending API calls (POST), or
    fields of existing records set as they are, system fields included (PATCH)."""
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    if request.method == "PATCH":
        try:
            body = json.loads(await request.body() or b"[]")
        except json.JSONDecodeError as error:
            raise patch_error(f"{sobject.name}: the body is not JSON ({error})") from None
        return SalesforceJSON({"updated": patch_records(org, sobject, body)})
    if request.method == "POST":
        body = json.loads(await request.body() or b"[]")
        outcome = org.write(WriteRequest(sobject, "insert", records_frame(body)))
        return SalesforceJSON(
            [{k: v for k, v in row.items() if k != "type_error"} for row in outcome.to_dicts()]
        )
    deleted = request.query_params.get("include_deleted", "false").lower() == "true"
    where = "" if deleted else " WHERE NOT IsDeleted"
    frame = org.store.query(f"SELECT * FROM {quote(sobject.name)}{where} ORDER BY Id")
    return SalesforceJSON([_jsonable(row) for row in frame.iter_rows(named=True)])


def patch_records(org: Org, sobject: SObject, body: Any) -> int:
    """Set fields of existing records exactly as given: `SystemModstamp`, `CreatedDate`,
    `IsDeleted` and the like included, and no new SystemModstamp stamped, so a test can give
    records one shared timestamp or age a deletion. Nothing derived is recomputed. Every
    value is checked before anything is written; a bad one names its record and field."""
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
        raise patch_error(f"{sobject.name}: the body must be a JSON list of objects with an Id")
    if not body:
        return 0
    frame = records_frame(body)
    names = {column: sobject.field(column) for column in frame.columns}
    unknown = [column for column, field in names.items() if field is None]
    if unknown:
        raise patch_error(f"{sobject.name} has no field {', '.join(unknown)}")
    id_column = next((c for c, f in names.items() if f.name == "Id"), None)
    if id_column is None:
        raise patch_error(f"{sobject.name}: every record needs its Id")
    raw_ids = frame[id_column]
    ids = normalize_ids(raw_ids)
    for index, (raw, record_id) in enumerate(zip(raw_ids, ids, strict=True)):
        if record_id is None:
            raise patch_error(f"{sobject.name} record {index}: {raw!r} is not an Id")
    if ids.is_duplicated().any():
        twice = ids.filter(ids.is_duplicated()).unique().to_list()
        raise patch_error(f"{sobject.name}: records {', '.join(twice)} are listed twice")
    existing = org.store.find(sobject, "Id", ids, case_insensitive=False)["Id"]
    missing = ids.filter(~ids.is_in(existing.implode()))
    if missing.len():
        raise patch_error(f"{sobject.name} has no record {', '.join(missing.to_list())}")
    columns: dict[str, pl.Series] = {"Id": ids}
    for column, field in names.items():
        if field.name == "Id":
            continue
        parsed = parse_column(frame[column], field)
        if parsed.type_error.any():
            index = int(parsed.type_error.arg_true()[0])
            raise patch_error(
                f"{sobject.name} record {index} (Id {ids[index]}): {field.name}: "
                f"{frame[column][index]!r} is not a {field.type}"
            )
        columns[field.name] = parsed.values
        columns["__null__" + field.name] = parsed.set_null
    fields = [f.name for f in names.values() if f.name != "Id"]
    with org.store.transaction():
        org.store.update(sobject, pl.DataFrame(columns), fields, stamp=False)
    return len(body)


def patch_error(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALID_PATCH", message + "; nothing was changed")


async def purge(request: Request) -> Response:
    """Empty the object's recycle bin: its deleted records are gone for good, from queryAll
    and from getDeleted alike."""
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    return SalesforceJSON({"purged": org.store.empty_recycle_bin(sobject)})


async def record_count(request: Request) -> Response:
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    return SalesforceJSON({"count": org.store.count(sobject)})


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: json_value(value) for key, value in row.items()}


async def seed_csv(request: Request) -> Response:
    """Load a large CSV straight into an object (benchmarks seed a million records this way)."""
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
    frame = pl.read_csv(await request.body(), infer_schema=False)
    outcome = org.write(WriteRequest(sobject, "insert", frame))
    return SalesforceJSON(
        {"created": int(outcome["success"].sum()), "failed": int((~outcome["success"]).sum())}
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/__admin/faults", faults, methods=["GET", "PUT", "PATCH"]),
        Route("/__admin/timing", timing, methods=["GET", "PUT", "PATCH"]),
        Route("/__admin/calls", calls, methods=["GET"]),
        Route("/__admin/sessions/expire", expire_sessions, methods=["POST"]),
        Route("/__admin/records/{sobject}", records, methods=["GET", "POST", "PATCH"]),
        Route("/__admin/records/{sobject}/purge", purge, methods=["POST"]),
        Route("/__admin/records/{sobject}/count", record_count, methods=["GET"]),
        Route("/__admin/records/{sobject}/csv", seed_csv, methods=["POST"]),
    ]
