"""Endpoints outside `/services` that tests and the demo use to steer and inspect the org:
faults, API call counts, sessions and the records themselves. They spend no API calls."""

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
from sf_sandbox.rest import json_value, records_frame
from sf_sandbox.store import quote
from sf_sandbox.writes import WriteRequest


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
    """Every record of an object (GET), or records seeded without spending API calls (POST)."""
    org = org_of(request)
    sobject = org.sobject(request.path_params["sobject"])
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
        Route("/__admin/calls", calls, methods=["GET"]),
        Route("/__admin/sessions/expire", expire_sessions, methods=["POST"]),
        Route("/__admin/records/{sobject}", records, methods=["GET", "POST"]),
        Route("/__admin/records/{sobject}/count", record_count, methods=["GET"]),
        Route("/__admin/records/{sobject}/csv", seed_csv, methods=["POST"]),
    ]
