"""Logins: the partner SOAP `login` call and the OAuth 2.0 token endpoint.

Both answer the way a real org does, because clients branch on the exact shapes: simple-salesforce
reads the unprefixed `<sessionId>`/`<serverUrl>` of a SOAP login and the `sf:exceptionCode` of
its fault, and the `error`/`error_description` pair of an OAuth refusal. Logins are not API
calls (a real org does not charge them to DailyApiRequests), so these routes sit outside the
gateway's guarded prefixes and never touch the call counter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import jwt
from cryptography.hazmat.primitives import serialization
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sf_sandbox.app import SalesforceJSON, org_of
from sf_sandbox.org import Org

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NS = "urn:partner.soap.sforce.com"
FAULT_NS = "urn:fault.partner.soap.sforce.com"
XML_TYPE = "text/xml;charset=UTF-8"
SESSION_SECONDS = 7200
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

INVALID_LOGIN = "Invalid username, password, security token; or user locked out."
MUST_USE_SECURITY_TOKEN = (
    "Invalid username, password, security token; or user locked out. Are you at a new location? "
    "When accessing Salesforce--either via a desktop client or the API--from outside of your "
    "company’s trusted networks, you must add a security token to your password to log in. To "
    "get your new security token, log in to Salesforce. From your personal settings, enter Reset "
    "My Security Token in the Quick Find box, then select Reset My Security Token."
)


# -- state the org keeps about logins ------------------------------------------------------------


@dataclass
class AuthState:
    """Refresh tokens an admin revoked; they answer like expired ones from then on."""

    revoked_refresh_tokens: set[str] = field(default_factory=set)


def auth_state(org: Org) -> AuthState:
    return org.extensions.setdefault("auth", AuthState())


def revoke_refresh_token(org: Org, token: str) -> None:
    """What "Revoke" on the connected app's OAuth usage page does."""
    auth_state(org).revoked_refresh_tokens.add(token)


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so the sandbox does not teach timing attacks by example."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def is_user(org: Org, username: str | None) -> bool:
    """Usernames are case-insensitive in Salesforce."""
    return username is not None and username.lower() == org.credentials.username.lower()


def base_url(request: Request) -> str:
    """The URL the client reached us by; the org is its own login server and instance."""
    return str(request.base_url).rstrip("/")


# -- SOAP login ----------------------------------------------------------------------------------


class LoginFault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class SoapLogin:
    username: str | None
    password: str | None
    organization_id: str | None


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_soap_login(body: bytes) -> SoapLogin:
    """The username, password and optional LoginScopeHeader of a partner `login` envelope."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        raise LoginFault("INVALID_LOGIN", INVALID_LOGIN) from error
    found: dict[str, str] = {}
    for element in root.iter():
        name = local_name(element.tag)
        if name in ("username", "password", "organizationId") and name not in found:
            found[name] = element.text or ""
    return SoapLogin(found.get("username"), found.get("password"), found.get("organizationId"))


def check_soap_login(org: Org, login: SoapLogin) -> None:
    """Raise the fault the org answers for these credentials, if any.

    The password field carries password + security token. The bare password is accepted only
    with a LoginScopeHeader naming this org (simple-salesforce's "IP filtering" login, used from
    trusted networks); otherwise it is the classic "you forgot the token" refusal.
    """
    creds = org.credentials
    if login.organization_id is not None and login.organization_id[:15] != org.org_id[:15]:
        raise LoginFault("INVALID_LOGIN", INVALID_LOGIN)
    if not is_user(org, login.username):
        raise LoginFault("INVALID_LOGIN", INVALID_LOGIN)
    if same(login.password, creds.password + creds.security_token):
        return
    if same(login.password, creds.password):
        if login.organization_id is not None:
            return
        raise LoginFault("LOGIN_MUST_USE_SECURITY_TOKEN", MUST_USE_SECURITY_TOKEN)
    raise LoginFault("INVALID_LOGIN", INVALID_LOGIN)


def xml_text(tag: str, value: object) -> str:
    if value is None:
        return f'<{tag} xsi:nil="true"/>'
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{tag}>{escape(str(value))}</{tag}>"


def login_response(org: Org, url: str, version: str, session_id: str) -> str:
    """A partner-WSDL loginResponse; result members unprefixed, as simple-salesforce expects."""
    creds = org.credentials
    user_info = {
        "accessibilityMode": False,
        "chatterExternal": False,
        "currencySymbol": "$",
        "orgAttachmentFileSizeLimit": 5242880,
        "orgDefaultCurrencyIsoCode": "USD",
        "orgDefaultCurrencyLocale": "en_US",
        "orgDisallowHtmlAttachments": False,
        "orgHasPersonAccounts": False,
        "organizationId": org.org_id,
        "organizationMultiCurrency": False,
        "organizationName": "sf-assets sandbox",
        "profileId": "00e5g000000AAAAAA0",
        "roleId": None,
        "sessionSecondsValid": SESSION_SECONDS,
        "userDefaultCurrencyIsoCode": None,
        "userEmail": creds.username,
        "userFullName": "Sandbox Integration",
        "userId": org.user_id,
        "userLanguage": "en_US",
        "userLocale": "en_US",
        "userName": creds.username,
        "userTimeZone": "America/Los_Angeles",
        "userType": "Standard",
        "userUiSkin": "Theme3",
    }
    result = {
        "metadataServerUrl": f"{url}/services/Soap/m/{version}/{org.org_id}",
        "passwordExpired": False,
        "sandbox": True,
        "serverUrl": f"{url}/services/Soap/u/{version}/{org.org_id}",
        "sessionId": session_id,
        "userId": org.user_id,
    }
    members = "".join(xml_text(tag, value) for tag, value in result.items())
    info = "".join(xml_text(tag, value) for tag, value in user_info.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns="{PARTNER_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><loginResponse><result>{members}<userInfo>{info}</userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )


def login_fault(code: str, message: str) -> str:
    """The SOAP fault of a refused login: faultcode, faultstring and a LoginFault detail."""
    message = escape(message)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:sf="{FAULT_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


async def soap_login(request: Request) -> Response:
    org = org_of(request)
    try:
        login = parse_soap_login(await request.body())
        check_soap_login(org, login)
    except LoginFault as fault:
        return Response(login_fault(fault.code, fault.message), 500, media_type=XML_TYPE)
    session_id = org.open_session()
    version = request.path_params["version"]
    return Response(
        login_response(org, base_url(request), version, session_id), media_type=XML_TYPE
    )


# -- OAuth 2.0 token endpoint --------------------------------------------------------------------


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


def authentication_failure() -> OAuthError:
    return OAuthError("invalid_grant", "authentication failure")


def check_client(org: Org, client_id: str | None, client_secret: str | None) -> None:
    """The connected app: an unknown key and a wrong secret are told apart, like the real one."""
    creds = org.credentials
    if not same(client_id, creds.client_id):
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if client_secret is not None and not same(client_secret, creds.client_secret):
        raise OAuthError("invalid_client", "invalid client credentials")


def basic_credentials(request: Request) -> tuple[str | None, str | None]:
    """client_id and client_secret from an `Authorization: Basic` header, if there is one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, client_secret = decoded.partition(":")
    return client_id, client_secret


