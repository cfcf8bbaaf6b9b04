"""Sync specs: a good file loads, a bad one fails naming the file, the field and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from sf_assets.specs import SpecError, json_schema, load_specs, read_specs

GOOD = """
name: contacts_to_salesforce
source: {duckdb: warehouse.duckdb, table: crm.contacts}
target: {object: Contact, operation: upsert, match_on: External_Id__c}
mapping: {External_Id__c: contact_id, LastName: last_name}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_good_spec_loads_with_defaults(tmp_path):
    write(tmp_path / "syncs", "contacts.yaml", GOOD)
    (loaded,) = load_specs(tmp_path / "syncs")
    spec = loaded.spec
    assert spec.source.batch_column == "_BATCH_ID_" and spec.batched
    assert spec.key_column == "contact_id"
    assert (spec.api, spec.connection, spec.null_values) == ("auto", "default", "clear")
    assert loaded.resolve("warehouse.duckdb") == tmp_path / "warehouse.duckdb"


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ("name: Bad Name", "name", "pattern"),
        ("api: fast", "api", "'auto', 'rest' or 'bulk'"),
        ("mapping: {}", "mapping", "at least 1"),
        ("source: {duckdb: w.duckdb}", "source", "exactly one of `table` or `sql`"),
        ("source: {parquet: a, csv: b}", "source", "exactly one of `parquet` or `csv`"),
        (
            "target: {object: Contact, operation: merge, match_on: Email}",
            "target.operation",
            "'insert'",
        ),
        ("extra: 1", "extra", "Extra inputs"),
        ("freshness: {max_lag_minutes: 0}", "freshness.max_lag_minutes", "greater than 0"),
    ],
)
def test_a_bad_spec_names_file_field_and_problem(tmp_path, change, path, words):
    key = change.split(":")[0]
    lines = [line for line in GOOD.strip().splitlines() if not line.startswith(key + ":")]
    write(tmp_path / "syncs", "bad.yaml", "\n".join([*lines, change]))
    with pytest.raises(SpecError) as excinfo:
        load_specs(tmp_path / "syncs")
    message = str(excinfo.value)
    assert "bad.yaml" in message and f"  {path}:" in message and words in message


def test_match_on_must_be_mapped_or_named_as_key(tmp_path):
    write(tmp_path / "syncs", "a.yaml", GOOD.replace("External_Id__c: contact_id, ", ""))
    with pytest.raises(SpecError, match="match_on 'External_Id__c' must be mapped"):
        load_specs(tmp_path / "syncs")


def test_a_field_mapped_twice_is_refused(tmp_path):
    write(
        tmp_path / "syncs",
        "a.yaml",
        GOOD.replace("LastName: last_name", "LastName: a, lastname: b"),
    )
    with pytest.raises(SpecError, match="mapped more than once: LastName, lastname"):
        load_specs(tmp_path / "syncs")


def test_two_syncs_with_one_name_are_refused(tmp_path):
    write(tmp_path / "syncs", "a.yaml", GOOD)
    write(tmp_path / "syncs", "b.yaml", GOOD)
    with pytest.raises(
        SpecError, match=r"b\.yaml: sync name 'contacts_to_salesforce' is already used"
    ):
        load_specs(tmp_path / "syncs")


def test_yaml_that_is_not_a_mapping(tmp_path):
    write(tmp_path / "syncs", "a.yaml", "- just\n- a list\n")
    with pytest.raises(SpecError, match=r"a\.yaml: a sync spec is a mapping"):
        load_specs(tmp_path / "syncs")


def test_json_schema_describes_every_kind_of_sync():
    schema = json_schema()
    kinds = schema["$defs"]
    refs = {kind["$ref"] for kind in schema["oneOf"]}
    assert refs == {"#/$defs/SyncSpec", "#/$defs/EmarsysSyncSpec", "#/$defs/IngestSpec"}
    assert set(kinds["IngestSpec"]["required"]) == {"name", "read", "into"}
    assert set(kinds["SyncSpec"]["required"]) == {"name", "source", "target", "mapping"}
    assert "description" in kinds["SyncSpec"]["properties"]["mapping"]
    assert "columns" in kinds["EmarsysTarget"]["properties"]


def test_an_emarsys_spec_needs_every_column_mapped(tmp_path):
    write(
        tmp_path / "syncs",
        "sales.yaml",
        """
name: sales
source: {duckdb: w.duckdb, table: lines}
target: {emarsys: default, sales_data: true, columns: [order, timestamp, customer, item, price, quantity]}
mapping: {order: order_id, timestamp: at, customer: who, item: sku, price: total}
""",
    )
    with pytest.raises(SpecError, match="not mapped: quantity"):
        load_specs(tmp_path / "syncs")


INGEST = """
name: crm_from_salesforce
read: {objects: {Contact: {fields: [Email, Phone, FirstName, LastName]}, Lead: {}}}
into: {duckdb: demo/warehouse.duckdb}
merge: {people: {from: [Contact, Lead], keys: {primary: Email}}}
"""


@pytest.mark.parametrize("table", ["people", "main.People", "salesforce.contact"])
def test_a_sync_reading_an_ingest_table_from_another_file_is_set_aside(tmp_path, table):
    """Lineage keys a table by its name: a sync reading `people` from another file than the
    ingest spec writes it to would show the ingest upstream of data it never reads."""
    write(tmp_path / "syncs", "crm.yaml", INGEST)
    write(
        tmp_path / "syncs", "back.yaml", WRITEBACK_OF.format(file="warehouse.duckdb", table=table)
    )
    folder = read_specs(tmp_path / "syncs")
    assert [s.spec.name for s in folder.specs] == ["crm_from_salesforce"]
    (broken,) = folder.broken
    assert broken.file.name == "back.yaml"
    assert f"sync 'tiers_back' reads {table} from warehouse.duckdb" in broken.message
    assert "ingest spec 'crm_from_salesforce' (crm.yaml)" in broken.message
    assert "point `source.duckdb` at demo/warehouse.duckdb" in broken.message


def test_a_sync_reading_an_ingest_table_from_its_file_loads(tmp_path):
    write(tmp_path / "syncs", "crm.yaml", INGEST)
    spelt = f"{tmp_path}/demo/../demo/warehouse.duckdb"  # the same file, written another way
    for name, file in (("back.yaml", "demo/warehouse.duckdb"), ("abs.yaml", spelt)):
        body = WRITEBACK_OF.format(file=file, table="people")
        write(tmp_path / "syncs", name, body.replace("tiers_back", name.split(".")[0]))
    write(tmp_path / "syncs", "other.yaml", GOOD)  # crm.contacts: no ingest spec writes it
    folder = read_specs(tmp_path / "syncs")
    assert folder.broken == []
    assert len(folder.specs) == 4


WRITEBACK_OF = """
name: tiers_back
source: {{duckdb: "{file}", table: {table}, batch_column: null}}
target: {{object: Contact, operation: update, match_on: Email}}
mapping: {{Email: email, Fan_Tier__c: tier}}
"""
