"""Ingest cursors in the state store: several streams move in one transaction or not at all,
and every commit is kept in the history the monotonic check reads."""

from __future__ import annotations

import duckdb
import pytest

from sf_assets.state.cursors import StateCursors
from tests.state.backends import BACKENDS

pytestmark = pytest.mark.parametrize("state_store", list(BACKENDS), indirect=True)


@pytest.fixture
def cursors(state_store) -> StateCursors:
    return StateCursors(state_store)


def test_a_cursor_reads_back_as_committed_and_lists_by_prefix(cursors):
    assert cursors.read("crm/Contact") is None
    cursors.commit(
        {"crm/Contact": {"position": ["2026-01-01T00:00:00+00:00", "003A"]}}, run_id="r1"
    )
    cursors.commit({"crm/people/Contact": {"seq": 4}, "other/Lead": {"seq": 1}}, run_id="r2")
    assert cursors.read("crm/Contact") == {"position": ["2026-01-01T00:00:00+00:00", "003A"]}
    assert cursors.list("crm/") == {
        "crm/Contact": {"position": ["2026-01-01T00:00:00+00:00", "003A"]},
        "crm/people/Contact": {"seq": 4},
    }


def test_streams_committed_together_move_together_or_not_at_all(cursors):
    cursors.commit({"a": {"seq": 1}, "b": {"seq": 1}}, run_id="r1")
    with pytest.raises(duckdb.ConstraintException):  # the second stream cannot be stored
        cursors.commit({"a": {"seq": 2}, None: {"seq": 2}}, run_id="r2")  # type: ignore[dict-item]
    assert (cursors.read("a"), cursors.read("b")) == ({"seq": 1}, {"seq": 1})
    assert [c.cursor for c in cursors.history("a")] == [{"seq": 1}]


def test_every_commit_is_kept_in_the_history_in_order(cursors):
    for seq in (1, 2, 3):
        cursors.commit({"a": {"seq": seq}}, run_id=f"r{seq}")
    history = cursors.history("a")
    assert [c.cursor["seq"] for c in history] == [1, 2, 3]
    assert [c.run_id for c in history] == ["r1", "r2", "r3"]
    assert cursors.read("a") == {"seq": 3}
