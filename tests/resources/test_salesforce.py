"""Every login flow of `SalesforceResource`, through the real simple-salesforce over HTTPS.

The sandbox org is the login server here, so each login is rerouted from simple-salesforce's
`https://login.salesforce.com` to it; a client that works is one whose login really happened and
whose session the org accepts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sf_sandbox.auth import revoke_refresh_token
from sf_sandbox.server import SandboxServer
from simple_salesforce import SalesforceExpiredSession

from resources.salesforce import SalesforceLoginError, SalesforceResource

FLOWS = ("soap", "oauth_password", "client_credentials", "jwt", "refresh_token", "session")


def flow_config(info: dict[str, Any], flow: str) -> dict[str, Any]:
    """Resource settings for one flow, with the org's real credentials."""
    common = {
        "login_url": info["login_url"],
        "ca_bundle": info["ca_bundle"],
        "api_version": info["api_version"],
    }
    user = {"username": info["username"], "password": info["password"]}
    app = {"client_id": info["client_id"], "client_secret": info["client_secret"]}
    flows: dict[str, dict[str, Any]] = {
        "soap": {"auth_flow": "password", **user, "security_token": info["security_token"]},
        "oauth_password": {
            "auth_flow": "password",
            **user,
            "security_token": info["security_token"],
            **app,
        },
        "client_credentials": {"auth_flow": "client_credentials", **app},
        "jwt": {
            "auth_flow": "jwt",
            "username": info["username"],
            "client_id": info["client_id"],
            "private_key_file": info["jwt_key_file"],
        },
        "refresh_token": {
            "auth_flow": "refresh_token",
            "client_id": info["client_id"],
            "refresh_token": info["refresh_token"],
        },
    }
    return {**common, **flows[flow]}


def resource_for(sandbox: SandboxServer, flow: str, **overrides: Any) -> SalesforceResource:
    info = sandbox.info()
    if flow == "session":
        config = {
            "auth_flow": "session",
            "session_id": sandbox.org.open_session(),
            "instance_url": info["instance_url"],
            "ca_bundle": info["ca_bundle"],
        }
    else:
        config = flow_config(info, flow)
    return SalesforceResource(**{**config, **overrides})


def login_error(resource: SalesforceResource) -> SalesforceLoginError:
    with pytest.raises(SalesforceLoginError) as caught:
        resource.client()
    return caught.value


def secrets_of(info: dict[str, Any]) -> list[str]:
    return [
        info["password"],
        info["security_token"],
        info["password"] + info["security_token"],
        info["client_secret"],
        info["refresh_token"],
    ]


# -- every flow works --------------------------------------------------------------------------


@pytest.mark.parametrize("flow", FLOWS)
def test_every_flow_ends_in_a_working_client(sandbox: SandboxServer, flow: str) -> None:
    sf = resource_for(sandbox, flow).client()

    assert sf.limits()["DailyApiRequests"]["Max"] > 0
    assert sf.Contact.describe()["name"] == "Contact"


@pytest.mark.parametrize("flow", [f for f in FLOWS if f != "session"])
def test_logins_spend_no_api_calls(sandbox: SandboxServer, flow: str) -> None:
    resource_for(sandbox, flow).client()

    assert sandbox.org.api_calls_used == 0


def test_client_is_shared_until_a_fresh_login(sandbox: SandboxServer) -> None:
    resource = resource_for(sandbox, "soap")
    first = resource.client()

    assert resource.client() is first
    fresh = resource.fresh_client()
    assert fresh is not first
    assert fresh.session_id != first.session_id
    assert resource.client() is fresh


def test_api_version_reaches_the_client(sandbox: SandboxServer) -> None:
    sf = resource_for(sandbox, "jwt", api_version="58.0").client()

    assert sf.base_url.endswith("/services/data/v58.0/")
    assert sf.limits()["DailyApiRequests"]["Max"] > 0


# -- refusals tell the user what to do -------------------------------------------------------------


def test_wrong_password_is_invalid_login(sandbox: SandboxServer) -> None:
    error = login_error(resource_for(sandbox, "soap", password="not-the-password"))

    assert error.code == "INVALID_LOGIN"
    assert "INVALID_LOGIN" in str(error)
    assert "locked out" in str(error)


def test_missing_security_token_asks_for_it(sandbox: SandboxServer) -> None:
    error = login_error(resource_for(sandbox, "soap", security_token=None))

    assert error.code == "LOGIN_MUST_USE_SECURITY_TOKEN"
    assert "security token" in str(error)
    assert "Reset My Security Token" in str(error)
    assert "trusted IP ranges" in str(error)


def test_oauth_password_without_token_is_invalid_grant(sandbox: SandboxServer) -> None:
    error = login_error(resource_for(sandbox, "oauth_password", security_token=None))

    assert error.code == "invalid_grant"
    assert "security_token" in str(error)
    assert "pre-authorized" in str(error)


@pytest.mark.parametrize("flow", ["oauth_password", "client_credentials"])
def test_bad_client_secret_is_invalid_client(sandbox: SandboxServer, flow: str) -> None:
    error = login_error(resource_for(sandbox, flow, client_secret="not-the-secret"))

    assert error.code == "invalid_client"
    assert "client_secret" in str(error)


