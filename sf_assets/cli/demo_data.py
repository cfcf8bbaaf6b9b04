"""The demo's warehouse: ticket buyers in three batches, with the mistakes real exports carry.

Batch 1 creates contacts, batch 2 updates some of them and adds more, batch 3 (4,000 rows) is
large enough to go through Bulk API 2.0. A few rows in each batch are bad on purpose (a missing last name, an
email without a domain, a fan tier Salesforce does not allow, text in the ticket count, an
impossible birthday, a repeated contact id, a first name too long for the field), so the demo
shows what happens to bad rows: they are set aside with their reason and the rest is written.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

BATCHES = ("20261122-0900", "20261122-0930", "20261122-1000")
TIERS = ("Bronze", "Silver", "Gold", "Platinum")


def contacts(ids: range, batch: str, tickets_offset: int = 0) -> pl.DataFrame:
    n = pl.Series(list(ids))
    return pl.DataFrame(
        {
            "contact_id": [f"fan-{i:05d}" for i in ids],
            "first_name": [f"Fan{i}" for i in ids],
            "last_name": [f"Buyer{i % 97}" for i in ids],
            "email": [f"fan{i}@example.com" for i in ids],
            "phone": [f"+1 555 {i:07d}" for i in ids],
            "birthdate": [f"19{70 + i % 30}-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in ids],
            "tickets": [str(1 + (i + tickets_offset) % 9) for i in ids],
            "lifetime_value": (n * 7.5 % 900 + 20).round(2),
            "last_purchase": [f"2026-11-{1 + i % 21:02d} {i % 24:02d}:15:00" for i in ids],
            "fan_tier": [TIERS[i % 4] for i in ids],
            "_BATCH_ID_": [batch] * len(ids),
        }
    ).with_columns(pl.col("last_purchase").str.to_datetime())


def spoil(frame: pl.DataFrame, row: int, **values: str | None) -> pl.DataFrame:
    """Set some cells of one row, the way a hand-edited export goes wrong."""
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(v)).otherwise(pl.col(k)).alias(k)
        for k, v in values.items()
    )


def batches() -> pl.DataFrame:
    first = contacts(range(1, 401), BATCHES[0])
    first = spoil(first, 10, last_name=None)
    first = spoil(first, 20, email="fan20-at-example.com")
    first = spoil(first, 30, fan_tier="Diamond")

    second = contacts(range(1, 151), BATCHES[1], tickets_offset=3)  # updates of batch 1
    second = pl.concat([second, contacts(range(401, 551), BATCHES[1])])
    second = spoil(second, 40, tickets="many")
    second = spoil(second, 200, birthdate="1990-02-31")
    second = pl.concat([second, second.slice(250, 1)])  # fan-00501 exported twice

    third = contacts(range(551, 4551), BATCHES[2])  # above the Bulk threshold
    third = spoil(third, 7, first_name="Bartholomew-Maximilian Alexander-Fitzgerald")
    return pl.concat([first, second, third])


def write_warehouse(path: Path) -> dict[str, int]:
    """(Re)create `crm.ticket_buyers` in the DuckDB file; rows per batch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    frame = batches()
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA crm")
        con.register("rows", frame)
        con.execute("CREATE TABLE crm.ticket_buyers AS SELECT * FROM rows")
    return {b: int(n) for b, n in frame.group_by("_BATCH_ID_").len().sort("_BATCH_ID_").iter_rows()}


# -- the other integrations of the demo ------------------------------------------------------

TICKET_BATCHES = ("20261122-0900", "20261122-0930")


def customers() -> pl.DataFrame:
    """Ticketing customers identified by email: the first batch's emails are upper-cased
    spellings of contacts the contacts sync wrote, so they match instead of duplicating."""
    first = pl.DataFrame(
        {
            "email": [f"FAN{i}@EXAMPLE.COM" for i in range(1, 51)],
            "first_name": [f"Fan{i}" for i in range(1, 51)],
            "last_name": [f"Customer{i}" for i in range(1, 51)],
            "phone": [f"+44 20 {i:07d}" for i in range(1, 51)],
            "_BATCH_ID_": TICKET_BATCHES[0],
        }
    )
    second = pl.DataFrame(
        {
            "email": [f"new{i}@example.org" for i in range(1, 31)],
            "first_name": [f"New{i}" for i in range(1, 31)],
            "last_name": [f"Customer{i}" for i in range(1, 31)],
            "phone": [None] * 30,
            "_BATCH_ID_": TICKET_BATCHES[1],
        },
        schema_overrides={"phone": pl.Utf8},
    )
    return pl.concat([first, second])


def checkouts() -> pl.DataFrame:
    ids = range(1, 41)
    return pl.DataFrame(
        {
            "checkout_id": [f"co_{i:06d}" for i in ids],
            "event": [f"Summer Festival day {1 + i % 3}" for i in ids],
            "status": ["completed" if i % 5 else "refunded" for i in ids],
            "total": [round(19.5 * (1 + i % 4), 2) for i in ids],
            "currency": ["EUR"] * len(ids),
            "checked_out_at": [f"2026-11-2{i % 2} 1{i % 10}:00:00" for i in ids],
            "_BATCH_ID_": [TICKET_BATCHES[i % 2] for i in ids],
        }
    ).with_columns(pl.col("checked_out_at").str.to_datetime())


