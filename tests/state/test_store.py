"""The state store keeps staged batches, the ledger, open jobs, leases, batch status and Emarsys
uploads; every test runs against each backend (the `state_store` fixture)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from sf_assets.state import (
    INCOMPLETE,
    WRITTEN,
    JobStart,
    LeaseLost,
    Settlement,
    StateStore,
    UploadConflict,
)
from sf_assets.state.lease import this_claim
from tests.state.backends import store_spec, writes_held

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
def store(state_store: StateStore) -> StateStore:
    return state_store


def hold(store: StateStore, sync: str, batch: str, run_id: str = "r") -> str:
    """Take the batch's lease for a run; its token."""
    claim = this_claim(run_id)
    assert store.claim_lease(sync, batch, claim).token == claim.token
    return claim.token


def job(
    job_id: str, keys: list[str], *, api: str = "bulk", state: str = "Open", by_key: bool = False
) -> JobStart:
    return JobStart(
        job_id=job_id,
        api=api,
        operation="insert",
        match_field="Email",
        keys=pl.Series(keys),
        matches=None if by_key else pl.Series([f"{k}@example.com" for k in keys]),
        state=state,
        run_id="r",
    )


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


def test_a_batch_round_trips_with_its_types(store: StateStore) -> None:
    store.replace_batch("contacts", "mapped", "b1", MAPPED)
    loaded = store.load_batch("contacts", "mapped", "b1")
    assert loaded.schema == MAPPED.schema
    assert loaded.equals(MAPPED)


def test_replacing_a_batch_replaces_only_that_batch(store: StateStore) -> None:
    store.replace_batch("contacts", "source", "b1", pl.DataFrame({"id": [1, 2, 3]}))
    store.replace_batch("contacts", "source", "b2", pl.DataFrame({"id": [9]}))
    store.replace_batch("contacts", "source", "b1", pl.DataFrame({"id": [7]}))
    assert store.load_batch("contacts", "source", "b1")["id"].to_list() == [7]
    assert store.load_batch("contacts", "source", "b2")["id"].to_list() == [9]


def test_a_later_batch_may_bring_new_columns(store: StateStore) -> None:
    store.replace_batch("contacts", "source", "b1", pl.DataFrame({"id": [1]}))
    store.replace_batch("contacts", "source", "b2", pl.DataFrame({"id": [2], "email": ["a@x"]}))
    assert store.load_batch("contacts", "source", "b1").columns == ["id"]
    assert store.load_batch("contacts", "source", "b2").to_dicts() == [{"id": 2, "email": "a@x"}]


def test_an_empty_batch_is_recorded_with_its_columns(store: StateStore) -> None:
    store.replace_batch("contacts", "source", "b1", pl.DataFrame({"id": [1]}))
    empty = pl.DataFrame(schema={"id": pl.Int64, "name": pl.Utf8})
    store.replace_batch("contacts", "rejects", "b1", empty)
    store.replace_batch("contacts", "source", "b1", pl.DataFrame(schema={"id": pl.Int64}))
    assert store.load_batch("contacts", "rejects", "b1").schema == empty.schema
    assert store.load_batch("contacts", "source", "b1").columns == ["id"]
    assert store.load_batch("contacts", "source", "b1").height == 0


def test_a_batch_never_staged_loads_as_an_empty_frame_without_columns(store: StateStore) -> None:
    assert store.load_batch("contacts", "mapped", "nope").shape == (0, 0)
    store.replace_batch("contacts", "mapped", "b1", MAPPED)
    assert store.load_batch("contacts", "mapped", "nope").shape == (0, 0)


def test_kinds_and_syncs_must_be_safe_table_names(store: StateStore) -> None:
    store.replace_batch("contacts", "mapping_rejects", "b1", MAPPED)
    with pytest.raises(ValueError, match="kind"):
        store.replace_batch("contacts", 'x"; DROP TABLE', "b1", MAPPED)
    with pytest.raises(ValueError, match="kind"):
        store.load_batch("Contacts-2", "source", "b1")


