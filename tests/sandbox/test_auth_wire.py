"""The login endpoints' exact wire shapes, checked with plain HTTPS requests.

Clients branch on these shapes (simple-salesforce matches unprefixed `sessionId`/`serverUrl`
tags and reads `sf:exceptionCode`; OAuth clients read `error`/`error_description`), so the
sandbox must answer exactly like a real org: status codes, element names and namespaces, keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sf_sandbox.server import SandboxServer

from tests.sandbox.contract import shapes as S

SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"
PARTNER = "{urn:partner.soap.sforce.com}"
FAULT = "{" + S.SOAP_FAULT_NS + "}"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
INVALID_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."

Info = dict[str, Any]


def soap_login(
    info: Info, username: str, password: str, org_id: str | None = None
) -> requests.Response:
    scope = (
        f"<urn:LoginScopeHeader><urn:organizationId>{org_id}</urn:organizationId>"
        "</urn:LoginScopeHeader>"
        if org_id
        else ""
    )
    envelope = (
        '<?xml version="1.0" encoding="utf-8" ?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com">'
        f"<soapenv:Header>{scope}</soapenv:Header><soapenv:Body><urn:login>"
        f"<urn:username>{username}</urn:username><urn:password>{password}</urn:password>"
        "</urn:login></soapenv:Body></soapenv:Envelope>"
    )
    return requests.post(
        f"{info['login_url']}/services/Soap/u/{info['api_version']}",
        data=envelope,
        headers={"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"},
        verify=info["ca_bundle"],
        timeout=30,
    )


def token_request(
    info: Info, data: dict[str, str], headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.post(
        f"{info['login_url']}/services/oauth2/token",
        data=data,
        headers=headers or {},
        verify=info["ca_bundle"],
        timeout=30,
    )


def rest_status(info: Info, access_token: str) -> int:
    return requests.get(
        f"{info['instance_url']}/services/data/v{info['api_version']}/limits",
        headers={"Authorization": f"Bearer {access_token}"},
        verify=info["ca_bundle"],
        timeout=30,
    ).status_code


def fault_parts(response: requests.Response) -> dict[str, str]:
    """faultcode, faultstring and the LoginFault's exceptionCode / exceptionMessage."""
    fault = ET.fromstring(response.content).find(f"{SOAP_ENV}Body/{SOAP_ENV}Fault")
    assert fault is not None
    login_fault = fault.find(f"detail/{FAULT}LoginFault")
    assert login_fault is not None
    return {
        "faultcode": fault.findtext("faultcode", ""),
        "faultstring": fault.findtext("faultstring", ""),
        "exceptionCode": login_fault.findtext(f"{FAULT}exceptionCode", ""),
        "exceptionMessage": login_fault.findtext(f"{FAULT}exceptionMessage", ""),
    }


def assertion(info: Info, key_file: str | Path | None = None, **claims: Any) -> str:
    """A JWT bearer assertion as simple-salesforce builds it (note: `exp` is a string)."""
    payload = {
        "iss": info["client_id"],
        "sub": info["username"],
        "aud": "https://login.salesforce.com",
        "exp": f"{time.time() + 180:.0f}",
        **claims,
    }
    key = Path(key_file or info["jwt_key_file"]).read_bytes()
    return jwt.encode(payload, key, algorithm="RS256")


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@pytest.fixture
def info(sandbox: SandboxServer) -> Info:
    return sandbox.info()


@pytest.fixture
def other_key(tmp_path: Path) -> Path:
    path = tmp_path / "other-key.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


# -- SOAP login --------------------------------------------------------------------------------------


