"""The Emarsys Smart Insight sales-data API as a Dagster resource: one POST, never retried.

Emarsys appends every upload and never de-duplicates, so the one thing this client must get
right is telling "nothing was stored" apart from "it may have been stored":

- `EmarsysUnreachable`: the connection was never made (DNS, refused, TLS handshake, connect
  timeout). No byte of the request left, so sending again is safe.
- `EmarsysRejected` (400/404/413/415) and `EmarsysLoginError` (401/403): the endpoint answered
  and refused the whole upload; nothing was stored.
- `EmarsysMaybeSent`: the request left but no usable answer came back (read timeout, connection
  dropped, a 5xx or any other unexpected status from something in between). Only a person
  looking at Emarsys can tell whether the lines arrived.

There are no automatic retries (the session is built fresh, with `max_retries=0`): a retry after
a lost answer is exactly how lines end up counted twice. The token appears only in the
Authorization header: it is kept out of the resource's repr and scrubbed from every message.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import requests
from pydantic import Field
from urllib3.exceptions import NewConnectionError

from resources.https import TrustingSession

REJECTED_STATUSES = frozenset({400, 404, 413, 415})
LOGIN_STATUSES = frozenset({401, 403})
SCRUBBED = "***"


class EmarsysLoginError(Exception):
    """401/403: the sales-data token (or merchant) is wrong; nothing was stored."""


class EmarsysRejected(Exception):
    """The endpoint refused the upload (400/404/413/415); nothing was stored."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Emarsys refused the upload (HTTP {status}): {message}")
        self.status = status
        self.message = message


class EmarsysUnreachable(Exception):
    """No connection was made, so nothing left this machine: safe to try again later."""


class EmarsysMaybeSent(Exception):
    """The request left but no answer came: the lines may or may not be in Emarsys."""


class EmarsysResource(dg.ConfigurableResource):
    """One Smart Insight account (merchant) and its sales-data API token."""

    token: str = Field(repr=False, description="Sales-data API token; use dg.EnvVar.")
    merchant_id: str = Field(description="The account's merchant id.")
    base_url: str = Field(default="https://admin.scarabresearch.com")
    ca_bundle: str | None = Field(default=None, description="CA bundle to trust, if private.")
    timeout_seconds: float = Field(
        default=120, description="Connect and read timeout; a read timeout means maybe sent."
    )

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/hapi/merchant/{self.merchant_id}/sales-data/api"

    def upload(self, body: bytes, *, gzipped: bool) -> str:
        """POST one CSV body; the 200 answer's text, or one of this module's exceptions."""
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "text/csv",
            "Accept": "text/plain",
        }
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        with TrustingSession(self.ca_bundle) as session:
            try:
                response = session.post(
                    self.url, data=body, headers=headers, timeout=self.timeout_seconds
                )
            except requests.RequestException as error:
                raise self._transport_error(error) from None
        return self._answer(response)

    def _answer(self, response: requests.Response) -> str:
        text = self._scrub(response.text.strip())
        status = response.status_code
        if status == 200:
            return text
        if status in LOGIN_STATUSES:
            raise EmarsysLoginError(
                f"Emarsys refused the sales-data API token (HTTP {status}: {text}). Check the "
                f"sales-data API token of merchant {self.merchant_id} (it is not the Contact "
                "API user/secret) and that the merchant id is right."
            )
        if status in REJECTED_STATUSES:
            raise EmarsysRejected(status, text)
        raise EmarsysMaybeSent(
            f"Emarsys answered HTTP {status} ({text[:300]}); the upload may or may not have "
            "been stored."
        )

    def _transport_error(self, error: requests.RequestException) -> Exception:
        text = self._scrub(str(error))
        if _never_connected(error):
            return EmarsysUnreachable(f"could not connect to {self.base_url}: {text}")
        return EmarsysMaybeSent(
            f"the upload to {self.base_url} was sent but no answer came ({type(error).__name__}: "
            f"{text}); it may or may not have been stored."
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, SCRUBBED) if self.token else text


def _never_connected(error: requests.RequestException) -> bool:
    """True only when the failure happened before the request could leave."""
    if isinstance(error, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        return any(isinstance(cause, NewConnectionError) for cause in _causes(error))
    return False


def _causes(error: BaseException) -> list[Any]:
    """The error, its args and `reason`s, recursively: requests wraps urllib3 wraps socket."""
    seen: list[Any] = []
    pending: list[Any] = [error]
    while pending and len(seen) < 20:
        item = pending.pop()
        seen.append(item)
        if isinstance(item, BaseException):
            pending.extend(arg for arg in item.args if isinstance(arg, BaseException))
            reason = getattr(item, "reason", None)
            if isinstance(reason, BaseException):
                pending.append(reason)
    return seen
