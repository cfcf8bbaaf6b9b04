"""A ledger written by an earlier version of the content hash (version 0, MD5; version x1, XXH3
of a canonical text) is compared again with that version, so a new hash algorithm resends only
rows that changed, never the whole unbatched dataset. Real Dagster instance, real DuckDB state
and ledger, the sandbox over HTTPS."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from sf_assets.rows import CONTENT_HASHES, HASH_PREFIX
from sf_assets.state import DuckDBStateStore
from tests.assets.test_change_detection import ROWS, WHOLE, ledger, run_whole, sent
from tests.assets.test_writeback import (
    SYNC,
    contacts,
    definitions,
    project,  # noqa: F401  (fixture)
    spec,
    write_warehouse,
)

# What each earlier version's hashes look like.
EARLIER_FORMS = {"0": r"^[0-9a-f]{32}$", "x1": r"^x1:[0-9]{1,39}$"}


def age_the_ledger(project, version: str) -> None:  # noqa: F811
    """Rewrite the ledger's hashes as `version` made them, as a ledger from before looks."""
    store = DuckDBStateStore(path=str(project / "staging.duckdb"))
    rows = store.load_batch(SYNC, "mapped", "all")
    fields = [c for c in rows.columns if c not in ("_row", "_key", "_hash")]
    old = rows.select("_key").with_columns(CONTENT_HASHES[version](rows, fields))
    with duckdb.connect(str(project / "staging.duckdb")) as connection:
        connection.register("old", old)
        connection.execute(
            "UPDATE write_ledger SET content_hash = old._hash FROM old "
            "WHERE write_ledger.source_key = old._key AND write_ledger.sync = ?",
            [SYNC],
        )


@pytest.mark.parametrize("version", list(EARLIER_FORMS))
def test_earlier_hashes_are_compared_again_not_taken_as_changes(project, http, version):  # noqa: F811
    write_warehouse(project, ROWS)
    defs = definitions(project, spec("rest", source=WHOLE))
    with dg.instance_for_test() as instance:
        assert sent(run_whole(defs, instance)) == (4, 4, 0)
        age_the_ledger(project, version)
        assert ledger(project)["content_hash"].str.contains(EARLIER_FORMS[version]).all()

        assert sent(run_whole(defs, instance)) == (0, 0, 0)
        changed = [dict(r) for r in ROWS]
        changed[1]["tickets"] = "20"
        write_warehouse(project, changed)
        assert sent(run_whole(defs, instance)) == (1, 0, 1)
    assert contacts(http)["f-2"]["Ticket_Count__c"] == 20.0
    latest = ledger(project).sort("attempt").unique("source_key", keep="last")
    current = latest.filter(latest["content_hash"].str.starts_with(HASH_PREFIX))["source_key"]
    assert current.to_list() == ["f-2"]  # the row resent carries the new version