@pytest.mark.parametrize("flow", ["oauth_password", "client_credentials", "jwt", "refresh_token"])
def test_unknown_consumer_key_is_invalid_client_id(sandbox: SandboxServer, flow: str) -> None:
    error = login_error(resource_for(sandbox, flow, client_id="3MVG9-not-a-known-app"))

    assert error.code == "invalid_client_id"
    assert "consumer key (client_id)" in str(error)


def test_bad_refresh_token_is_invalid_grant(sandbox: SandboxServer) -> None:
    error = login_error(resource_for(sandbox, "refresh_token", refresh_token="5Aep-not-issued"))

    assert error.code == "invalid_grant"
    assert "expired or revoked" in str(error)


def test_revoked_refresh_token_is_invalid_grant(sandbox: SandboxServer) -> None:
    revoke_refresh_token(sandbox.org, sandbox.org.credentials.refresh_token)

    error = login_error(resource_for(sandbox, "refresh_token"))

    assert error.code == "invalid_grant"
    assert "authorize the app again" in str(error)


def test_jwt_signed_by_another_key_points_at_the_certificate(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    other_key = tmp_path / "other.pem"
    other_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    error = login_error(resource_for(sandbox, "jwt", private_key_file=str(other_key)))

    assert error.code == "invalid_grant"
    assert "certificate uploaded to the app matches private_key_file" in str(error)


def test_untrusted_certificate_asks_for_the_ca_bundle(sandbox: SandboxServer) -> None:
    error = login_error(resource_for(sandbox, "soap", ca_bundle=None))

    assert "ca_bundle" in str(error)


# -- configuration mistakes are caught before any request -------------------------------------------


def test_missing_settings_are_named() -> None:
    resource = SalesforceResource(auth_flow="jwt", username="someone@example.com")

    error = login_error(resource)

    assert "client_id, private_key_file" in str(error)


def test_client_credentials_need_my_domain() -> None:
    resource = SalesforceResource(
        auth_flow="client_credentials", client_id="key", client_secret="s3cr3t-value"
    )

    error = login_error(resource)

    assert "My Domain" in str(error)


def test_missing_private_key_file_is_reported(tmp_path: Path) -> None:
    resource = SalesforceResource(
        auth_flow="jwt",
        username="someone@example.com",
        client_id="key",
        private_key_file=str(tmp_path / "absent.pem"),
    )

    error = login_error(resource)

    assert "absent.pem does not exist" in str(error)


# -- secrets stay secret ----------------------------------------------------------------------------

FAILURES = {
    "wrong password": ("soap", {"password": "wrong-Pw-123"}),
    "missing token": ("soap", {"security_token": None}),
    "oauth without token": ("oauth_password", {"security_token": None}),
    "bad client secret": ("client_credentials", {"client_secret": "WRONG-SECRET-0001"}),
    "bad refresh token": ("refresh_token", {"refresh_token": "5Aep-WRONG-REFRESH"}),
}


@pytest.mark.parametrize("case", FAILURES)
def test_no_secret_in_errors_repr_or_logs(
    sandbox: SandboxServer, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    flow, overrides = FAILURES[case]
    resource = resource_for(sandbox, flow, **overrides)
    info = sandbox.info()
    secrets = secrets_of(info) + [v for v in overrides.values() if v]

    with caplog.at_level(logging.DEBUG):
        error = login_error(resource)

    shown = "\n".join([str(error), repr(error), repr(resource), str(resource), caplog.text])
    assert error.__cause__ is None and error.__suppress_context__
    for secret in secrets:
        assert secret not in shown


def test_working_resource_repr_hides_secrets(sandbox: SandboxServer) -> None:
    info = sandbox.info()
    resource = resource_for(sandbox, "oauth_password")
    resource.client()

    shown = repr(resource) + str(resource)

    assert info["username"] in shown
    for secret in secrets_of(info):
        assert secret not in shown


# -- sessions that expire ----------------------------------------------------------------------------


def test_fresh_client_after_sessions_expire(sandbox: SandboxServer) -> None:
    resource = resource_for(sandbox, "refresh_token")
    old = resource.client()
    old.limits()

    sandbox.org.expire_sessions()

    with pytest.raises(SalesforceExpiredSession):
        old.limits()
    assert resource.fresh_client().limits()["DailyApiRequests"]["Max"] > 0


def test_session_flow_cannot_outlive_its_session(sandbox: SandboxServer) -> None:
    sf = resource_for(sandbox, "session").client()

    sandbox.org.expire_sessions()

    with pytest.raises(SalesforceExpiredSession):
        sf.Contact.describe()


def test_client_that_logged_in_itself_logs_in_again(sandbox: SandboxServer) -> None:
    sf = resource_for(sandbox, "soap").client()
    first_session = sf.session_id

    sandbox.org.expire_sessions()

    assert sf.limits()["DailyApiRequests"]["Max"] > 0
    assert sf.session_id != first_session
