"""Send simple-salesforce's login traffic to a login server that is not a salesforce.com host.

simple-salesforce builds every login URL as `https://{domain}.salesforce.com/…`, so on its own it
can only log in to Salesforce's public login servers. A local sandbox org, or a proxy in front of
Salesforce, is reached by mounting `LoginRerouteAdapter` on the client's requests session: it
rewrites requests for salesforce.com hosts onto the configured login server, path and query
unchanged. After login, simple-salesforce talks to the instance URL the server answered with,
which needs no rewriting.

This module is also the one place allowed to reach into simple-salesforce's internals (the
Metadata API's private zeep transport), so that a library upgrade has a single file to check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.metadata import SfdcMetadataApi

SALESFORCE_DOMAIN = "salesforce.com"


def is_salesforce_host(host: str | None) -> bool:
    """Hosts simple-salesforce builds for logins: `login.`, `test.`, `acme.my.salesforce.com`."""
    host = (host or "").lower().rstrip(".")
    return host == SALESFORCE_DOMAIN or host.endswith("." + SALESFORCE_DOMAIN)


def login_server(login_url: str) -> SplitResult:
    """The scheme, host and port of a login URL; anything after them is ignored."""
    parts = urlsplit(login_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"login_url must look like https://host[:port], got {login_url!r}")
    return parts


def reroute(url: str, target: SplitResult) -> str:
    """`url` moved onto `target`'s scheme, host and port when it is meant for Salesforce's
    login servers or for the target itself (so an `http://` target is reached over http)."""
    parts = urlsplit(url)
    if not (is_salesforce_host(parts.hostname) or parts.netloc == target.netloc):
        return url
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


class LoginRerouteAdapter(HTTPAdapter):
    """An `HTTPAdapter` for `https://` that points salesforce.com requests at `login_url`."""

    def __init__(self, login_url: str, **kwargs: Any) -> None:
        self.target = login_server(login_url)
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        rerouted = reroute(request.url or "", self.target)
        if rerouted != request.url:
            request = request.copy()
            request.url = rerouted
        return super().send(request, **kwargs)


def share_session_with_metadata_api(api: SfdcMetadataApi, session: requests.Session) -> None:
    """Make `sf.mdapi` use `session` (CA bundle, timeouts, rerouting) like the rest of the client.

    simple-salesforce hands its session to every API except the Metadata API, whose zeep client
    builds a private one; without this, Metadata calls ignore `ca_bundle` and fail TLS against a
    private CA.
    """
    api._client.transport.session = session