def test_attempts_count_up_per_key_and_the_latest_outcome_wins(store: StateStore) -> None:
    b1, b2 = hold(store, "s", "b1"), hold(store, "s", "b2")
    store.record_outcomes(
        "s", "b1", outcomes(["k1", "k2"], "failed", "UNABLE_TO_LOCK_ROW"), run_id="r1", lease=b1
    )
    store.record_outcomes("s", "b1", outcomes(["k1"], "created"), run_id="r1", lease=b1)
    store.record_outcomes("s", "b2", outcomes(["k1"], "updated"), run_id="r2", lease=b2)
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
    assert ledger["written_at"].null_count() == 0 and ledger["run_id"].to_list() == ["r1"] * 3


def test_latest_outcomes_by_status_filter_after_the_latest_attempt(store: StateStore) -> None:
    lease = hold(store, "s", "b1")
    first = outcomes(["k1", "k2", "k3"], "failed", "UNABLE_TO_LOCK_ROW")
    store.record_outcomes("s", "b1", first, run_id="r", lease=lease)
    store.record_outcomes("s", "b1", outcomes(["k1"], "created"), run_id="r", lease=lease)
    failed = store.latest_outcomes("s", "b1", ("failed",))
    assert failed.select("source_key", "attempt").rows() == [("k2", 1), ("k3", 1)]
    assert failed.columns == store.latest_outcomes("s", "b1").columns
    assert store.latest_outcomes("s", "b1", ("not_sent",)).is_empty()


def test_keys_created_by_any_batch_are_found_by_sync_and_key(store: StateStore) -> None:
    b1, b2 = hold(store, "s", "b1"), hold(store, "s", "b2")
    store.record_outcomes("s", "b1", outcomes(["k1", "k2"], "created"), run_id="r", lease=b1)
    store.record_outcomes("s", "b2", outcomes(["k3"], "failed", "X"), run_id="r", lease=b2)
    found = store.created_keys("s", pl.Series(["k1", "k3", "k9"]))
    assert found.rows() == [("k1", "003k1", "b1")]
    assert store.created_keys("other", pl.Series(["k1"])).is_empty()
    recorded = store.ledger("s", "b1")["written_at"].min()
    assert store.recorded_ids(["003k1", "003zz"], recorded - timedelta(seconds=1)) == {"003k1"}
    assert store.recorded_ids(["003k1"], recorded + timedelta(hours=1)) == set()  # not searched


def test_created_keys_are_found_whichever_operation_created_them(store: StateStore) -> None:
    """A sync that upserted and now inserts: the insert must still see the upserted keys."""
    b1, b2, b3 = (hold(store, "s", b) for b in ("b1", "b2", "b3"))
    inserted = outcomes(["k1"], "created").with_columns(operation=pl.lit("insert"))
    store.record_outcomes("s", "b1", inserted, run_id="r", lease=b1)
    store.record_outcomes("s", "b2", outcomes(["k2"], "created"), run_id="r", lease=b2)
    store.record_outcomes("s", "b3", outcomes(["k2", "k3"], "updated"), run_id="r", lease=b3)
    found = store.created_keys("s", pl.Series(["k1", "k2", "k3"]))
    assert found.sort("_key").rows() == [("k1", "003k1", "b1"), ("k2", "003k2", "b2")]


def test_values_created_by_another_sync_in_the_same_object_are_found(store: StateStore) -> None:
    lease = hold(store, "tickets", "b1")
    created = outcomes(["a", "b"], "created").with_columns(
        pl.lit("Contact").alias("object"), pl.Series("match_value", ["A@x.com", "b@x.com"])
    )
    store.record_outcomes("tickets", "b1", created, run_id="r", lease=lease)
    values = pl.Series(["a@X.com", "c@x.com"])
    assert store.created_by_other_syncs("fans", "Contact", values).rows() == [
        ("a@x.com", "tickets")
    ]
    assert store.created_by_other_syncs("tickets", "Contact", values).is_empty()
    assert store.created_by_other_syncs("fans", "Lead", values).is_empty()


