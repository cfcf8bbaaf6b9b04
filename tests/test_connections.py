"""Connection resources from the environment: a run that lacks a variable fails naming it,
secrets stay `EnvVar`s in the definitions, and `.env` fills only what the environment lacks."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from sf_assets.connections import (
    load_env_file,
    missing_salesforce_settings,
    overridden_by_environment,
    salesforce_from_env,
)


def test_secrets_and_missing_required_settings_stay_env_vars(monkeypatch):
    monkeypatch.setenv("SF_PROD_LOGIN_URL", "https://test.salesforce.com")
    monkeypatch.setenv("SF_PROD_PASSWORD", "s3cret")
    monkeypatch.delenv("SF_PROD_USERNAME", raising=False)
    resource = salesforce_from_env("prod")
    assert resource.login_url == "https://test.salesforce.com"
    assert resource.password == dg.EnvVar("SF_PROD_PASSWORD")
    assert resource.username == dg.EnvVar("SF_PROD_USERNAME"), "a run must name what is missing"
    assert "s3cret" not in repr(resource)


def test_a_run_without_the_password_fails_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SF_USERNAME", "me@acme.com")
    monkeypatch.delenv("SF_PASSWORD", raising=False)

    @dg.asset(required_resource_keys={"salesforce"})
    def needs_the_org() -> None:
        raise AssertionError("the resource should not have been built")

    unset = pytest.raises(dg.DagsterInvalidConfigError, match='"SF_PASSWORD" which is not set')
    with dg.instance_for_test() as instance, unset:
        dg.materialize(
            [needs_the_org], resources={"salesforce": salesforce_from_env()}, instance=instance
        )


def test_missing_settings_for_each_flow(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SF_"):
            monkeypatch.delenv(name)
    missing = missing_salesforce_settings("crm")
    assert missing is not None and missing.missing == ("SF_CRM_USERNAME", "SF_CRM_PASSWORD")
    monkeypatch.setenv("SF_CRM_AUTH_FLOW", "refresh_token")
    monkeypatch.setenv("SF_CRM_CLIENT_ID", "3MVG9")
    missing = missing_salesforce_settings("crm")
    assert missing is not None and missing.missing == ("SF_CRM_REFRESH_TOKEN",)
    monkeypatch.setenv("SF_CRM_AUTH_FLOW", "magic")
    missing = missing_salesforce_settings("crm")
    assert missing is not None and "to one of password, client_credentials" in missing.message()


def test_env_file_fills_only_what_the_environment_lacks(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("SF_ASSETS_T1=from-file\nSF_ASSETS_T2=from-file\n")
    monkeypatch.setenv("SF_ASSETS_T1", "exported")
    monkeypatch.delenv("SF_ASSETS_T2", raising=False)
    taken = load_env_file(tmp_path)
    assert taken == ["SF_ASSETS_T2"]
    assert os.environ["SF_ASSETS_T1"] == "exported" and os.environ["SF_ASSETS_T2"] == "from-file"
    assert overridden_by_environment(tmp_path) == ["SF_ASSETS_T1"]
    monkeypatch.delenv("SF_ASSETS_T2")
