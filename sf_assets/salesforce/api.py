"""Every HTTP call sf-assets makes to Salesforce: authenticated, counted, retried and scrubbed.

Calls go through simple-salesforce's logged-in session (which trusts the org's CA and has a
timeout) with raw Bulk 2.0 and REST paths, so that reads and writes control formatting, results
and retries themselves. A response hook counts the calls this piece of work made, which reports show and
the benchmark checks. Error texts have every secret masked before they reach a log or an
exception, whatever the server chose to echo.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import requests
from simple_salesforce import Salesforce

from resources.salesforce import SECRET_FIELDS, SalesforceResource
from sf_assets.salesforce.errors import OutcomeUnknown, SalesforceApiError
from sf_assets.salesforce.options import ApiOptions
from sf_assets.salesforce.retry import policy

TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
)
MASK = "***"


class Api:
    """One piece of work's view of the org (a write, a read). Logs in lazily: a write with
    nothing to send calls nothing."""

    def __init__(
        self, salesforce: SalesforceResource, log: logging.Logger, options: ApiOptions
    ) -> None:
        self.salesforce = salesforce
        self.log = log
        self.options = options
        self.calls = 0
        self.usage: str | None = None  # the last Sforce-Limit-Info seen, e.g. api-usage=18/15000
        self._client: Salesforce | None = None
        # The threads whose calls are this piece of work's: the client's session is shared
        # with other work in the process, so the response hook counts only these.
        self._threads = {threading.get_ident()}
        self._lock = threading.RLock()
        self._hooked: list[requests.Session] = []
        self._session_ids: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        for session in self._hooked:
            if self._count in session.hooks["response"]:
                session.hooks["response"].remove(self._count)
        self._hooked.clear()

    @property
    def client(self) -> Salesforce:
        with self._lock:
            if self._client is None:
                self._use(self.salesforce.client())
            assert self._client is not None
            return self._client

    def _use(self, client: Salesforce) -> None:
        self._client = client
        self._session_ids.append(client.session_id)
        if client.session not in self._hooked:
            client.session.hooks["response"].append(self._count)
            self._hooked.append(client.session)

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if threading.get_ident() in self._threads:
            with self._lock:
                self.calls += 1
                self.usage = response.headers.get("Sforce-Limit-Info", self.usage)

    @contextmanager
    def threads(self, workers: int) -> Iterator[ThreadPoolExecutor]:
        """A pool for calls made side by side, counted as this piece of work's."""
        adopted: set[int] = set()

        def adopt() -> None:
            with self._lock:
                adopted.add(threading.get_ident())
                self._threads.add(threading.get_ident())

        try:
            with ThreadPoolExecutor(workers, "sf-call", initializer=adopt) as pool:
                yield pool
        finally:
            with self._lock:
                self._threads -= adopted

    def query(self, soql: str, *, include_deleted: bool = False) -> requests.Response:
        """One REST query call (a queryAll with `include_deleted`): its first page."""
        resource = "queryAll" if include_deleted else "query"
        return self.call("GET", f"{resource}?q={quote(soql, safe='')}", idempotent=True)

    def query_count(self, soql: str, *, include_deleted: bool = False) -> int:
        """The answer of a `SELECT COUNT()` query."""
        return int(self.query(soql, include_deleted=include_deleted).json()["totalSize"])

    def query_records(self, soql: str) -> Iterator[dict[str, Any]]:
        """Every record a REST query returns, page after page."""
        answer = self.query(soql).json()
        while True:
            yield from answer["records"]
            if not answer.get("nextRecordsUrl"):
                return
            answer = self.call("GET", answer["nextRecordsUrl"], idempotent=True).json()

    def relogin(self, stale: str | None = None) -> None:
        """Log in again, unless another call already replaced the `stale` session."""
        with self._lock:
            if stale is not None and self._client and self._client.session_id != stale:
                return
            self.log.warning("Salesforce session expired or was revoked; logging in again")
            self._use(self.salesforce.fresh_client())

    # -- calls ------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """`path` is relative to the REST base (`composite/sobjects`) or absolute
        (`/services/data/...`). Retries passing faults; raises SalesforceApiError for an error
        answer and OutcomeUnknown when the answer was lost on a call that is unsafe to repeat."""
        what = f"{method} {path.split('?')[0]}"
        retrying = policy(self.options, idempotent=idempotent, log=self.log, what=lambda: what)
        return retrying(self._once, method, path, what, idempotent, json, data, headers or {})

    def _once(
        self,
        method: str,
        path: str,
        what: str,
        idempotent: bool,
        json: Any,
        data: bytes | None,
        headers: dict[str, str],
    ) -> requests.Response:
        client = self.client
        url = self._url(client, path)
        auth = {"Authorization": f"Bearer {client.session_id}"}
        try:
            response = client.session.request(
                method, url, json=json, data=data, headers={**auth, **headers}
            )
        except TRANSPORT_ERRORS as error:
            raise OutcomeUnknown(
                self.scrub(f"{what}: the answer was lost ({type(error).__name__})")
            ) from None
        if response.status_code < 300 or response.status_code == 304:  # 304: conditional GET
            return response
        if not idempotent and response.status_code in (500, 502, 504):
            # a server error after the request arrived: it may have been acted on
            raise OutcomeUnknown(f"{what}: HTTP {response.status_code}, outcome unknown")
        error = self._error(response, what)
        if error.code == "INVALID_SESSION_ID":
            self.relogin(stale=client.session_id)
        raise error

    def _url(self, client: Salesforce, path: str) -> str:
        if path.startswith("/"):
            return f"https://{client.sf_instance}{path}"
        return client.base_url + path

    def _error(self, response: requests.Response, what: str) -> SalesforceApiError:
        code, message = "UNKNOWN", response.text[:500]
        try:
            body = response.json()
        except ValueError:
            body = None
        first = body[0] if isinstance(body, list) and body else body
        if isinstance(first, dict):
            code = str(first.get("errorCode") or first.get("error") or code)
            message = str(first.get("message") or first.get("error_description") or "")
        return SalesforceApiError(response.status_code, self.scrub(code), self.scrub(message), what)

    def secrets(self) -> list[str]:
        """The session ids and configured secrets, longest first."""
        found = [getattr(self.salesforce, name, None) for name in SECRET_FIELDS]
        if self.salesforce.password and self.salesforce.security_token:
            found.append(self.salesforce.password + self.salesforce.security_token)
        found += self._session_ids
        return sorted({s for s in found if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """`text` with every secret masked."""
        for secret in self.secrets():
            text = text.replace(secret, MASK)
        return text
