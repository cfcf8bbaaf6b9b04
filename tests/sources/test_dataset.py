"""Dataset readers against real DuckDB files and real Parquet and CSV files."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from sf_assets.sources import Dataset, DatasetError, duckdb_source, sort_batch_ids
from sf_assets.specs import LoadedSpec, SyncSpec
from sf_assets.sql import first_row

SYNC = "contacts_to_salesforce"

CONTACTS = """
CREATE SCHEMA crm;
CREATE TABLE crm.contacts (id INTEGER, email VARCHAR, last_name VARCHAR, _BATCH_ID_ INTEGER);
INSERT INTO crm.contacts VALUES
    (3, 'c@x.org', 'Carver', 2),
    (1, 'a@x.org', 'Ada', 1),
    (2, 'b@x.org', 'Byron', 10),
    (5, 'e@x.org', 'Euler', 2),
    (4, 'd@x.org', 'Dahl', 2),
    (6, 'f@x.org', 'Fermi', NULL);
CREATE TABLE contacts AS SELECT * FROM crm.contacts;
CREATE VIEW crm.contacts_view AS SELECT * FROM crm.contacts;
"""


def loaded(root: Path, source: dict[str, Any], **spec: Any) -> LoadedSpec:
    """A spec whose key column is `email` (mapped to the match_on field)."""
    fields: dict[str, Any] = {
        "name": SYNC,
        "source": source,
        "target": {"object": "Contact", "match_on": "Email"},
        "mapping": {"Email": "email", "LastName": "last_name"},
        **spec,
    }
    return LoadedSpec(spec=SyncSpec.model_validate(fields), file=root / "syncs/s.yaml", root=root)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(CONTACTS)
    return path


def duckdb_dataset(root: Path, **source: Any) -> Dataset:
    return Dataset(loaded(root, {"duckdb": "warehouse.duckdb", **source}))


def emails(frame: pl.DataFrame) -> list[str]:
    return frame["email"].to_list()


# --- DuckDB -------------------------------------------------------------------------------------


def test_table_batch_keeps_insertion_order_and_numbers_rows(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, table="contacts")

    frame = dataset.read_batch("2")

    assert frame.columns == ["id", "email", "last_name", "_BATCH_ID_", "_row"]
    assert emails(frame) == ["c@x.org", "e@x.org", "d@x.org"]
    assert frame["_row"].to_list() == [1, 2, 3]
    assert frame.schema["_row"] == pl.Int64
    assert frame["_BATCH_ID_"].to_list() == [2, 2, 2]


def test_schema_qualified_table(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, table="crm.contacts")

    assert emails(dataset.read_batch("10")) == ["b@x.org"]
    assert dataset.columns() == {
        "id": pl.Int32,
        "email": pl.String,
        "last_name": pl.String,
        "_BATCH_ID_": pl.Int32,
    }


def test_quoted_table_name_with_a_dot(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute('CREATE TABLE crm."odd.name" AS SELECT * FROM crm.contacts')

    dataset = duckdb_dataset(warehouse.parent, table='crm."odd.name"')

    assert len(dataset.read_all()) == 6


def test_view_is_ordered_by_key(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, table="crm.contacts_view")

    frame = dataset.read_batch("2")

    assert emails(frame) == ["c@x.org", "d@x.org", "e@x.org"]
    assert frame["_row"].to_list() == [1, 2, 3]


def test_key_ties_are_broken_by_the_other_columns(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE VIEW twins AS SELECT * FROM (VALUES ('z', 'same@x.org', 1), "
            "('a', 'same@x.org', 1)) AS t(last_name, email, _BATCH_ID_)"
        )

    frame = duckdb_dataset(warehouse.parent, table="twins").read_all()

    assert frame["last_name"].to_list() == ["a", "z"]


def test_sql_without_order_by_is_ordered_by_key(warehouse: Path) -> None:
    sql = "SELECT email, last_name, _BATCH_ID_ FROM crm.contacts WHERE id > 1"
    dataset = duckdb_dataset(warehouse.parent, sql=sql)

    assert emails(dataset.read_batch("2")) == ["c@x.org", "d@x.org", "e@x.org"]


def test_sql_keeps_its_own_order_by(warehouse: Path) -> None:
    sql = "SELECT * FROM crm.contacts ORDER BY last_name DESC; -- newest first\n"
    dataset = duckdb_dataset(warehouse.parent, sql=sql)

    frame = dataset.read_batch("2")

    assert emails(frame) == ["e@x.org", "d@x.org", "c@x.org"]
    assert frame["_row"].to_list() == [1, 2, 3]


def test_sql_reads_files_relative_to_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    pl.DataFrame({"email": ["a@x.org"], "last_name": ["Ada"], "_BATCH_ID_": ["b1"]}).write_parquet(
        tmp_path / "data/contacts.parquet"
    )
    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    monkeypatch.chdir(tmp_path.parent)

    dataset = duckdb_dataset(tmp_path, sql="SELECT * FROM read_parquet('data/contacts.parquet')")

    assert dataset.batch_ids() == ["b1"]


def test_integer_batch_ids_sort_numerically(warehouse: Path) -> None:
    assert duckdb_dataset(warehouse.parent, table="contacts").batch_ids() == ["1", "2", "10"]


def test_batch_ids_read_only_the_batch_column(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE VIEW trapped AS SELECT *, error('row values were read') AS trap FROM contacts"
        )
    dataset = duckdb_dataset(warehouse.parent, table="trapped")

    assert dataset.batch_ids() == ["1", "2", "10"]
    with pytest.raises(DatasetError, match="row values were read"):
        dataset.read_all()


def test_unknown_batch_gives_an_empty_frame_with_the_columns(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, table="crm.contacts")

    frame = dataset.read_batch("999")

    assert frame.height == 0
    assert frame.schema == pl.Schema({**dataset.columns(), "_row": pl.Int64})


def test_read_all_numbers_every_row(warehouse: Path) -> None:
    frame = duckdb_dataset(warehouse.parent, table="contacts").read_all()

    assert frame.height == 6
    assert frame["_row"].to_list() == [1, 2, 3, 4, 5, 6]


def test_unbatched_source_has_no_batches(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, table="contacts", batch_column=None)

    assert dataset.batch_ids() == []
    assert dataset.read_all().height == 6
    with pytest.raises(DatasetError, match=f"{SYNC}: the source has no batch column"):
        dataset.read_batch("1")


def test_text_batch_ids_sort_as_text(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t AS SELECT * FROM (VALUES ('a@x.org', '20261122-0930'), "
            "('b@x.org', '20261121-2359'), ('c@x.org', '20261122-0930')) AS t(email, _BATCH_ID_)"
        )

    dataset = Dataset(loaded(tmp_path, {"duckdb": "warehouse.duckdb", "table": "t"}))

    assert dataset.batch_ids() == ["20261121-2359", "20261122-0930"]


def test_sort_batch_ids() -> None:
    assert sort_batch_ids(["10", "9", "-1", "1", "01"]) == ["-1", "01", "1", "9", "10"]
    assert sort_batch_ids(["10", "9", "b"]) == ["10", "9", "b"]
    assert sort_batch_ids([]) == []


# --- DuckDB locking -----------------------------------------------------------------------------


def test_reads_a_file_this_process_holds_open_for_writing(warehouse: Path) -> None:
    writer = duckdb.connect(str(warehouse))
    try:
        writer.execute("INSERT INTO contacts VALUES (7, 'g@x.org', 'Gauss', 2)")
        dataset = duckdb_dataset(warehouse.parent, table="contacts")

        assert emails(dataset.read_batch("2"))[-1] == "g@x.org"
        writer.execute("INSERT INTO contacts VALUES (8, 'h@x.org', 'Hopper', 2)")
        assert dataset.read_batch("2").height == 5
    finally:
        writer.close()


HOLD_FOR_WRITING = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
"""


