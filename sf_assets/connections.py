"""Resources built from the environment: the Salesforce connections syncs name, and the state
store.

A sync names a connection (`target.salesforce: default`); its settings come from variables
with a prefix: `SF_` for `default`, `SF_<NAME>_` for any other (`EMARSYS_` and
`EMARSYS_<NAME>_` for Emarsys). Secrets are wired as `dg.EnvVar`, so Dagster reads them when a
run starts and never shows them in the UI; the non-secret settings (login URL, username, CA
bundle) are read when definitions load.

Every command reads the same settings as `dg dev`: the process environment plus `.env` in the
project folder. A variable exported in the environment wins over `.env`, so a forgotten file
never silently replaces what the user just set (Dagster's own loader lets `.env` win inside
`dg dev`; `overridden_by_environment` finds the variables where the two disagree).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dotenv import dotenv_values

from resources.emarsys import EmarsysResource
from resources.salesforce import SalesforceResource
from sf_assets.project import in_project, project_dir
from sf_assets.specs import LoadedSpec
from sf_assets.state import DuckDBStateStore, StateStore

ENV_FILE = ".env"
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
# What each login flow cannot do without (resources.salesforce checks the same at login).
REQUIRED_BY_FLOW: dict[str, tuple[str, ...]] = {
    "password": ("username", "password"),
    "client_credentials": ("client_id", "client_secret"),
    "jwt": ("username", "client_id", "private_key_file"),
    "refresh_token": ("client_id", "refresh_token"),
    "session": ("session_id", "instance_url"),
}
EMARSYS_REQUIRED = ("token", "merchant_id")
DEFAULT_STAGING = ".sf-assets/staging.duckdb"


# -- the environment and .env -------------------------------------------------------------------


def env_file_values(folder: Path | None = None) -> dict[str, str]:
    """The variables `.env` of the project folder sets."""
    path = (folder or project_dir()) / ENV_FILE
    if not path.is_file():
        return {}
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def load_env_file(folder: Path | None = None) -> list[str]:
    """Fill the environment from `.env` where it does not set a variable already; returns the
    names taken from the file."""
    taken = [name for name in env_file_values(folder) if name not in os.environ]
    values = env_file_values(folder)
    for name in taken:
        os.environ[name] = values[name]
    return taken


def overridden_by_environment(folder: Path | None = None) -> list[str]:
    """Variables that `.env` sets to one value and the environment to another: sf-assets uses
    the environment's, `dg dev` the file's, so the user should keep only one."""
    return sorted(
        name
        for name, value in env_file_values(folder).items()
        if name in os.environ and os.environ[name] != value
    )


# -- Salesforce ----------------------------------------------------------------------------------


def resource_key(connection: str) -> str:
    return "salesforce" if connection == "default" else f"salesforce_{connection}"


def env_prefix(connection: str) -> str:
    return "SF_" if connection == "default" else f"SF_{connection.upper()}_"


def variable(connection: str, setting: str) -> str:
    """The variable that holds one setting of a Salesforce connection, e.g. SF_PROD_USERNAME."""
    return env_prefix(connection) + setting.upper()


def auth_flow(connection: str) -> str:
    return os.environ.get(variable(connection, "auth_flow")) or "password"


def salesforce_from_env(
    connection: str = "default", *, resolved: bool = False
) -> SalesforceResource:
    """The connection's resource. In definitions secrets stay `EnvVar`s for Dagster to resolve
    at run time, and so do required settings that are not set yet, so that a run names the
    missing variable; commands outside a run (`sf-assets validate`) ask for `resolved` values."""
    config: dict[str, object] = {}
    required = REQUIRED_BY_FLOW.get(auth_flow(connection), ())
    for name in (*SETTINGS, *SECRETS):
        name_of_variable = variable(connection, name)
        value = os.environ.get(name_of_variable)
        if resolved:
            if value:
                config[name] = value
            continue
        if (name in SECRETS and value) or (name in required and not value):
            config[name] = dg.EnvVar(name_of_variable)
        elif value:
            config[name] = value
    return SalesforceResource(**config)


@dataclass(frozen=True)
class MissingSettings:
    """Variables a connection cannot work without, named for the person who must set them."""

    system: str
    connection: str
    missing: tuple[str, ...]
    note: str = ""

    def message(self) -> str:
        names = " and ".join(self.missing) if len(self.missing) < 3 else ", ".join(self.missing)
        return (
            f"{self.system} connection '{self.connection}' is not configured: set {names} "
            f"in the environment or in {ENV_FILE} in the project folder{self.note} "
            "(the README's Configuration section lists every variable)"
        )


def missing_salesforce_settings(connection: str = "default") -> MissingSettings | None:
    """What the connection's login flow needs and the environment does not set; None if
    nothing is missing."""
    flow = auth_flow(connection)
    if flow not in REQUIRED_BY_FLOW:
        flows = ", ".join(REQUIRED_BY_FLOW)
        return MissingSettings(
            "Salesforce",
            connection,
            (variable(connection, "auth_flow"),),
            f" to one of {flows} (it is {flow!r})",
        )
    missing = tuple(
        variable(connection, name)
        for name in REQUIRED_BY_FLOW[flow]
        if not os.environ.get(variable(connection, name))
    )
    if not missing:
        return None
    note = ""
    if flow == "password" and not os.environ.get(variable(connection, "security_token")):
        note = (
            f" (and {variable(connection, 'security_token')} unless the org trusts this "
            "network's IP range)"
        )
    return MissingSettings("Salesforce", connection, missing, note)


# -- Emarsys -------------------------------------------------------------------------------------


def emarsys_key(connection: str) -> str:
    return "emarsys" if connection == "default" else f"emarsys_{connection}"


def emarsys_prefix(connection: str) -> str:
    return "EMARSYS_" if connection == "default" else f"EMARSYS_{connection.upper()}_"


def emarsys_from_env(connection: str = "default", *, resolved: bool = False) -> EmarsysResource:
    """`EMARSYS_TOKEN` (a secret), `EMARSYS_MERCHANT_ID`, `EMARSYS_URL`, `EMARSYS_CA_BUNDLE`
    for `default`; `EMARSYS_<NAME>_…` for another connection."""
    prefix = emarsys_prefix(connection)
    token = prefix + "TOKEN"
    config: dict[str, object] = {
        "merchant_id": os.environ.get(prefix + "MERCHANT_ID", ""),
        "token": os.environ.get(token, "") if resolved else dg.EnvVar(token),
    }
    if os.environ.get(prefix + "URL"):
        config["base_url"] = os.environ[prefix + "URL"]
    if os.environ.get(prefix + "CA_BUNDLE"):
        config["ca_bundle"] = os.environ[prefix + "CA_BUNDLE"]
    return EmarsysResource(**config)


def missing_emarsys_settings(connection: str = "default") -> MissingSettings | None:
    prefix = emarsys_prefix(connection)
    missing = tuple(
        prefix + name.upper()
        for name in EMARSYS_REQUIRED
        if not os.environ.get(prefix + name.upper())
    )
    return MissingSettings("Emarsys", connection, missing) if missing else None


# -- everything the code location needs ----------------------------------------------------------


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


LEASE_SETTINGS = {
    "lease_wait_seconds": "SF_ASSETS_LEASE_WAIT_SECONDS",
    "lease_ttl_seconds": "SF_ASSETS_LEASE_TTL_SECONDS",
}


STATE_URL = "SF_ASSETS_STATE_URL"
STATE_SCHEMA = "SF_ASSETS_STATE_SCHEMA"
STATE_CONNECT_WAIT = "SF_ASSETS_STATE_CONNECT_WAIT_SECONDS"


def staging_from_env(*, resolved: bool = False) -> StateStore:
    """The state store (resource key `staging`): the PostgreSQL database
    `$SF_ASSETS_STATE_URL` (schema `$SF_ASSETS_STATE_SCHEMA`, default `sf_assets`) when set,
    which every machine of a deployment shares; else the DuckDB file `$SF_ASSETS_STAGING`
    (default `.sf-assets/staging.duckdb`, in the project folder when relative), for one
    machine. `$SF_ASSETS_STATE_CONNECT_WAIT_SECONDS` is how long PostgreSQL may be away (a
    restart, a fail-over) before a step fails. The lease settings come from `$SF_ASSETS_LEASE_WAIT_SECONDS` and
    `$SF_ASSETS_LEASE_TTL_SECONDS` when set. In definitions the URL, which may hold a
    password, stays an `EnvVar` for Dagster to resolve at run time (never shown in the UI);
    commands outside a run ask for the `resolved` value."""
    leases = {
        name: float(os.environ[variable])
        for name, variable in LEASE_SETTINGS.items()
        if os.environ.get(variable)
    }
    url = os.environ.get(STATE_URL)
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"{STATE_URL} must be a PostgreSQL URL (postgresql://user@host:5432/database); "
                "leave it unset to keep the state in the DuckDB file SF_ASSETS_STAGING"
            )
        schema = os.environ.get(STATE_SCHEMA) or "sf_assets"
        wait = os.environ.get(STATE_CONNECT_WAIT)
        from sf_assets.state.postgres_backend import PostgresStateStore

        return PostgresStateStore(
            url=url if resolved else dg.EnvVar(STATE_URL),
            db_schema=schema,
            **({"connect_wait_seconds": float(wait)} if wait else {}),
            **leases,
        )
    path = in_project(os.environ.get("SF_ASSETS_STAGING", DEFAULT_STAGING))
    return DuckDBStateStore(path=str(path), **leases)
