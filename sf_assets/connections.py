"""Resources built from the environment: the Salesforce connections syncs name, and staging.

A sync names a connection (`target.salesforce: default`); its settings come from variables
with a prefix: `SF_` for `default`, `SF_<NAME>_` for any other. Secrets are wired as
`dg.EnvVar`, so Dagster reads them when a run starts and never shows them in the UI; the
non-secret settings (login URL, username, CA bundle) are read when definitions load.
"""

from __future__ import annotations

import os

import dagster as dg

from resources.emarsys import EmarsysResource
from resources.salesforce import SalesforceResource
from sf_assets.specs import LoadedSpec
from sf_assets.state.store import StagingStore

SECRETS = ("password", "security_token", "client_secret", "refresh_token", "session_id")
SETTINGS = (
    "auth_flow",
    "login_url",
    "username",
    "client_id",
    "private_key_file",
    "instance_url",
    "api_version",
    "ca_bundle",
)
DEFAULT_STAGING = ".sf-assets/staging.duckdb"


def resource_key(connection: str) -> str:
    return "salesforce" if connection == "default" else f"salesforce_{connection}"


def env_prefix(connection: str) -> str:
    return "SF_" if connection == "default" else f"SF_{connection.upper()}_"


def salesforce_from_env(
    connection: str = "default", *, resolved: bool = False
) -> SalesforceResource:
    """The connection's resource. In definitions secrets stay `EnvVar`s for Dagster to resolve
    at run time; commands outside a run (`sf-assets validate`) ask for `resolved` values."""
    prefix = env_prefix(connection)
    config: dict[str, object] = {}
    for name in SETTINGS:
        value = os.environ.get(prefix + name.upper())
        if value:
            config[name] = value
    for name in SECRETS:
        variable = prefix + name.upper()
        if os.environ.get(variable):
            config[name] = os.environ[variable] if resolved else dg.EnvVar(variable)
    return SalesforceResource(**config)


def emarsys_key(connection: str) -> str:
    return "emarsys" if connection == "default" else f"emarsys_{connection}"


def emarsys_from_env(connection: str = "default", *, resolved: bool = False) -> EmarsysResource:
    """`EMARSYS_TOKEN` (a secret), `EMARSYS_MERCHANT_ID`, `EMARSYS_URL`, `EMARSYS_CA_BUNDLE`
    for `default`; `EMARSYS_<NAME>_…` for another connection."""
    prefix = "EMARSYS_" if connection == "default" else f"EMARSYS_{connection.upper()}_"
    config: dict[str, object] = {
        "merchant_id": os.environ.get(prefix + "MERCHANT_ID", ""),
        "token": os.environ.get(prefix + "TOKEN", "")
        if resolved or not os.environ.get(prefix + "TOKEN")
        else dg.EnvVar(prefix + "TOKEN"),
    }
    if os.environ.get(prefix + "URL"):
        config["base_url"] = os.environ[prefix + "URL"]
    if os.environ.get(prefix + "CA_BUNDLE"):
        config["ca_bundle"] = os.environ[prefix + "CA_BUNDLE"]
    return EmarsysResource(**config)


def connection_resources(specs: list[LoadedSpec]) -> dict[str, object]:
    """One resource per connection the specs name (plus Salesforce's `default`, which the
    commands use), keyed the way the assets ask for them."""
    resources: dict[str, object] = {}
    salesforce = {
        item.spec.connection for item in specs if item.spec.kind in ("salesforce", "ingest")
    }
    for connection in sorted(salesforce | {"default"}):
        resources[resource_key(connection)] = salesforce_from_env(connection)
    emarsys = {item.spec.connection for item in specs if item.spec.kind == "emarsys"}
    for connection in sorted(emarsys):
        resources[emarsys_key(connection)] = emarsys_from_env(connection)
    return resources


def staging_from_env() -> StagingStore:
    return StagingStore(path=os.environ.get("SF_ASSETS_STAGING", DEFAULT_STAGING))
