"""Files attached to the process's one DuckDB database: held while a connection uses them,
free for other processes the moment the last one closes, shared by threads."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from sf_assets.sql import attached, table_exists

OPEN_FROM_ANOTHER_PROCESS = """
import sys, duckdb
try:
    duckdb.connect(sys.argv[1]).close()
    print("opened")
except duckdb.IOException as error:
    print("locked" if "lock" in str(error).lower() else f"error: {error}")
"""


def another_process_opens(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", OPEN_FROM_ANOTHER_PROCESS, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_a_file_is_held_while_used_and_free_for_another_process_once_closed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.duckdb"
    with attached(str(path)) as connection:
        connection.execute("CREATE TABLE t AS SELECT 42 AS answer")
        assert another_process_opens(path) == "locked"
    assert another_process_opens(path) == "opened"
    with attached(str(path)) as connection:
        assert connection.execute("SELECT answer FROM t").fetchall() == [(42,)]


def test_threads_using_one_file_share_it_and_the_last_one_out_lets_it_go(tmp_path: Path) -> None:
    path = tmp_path / "state.duckdb"
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[object] = []

    def first() -> None:
        with attached(str(path)) as connection:
            connection.execute("CREATE TABLE t (n INTEGER)")
            connection.execute("INSERT INTO t VALUES (1)")
            first_in.set()
            second_in.wait(30)
        first_out.set()

    def second() -> None:
        first_in.wait(30)
        with attached(str(path)) as connection:
            second_in.set()
            first_out.wait(30)
            seen.append(another_process_opens(path))  # the first one out did not let go
            seen.append(connection.execute("SELECT n FROM t").fetchall())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert seen == ["locked", [(1,)]]
    assert another_process_opens(path) == "opened"


def test_a_connection_sees_its_file_as_its_default_database(tmp_path: Path) -> None:
    """Unqualified names, schemas and `main` mean the file's own, as with a connection of its
    own, while two files are in use at once."""
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    with attached(str(one)) as first, attached(str(two)) as second:
        first.execute("CREATE SCHEMA crm; CREATE TABLE crm.people AS SELECT 'one' AS file")
        second.execute("CREATE SCHEMA crm; CREATE TABLE crm.people AS SELECT 'two' AS file")
        assert first.execute("SELECT file FROM crm.people").fetchall() == [("one",)]
        assert second.execute("SELECT file FROM crm.people").fetchall() == [("two",)]
        second.execute("CREATE TABLE crm.only_in_two (n INTEGER)")
        assert table_exists(second, "crm", "only_in_two")
        assert not table_exists(first, "crm", "only_in_two")


HOLD_IN_ANOTHER_PROCESS = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
"""


def test_a_thread_waiting_for_a_locked_file_holds_up_no_other_file(tmp_path: Path) -> None:
    locked, free = tmp_path / "locked.duckdb", tmp_path / "free.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_IN_ANOTHER_PROCESS, str(locked)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    waiting_done = threading.Event()
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"

        def wait_for_the_locked_file() -> None:
            with attached(str(locked), wait_seconds=30):
                waiting_done.set()

        waiter = threading.Thread(target=wait_for_the_locked_file)
        waiter.start()
        with attached(str(free), wait_seconds=30) as connection:
            assert connection.execute("SELECT 1").fetchall() == [(1,)]
        assert not waiting_done.is_set(), "the other process still holds the locked file"
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    waiter.join(timeout=60)
    assert waiting_done.is_set(), "the waiting thread got the file once it was let go"
