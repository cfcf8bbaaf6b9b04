"""The HTTP face of the org: one Starlette app, and the gateway every API call passes through.

The gateway does what Salesforce's front door does before an endpoint runs: it checks the
session, spends a call of the daily allocation, applies the configured faults, waits the
timing model's base latency, and stamps `Sforce-Limit-Info` on the answer. Endpoints only raise
`SalesforceError`; nothing else ever reaches a client as a stack trace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sf_sandbox.errors import SalesforceError
from sf_sandbox.faults import HoldAnswers
from sf_sandbox.org import Org
from sf_sandbox.timing import pause

log = logging.getLogger("sandbox")
JSON_TYPE = "application/json;charset=UTF-8"
GUARDED_PREFIXES = ("/services/data/v", "/services/async/")
SALESFORCE_PREFIX = "/services/"  # logins and the Metadata API too: all answer with latency
SUPPORTED_VERSIONS = frozenset(f"{v}.0" for v in range(31, 63))
HOLD_POLL_SECONDS = 0.02


class SalesforceJSON(JSONResponse):
    media_type = "application/json"

    def init_headers(self, headers: Any = None) -> None:
        super().init_headers(headers)
        self.raw_headers = [
            (k, v) if k != b"content-type" else (k, JSON_TYPE.encode()) for k, v in self.raw_headers
        ]

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_response(error: SalesforceError) -> Response:
    headers = {"WWW-Authenticate": "Token"} if error.status == 401 else None
    return SalesforceJSON(error.body(), status_code=error.status, headers=headers)


class LostResponse(Exception):
    """Raised after an answer's headers went out, so the client sees the connection break."""


class Gateway:
    """ASGI middleware in front of the Salesforce API routes."""

    def __init__(self, app: ASGIApp, org: Org) -> None:
        self.app = app
        self.org = org

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/")}
            path = scope["path"]
        if not path.startswith(GUARDED_PREFIXES):
            if path.startswith(SALESFORCE_PREFIX):
                await pause(self.org.timing.rest_call_ms)
            await self.app(scope, receive, send)
            return
        await self.guarded(scope, receive, send)

    async def guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A call holds a slot from arrival to answer, so added latency makes calls overlap
        the way long-running requests do in a real org."""
        org = self.org
        org.in_flight += 1
        try:
            error = self.refusal(scope, org.faults.config.concurrent_request_limit)
            await pause(org.faults.config.latency_ms + org.timing.rest_call_ms)
            if error is not None:
                await self.answer(error_response(error), scope, receive, send)
                return
            await self.app(scope, receive, self.stamped(send, scope))
        finally:
            org.in_flight -= 1

    def refusal(self, scope: Scope, limit: int | None) -> SalesforceError | None:
        """The reason this call is refused before any endpoint runs, if any."""
        org = self.org
        version = (
            scope["path"].split("/")[3][1:]
            if scope["path"].startswith("/services/data/v")
            else None
        )
        if version is not None and version not in SUPPORTED_VERSIONS:
            return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        headers = dict(scope["headers"])
        authorization = (
            headers.get(b"authorization") or headers.get(b"x-sfdc-session") or b""
        ).decode()
        if authorization and " " not in authorization:
            authorization = "Bearer " + authorization
        try:
            session = org.session_for(authorization)
            if limit is not None and org.in_flight > limit:
                return SalesforceError(
                    403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."
                )
            org.count_call(session, scope["path"])
        except SalesforceError as error:
            return error
        if org.faults.server_unavailable():
            return SalesforceError(503, "SERVER_UNAVAILABLE", "Server Unavailable")
        scope.setdefault("state", {})["session"] = session
        return None

    def stamped(self, send: Send, scope: Scope) -> Send:
        """Add Sforce-Limit-Info to the answer, or break it off when a fault says so."""
        lose = self.org.faults.lose_response(scope["method"], scope["path"])
        hold = self.org.faults.hold_rule(scope["method"], scope["path"])

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                if hold is not None:
                    await self.held_back(hold)
                headers = list(message.get("headers", []))
                headers.append((b"sforce-limit-info", self.org.limit_info().encode()))
                message = {**message, "headers": headers}
                if lose:  # promise a body that never comes, then hang up
                    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                    headers.append((b"content-length", b"1048576"))
                    # (a 204 or 304 may carry no body, so those would look complete)
                    await send({**message, "status": 200, "headers": headers})
                    raise LostResponse(scope["path"])
            await send(message)

        return wrapped

    async def held_back(self, rule: HoldAnswers) -> None:
        """Wait until the rule is cleared or replaced by one for other calls."""
        rule.held += 1
        try:
            while self.org.faults.config.hold_answers is rule:
                await asyncio.sleep(HOLD_POLL_SECONDS)
        finally:
            rule.held -= 1

    async def answer(self, response: Response, scope: Scope, receive: Receive, send: Send) -> None:
        if response.status_code not in (401, 404):  # refused before anything was spent
            response.headers["Sforce-Limit-Info"] = self.org.limit_info()
        await response(scope, receive, send)


async def on_salesforce_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, SalesforceError)
    return error_response(error)


async def on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        return error_response(
            SalesforceError(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{request.method}' not allowed. Allowed are "
                f"{(error.headers or {}).get('Allow', 'GET')}",
            )
        )
    return error_response(
        SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
    )


async def on_unexpected(request: Request, error: Exception) -> Response:
    if isinstance(error, LostResponse):
        raise error
    error_id = f"{secrets.randbelow(10**9)}-{secrets.randbelow(10**6)} ({secrets.randbelow(10**9)})"
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return error_response(
        SalesforceError(
            500,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact "
            f"support: {error_id}",
        )
    )


def routes() -> list[BaseRoute]:
    # Imported here: the endpoint modules use this module's response helpers.
    from sf_sandbox import admin, auth, bulk, emarsys, metadata, rest

    return [
        *auth.routes(),
        *metadata.routes(),
        *rest.routes(),
        *bulk.routes(),
        *emarsys.routes(),
        *admin.routes(),
    ]


def create_app(org: Org) -> ASGIApp:
    app = Starlette(
        routes=routes(),
        exception_handlers={
            SalesforceError: on_salesforce_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
    )
    app.state.org = org
    app.router.redirect_slashes = False
    return Gateway(app, org)


def org_of(request: Request) -> Org:
    return request.app.state.org
