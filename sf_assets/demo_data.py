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
