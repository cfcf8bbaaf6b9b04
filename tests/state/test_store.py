"""The staging store keeps batches, the ledger, open jobs and watermarks in one DuckDB file."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from sf_assets.state.store import StagingStore

MAPPED = pl.DataFrame(
    {
        "_row": [1, 2],
        "_key": ["k1", "k2"],
        "_hash": ["h1", "h2"],
        "LastName": ["Ada", None],
        "HasOptedOutOfEmail": [True, False],
        "Ticket_Count__c": [1.5, None],
        "NumberOfEmployees": [3, 4],
        "Birthdate": [date(1990, 1, 2), None],
        "Last_Purchase__c": [datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC), None],
        "Account.External_Id__c": ["A1", None],
    },
    schema_overrides={"_row": pl.Int64, "NumberOfEmployees": pl.Int64},
)


@pytest.fixture
def store(tmp_path: Path) -> StagingStore:
    return StagingStore(path=str(tmp_path / "state" / "staging.duckdb"))


def outcomes(keys: list[str], status: str, code: str | None = None) -> pl.DataFrame:
    n = len(keys)
    return pl.DataFrame(
        {
            "source_key": keys,
            "target_id": [f"003{k}" if status != "failed" else None for k in keys],
            "operation": ["upsert"] * n,
            "api": ["rest"] * n,
            "status": [status] * n,
            "error_code": [code] * n,
            "error_message": [code and "msg"] * n,
            "hint": [None] * n,
            "content_hash": ["h"] * n,
            "job_id": ["j"] * n,
        },
        schema_overrides={"error_code": pl.Utf8, "error_message": pl.Utf8, "hint": pl.Utf8},
    )


def test_a_batch_round_trips_with_its_types_and_the_folder_is_created(store: StagingStore) -> None:
    store.replace_batch("contacts", "mapped", "b1", MAPPED)
    assert Path(store.path).is_file()
    loaded = store.load_batch("contacts", "mapped", "b1")
    assert loaded.schema == MAPPED.schema
    assert loaded.equals(MAPPED)


def test_replacing_a_batch_replaces_only_that_batch(store: StagingStore) -> None:
    store.replace_batch("contacts", "source", "b1", pl.DataFrame({"id": [1, 2, 3]}))
    store.replace_batch("contacts", "source", "b2", pl.DataFrame({"id": [9]}))
    store.replace_batch("contacts", "source", "b1", pl.DataFrame({"id": [7]}))
    assert store.load_batch("contacts", "source", "b1")["id"].to_list() == [7]
    assert store.load_batch("contacts", "source", "b2")["id"].to_list() == [9]


def test_a_later_batch_may_bring_new_columns(store: StagingStore) -> None:
    store.replace_batch("contacts", "source", "b1", pl.DataFrame({"id": [1]}))
    store.replace_batch("contacts", "source", "b2", pl.DataFrame({"id": [2], "email": ["a@x"]}))
    assert store.load_batch("contacts", "source", "b1").columns == ["id"]
    assert store.load_batch("contacts", "source", "b2").to_dicts() == [{"id": 2, "email": "a@x"}]


def test_an_empty_batch_is_recorded_with_its_columns(store: StagingStore) -> None:
    store.replace_batch("contacts", "source", "b1", pl.DataFrame({"id": [1]}))
    empty = pl.DataFrame(schema={"id": pl.Int64, "name": pl.Utf8})
    store.replace_batch("contacts", "rejects", "b1", empty)
    store.replace_batch("contacts", "source", "b1", pl.DataFrame(schema={"id": pl.Int64}))
    assert store.load_batch("contacts", "rejects", "b1").schema == empty.schema
    assert store.load_batch("contacts", "source", "b1").columns == ["id"]
    assert store.load_batch("contacts", "source", "b1").height == 0


def test_a_batch_never_staged_loads_as_an_empty_frame_without_columns(store: StagingStore) -> None:
    assert store.load_batch("contacts", "mapped", "nope").shape == (0, 0)
    store.replace_batch("contacts", "mapped", "b1", MAPPED)
    assert store.load_batch("contacts", "mapped", "nope").shape == (0, 0)


def test_kinds_and_syncs_must_be_safe_table_names(store: StagingStore) -> None:
    store.replace_batch("contacts", "mapping_rejects", "b1", MAPPED)
    with pytest.raises(ValueError, match="kind"):
        store.replace_batch("contacts", 'x"; DROP TABLE', "b1", MAPPED)
    with pytest.raises(ValueError, match="kind"):
        store.load_batch("Contacts-2", "source", "b1")


def test_attempts_count_up_per_key_and_the_latest_outcome_wins(store: StagingStore) -> None:
    store.record_outcomes(
        "s", "b1", outcomes(["k1", "k2"], "failed", "UNABLE_TO_LOCK_ROW"), run_id="r1"
    )
    store.record_outcomes("s", "b1", outcomes(["k1"], "created"), run_id="r1")
    store.record_outcomes("s", "b2", outcomes(["k1"], "updated"), run_id="r2")
    ledger = store.ledger("s", "b1")
    assert ledger.select("source_key", "attempt", "status").rows() == [
        ("k1", 1, "failed"),
        ("k2", 1, "failed"),
        ("k1", 2, "created"),
    ]
    latest = store.latest_outcomes("s", "b1")
    assert dict(latest.select("source_key", "status").rows()) == {"k1": "created", "k2": "failed"}
    assert store.successful_keys("s", "b1").to_list() == ["k1"]
    assert store.ledger("s").height == 4


def test_the_watermark_only_moves_forward(store: StagingStore) -> None:
    assert store.watermark("s") is None
    store.record_outcomes("s", "20240102", outcomes([], "created"), run_id="r", watermark=True)
    store.record_outcomes("s", "20240101", outcomes([], "created"), run_id="r", watermark=True)
    assert store.watermark("s") == "20240102"
    store.record_outcomes("s", "20240103", outcomes(["k"], "created"), run_id="r")
    assert store.watermark("s") == "20240102"


def test_ledger_jobs_and_watermark_change_together_or_not_at_all(store: StagingStore) -> None:
    store.start_job(
        "s",
        "b1",
        job_id="750x",
        api="bulk",
        operation="insert",
        keys=["k1"],
        run_id="r",
        state="Open",
    )
    broken = outcomes(["k1"], "created").with_columns(pl.lit(None, pl.Utf8).alias("status"))
    with pytest.raises(duckdb.ConstraintException):
        store.record_outcomes(
            "s", "b1", broken, run_id="r", close_jobs=[("750x", "JobComplete")], watermark=True
        )
    assert store.ledger("s").height == 0
    assert [job.job_id for job in store.open_jobs("s", "b1")] == ["750x"]
    assert store.watermark("s") is None


def test_open_jobs_keep_their_keys_until_closed(store: StagingStore) -> None:
    store.start_job(
        "s",
        "b1",
        job_id="750a",
        api="bulk",
        operation="insert",
        keys=["k1", "k2"],
        run_id="r",
        state="Open",
    )
    store.start_job(
        "s",
        "b1",
        job_id="rest-1",
        api="rest",
        operation="insert",
        keys=pl.Series(["k3"]),
        run_id="r",
        state="Sending",
    )
    store.start_job(
        "s",
        "b2",
        job_id="750b",
        api="bulk",
        operation="insert",
        keys=["k9"],
        run_id="r",
        state="Open",
    )
    opened = store.open_jobs("s", "b1")
    assert [(j.job_id, j.api, j.keys) for j in opened] == [
        ("750a", "bulk", ["k1", "k2"]),
        ("rest-1", "rest", ["k3"]),
    ]
    store.record_outcomes(
        "s",
        "b1",
        outcomes(["k1", "k2"], "created"),
        run_id="r",
        close_jobs=[("750a", "JobComplete")],
    )
    assert [j.job_id for j in store.open_jobs("s", "b1")] == ["rest-1"]
    jobs = store.jobs("s", "b1")
    assert jobs.filter(pl.col("job_id") == "750a")["state"].to_list() == ["JobComplete"]
    assert jobs["key_count"].to_list() == [2, 1]


def test_an_operation_waits_while_another_process_holds_the_file(store: StagingStore) -> None:
    store.replace_batch("s", "source", "b1", pl.DataFrame({"id": [1]}))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(1.5); c.close()",
            store.path,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        store.replace_batch("s", "source", "b1", pl.DataFrame({"id": [2]}))
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert waited > 0.5
    assert store.load_batch("s", "source", "b1")["id"].to_list() == [2]