def test_the_final_commit_settles_the_batch_and_releases_the_lease(store: StateStore) -> None:
    lease = hold(store, "s", "20240102")
    store.record_outcomes(
        "s",
        "20240102",
        outcomes(["k"], "created"),
        run_id="r",
        lease=lease,
        settle=Settlement(WRITTEN, 1, 0, "r"),
    )
    assert store.current_lease("s", "20240102") is None
    again = hold(store, "s", "20240101")
    store.record_outcomes(
        "s",
        "20240101",
        outcomes([], "created"),
        run_id="r2",
        lease=again,
        settle=Settlement(INCOMPLETE, 3, 2, "r2"),
    )
    statuses = store.batch_statuses("s").sort("batch")
    assert statuses.select("batch", "status", "rows", "refused", "run_id").rows() == [
        ("20240101", INCOMPLETE, 3, 2, "r2"),
        ("20240102", WRITTEN, 1, 0, "r"),
    ]


def test_nothing_is_recorded_or_opened_without_the_batch_lease(store: StateStore) -> None:
    with pytest.raises(LeaseLost, match="nobody holds it"):
        store.record_outcomes("s", "b1", outcomes(["k"], "created"), run_id="r", lease="forged")
    old = hold(store, "s", "b1", run_id="old")
    newer = this_claim("newer")
    assert store.take_over_lease("s", "b1", newer, old)
    with pytest.raises(LeaseLost, match="run newer holds it now"):
        store.start_job("s", "b1", job("750x", ["k1"]), lease=old)
    with pytest.raises(LeaseLost):
        store.record_outcomes("s", "b1", outcomes(["k"], "created"), run_id="old", lease=old)
    assert store.ledger("s").height == 0 and store.open_jobs("s", "b1") == []
    assert not store.renew_lease("s", "b1", old)
    assert store.renew_lease("s", "b1", newer.token)


def test_a_lease_is_taken_once_and_taken_over_by_compare_and_swap(store: StateStore) -> None:
    first, second, third = this_claim("r1"), this_claim("r2"), this_claim("r3")
    assert store.claim_lease("s", "b1", first).run_id == "r1"
    holder = store.claim_lease("s", "b1", second)
    assert (holder.run_id, holder.token) == ("r1", first.token)
    assert holder.heartbeat_age_seconds < 30 and holder.pid == first.pid
    assert store.take_over_lease("s", "b1", second, first.token)
    assert not store.take_over_lease("s", "b1", third, first.token)  # someone was faster
    assert store.current_lease("s", "b1").run_id == "r2"
    store.release_lease("s", "b1", first.token)  # not the holder any more: nothing happens
    assert store.current_lease("s", "b1").run_id == "r2"
    store.release_lease("s", "b1", second.token)
    assert store.current_lease("s", "b1") is None
    assert store.claim_lease("s", "b1", third).run_id == "r3"
    assert store.claim_lease("s", "b2", first).run_id == "r1"  # leases are per batch


def test_ledger_jobs_and_status_change_together_or_not_at_all(
    store: StateStore, constraint_violation: type[Exception]
) -> None:
    lease = hold(store, "s", "b1")
    store.start_job("s", "b1", job("750x", ["k1"]), lease=lease)
    broken = outcomes(["k1"], "created").with_columns(pl.lit(None, pl.Utf8).alias("status"))
    with pytest.raises(constraint_violation):
        store.record_outcomes(
            "s",
            "b1",
            broken,
            run_id="r",
            lease=lease,
            close_jobs=[("750x", "JobComplete")],
            settle=Settlement(WRITTEN, 1, 0, "r"),
        )
    assert store.ledger("s").height == 0
    assert [job.job_id for job in store.open_jobs("s", "b1")] == ["750x"]
    assert store.batch_statuses("s").is_empty()
    assert store.current_lease("s", "b1").token == lease


