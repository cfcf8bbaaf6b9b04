"""The PostgreSQL backend migrates a schema an earlier sf-assets created, keeping its rows."""

from __future__ import annotations

import polars as pl
import psycopg

from sf_assets.state import UNWRITTEN_STATUSES, PostgresStateStore
from sf_assets.state.postgres_backend.migrations import LATEST, MIGRATIONS
from sf_assets.state.postgres_backend.store import LATEST_WITH_STATUS
from tests.state.test_store import hold, outcomes


def indexes(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'sf_assets' "
            "AND tablename = 'write_ledger'"
        ).fetchall()
    return {row[0] for row in rows}


def test_a_version_3_schema_is_migrated_to_the_latest_keeping_its_ledger(
    postgres_url: str,
) -> None:
    first = MIGRATIONS[0]
    assert first.version == 3 and LATEST > 3
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA sf_assets")
        connection.execute("SET search_path TO sf_assets")
        connection.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        connection.execute(first.sql)
        connection.execute("INSERT INTO schema_version VALUES (3, 'then', now())")
        connection.execute(
            "INSERT INTO write_ledger (sync, batch, source_key, target_id, status, attempt, "
            "written_at) VALUES ('s', 'b1', 'k1', '003k1', 'created', 1, now())"
        )
    assert "write_ledger_target" in indexes(postgres_url)

    store = PostgresStateStore(url=postgres_url)
    latest = store.latest_outcomes("s", "b1")
    assert latest.select("source_key", "target_id", "status").rows() == [("k1", "003k1", "created")]
    assert {"write_ledger_written", "write_ledger_match"} <= indexes(postgres_url)
    assert "write_ledger_target" not in indexes(postgres_url)
    since = latest["written_at"].min()
    assert store.recorded_ids(["003k1"], since) == {"003k1"}
    # created before the migration by an operation the row does not name: still found
    assert store.created_keys("s", pl.Series(["k1"])).rows() == [("k1", "003k1", "b1")]

    lease = hold(store, "s", "b1")
    store.record_outcomes("s", "b1", outcomes(["k2"], "created"), run_id="r", lease=lease)
    with psycopg.connect(postgres_url) as connection:
        [version] = connection.execute(
            "SELECT max(version) FROM sf_assets.schema_version"
        ).fetchone()
    assert version == LATEST
    assert sorted(store.latest_outcomes("s", "b1")["source_key"]) == ["k1", "k2"]


def test_the_unwritten_keys_of_a_written_batch_are_read_through_their_own_index(
    postgres_url: str,
) -> None:
    """The WARN check and S/rejects ask for a batch's few unwritten keys; without their index
    PostgreSQL visits every row of the batch (about 0.6 s for 1,000,000, BENCHMARKS.md)."""
    store = PostgresStateStore(url=postgres_url)
    lease = hold(store, "s", "b1")
    written = outcomes([f"k{i}" for i in range(2000)], "created")
    store.record_outcomes("s", "b1", written, run_id="r", lease=lease)
    store.record_outcomes("s", "b1", outcomes(["k7"], "failed", "X"), run_id="r", lease=lease)
    assert store.latest_outcomes("s", "b1", UNWRITTEN_STATUSES)["source_key"].to_list() == ["k7"]
    with store.connect() as connection:
        plan = connection.execute(
            f"EXPLAIN {LATEST_WITH_STATUS}",
            {"sync": "s", "batch": "b1", "statuses": list(UNWRITTEN_STATUSES)},
        ).fetchall()
    assert "write_ledger_unwritten" in "\n".join(row[0] for row in plan)
