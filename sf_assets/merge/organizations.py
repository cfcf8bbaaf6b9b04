"""`organizations`: one row per Salesforce Account, keyed by (org id, account id).

Company names are not identities: two orgs each holding an "Acme" are two organizations, and
even the same Account Id in two orgs (a sandbox refreshed from production) stays two rows,
because the key carries the org. An Account's changes merge into its row by the spec's
strategy, like people's; a deleted Account (or one that left the filter) is kept with
`active` false.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from sf_assets.merge.strategy import merged
from sf_assets.merge.tables import MergeReport, Source, selected_columns, upsert
from sf_assets.salesforce.reader.warehouse import ARCHIVED, DELETED, ORG, SEQ, Warehouse
from sf_assets.specs.ingest import OrganizationsMerge
from sf_assets.sql import quote_identifier, table_exists


class Organizations:
    def __init__(
        self, config: OrganizationsMerge, warehouse: Warehouse, schema: str = "main"
    ) -> None:
        self.config = config
        self.warehouse = warehouse
        self.schema = schema

    @property
    def table(self) -> str:
        return f"{quote_identifier(self.schema)}.organizations"

    def merge(self, source: Source, since: int) -> MergeReport:
        report = MergeReport()
        now = datetime.now(UTC)
        with self.warehouse.transaction() as connection:
            if not table_exists(connection, source.schema, source.name):
                return report
            incoming = self._incoming(connection, source, since)
            if incoming.is_empty():
                return report
            report.records = incoming.height
            report.seen[source.object] = int(incoming[SEQ].max())  # type: ignore[arg-type]
            existing = self._existing(connection, incoming)
            changed: dict[str, dict[str, Any]] = {}
            for record in incoming.iter_rows(named=True):
                key = f"{record[ORG]}:{record['Id']}"
                current = changed.get(key) or existing.get(key)
                after = self._after(current, record, now)
                if after is None or after == current:
                    continue
                if current is None:
                    report.created += 1
                elif not after["active"] and current["active"]:
                    report.unlinked += 1
                else:
                    report.updated += 1
                changed[key] = after
            self._write(connection, changed, incoming)
        return report

    def _after(
        self, current: dict[str, Any] | None, record: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        """The organization once `record` is merged (None: nothing to keep)."""
        if record["_gone"]:
            if current is None or not current["active"]:
                return current
            return {**current, "active": False, "updated_at": now}
        if current is None:
            return {
                "organization_key": f"{record[ORG]}:{record['Id']}",
                "org_id": record[ORG],
                "account_id": record["Id"],
                **{f: record[f] for f in self.config.fields},
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
        after = merged(current, record, self.config.fields, self.config.strategy)
        after["active"] = True
        return after if after == current else {**after, "updated_at": now}

    def _incoming(
        self, connection: duckdb.DuckDBPyConnection, source: Source, since: int
    ) -> pl.DataFrame:
        return connection.sql(
            f"SELECT Id, SystemModstamp, {ORG}, {SEQ}, "
            f"coalesce({DELETED}, false) OR coalesce({ARCHIVED}, false) AS _gone, "
            f"{selected_columns(connection, source.table, self.config.fields)} "
            f"FROM {source.table} WHERE {SEQ} > ? ORDER BY SystemModstamp, Id",
            params=[since],
        ).pl()

    def _existing(
        self, connection: duckdb.DuckDBPyConnection, incoming: pl.DataFrame
    ) -> dict[str, dict[str, Any]]:
        if not table_exists(connection, self.schema, "organizations"):
            return {}
        keys = incoming.select((pl.col(ORG) + ":" + pl.col("Id")).alias("organization_key"))
        connection.register("incoming_keys", keys.to_arrow())
        rows = connection.sql(
            f"SELECT * FROM {self.table} WHERE organization_key IN "
            "(SELECT organization_key FROM incoming_keys)"
        ).pl()
        return {row["organization_key"]: row for row in rows.iter_rows(named=True)}

    def _write(
        self,
        connection: duckdb.DuckDBPyConnection,
        changed: dict[str, dict[str, Any]],
        incoming: pl.DataFrame,
    ) -> None:
        if not changed:
            return
        schema: dict[str, pl.DataType] = {
            "organization_key": pl.Utf8(),
            "org_id": pl.Utf8(),
            "account_id": pl.Utf8(),
            **{f: _dtype(incoming, f) for f in self.config.fields},
            "active": pl.Boolean(),
            "created_at": pl.Datetime("us", "UTC"),
            "updated_at": pl.Datetime("us", "UTC"),
        }
        rows = pl.DataFrame(list(changed.values()), schema=schema)
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(self.schema)}")
        upsert(connection, self.table, rows, ("organization_key",))


def _dtype(frame: pl.DataFrame, column: str) -> pl.DataType:
    dtype = frame.schema[column]
    return pl.Utf8() if dtype == pl.Null else dtype