def test_open_jobs_keep_what_reading_their_results_needs_until_closed(store: StateStore) -> None:
    lease, other = hold(store, "s", "b1"), hold(store, "s", "b2")
    store.start_job("s", "b1", job("750a", ["k1", "k2"]), lease=lease)
    store.start_job(
        "s", "b1", job("rest-1", ["k3"], api="rest", state="Sending", by_key=True), lease=lease
    )
    store.start_job("s", "b2", job("750b", ["k9"]), lease=other)
    opened = store.open_jobs("s", "b1")
    assert [(j.job_id, j.api, j.state, j.keys) for j in opened] == [
        ("750a", "bulk", "Open", ["k1", "k2"]),
        ("rest-1", "rest", "Sending", ["k3"]),
    ]
    assert (opened[0].operation, opened[0].match_field) == ("insert", "Email")
    assert opened[0].key_map().rows() == [("k1", "k1@example.com"), ("k2", "k2@example.com")]
    assert opened[1].key_map().rows() == [("k3", "k3")]  # matched on the key itself
    store.record_outcomes(
        "s",
        "b1",
        outcomes(["k1", "k2"], "created"),
        run_id="r",
        lease=lease,
        close_jobs=[("750a", "JobComplete")],
    )
    assert [j.job_id for j in store.open_jobs("s", "b1")] == ["rest-1"]
    jobs = store.jobs("s", "b1")
    assert jobs.filter(pl.col("job_id") == "750a")["state"].to_list() == ["JobComplete"]
    assert jobs["key_count"].to_list() == [2, 1]


def test_an_emarsys_part_is_checked_and_marked_in_one_step(store: StateStore) -> None:
    lease = hold(store, "sales", "b1")
    keys = pl.Series(["o1\x1fA", "o1\x1fB"])
    part = store.begin_emarsys_upload(
        "sales", "b1", keys, run_id="r", first_order="o1", lease=lease
    )
    assert part == 1
    with pytest.raises(UploadConflict) as doubt:
        store.begin_emarsys_upload(
            "sales", "b1", pl.Series(["o2\x1fA"]), run_id="r", first_order="o2", lease=lease
        )
    assert doubt.value.uncertain_part == 1
    store.finish_emarsys_upload(
        "sales", "b1", 1, lease=lease, settle=Settlement(WRITTEN, 2, 0, "r")
    )
    assert store.current_lease("sales", "b1") is None
    lease = hold(store, "sales", "b1")
    delta = store.begin_emarsys_upload(
        "sales", "b1", pl.Series(["o2\x1fA"]), run_id="r", first_order="o2", lease=lease
    )
    assert delta == 2
    other = hold(store, "sales", "b2")
    with pytest.raises(UploadConflict) as taken:
        store.begin_emarsys_upload(
            "sales", "b2", pl.Series(["o1\x1fA", "o9\x1fZ"]), run_id="r", first_order="o1",
            lease=other,
        )  # fmt: skip
    assert taken.value.recorded.select("_key", "batch", "part", "state").rows() == [
        ("o1\x1fA", "b1", 1, "sent")
    ]
    recorded = store.emarsys_lines("sales", pl.Series(["o1\x1fB", "o2\x1fA", "o9\x1fZ"]))
    assert recorded.select("_key", "part", "state").rows() == [
        ("o1\x1fB", 1, "sent"),
        ("o2\x1fA", 2, "uncertain"),
    ]
    assert store.forget_emarsys_upload("sales", "b1", 2) == 1
    assert store.emarsys_uploads("sales")["part"].to_list() == [1]


def test_two_writers_staging_one_batch_at_once_leave_one_of_them_whole(
    store: StateStore, tmp_path
) -> None:
    """Two runs of one batch stage it at the same moment (each from its own process): both
    succeed, and the batch is one of the two frames, never a mix or a failure."""
    script = (
        "import sys, polars as pl\n"
        "from tests.state.backends import store_from_spec\n"
        "store = store_from_spec(sys.argv[1])\n"
        "tag = sys.argv[2]\n"
        "store.replace_batch('s', 'source', 'b1', pl.DataFrame({'k': [f'{tag}{i}' for i in "
        "range(1000)]}))\n"
    )
    store.replace_batch("s", "source", "b1", pl.DataFrame({"k": ["old"]}))
    with writes_held(store):  # both writers reach the store, then go at once
        writers = [
            subprocess.Popen([sys.executable, "-c", script, store_spec(store), tag])
            for tag in ("a", "b")
        ]
        time.sleep(3)
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    staged = store.load_batch("s", "source", "b1")["k"].to_list()
    assert staged in ([f"a{i}" for i in range(1000)], [f"b{i}" for i in range(1000)])
