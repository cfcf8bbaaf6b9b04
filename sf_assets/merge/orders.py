"""`orders`: Salesforce Orders with their OrderItems, one row per order, for fulfilment.

Each run rebuilds the orders whose header or any item changed since the last run (by the raw
copies' `_sf_seq`), each with all its current items as a list, and stamps them with the run's
`_orders_seq`: a fulfilment service that remembers the last `_orders_seq` it took reads
exactly the orders changed since. The items keep every field of the raw OrderItem copy, and
`salesforce.orderitem` joins on `OrderId` for anyone who wants them flat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from sf_assets.merge.tables import Source
from sf_assets.salesforce.reader.warehouse import ARCHIVED, DELETED, SEQ, SYNCED_AT, Warehouse
from sf_assets.sql import first_row, quote_identifier, table_exists

ORDERS_SEQ = "_orders_seq"
TRACKING = (SEQ, SYNCED_AT)


@dataclass
class OrdersReport:
    changed: list[str] = field(default_factory=list)  # order ids rebuilt, in Id order
    seq: int = 0  # the run's _orders_seq
    seen: dict[str, int] = field(default_factory=dict)


class Orders:
    def __init__(self, warehouse: Warehouse, schema: str = "main") -> None:
        self.warehouse = warehouse
        self.schema = schema

    @property
    def table(self) -> str:
        return f"{quote_identifier(self.schema)}.orders"

    def merge(self, orders: Source, items: Source, since: dict[str, int]) -> OrdersReport:
        report = OrdersReport()
        with self.warehouse.transaction() as connection:
            if not table_exists(connection, orders.schema, orders.name):
                return report
            report.seen = self._seen(connection, orders, items, since)
            self._changed(connection, orders, items, since)
            built = self._build(connection, orders, items)
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(self.schema)}")
            connection.execute(f"CREATE TABLE IF NOT EXISTS {self.table} AS {built} LIMIT 0", [0])
            found = first_row(connection.execute(f"SELECT max({ORDERS_SEQ}) FROM {self.table}"))
            report.seq = int((found[0] if found else 0) or 0) + 1
            connection.execute(
                f"DELETE FROM {self.table} WHERE Id IN (SELECT Id FROM changed_orders)"
            )
            connection.execute(f"INSERT INTO {self.table} BY NAME {built}", [report.seq])
            report.changed = [
                row[0]
                for row in connection.execute(
                    "SELECT Id FROM changed_orders ORDER BY Id"
                ).fetchall()
            ]
        return report

    def _seen(
        self,
        connection: duckdb.DuckDBPyConnection,
        orders: Source,
        items: Source,
        since: dict[str, int],
    ) -> dict[str, int]:
        seen = dict(since)
        for source in (orders, items):
            if table_exists(connection, source.schema, source.name):
                found = first_row(connection.execute(f"SELECT max({SEQ}) FROM {source.table}"))
                seen[source.object] = int((found[0] if found else 0) or 0)
        return seen

    def _changed(
        self,
        connection: duckdb.DuckDBPyConnection,
        orders: Source,
        items: Source,
        since: dict[str, int],
    ) -> None:
        """`changed_orders`: orders whose header or an item changed after `since`."""
        item_changes = (
            f" UNION SELECT OrderId FROM {items.table} WHERE {SEQ} > $items"
            if table_exists(connection, items.schema, items.name)
            else ""
        )
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE changed_orders AS "
            f"SELECT Id FROM {orders.table} WHERE {SEQ} > $orders{item_changes}",
            {"orders": since.get(orders.object, 0), "items": since.get(items.object, 0)}
            if item_changes
            else {"orders": since.get(orders.object, 0)},
        )

    def _build(self, connection: duckdb.DuckDBPyConnection, orders: Source, items: Source) -> str:
        """The SELECT of the changed orders' rows; its one parameter is the run's sequence."""
        tracking = ", ".join(TRACKING)
        current = f"NOT coalesce({DELETED}, false) AND NOT coalesce({ARCHIVED}, false)"
        if table_exists(connection, items.schema, items.name):
            item_list = (
                f"(SELECT list(i ORDER BY i.Id) FROM (SELECT * EXCLUDE ({tracking}, "
                f"{DELETED}, {ARCHIVED}) FROM {items.table} WHERE OrderId = o.Id AND {current}) i)"
            )
        else:
            item_list = "NULL"
        return (
            f"SELECT o.* EXCLUDE ({tracking}), coalesce({item_list}, []) AS items, "
            f"len(coalesce({item_list}, [])) AS item_count, "
            f"NOT coalesce(o.{DELETED}, false) AND NOT coalesce(o.{ARCHIVED}, false) AS active, "
            f"?::BIGINT AS {ORDERS_SEQ} "
            f"FROM {orders.table} o WHERE o.Id IN (SELECT Id FROM changed_orders)"
        )
