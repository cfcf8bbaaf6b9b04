"""Logging in to the org a command talks to, with errors that say which variables to set."""

from __future__ import annotations

from simple_salesforce import Salesforce

from resources.salesforce import SalesforceLoginError
from sf_assets.connections import missing_salesforce_settings, salesforce_from_env


class ConnectionProblem(Exception):
    """A connection that is not configured or refused the login; the message says what to do."""


class Clients:
    """One logged-in client per connection, made when a command first needs it."""

    def __init__(self) -> None:
        self._clients: dict[str, Salesforce] = {}

    def get(self, connection: str = "default") -> Salesforce:
        if connection not in self._clients:
            self._clients[connection] = login(connection)
        return self._clients[connection]


def login(connection: str = "default") -> Salesforce:
    """A client for the connection, or a ConnectionProblem naming the variables to set."""
    missing = missing_salesforce_settings(connection)
    if missing is not None:
        raise ConnectionProblem(missing.message())
    try:
        return salesforce_from_env(connection, resolved=True).client()
    except SalesforceLoginError as error:
        raise ConnectionProblem(f"cannot log in to connection '{connection}': {error}") from None
