"""What only the embedded DuckDB backend does: one file, opened by one process at a time, with
a versioned schema it migrates by itself."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from sf_assets.sql import AttachedFiles
from sf_assets.state import DuckDBStateStore, StateError, StateLocked
from sf_assets.state.duckdb_backend import store as backend
from sf_assets.state.duckdb_backend.migrations import LATEST, MIGRATIONS

# The layout of a state file written before the schema was versioned (migration 1's tables,
# created the way that version created them), with a watermark and an Emarsys batch in it.
UNVERSIONED = (
    MIGRATIONS[0].sql
    + """
INSERT INTO watermarks VALUES ('fans', 'b7', now());
INSERT INTO emarsys_batches VALUES ('sales', 'b1', 'uncertain', 2, 'o1', 'r1', now());
INSERT INTO emarsys_lines VALUES ('sales', 'b1', 'o1|A'), ('sales', 'b1', 'o1|B'),
    ('sales', 'b1', 'o1|B');
INSERT INTO write_jobs VALUES ('fans', 'b8', '750x', 'bulk', 'insert', 'Open', ['k1'], 'r1',
    now(), NULL);
"""
)


def holding(path: str, seconds: float, *, read_only: bool) -> subprocess.Popen[str]:
    """Another process with the file open (a DuckDB shell, say) for `seconds`."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; "
            "c = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == 'ro'); "
            "print('held', flush=True); time.sleep(float(sys.argv[2])); c.close()",
            path,
            str(seconds),
            "ro" if read_only else "rw",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_an_operation_waits_while_another_process_holds_the_file(tmp_path: Path) -> None:
    store = DuckDBStateStore(path=str(tmp_path / "staging.duckdb"))
    store.replace_batch("s", "source", "b1", pl.DataFrame({"id": [1]}))
    holder = holding(store.path, 1.5, read_only=False)
    try:
        started = time.monotonic()
        store.replace_batch("s", "source", "b1", pl.DataFrame({"id": [2]}))
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert waited > 0.5
    assert store.load_batch("s", "source", "b1")["id"].to_list() == [2]


def test_a_shell_holding_the_file_fails_the_step_saying_what_to_do(tmp_path: Path) -> None:
    store = DuckDBStateStore(path=str(tmp_path / "staging.duckdb"), lock_wait_seconds=1)
    store.replace_batch("s", "source", "b1", pl.DataFrame({"id": [1]}))
    holder = holding(store.path, 4, read_only=True)
    try:
        with pytest.raises(StateLocked) as locked:
            store.replace_batch("s", "source", "b1", pl.DataFrame({"id": [2]}))
    finally:
        holder.wait(timeout=30)
    message = str(locked.value)
    assert store.path in message and f"PID {holder.pid}" in message
    assert "close that program" in message and "Nothing was sent" in message
    assert store.load_batch("s", "source", "b1")["id"].to_list() == [1]


def test_the_file_is_private_to_its_owner(tmp_path: Path) -> None:
    store = DuckDBStateStore(path=str(tmp_path / "state" / "staging.duckdb"))
    store.replace_batch("s", "source", "b1", pl.DataFrame({"id": [1]}))
    assert stat.S_IMODE(Path(store.path).stat().st_mode) == 0o600


def test_the_file_appears_whole_so_a_process_opening_it_meanwhile_finds_a_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB creates a file before it writes the header, and a second process that opened
    it in between (two runs' first steps 0.1 s apart) failed with "not a valid DuckDB
    database file". Every path DuckDB is asked to open is looked at as that second process
    would see it at that moment."""
    path = tmp_path / "state" / "staging.duckdb"
    seen: list[str] = []
    connect, attach = duckdb.connect, AttachedFiles._attach

    def looking(database: str = ":memory:", *args, **kwargs):
        if database != ":memory:":  # the process's own database holds no file
            assert Path(database) != path, "DuckDB was asked to create the state file in place"
            seen.append("whole" if path.exists() else "absent")
        return connect(database, *args, **kwargs)

    def attaching(files: AttachedFiles, file: str, wait_seconds: float) -> str:
        with connect(str(path), read_only=True) as other:
            other.execute("SELECT 1")
        seen.append("attached whole")
        return attach(files, file, wait_seconds)

    monkeypatch.setattr(duckdb, "connect", looking)
    monkeypatch.setattr(AttachedFiles, "_attach", attaching)
    DuckDBStateStore(path=str(path)).replace_batch("s", "source", "b1", pl.DataFrame({"id": [1]}))
    monkeypatch.undo()
    assert seen[0] == "absent" and "attached whole" in seen
    assert DuckDBStateStore(path=str(path)).load_batch("s", "source", "b1")["id"].to_list() == [1]
    assert [p.name for p in path.parent.iterdir()] == ["staging.duckdb"], "no draft is left"


def versions(path: str) -> list[int]:
    with duckdb.connect(path, read_only=True) as connection:
        return [
            row[0]
            for row in connection.execute(
                "SELECT version FROM schema_version ORDER BY 1"
            ).fetchall()
        ]


def test_a_new_file_gets_every_migration_once(tmp_path: Path, monkeypatch) -> None:
    path = str(tmp_path / "staging.duckdb")
    DuckDBStateStore(path=path).batch_statuses("s")
    assert versions(path) == [m.version for m in MIGRATIONS]
    assert versions(path)[-1] == LATEST
    monkeypatch.setattr(backend, "_migrated", set())  # as a new process would open it
    DuckDBStateStore(path=path).batch_statuses("s")
    assert versions(path) == [m.version for m in MIGRATIONS]


def test_an_unversioned_file_is_adopted_and_migrated_keeping_its_state(tmp_path: Path) -> None:
    path = str(tmp_path / "staging.duckdb")
    with duckdb.connect(path) as connection:
        connection.execute(UNVERSIONED)
    store = DuckDBStateStore(path=path)
    assert store.batch_statuses("fans").select("batch", "status").rows() == [("b7", "written")]
    assert store.emarsys_uploads("sales").select("batch", "part", "state").rows() == [
        ("b1", 1, "uncertain")
    ]
    lines = store.emarsys_lines("sales", pl.Series(["o1|A", "o1|B"]))
    assert lines.select("_key", "part").rows() == [("o1|A", 1), ("o1|B", 1)]
    [job] = store.open_jobs("fans", "b8")
    assert (job.job_id, job.keys, job.match_field) == ("750x", ["k1"], None)
    assert versions(path) == [m.version for m in MIGRATIONS]  # every migration, in order


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path, monkeypatch) -> None:
    path = str(tmp_path / "staging.duckdb")
    DuckDBStateStore(path=path).batch_statuses("s")
    with duckdb.connect(path) as connection:
        connection.execute("INSERT INTO schema_version VALUES (99, 'from the future', now())")
    monkeypatch.setattr(backend, "_migrated", set())
    with pytest.raises(StateError, match="schema version 99, newer"):
        DuckDBStateStore(path=path).batch_statuses("s")
