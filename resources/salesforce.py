"""The Salesforce org as a Dagster resource: the one place that knows how to log in.

Every login flow sf-assets supports goes through simple-salesforce's own login code where it has
one, so behaviour matches what its users know; only the refresh-token flow, which it lacks, is a
single token request here. Secrets (password, security token, client secret, refresh token,
session id) are kept out of the resource's repr and scrubbed from every error this module raises,
because run logs and the Dagster UI show both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import requests
from pydantic import Field, PrivateAttr
from simple_salesforce import Salesforce, SalesforceAuthenticationFailed
from simple_salesforce.metadata import SfdcMetadataApi

from resources.https import TrustingSession
from resources.login_reroute import (
    LoginRerouteAdapter,
    is_salesforce_host,
    login_server,
    share_session_with_metadata_api,
)

AuthFlow = Literal["password", "client_credentials", "jwt", "refresh_token", "session"]
SECRET_FIELDS = ("password", "security_token", "client_secret", "refresh_token", "session_id")
# simple-salesforce refuses the client credentials flow on the `login`/`test` domains, which is
# right for Salesforce (it needs My Domain) but moot when the login is rerouted anyway.
REROUTED_CLIENT_CREDENTIALS_DOMAIN = "rerouted.my"

LOGIN_ADVICE = {
    "LOGIN_MUST_USE_SECURITY_TOKEN": (
        "The password was right but this network is not trusted: append the security token to "
        "the password by setting security_token (Settings → Reset My Security Token emails a "
        "new one), or add this IP range to the org's trusted IP ranges."
    ),
    "INVALID_LOGIN": (
        "Check username, password and security_token (resetting the password also resets the "
        "token), and that the user is not locked out or frozen."
    ),
    "invalid_client_id": (
        "The connected app's consumer key (client_id) is unknown to this login server: copy it "
        "again from Setup → App Manager → View, and check that login_url is the org that owns "
        "the app."
    ),
    "invalid_client": (
        "The connected app's consumer key and secret do not match: copy client_secret again "
        "from Setup → App Manager → Manage Consumer Details."
    ),
    "unsupported_grant_type": (
        "This login server does not offer this flow: check login_url and the connected app's "
        "OAuth settings."
    ),
}
INVALID_GRANT_ADVICE: dict[str, str] = {
    "password": (
        "Check username, password and security_token, and that the user is allowed to use the "
        "connected app (pre-authorized profile or permission set)."
    ),
    "client_credentials": (
        "Check the connected app's consumer key and secret, that the client credentials flow is "
        "enabled, and that it has a Run As user."
    ),
    "jwt": (
        "Check the connected app's consumer key, that the certificate uploaded to the app "
        "matches private_key_file, that the user is pre-authorized for the app (admin approved "
        "users), that login_url is login, test or your My Domain, and that this machine's clock "
        "is right."
    ),
    "refresh_token": (
        "The refresh token is expired or revoked, or belongs to another connected app: authorize "
        "the app again to get a new one, and check the app's refresh token policy and client_id."
    ),
}


class SalesforceLoginError(Exception):
    """A login that failed, with what to do about it; never carries a secret."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TimedSession(TrustingSession):
    """A session that trusts its CA bundle and never waits forever.

    simple-salesforce passes no timeout and zeep passes `None`, so without a default a hung
    connection would stall a run until Dagster kills it.
    """

    def __init__(self, timeout: float, ca_bundle: str | None) -> None:
        super().__init__(ca_bundle)
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


class SalesforceClient(Salesforce):
    """simple-salesforce's client, with a Metadata API that shares its HTTP session."""

    @property
    def mdapi(self) -> SfdcMetadataApi:
        api = super().mdapi
        share_session_with_metadata_api(api, self.session)
        return api


@dataclass(frozen=True)
class LoginTarget:
    """Where logins go: simple-salesforce's `domain`, and whether requests must be rerouted."""

    url: str
    domain: str
    rerouted: bool

    @classmethod
    def parse(cls, login_url: str) -> LoginTarget:
        parts = login_server(login_url.strip())
        url = f"{parts.scheme}://{parts.netloc}"
        host = (parts.hostname or "").lower()
        if is_salesforce_host(host) and host != "salesforce.com":
            return cls(url, host.removesuffix(".salesforce.com"), rerouted=False)
        return cls(url, "login", rerouted=True)


