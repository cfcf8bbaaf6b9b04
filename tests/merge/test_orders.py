"""Orders with their items, as a fulfilment service downloads them: each run rebuilds exactly
the orders whose header or items changed since the last one, with all their current items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from sf_assets.merge.orders import Orders
from sf_assets.merge.tables import Source
from sf_assets.salesforce.reader.warehouse import Warehouse

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORDERS = Source("Order", "salesforce", "order")
ITEMS = Source("OrderItem", "salesforce", "orderitem")


def land_orders(warehouse: Warehouse, rows: list[tuple[str, str]]) -> None:
    """(Id, Status) rows."""
    warehouse.upsert(
        "Order",
        pl.DataFrame(
            {
                "Id": [r[0] for r in rows],
                "SystemModstamp": [T0] * len(rows),
                "IsDeleted": [False] * len(rows),
                "Status": [r[1] for r in rows],
            }
        ),
    )


def land_items(warehouse: Warehouse, rows: list[tuple[str, str, float]], deleted=False) -> None:  # type: ignore[no-untyped-def]
    """(Id, OrderId, Quantity) rows."""
    warehouse.upsert(
        "OrderItem",
        pl.DataFrame(
            {
                "Id": [r[0] for r in rows],
                "SystemModstamp": [T0 + timedelta(minutes=1)] * len(rows),
                "IsDeleted": [deleted] * len(rows),
                "OrderId": [r[1] for r in rows],
                "Quantity": [r[2] for r in rows],
            }
        ),
    )


def downloaded(warehouse: Warehouse, seq: int) -> dict[str, tuple[str, list[tuple[str, float]]]]:
    """The orders a reader that last took `seq - 1` gets: id -> (status, [(item, quantity)])."""
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        rows = con.sql(
            "SELECT Id, Status, [(i.Id, i.Quantity) FOR i IN items] AS items, item_count "
            "FROM orders WHERE _orders_seq >= ? ORDER BY Id",
            params=[seq],
        ).fetchall()
    for _, _, items, count in rows:
        assert len(items) == count
    return {
        r[0]: (r[1], [tuple(i.values()) if isinstance(i, dict) else tuple(i) for i in r[2]])
        for r in rows
    }


def test_each_run_returns_the_orders_changed_since_the_last_with_all_their_items(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", "salesforce")
    orders = Orders(warehouse)
    land_orders(warehouse, [("O1", "Activated"), ("O2", "Activated"), ("O3", "Draft")])
    land_items(warehouse, [("I1", "O1", 1.0), ("I2", "O1", 2.0), ("I3", "O2", 5.0)])
    first = orders.merge(ORDERS, ITEMS, {})
    assert first.changed == ["O1", "O2", "O3"]
    assert downloaded(warehouse, first.seq) == {
        "O1": ("Activated", [("I1", 1.0), ("I2", 2.0)]),
        "O2": ("Activated", [("I3", 5.0)]),
        "O3": ("Draft", []),
    }
    land_items(warehouse, [("I3", "O2", 4.0)])  # an item changed
    land_orders(warehouse, [("O3", "Shipped")])  # a header changed
    land_items(warehouse, [("I2", "O1", 2.0)], deleted=True)  # an item deleted
    second = orders.merge(ORDERS, ITEMS, first.seen)
    assert second.changed == ["O1", "O2", "O3"] and second.seq == first.seq + 1
    assert downloaded(warehouse, second.seq) == {
        "O1": ("Activated", [("I1", 1.0)]),
        "O2": ("Activated", [("I3", 4.0)]),
        "O3": ("Shipped", []),
    }
    third = orders.merge(ORDERS, ITEMS, second.seen)
    assert third.changed == [] and downloaded(warehouse, third.seq) == {}
    land_items(warehouse, [("I4", "O3", 1.0)])
    fourth = orders.merge(ORDERS, ITEMS, third.seen)
    assert downloaded(warehouse, fourth.seq) == {"O3": ("Shipped", [("I4", 1.0)])}
