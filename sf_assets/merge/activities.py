"""`activities`: what people did, from Opportunities and Tasks, each joined to its person.

An Opportunity belongs to the person of its primary contact role (OpportunityContactRole with
IsPrimary), a Task to the person of its WhoId (a Contact or a Lead); both go through
`people_sources`, so an activity follows its record's person whatever merge made them one.
Activities are few next to people and usually kept for a retention window, so the table is
rebuilt whole from the copies on every run, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from sf_assets.merge.tables import Source, selected_columns
from sf_assets.salesforce.reader.warehouse import ARCHIVED, DELETED, ORG, Warehouse
from sf_assets.sql import first_row, quote_identifier, table_exists

CURRENT = f"NOT coalesce({DELETED}, false) AND NOT coalesce({ARCHIVED}, false)"


@dataclass(frozen=True)
class ActivitySources:
    opportunities: Source | None = None
    contact_roles: Source | None = None
    tasks: Source | None = None


class Activities:
    def __init__(self, warehouse: Warehouse, schema: str = "main") -> None:
        self.warehouse = warehouse
        self.schema = schema

    @property
    def table(self) -> str:
        return f"{quote_identifier(self.schema)}.activities"

    def rebuild(self, sources: ActivitySources) -> int:
        """Rebuild the table; how many activities it holds."""
        with self.warehouse.transaction() as connection:
            links = f"{quote_identifier(self.schema)}.people_sources"
            if not table_exists(connection, self.schema, "people_sources"):
                return 0
            parts = [
                part
                for part in (
                    self._opportunities(connection, sources, links),
                    self._tasks(connection, sources, links),
                )
                if part
            ]
            if not parts:
                return 0
            connection.execute(
                f"CREATE OR REPLACE TABLE {self.table} AS " + " UNION ALL BY NAME ".join(parts)
            )
            found = first_row(connection.execute(f"SELECT count(*) FROM {self.table}"))
        return int(found[0]) if found else 0

    def _opportunities(
        self, connection: duckdb.DuckDBPyConnection, sources: ActivitySources, links: str
    ) -> str | None:
        opportunities, roles = sources.opportunities, sources.contact_roles
        if opportunities is None or roles is None or not _present(connection, opportunities, roles):
            return None
        fields = selected_columns(
            connection, opportunities.table, ["Name", "StageName", "CloseDate", "Amount"]
        )
        role_fields = selected_columns(
            connection, roles.table, ["OpportunityId", "ContactId", "IsPrimary"]
        )
        return (
            "SELECT 'Opportunity' AS object, o.Id AS record_id, o._org AS org_id, l.person_id, "
            "o.Name AS subject, o.StageName AS status, CAST(o.CloseDate AS DATE) AS occurred_on, "
            "CAST(o.Amount AS DOUBLE) AS amount "
            f"FROM (SELECT Id, {ORG} AS _org, {fields} FROM {opportunities.table} "
            f"WHERE {CURRENT}) o "
            f"JOIN (SELECT {ORG} AS _org, {role_fields} FROM {roles.table} WHERE {CURRENT}) r "
            "ON r.OpportunityId = o.Id AND r._org = o._org AND coalesce(r.IsPrimary, false) "
            f"JOIN {links} l ON l.org_id = o._org AND l.object = 'Contact' "
            "AND l.record_id = r.ContactId AND l.current"
        )

    def _tasks(
        self, connection: duckdb.DuckDBPyConnection, sources: ActivitySources, links: str
    ) -> str | None:
        tasks = sources.tasks
        if tasks is None or not _present(connection, tasks):
            return None
        fields = selected_columns(
            connection, tasks.table, ["Subject", "Status", "ActivityDate", "WhoId"]
        )
        return (
            "SELECT 'Task' AS object, t.Id AS record_id, t._org AS org_id, l.person_id, "
            "t.Subject AS subject, t.Status AS status, CAST(t.ActivityDate AS DATE) AS "
            "occurred_on, CAST(NULL AS DOUBLE) AS amount "
            f"FROM (SELECT Id, {ORG} AS _org, {fields} FROM {tasks.table} WHERE {CURRENT}) t "
            f"JOIN {links} l ON l.org_id = t._org AND l.record_id = t.WhoId AND l.current"
        )


def _present(connection: duckdb.DuckDBPyConnection, *sources: Source) -> bool:
    return all(table_exists(connection, s.schema, s.name) for s in sources)