def password_grant(org: Org, form: dict[str, str], request: Request) -> None:
    """Username-password flow: the password field is password + security token."""
    check_client(org, form.get("client_id"), form.get("client_secret", ""))
    creds = org.credentials
    if not is_user(org, form.get("username")):
        raise authentication_failure()
    if not same(form.get("password"), creds.password + creds.security_token):
        raise authentication_failure()


def client_credentials_grant(org: Org, form: dict[str, str], request: Request) -> None:
    """Client credentials flow: the connected app runs as its configured integration user."""
    client_id, client_secret = basic_credentials(request)
    if client_id is None:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
    check_client(org, client_id, client_secret or "")


@cache
def public_key_pem(private_key_pem: str) -> bytes:
    """The certificate half the connected app would hold, derived once per key."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def valid_audience(audience: object, own_url: str) -> bool:
    """Login servers the org accepts as `aud`: login, test, a My Domain, or itself."""
    if not isinstance(audience, str):
        return False
    if audience.rstrip("/") == own_url:
        return True
    parts = urlsplit(audience)
    host = parts.hostname or ""
    return (
        parts.scheme == "https"
        and parts.path in ("", "/")
        and (
            host in ("login.salesforce.com", "test.salesforce.com")
            or host.endswith(".my.salesforce.com")
        )
    )


def jwt_bearer_grant(org: Org, form: dict[str, str], request: Request) -> None:
    """JWT bearer flow: an RS256 assertion signed with the connected app's private key."""
    assertion = form.get("assertion", "")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    check_client(org, claims.get("iss"), None)
    try:
        jwt.decode(
            assertion,
            public_key_pem(org.credentials.jwt_private_key_pem),
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    if not valid_audience(claims.get("aud"), base_url(request)):
        raise OAuthError("invalid_grant", "audience is invalid")
    try:
        expires = float(claims.get("exp", 0))
    except (TypeError, ValueError):
        raise OAuthError("invalid_grant", "invalid assertion") from None
    if expires <= time.time():
        raise OAuthError("invalid_grant", "expired authorization code")
    if not is_user(org, claims.get("sub")):
        raise authentication_failure()


def refresh_token_grant(org: Org, form: dict[str, str], request: Request) -> None:
    """Refresh token flow: the secret is optional; an unknown or revoked token is "expired"."""
    check_client(org, form.get("client_id"), form.get("client_secret"))
    token = form.get("refresh_token")
    revoked = token in auth_state(org).revoked_refresh_tokens
    if revoked or not same(token, org.credentials.refresh_token):
        raise OAuthError("invalid_grant", "expired access/refresh token")


GRANTS: dict[str, Callable[[Org, dict[str, str], Request], None]] = {
    "password": password_grant,
    "client_credentials": client_credentials_grant,
    JWT_BEARER: jwt_bearer_grant,
    "refresh_token": refresh_token_grant,
}


def token_success(org: Org, url: str) -> dict[str, Any]:
    """A new session as the token endpoint hands it out; no flow here returns a refresh token."""
    identity = f"{url}/id/{org.org_id}/{org.user_id}"
    issued_at = str(int(time.time() * 1000))
    digest = hmac.new(
        org.credentials.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
    ).digest()
    return {
        "access_token": org.open_session(),
        "instance_url": url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(digest).decode(),
    }


async def read_form(request: Request) -> dict[str, str]:
    """The form body, first value of each key (the token endpoint never repeats a key)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}


def oauth_json(content: dict[str, Any], status: int = 200) -> Response:
    return SalesforceJSON(
        content, status, headers={"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store"}
    )


async def token(request: Request) -> Response:
    org = org_of(request)
    form = await read_form(request)
    grant = GRANTS.get(form.get("grant_type", ""))
    try:
        if grant is None:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        grant(org, form, request)
    except OAuthError as refusal:
        return oauth_json({"error": refusal.error, "error_description": refusal.description}, 400)
    return oauth_json(token_success(org, base_url(request)))


def routes() -> list[BaseRoute]:
    return [
        Route("/services/Soap/u/{version}", soap_login, methods=["POST"]),
        Route("/services/oauth2/token", token, methods=["POST"]),
    ]