def holding_for_writing(warehouse: Path) -> subprocess.Popen[str]:
    """Another process with the file open for writing, until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOR_WRITING, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def let_go(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


def test_file_locked_by_another_process_names_the_lock(warehouse: Path, monkeypatch) -> None:
    monkeypatch.setattr(duckdb_source, "LOCK_WAIT_SECONDS", 1)
    holder = holding_for_writing(warehouse)
    try:
        dataset = duckdb_dataset(warehouse.parent, table="contacts")
        with pytest.raises(DatasetError, match=f"{SYNC}: DuckDB file .* stayed locked for 1 s"):
            dataset.batch_ids()
    finally:
        let_go(holder)

    assert duckdb_dataset(warehouse.parent, table="contacts").batch_ids() == ["1", "2", "10"]


def test_a_writer_that_lets_go_within_the_wait_is_waited_for(warehouse: Path) -> None:
    """A pipeline holds the file while it writes a batch: the read starts while it does."""
    holder = holding_for_writing(warehouse)
    releasing = threading.Timer(1.0, let_go, args=[holder])
    started = time.monotonic()
    releasing.start()
    try:
        assert duckdb_dataset(warehouse.parent, table="contacts").batch_ids() == ["1", "2", "10"]
        assert time.monotonic() - started >= 1.0  # it got in only once the writer had gone
    finally:
        releasing.join()


# --- DuckDB errors ------------------------------------------------------------------------------


def test_missing_duckdb_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=f"{SYNC}: DuckDB file .*warehouse.duckdb does not"):
        duckdb_dataset(tmp_path, table="contacts").columns()
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_file_that_is_not_duckdb(tmp_path: Path) -> None:
    (tmp_path / "warehouse.duckdb").write_text("not a database" * 100)

    with pytest.raises(DatasetError, match=f"{SYNC}: cannot open DuckDB file"):
        duckdb_dataset(tmp_path, table="contacts").columns()


def test_unknown_table_lists_what_exists(warehouse: Path) -> None:
    with pytest.raises(DatasetError) as error:
        duckdb_dataset(warehouse.parent, table="crm.people").columns()

    assert str(error.value) == (
        f"{SYNC}: DuckDB file has no table or view 'crm.people' "
        "(tables and views: crm.contacts, crm.contacts_view, main.contacts)"
    )


def test_malformed_table_name(warehouse: Path) -> None:
    with pytest.raises(DatasetError, match="'crm contacts' is not a table name"):
        duckdb_dataset(warehouse.parent, table="crm contacts").columns()


def test_bad_sql(warehouse: Path) -> None:
    with pytest.raises(DatasetError, match=f"{SYNC}: the source SQL fails: .*nope"):
        duckdb_dataset(warehouse.parent, sql="SELECT * FROM nope").read_all()


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("DELETE FROM contacts", "DELETE"),
        ("SELECT 1 AS email; DELETE FROM contacts", "SELECT, DELETE"),
    ],
)
def test_sql_must_be_one_select(warehouse: Path, sql: str, found: str) -> None:
    writer = duckdb.connect(str(warehouse))  # the case where a second statement could write
    try:
        with pytest.raises(DatasetError, match=rf"one SELECT statement \(found: {found}\)"):
            duckdb_dataset(warehouse.parent, sql=sql).read_all()
        assert first_row(writer.execute("SELECT count(*) FROM contacts")) == (6,)
    finally:
        writer.close()


def test_missing_batch_column_lists_the_columns(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, table="contacts", batch_column="batch")

    with pytest.raises(DatasetError) as error:
        dataset.batch_ids()

    assert str(error.value) == (
        f"{SYNC}: source has no batch column 'batch'; did you mean '_BATCH_ID_'? "
        "(columns: id, email, last_name, _BATCH_ID_)"
    )


def test_missing_key_column(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, table="contacts", key="contact_id")

    with pytest.raises(DatasetError, match=f"{SYNC}: source has no key column 'contact_id'"):
        dataset.read_batch("1")


def test_column_names_are_case_sensitive(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, table="contacts", batch_column="_batch_id_")

    with pytest.raises(DatasetError, match="did you mean '_BATCH_ID_'"):
        dataset.columns()


def test_source_column_named_row_is_refused(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, sql="SELECT *, 1 AS _row FROM contacts")

    with pytest.raises(DatasetError, match="source has a column '_row'"):
        dataset.read_all()


def test_column_type_polars_cannot_hold(warehouse: Path) -> None:
    dataset = duckdb_dataset(warehouse.parent, sql="SELECT *, INTERVAL 1 DAY AS gap FROM contacts")

    with pytest.raises(DatasetError, match=r"polars cannot hold column\(s\) gap"):
        dataset.columns()


# --- Parquet ------------------------------------------------------------------------------------


def write_parquet_batches(folder: Path) -> None:
    folder.mkdir()
    pl.DataFrame(
        {"email": ["b@x.org", "a@x.org"], "last_name": ["B", "A"], "_BATCH_ID_": [2, 10]}
    ).write_parquet(folder / "part-2.parquet")
    pl.DataFrame(
        {"email": ["d@x.org", "c@x.org"], "last_name": ["D", "C"], "_BATCH_ID_": [2, 2]}
    ).write_parquet(folder / "part-1.parquet")


def test_parquet_glob_reads_files_in_path_order(tmp_path: Path) -> None:
    write_parquet_batches(tmp_path / "exports")
    dataset = Dataset(loaded(tmp_path, {"parquet": "exports/*.parquet"}))

    frame = dataset.read_batch("2")

    assert dataset.batch_ids() == ["2", "10"]
    assert emails(frame) == ["d@x.org", "c@x.org", "b@x.org"]
    assert frame["_row"].to_list() == [1, 2, 3]
    assert frame.schema["_BATCH_ID_"] == pl.Int64
    assert dataset.read_batch("3").schema == pl.Schema({**dataset.columns(), "_row": pl.Int64})


def test_parquet_files_with_different_columns(tmp_path: Path) -> None:
    write_parquet_batches(tmp_path / "exports")
    pl.DataFrame({"email": ["x@x.org"], "_BATCH_ID_": [3]}).write_parquet(
        tmp_path / "exports/part-3.parquet"
    )

    with pytest.raises(DatasetError) as error:
        Dataset(loaded(tmp_path, {"parquet": "exports/*.parquet"})).read_all()

    message = str(error.value)
    assert message.startswith(f"{SYNC}: cannot read parquet files 'exports/*.parquet': ")
    assert message.endswith(
        "part-3.parquet: columns email, _BATCH_ID_, not email, last_name, _BATCH_ID_)"
    )


def test_no_files_match_the_glob(tmp_path: Path) -> None:
    dataset = Dataset(loaded(tmp_path, {"parquet": "exports/*.parquet"}))

    with pytest.raises(DatasetError, match=f"{SYNC}: no parquet files match 'exports/"):
        dataset.batch_ids()


# --- CSV ----------------------------------------------------------------------------------------


def write_csv_batches(folder: Path) -> None:
    folder.mkdir()
    (folder / "b.csv").write_bytes(
        b"email,last_name,_BATCH_ID_\nc@x.org,Bad \xff\xfe bytes,7\nd@x.org,Dahl,10\n"
    )
    (folder / "a.csv").write_bytes(
        b'email,last_name,_BATCH_ID_\na@x.org,"Lovelace, Ada",7\nb@x.org,"two\nlines",10\n'
    )


def test_csv_reads_every_file_as_text_in_path_order(tmp_path: Path) -> None:
    write_csv_batches(tmp_path / "drops")
    dataset = Dataset(loaded(tmp_path, {"csv": "drops/*.csv"}))

    frame = dataset.read_batch("7")

    assert dataset.batch_ids() == ["7", "10"]
    assert set(dataset.columns().values()) == {pl.String}
    assert emails(frame) == ["a@x.org", "c@x.org"]
    assert frame["last_name"].to_list() == ["Lovelace, Ada", "Bad \ufffd\ufffd bytes"]
    assert frame["_row"].to_list() == [1, 2]
    assert dataset.read_batch("10")["last_name"].to_list() == ["two\nlines", "Dahl"]


def test_csv_whole_dataset_keeps_the_row_with_bad_bytes(tmp_path: Path) -> None:
    write_csv_batches(tmp_path / "drops")
    dataset = Dataset(loaded(tmp_path, {"csv": "drops/*.csv", "batch_column": None}))

    frame = dataset.read_all()

    assert emails(frame) == ["a@x.org", "b@x.org", "c@x.org", "d@x.org"]
    assert frame["_row"].to_list() == [1, 2, 3, 4]


def test_csv_empty_file_is_named(tmp_path: Path) -> None:
    write_csv_batches(tmp_path / "drops")
    (tmp_path / "drops/c.csv").write_bytes(b"")

    with pytest.raises(DatasetError, match=r"cannot read csv files 'drops/\*.csv': .*c\.csv\)$"):
        Dataset(loaded(tmp_path, {"csv": "drops/*.csv"})).read_all()


def test_csv_missing_key_column(tmp_path: Path) -> None:
    write_csv_batches(tmp_path / "drops")
    dataset = Dataset(loaded(tmp_path, {"csv": "drops/*.csv", "key": "id"}))

    with pytest.raises(DatasetError) as error:
        dataset.columns()

    assert str(error.value) == (
        f"{SYNC}: source has no key column 'id' (columns: email, last_name, _BATCH_ID_)"
    )


def test_csv_unknown_batch_gives_text_columns(tmp_path: Path) -> None:
    write_csv_batches(tmp_path / "drops")

    frame = Dataset(loaded(tmp_path, {"csv": "drops/*.csv"})).read_batch("8")

    assert frame.schema == pl.Schema(
        {"email": pl.String, "last_name": pl.String, "_BATCH_ID_": pl.String, "_row": pl.Int64}
    )