def test_soap_login_answers_a_partner_login_response(info: Info) -> None:
    response = soap_login(info, info["username"], info["password"] + info["security_token"])

    result = ET.fromstring(response.content).find(
        f"{SOAP_ENV}Body/{PARTNER}loginResponse/{PARTNER}result"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(S.SOAP_CONTENT_TYPE_PREFIX)
    assert result is not None
    children = {child.tag.removeprefix(PARTNER) for child in result}
    assert set(S.SOAP_LOGIN_RESULT_ELEMENTS) <= children
    user_info = {child.tag.removeprefix(PARTNER) for child in result.find(f"{PARTNER}userInfo")}
    assert set(S.SOAP_USERINFO_ELEMENTS) <= user_info


def test_soap_login_result_members_are_unprefixed(info: Info) -> None:
    response = soap_login(info, info["username"], info["password"] + info["security_token"])

    assert re.search(r"<sessionId>[^<]+</sessionId>", response.text)
    assert re.search(r"<serverUrl>[^<]+</serverUrl>", response.text)


def test_soap_login_urls_and_ids(info: Info, sandbox: SandboxServer) -> None:
    response = soap_login(info, info["username"], info["password"] + info["security_token"])
    result = ET.fromstring(response.content).find(
        f"{SOAP_ENV}Body/{PARTNER}loginResponse/{PARTNER}result"
    )
    assert result is not None

    def text(path: str) -> str:
        return result.findtext("/".join(PARTNER + step for step in path.split("/")), "")

    base, version, org_id = info["instance_url"], info["api_version"], info["org_id"]
    assert text("serverUrl") == f"{base}/services/Soap/u/{version}/{org_id}"
    assert text("metadataServerUrl") == f"{base}/services/Soap/m/{version}/{org_id}"
    assert text("userId") == sandbox.org.user_id
    assert text("userInfo/organizationId") == org_id
    assert text("userInfo/userName") == info["username"]
    assert rest_status(info, text("sessionId")) == 200


def test_username_is_case_insensitive(info: Info) -> None:
    response = soap_login(info, info["username"].upper(), info["password"] + info["security_token"])

    assert response.status_code == 200


def test_wrong_password_is_an_invalid_login_fault(info: Info) -> None:
    response = soap_login(info, info["username"], "wrong" + info["security_token"])

    parts = fault_parts(response)
    assert response.status_code == S.SOAP_FAULT_STATUS
    assert parts["faultcode"] == "sf:INVALID_LOGIN"
    match = re.fullmatch(S.SOAP_FAULTSTRING_RE, parts["faultstring"])
    assert match and match["code"] == "INVALID_LOGIN"
    assert parts["exceptionCode"] == S.SOAP_INVALID_LOGIN_CODE
    assert parts["exceptionMessage"] == INVALID_LOGIN_MESSAGE


def test_unknown_user_is_an_invalid_login_fault(info: Info) -> None:
    response = soap_login(info, "nobody@example.com", info["password"] + info["security_token"])

    assert response.status_code == 500
    assert fault_parts(response)["exceptionCode"] == "INVALID_LOGIN"


def test_password_without_token_must_use_security_token(info: Info) -> None:
    response = soap_login(info, info["username"], info["password"])

    parts = fault_parts(response)
    assert response.status_code == 500
    assert parts["faultcode"] == "sf:LOGIN_MUST_USE_SECURITY_TOKEN"
    assert parts["exceptionCode"] == "LOGIN_MUST_USE_SECURITY_TOKEN"
    assert parts["exceptionMessage"].startswith(INVALID_LOGIN_MESSAGE)
    assert "security token" in parts["exceptionMessage"]


def test_login_scope_of_this_org_accepts_the_bare_password(info: Info) -> None:
    response = soap_login(info, info["username"], info["password"], org_id=info["org_id"])

    assert response.status_code == 200


def test_login_scope_of_another_org_is_refused(info: Info) -> None:
    response = soap_login(info, info["username"], info["password"], org_id="00D000000000001AAA")

    assert response.status_code == 500
    assert fault_parts(response)["exceptionCode"] == "INVALID_LOGIN"


# -- OAuth token endpoint -------------------------------------------------------------------------

GRANTS: dict[str, Callable[[Info], tuple[dict[str, str], dict[str, str]]]] = {
    "password": lambda i: (
        {
            "grant_type": "password",
            "client_id": i["client_id"],
            "client_secret": i["client_secret"],
            "username": i["username"],
            "password": i["password"] + i["security_token"],
        },
        {},
    ),
    "client_credentials": lambda i: (
        {"grant_type": "client_credentials"},
        basic(i["client_id"], i["client_secret"]),
    ),
    "jwt": lambda i: ({"grant_type": JWT_BEARER, "assertion": assertion(i)}, {}),
    "refresh_token": lambda i: (
        {
            "grant_type": "refresh_token",
            "client_id": i["client_id"],
            "refresh_token": i["refresh_token"],
        },
        {},
    ),
}


@pytest.mark.parametrize("grant", GRANTS)
def test_token_success_shape(info: Info, grant: str) -> None:
    data, headers = GRANTS[grant](info)

    response = token_request(info, data, headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == S.JSON_CONTENT_TYPE
    body = response.json()
    S.assert_shape(body, S.closed(S.OAUTH_TOKEN_SUCCESS))
    assert "refresh_token" not in body
    assert rest_status(info, body["access_token"]) == 200


def test_token_identity_and_signature(info: Info, sandbox: SandboxServer) -> None:
    data, headers = GRANTS["password"](info)

    body = token_request(info, data, headers).json()

    assert body["instance_url"] == info["instance_url"]
    assert body["id"] == f"{info['instance_url']}/id/{info['org_id']}/{sandbox.org.user_id}"
    assert abs(int(body["issued_at"]) / 1000 - time.time()) < 60
    digest = hmac.new(
        info["client_secret"].encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert body["signature"] == base64.b64encode(digest).decode()


def with_changes(
    grant: str, **changes: str
) -> Callable[[Info], tuple[dict[str, str], dict[str, str]]]:
    def build(info: Info) -> tuple[dict[str, str], dict[str, str]]:
        data, headers = GRANTS[grant](info)
        return {**data, **changes}, headers

    return build


REFUSALS: dict[str, tuple[Callable[[Info], tuple[dict[str, str], dict[str, str]]], str, str]] = {
    "password: wrong password": (
        with_changes("password", password="wrong"), "invalid_grant", "authentication failure"
    ),
    "password: no security token": (
        lambda i: (dict(GRANTS["password"](i)[0], password=i["password"]), {}),
        "invalid_grant",
        "authentication failure",
    ),
    "password: unknown user": (
        with_changes("password", username="nobody@example.com"), "invalid_grant", "authentication failure"
    ),
    "password: unknown client": (
        with_changes("password", client_id="3MVG9unknown"), "invalid_client_id", "client identifier invalid"
    ),
    "password: wrong secret": (
        with_changes("password", client_secret="WRONG"), "invalid_client", "invalid client credentials"
    ),
    "client_credentials: wrong secret": (
        lambda i: ({"grant_type": "client_credentials"}, basic(i["client_id"], "WRONG")),
        "invalid_client",
        "invalid client credentials",
    ),
    "client_credentials: no credentials": (
        lambda i: ({"grant_type": "client_credentials"}, {}),
        "invalid_client_id",
        "client identifier invalid",
    ),
    "refresh_token: unknown token": (
        with_changes("refresh_token", refresh_token="5Aep-unknown"), "invalid_grant", "expired access/refresh token"
    ),
    "refresh_token: wrong secret": (
        with_changes("refresh_token", client_secret="WRONG"), "invalid_client", "invalid client credentials"
    ),
    "jwt: expired": (
        lambda i: ({"grant_type": JWT_BEARER, "assertion": assertion(i, exp=int(time.time()) - 60)}, {}),
        "invalid_grant",
        "expired authorization code",
    ),
    "jwt: foreign audience": (
        lambda i: ({"grant_type": JWT_BEARER, "assertion": assertion(i, aud="https://example.com")}, {}),
        "invalid_grant",
        "audience is invalid",
    ),
    "jwt: unknown issuer": (
        lambda i: ({"grant_type": JWT_BEARER, "assertion": assertion(i, iss="3MVG9unknown")}, {}),
        "invalid_client_id",
        "client identifier invalid",
    ),
    "jwt: unknown subject": (
        lambda i: ({"grant_type": JWT_BEARER, "assertion": assertion(i, sub="nobody@example.com")}, {}),
        "invalid_grant",
        "authentication failure",
    ),
    "jwt: not a jwt": (
        lambda i: ({"grant_type": JWT_BEARER, "assertion": "not.a.jwt"}, {}),
        "invalid_grant",
        "invalid assertion",
    ),
    "unsupported grant": (
        lambda i: ({"grant_type": "authorization_code", "code": "x"}, {}),
        "unsupported_grant_type",
        "grant type not supported",
    ),
    "no grant type": (lambda i: ({}, {}), "unsupported_grant_type", "grant type not supported"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_token_refusals(info: Info, case: str) -> None:
    build, error, description = REFUSALS[case]
    data, headers = build(info)

    response = token_request(info, data, headers)

    assert response.status_code == S.OAUTH_ERROR_STATUS
    assert response.headers["content-type"] == S.JSON_CONTENT_TYPE
    assert response.json() == {"error": error, "error_description": description}


def test_jwt_signed_by_another_key_is_an_invalid_assertion(info: Info, other_key: Path) -> None:
    data = {"grant_type": JWT_BEARER, "assertion": assertion(info, key_file=other_key)}

    response = token_request(info, data)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}


@pytest.mark.parametrize(
    "audience", ["https://test.salesforce.com", "https://acme.my.salesforce.com", "SELF"]
)
def test_jwt_accepts_login_servers_as_audience(info: Info, audience: str) -> None:
    aud = info["login_url"] if audience == "SELF" else audience
    data = {"grant_type": JWT_BEARER, "assertion": assertion(info, aud=aud)}

    assert token_request(info, data).status_code == 200


# -- logins are not API calls ---------------------------------------------------------------------


def test_logins_are_not_counted_or_stamped(info: Info, sandbox: SandboxServer) -> None:
    soap = soap_login(info, info["username"], info["password"] + info["security_token"])
    data, headers = GRANTS["client_credentials"](info)
    oauth = token_request(info, data, headers)
    refused = soap_login(info, info["username"], "wrong")

    assert sandbox.org.api_calls_used == 0
    for response in (soap, oauth, refused):
        assert S.HEADER_LIMIT_INFO not in response.headers