def transactions() -> pl.DataFrame:
    ids = range(1, 61)
    return pl.DataFrame(
        {
            "transaction_id": [f"tx_{i:06d}" for i in ids],
            "checkout_id": [f"co_{1 + (i - 1) % 40:06d}" for i in ids],
            "amount": [round(19.5 * (1 + i % 4), 2) for i in ids],
            "method": [("card", "paypal", "voucher")[i % 3] for i in ids],
            "status": ["captured"] * len(ids),
            "paid_at": [f"2026-11-21 1{i % 10}:05:00" for i in ids],
            "_BATCH_ID_": [TICKET_BATCHES[1 - ((i - 1) % 40) % 2] for i in ids],
        }
    ).with_columns(pl.col("paid_at").str.to_datetime())


def shipments(order_numbers: list[str]) -> pl.DataFrame:
    """Tracking numbers for orders that exist in the org, plus one order it has never seen."""
    numbers = [*order_numbers[:15], "99999999"]
    return pl.DataFrame(
        {
            "order_number": numbers,
            "tracking_number": [f"1Z{n}" for n in numbers],
            "carrier": [("UPS", "DHL", "FedEx")[i % 3] for i in range(len(numbers))],
            "shipped_at": [f"2026-11-22 0{i % 10}:30:00" for i in range(len(numbers))],
            "_BATCH_ID_": "20261122-0800",
        }
    ).with_columns(pl.col("shipped_at").str.to_datetime())


def inventory_levels(skus: list[str]) -> pl.DataFrame:
    """Counts for SKUs the org holds, plus one SKU it does not (reported, never created)."""
    listed = [*skus, "SKU-UNKNOWN-1"]
    return pl.DataFrame(
        {
            "sku": listed,
            "on_hand": [10 * (i + 1) for i in range(len(listed))],
            "allocated": [i % 4 for i in range(len(listed))],
            "counted_at": ["2026-11-22 06:00:00"] * len(listed),
            "_BATCH_ID_": "20261122-0600",
        }
    ).with_columns(pl.col("counted_at").str.to_datetime())


def survey_responses() -> pl.DataFrame:
    ids = range(1, 26)
    return pl.DataFrame(
        {
            "response_id": [f"resp-{i:04d}" for i in ids],
            "rating": [1 + i % 5 for i in ids],
            "would_return": [i % 3 != 0 for i in ids],
            "comment": [f"Great night number {i}" for i in ids],
            "submitted_at": [f"2026-11-21 2{i % 4}:00:00" for i in ids],
            "_BATCH_ID_": "20261122-0700",
        }
    ).with_columns(pl.col("submitted_at").str.to_datetime())


def products() -> pl.DataFrame:
    """The product catalogue: no batch column, written whole with change detection."""
    ids = range(1, 21)
    return pl.DataFrame(
        {
            "sku": [f"SKU-{i:04d}" for i in ids],
            "name": [f"Festival item {i}" for i in ids],
            "family": [("Tickets", "Merchandise", "Food and Beverage")[i % 3] for i in ids],
            "active": [True] * len(ids),
        }
    )


def write_integrations(path: Path, order_numbers: list[str], skus: list[str]) -> None:
    """Add the other integrations' tables to the demo warehouse."""
    tables = {
        "ticketing.customers": customers(),
        "ticketing.checkouts": checkouts(),
        "ticketing.transactions": transactions(),
        "fulfilment.shipments": shipments(order_numbers),
        "fulfilment.inventory_levels": inventory_levels(skus),
        "survey.responses": survey_responses(),
        "catalog.products": products(),
        "shop.order_lines": order_lines(),
    }
    with duckdb.connect(str(path)) as con:
        for name, frame in tables.items():
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {name.split('.')[0]}")
            con.register("rows", frame)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM rows")
            con.unregister("rows")


def change_one_product(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(
            "UPDATE catalog.products SET name = 'Festival item 7 (new edition)' WHERE sku = 'SKU-0007'"
        )


def order_lines() -> pl.DataFrame:
    """Sales lines for Emarsys in two batches; the second batch repeats one line of the first
    (a re-export), which must be stopped before it reaches Emarsys."""
    first = [
        (f"ord-{o:05d}", f"2026-11-21 1{o % 10}:00:00", f"fan-{o:05d}", sku, 12.5 * (i + 1), i + 1)
        for o in range(1, 61)
        for i, sku in enumerate(("TICKET-GA", "TSHIRT") if o % 2 else ("TICKET-VIP",))
    ]
    second = [
        (f"ord-{o:05d}", f"2026-11-22 0{o % 10}:30:00", f"fan-{o:05d}", "TICKET-GA", 25.0, 2)
        for o in range(61, 101)
    ]
    second.append(first[0])  # the repeated line
    rows = [(*line, "20261121") for line in first] + [(*line, "20261122") for line in second]
    return pl.DataFrame(
        rows,
        schema=["order_id", "ordered_at", "customer_id", "sku", "unit_price", "qty", "_BATCH_ID_"],
        orient="row",
    ).with_columns(
        pl.col("ordered_at").str.to_datetime(),
        pl.when(pl.col("sku").str.starts_with("TICKET"))
        .then(pl.lit("box office"))
        .otherwise(pl.lit("web shop"))
        .alias("channel"),
    )