def secret_field(description: str) -> Any:
    return Field(default=None, repr=False, description=description)


class SalesforceResource(dg.ConfigurableResource):
    """A Salesforce org, logged in with one of five flows (`auth_flow`).

    * `password`: username + password + security_token over SOAP, or, when client_id and
      client_secret are set, the OAuth username-password flow of that connected app.
    * `client_credentials`: client_id + client_secret of a connected app with a Run As user;
      needs the org's My Domain as login_url.
    * `jwt`: username + client_id + private_key_file (the app holds the certificate).
    * `refresh_token`: client_id (+ client_secret if the app requires it) + refresh_token.
    * `session`: an existing session_id + instance_url; cannot log in again by itself.

    Fill secrets with `dg.EnvVar(...)` so they stay out of code and run configuration.
    """

    auth_flow: AuthFlow = Field(default="password", description="How to log in.")
    login_url: str = Field(
        default="https://login.salesforce.com",
        description="https://login.salesforce.com, https://test.salesforce.com, a My Domain "
        "such as https://acme.my.salesforce.com, or another login server (a proxy, a local "
        "sandbox org) that logins are rerouted to.",
    )
    username: str | None = Field(default=None, description="The integration user's username.")
    password: str | None = secret_field("The user's password, without the security token.")
    security_token: str | None = secret_field("The user's security token.")
    client_id: str | None = Field(default=None, description="The connected app's consumer key.")
    client_secret: str | None = secret_field("The connected app's consumer secret.")
    private_key_file: str | None = Field(
        default=None, description="PEM private key whose certificate the connected app holds."
    )
    refresh_token: str | None = secret_field("A refresh token issued to the connected app.")
    session_id: str | None = secret_field("An existing session id (access token).")
    instance_url: str | None = Field(default=None, description="The session's instance URL.")
    api_version: str = Field(default="59.0", description="REST API version, without the v.")
    ca_bundle: str | None = Field(
        default=None,
        description="PEM bundle of a private CA to trust, e.g. a corporate proxy's or a local "
        "sandbox org's.",
    )
    timeout_seconds: float = Field(default=120, description="Timeout of every HTTP request.")

    _client: Salesforce | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def client(self) -> Salesforce:
        """A logged-in client, made on first use and shared after that."""
        with self._lock:
            if self._client is None:
                self._client = self._login()
            return self._client

    def fresh_client(self) -> Salesforce:
        """A client from a new login, e.g. after INVALID_SESSION_ID; later `client()` calls
        return it too."""
        client = self._login()
        with self._lock:
            self._client = client
        return client

    # -- logging in ------------------------------------------------------------------------

    def _login(self) -> Salesforce:
        target = self._target()
        session = self._http_session(target)
        try:
            return LOGINS[self.auth_flow](self, session, target)
        except SalesforceAuthenticationFailed as failure:
            raise self._refusal(str(failure.code), failure.auth_message, target) from None
        except requests.exceptions.SSLError:
            raise self._error(
                f"TLS verification failed talking to {target.url}: if it uses a private CA "
                "(a corporate proxy, a sandbox org), point ca_bundle at that CA's PEM file."
            ) from None
        except requests.exceptions.RequestException as error:
            raise self._error(
                f"Could not reach {target.url} to log in ({type(error).__name__}): check "
                "login_url and network access."
            ) from None

    def _target(self) -> LoginTarget:
        try:
            return LoginTarget.parse(self.login_url)
        except ValueError as error:
            raise self._error(str(error)) from None

    def _http_session(self, target: LoginTarget) -> TimedSession:
        session = TimedSession(self.timeout_seconds, self.ca_bundle)
        if target.rerouted:
            session.mount("https://", LoginRerouteAdapter(target.url))
        return session

    def _require(self, *names: str) -> None:
        absent = [name for name in names if not getattr(self, name)]
        if absent:
            raise self._error(
                f"auth_flow '{self.auth_flow}' needs {', '.join(names)}; missing: "
                f"{', '.join(absent)}."
            )

    def _password_login(self, session: requests.Session, target: LoginTarget) -> Salesforce:
        self._require("username", "password")
        common = {"session": session, "domain": target.domain, "version": self.api_version}
        if self.client_id or self.client_secret:
            self._require("client_id", "client_secret")
            return SalesforceClient(
                username=self.username,
                password=(self.password or "") + (self.security_token or ""),
                consumer_key=self.client_id,
                consumer_secret=self.client_secret,
                **common,
            )
        return SalesforceClient(
            username=self.username,
            password=self.password,
            security_token=self.security_token or "",
            **common,
        )

    def _client_credentials_login(
        self, session: requests.Session, target: LoginTarget
    ) -> Salesforce:
        self._require("client_id", "client_secret")
        domain = REROUTED_CLIENT_CREDENTIALS_DOMAIN if target.rerouted else target.domain
        if domain in ("login", "test"):
            raise self._error(
                "The client credentials flow needs the org's My Domain as login_url "
                "(https://<your-domain>.my.salesforce.com); login and test do not offer it."
            )
        return SalesforceClient(
            consumer_key=self.client_id,
            consumer_secret=self.client_secret,
            domain=domain,
            session=session,
            version=self.api_version,
        )

    def _jwt_login(self, session: requests.Session, target: LoginTarget) -> Salesforce:
        self._require("username", "client_id", "private_key_file")
        if not Path(self.private_key_file or "").is_file():
            raise self._error(f"private_key_file {self.private_key_file} does not exist.")
        # The assertion's audience must be login or test; a My Domain is only where it is sent.
        sandbox = target.domain == "test" or target.domain.endswith(".sandbox.my")
        audience = "test" if sandbox else "login"
        return SalesforceClient(
            username=self.username,
            consumer_key=self.client_id,
            privatekey_file=self.private_key_file,
            domain=audience,
            instance_url=None if target.domain == audience else target.domain,
            session=session,
            version=self.api_version,
        )

    def _refresh_token_login(self, session: requests.Session, target: LoginTarget) -> Salesforce:
        """simple-salesforce has no refresh-token flow: one token request, then a session."""
        self._require("client_id", "refresh_token")
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "refresh_token": self.refresh_token,
        }
        if self.client_secret:
            form["client_secret"] = self.client_secret
        response = session.post(f"{target.url}/services/oauth2/token", data=form)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            raise SalesforceAuthenticationFailed(
                body.get("error", response.status_code), body.get("error_description", "")
            )
        return SalesforceClient(
            session_id=body["access_token"],
            instance_url=body["instance_url"],
            session=session,
            version=self.api_version,
        )

    def _session_login(self, session: requests.Session, target: LoginTarget) -> Salesforce:
        self._require("session_id", "instance_url")
        return SalesforceClient(
            session_id=self.session_id,
            instance_url=self.instance_url,
            session=session,
            version=self.api_version,
        )

    # -- errors ------------------------------------------------------------------------------

    def _refusal(self, code: str, message: str, target: LoginTarget) -> SalesforceLoginError:
        """The login server's refusal, translated into what to check."""
        advice = LOGIN_ADVICE.get(code)
        if code == "invalid_grant":
            advice = INVALID_GRANT_ADVICE.get(self.auth_flow)
        who = f" as {self.username}" if self.username else ""
        text = f"Salesforce refused the {self.auth_flow} login{who} at {target.url} ({code})"
        detail = advice if advice else f"Salesforce said: {message}"
        return self._error(f"{text}. {detail}", code)

    def _error(self, message: str, code: str | None = None) -> SalesforceLoginError:
        return SalesforceLoginError(self._scrub(message), code)

    def _scrub(self, text: str) -> str:
        """`text` with every configured secret masked, whatever a server chose to echo."""
        secrets = [getattr(self, name) for name in SECRET_FIELDS]
        if self.password and self.security_token:
            secrets.append(self.password + self.security_token)
        for secret in sorted((s for s in secrets if s), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


LOGINS: dict[str, Callable[[SalesforceResource, requests.Session, LoginTarget], Salesforce]] = {
    "password": SalesforceResource._password_login,
    "client_credentials": SalesforceResource._client_credentials_login,
    "jwt": SalesforceResource._jwt_login,
    "refresh_token": SalesforceResource._refresh_token_login,
    "session": SalesforceResource._session_login,
}
