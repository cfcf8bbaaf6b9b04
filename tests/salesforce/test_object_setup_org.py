"""`target.create_object` against the sandbox org over HTTPS: the object is created once from the
mapping with derived field types, takes records through the writeback assets, and an existing
object is only ever compared with the mapping, never altered."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
from simple_salesforce import Salesforce

from sf_assets.cli.local_org import salesforce_resource
from sf_assets.cli.validate import findings_for
from sf_assets.salesforce.object_setup import ObjectSetupError, ensure_object
from sf_assets.specs import LoadedSpec, SyncSpec
from tests.assets import test_writeback as pipeline

project = pipeline.project  # the Dagster project fixture of the writeback pipeline tests

SCHEMA = {
    "order_id": pl.Utf8,
    "title": pl.Utf8,
    "total": pl.Decimal(16, 2),
    "quantity": pl.Int64,
    "rate": pl.Float64,
    "paid": pl.Boolean,
    "ordered_on": pl.Date,
    "ordered_at": pl.Datetime("us", "UTC"),
    "note": pl.Utf8,
    "_BATCH_ID_": pl.Utf8,
}
ROWS = [
    {
        "order_id": "ord-0001",
        "title": "First order",
        "total": Decimal("1234.50"),
        "quantity": 3,
        "rate": 0.125,
        "paid": True,
        "ordered_on": date(2026, 1, 31),
        "ordered_at": datetime(2026, 1, 31, 12, 30),
        "note": "n" * 300,
        "_BATCH_ID_": "b1",
    },
    {
        "order_id": "ord-2",
        "title": "Second",
        "total": Decimal("9.99"),
        "quantity": 1,
        "rate": 2.5,
        "paid": False,
        "ordered_on": date(2026, 2, 1),
        "ordered_at": datetime(2026, 2, 1, 8, 0),
        "note": "short",
        "_BATCH_ID_": "b1",
    },
]
MAPPING = {
    "Order_Id__c": "order_id",
    "Name": "title",
    "Total__c": "total",
    "Quantity__c": "quantity",
    "Rate__c": "rate",
    "Paid__c": "paid",
    "Ordered_On__c": "ordered_on",
    "Ordered_At__c": "ordered_at",
    "Note__c": "note",
}


def body(**mapping: str) -> dict[str, Any]:
    return {
        "name": pipeline.SYNC,
        "source": {"duckdb": "warehouse.duckdb", "table": "shop.checkouts"},
        "target": {
            "object": "Basket__c",
            "operation": "upsert",
            "match_on": "Order_Id__c",
            "create_object": {
                "name": "Basket__c",
                "label": "Basket",
                "plural_label": "Baskets",
            },
        },
        "mapping": mapping or MAPPING,
        "api": "rest",
    }


def write_baskets(project: Path, rows: list[dict[str, Any]], schema: dict = SCHEMA) -> None:
    path = project / "warehouse.duckdb"
    path.unlink(missing_ok=True)
    frame = pl.DataFrame(rows, schema=schema)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA shop")
        con.register("rows", frame)
        con.execute("CREATE TABLE shop.checkouts AS SELECT * FROM rows")


@pytest.fixture
def client(sandbox) -> Salesforce:
    return salesforce_resource(sandbox.info()).client()


def describe(client: Salesforce, name: str = "Basket__c") -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in client.restful(f"sobjects/{name}/describe")["fields"]}


def shape(field: dict[str, Any]) -> tuple[Any, ...]:
    return (field["type"], field["length"], field["precision"], field["scale"])


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return str(next(e for e in result.all_events if e.is_step_failure).event_specific_data.error)


def loaded(project: Path, spec_body: dict[str, Any]) -> LoadedSpec:
    spec = SyncSpec.model_validate(spec_body)
    return LoadedSpec(spec=spec, file=project / "syncs" / "x.yaml", root=project)


def existing_basket(client: Salesforce, **fields: str) -> None:
    """A Basket__c made by hand: Order_Id__c plus the given fields (name -> metadata type)."""
    md = client.mdapi
    extra = {"Checkbox": {"defaultValue": "false"}, "Number": {"precision": 10, "scale": 2}}
    md.CustomObject.create(
        [
            md.CustomObject(
                fullName="Basket__c",
                label="Basket",
                pluralLabel="Baskets",
                nameField=md.CustomField(label="Basket Name", type=md.FieldType("Text")),
                deploymentStatus=md.DeploymentStatus("Deployed"),
                sharingModel=md.SharingModel("ReadWrite"),
                fields=[
                    md.CustomField(fullName="Order_Id__c", label="Order Id", type=md.FieldType("Text"), length=40, externalId=True, unique=True),
                    *[
                        md.CustomField(fullName=name, label=name[:-3], type=md.FieldType(kind), **extra.get(kind, {}))
                        for name, kind in fields.items()
                    ],
                ],
            )
        ]
    )  # fmt: skip


# -- creating the object -------------------------------------------------------------------------


def test_first_run_creates_the_object_with_derived_types_and_writes(project, client, http):
    write_baskets(project, ROWS)
    defs = pipeline.definitions(project, body())
    with dg.instance_for_test() as instance:
        result = pipeline.run_batch(defs, instance, "b1")
        assert result.success, failure_text(result)
        setup = pipeline.metadata(result, "mapped")["object setup"]
        written = pipeline.metadata(result, "written")

    fields = describe(client)
    assert setup.startswith("created Basket__c with Name Text(80), ")
    assert "Order_Id__c Text(10) External ID unique" in setup
    assert shape(fields["Name"])[:2] == ("string", 80) and fields["Name"]["nameField"]
    assert shape(fields["Order_Id__c"])[:2] == ("string", 10)
    assert fields["Order_Id__c"]["externalId"] and fields["Order_Id__c"]["unique"]
    assert shape(fields["Total__c"]) == ("double", 0, 16, 2)
    assert shape(fields["Quantity__c"]) == ("double", 0, 18, 0)
    assert shape(fields["Rate__c"]) == ("double", 0, 18, 3)
    assert (fields["Paid__c"]["type"], fields["Paid__c"]["defaultValue"]) == ("boolean", False)
    assert fields["Ordered_On__c"]["type"] == "date"
    assert fields["Ordered_At__c"]["type"] == "datetime"
    assert shape(fields["Note__c"])[:2] == ("textarea", 32768)
    assert (written["created"], written["failed"]) == (2, 0)
    records = {r["Order_Id__c"]: r for r in http.admin("GET", "records/Basket__c")}
    assert records["ord-0001"]["Name"] == "First order"
    assert records["ord-0001"]["Total__c"] == 1234.5
    assert records["ord-0001"]["Paid__c"] is True
    assert records["ord-2"]["Rate__c"] == 2.5


def test_second_run_finds_the_object_and_creates_nothing(project, client):
    write_baskets(project, [*ROWS, {**ROWS[0], "order_id": "ord-3", "_BATCH_ID_": "b2"}])
    defs = pipeline.definitions(project, body())
    with dg.instance_for_test() as instance:
        assert pipeline.run_batch(defs, instance, "b1").success
        before = describe(client)
        second = pipeline.run_batch(defs, instance, "b2")
        assert second.success, failure_text(second)
        setup = pipeline.metadata(second, "mapped")["object setup"]

    assert setup == "Basket__c already existed; nothing created"
    assert describe(client) == before
    report = ensure_object(client, SyncSpec.model_validate(body()), SCHEMA, None)
    assert (report.exists, report.created) == (True, False)


def test_object_without_a_name_mapping_gets_an_auto_number_name(project, client, http):
    write_baskets(project, ROWS)
    mapping = {k: v for k, v in MAPPING.items() if k != "Name"}
    defs = pipeline.definitions(project, body(**mapping))
    with dg.instance_for_test() as instance:
        result = pipeline.run_batch(defs, instance, "b1")
        assert result.success, failure_text(result)

    name = describe(client)["Name"]
    assert (name["autoNumber"], name["createable"]) == (True, False)
    assert len(http.admin("GET", "records/Basket__c")) == 2


# -- an object that already exists ---------------------------------------------------------------


def test_existing_object_missing_a_field_is_reported_with_its_type_and_not_altered(client):
    existing_basket(client, Quantity__c="Number")
    before = describe(client)
    spec = SyncSpec.model_validate(
        body(Order_Id__c="order_id", Quantity__c="quantity", Total__c="total", Paid__c="paid")
    )

    with pytest.raises(ObjectSetupError) as caught:
        ensure_object(client, spec, SCHEMA, None)

    lines = str(caught.value).splitlines()
    assert "Basket__c already exists and does not fit the mapping" in lines[0]
    assert lines[1:] == [
        "Basket__c.Total__c is missing: create it as Number(16, 2)",
        "Basket__c.Paid__c is missing: create it as Checkbox",
    ]
    assert describe(client) == before


def test_existing_field_of_an_incompatible_type_is_reported(client):
    existing_basket(client, Quantity__c="Checkbox")
    spec = SyncSpec.model_validate(body(Order_Id__c="order_id", Quantity__c="quantity"))

    with pytest.raises(ObjectSetupError, match=r"Basket__c.Quantity__c is a boolean field, but column 'quantity' needs Number\(18, 0\)"):  # fmt: skip
        ensure_object(client, spec, SCHEMA, None)


def test_run_on_a_name_the_org_has_with_other_fields_fails_before_writing(project, client, http):
    """The org's own Checkout__c has Total__c but none of the other mapped fields."""
    spec_body = body()
    spec_body["target"]["object"] = spec_body["target"]["create_object"]["name"] = "Checkout__c"
    write_baskets(project, ROWS)
    before = describe(client, "Checkout__c")
    defs = pipeline.definitions(project, spec_body)
    with dg.instance_for_test() as instance:
        result = pipeline.run_batch(defs, instance, "b1")

    assert not result.success
    message = failure_text(result)
    assert "Checkout__c already exists and does not fit the mapping; it is never altered" in message
    assert "Checkout__c.Order_Id__c is missing: create it as Text(10) External ID unique" in message
    assert "Checkout__c.Note__c is missing: create it as LongTextArea(32768)" in message
    assert "Total__c" not in message
    assert describe(client, "Checkout__c") == before
    assert http.admin("GET", "records/Checkout__c") == []


# -- columns whose type cannot be derived --------------------------------------------------------


def test_underivable_column_is_a_validation_error_and_nothing_is_created(client, sandbox):
    spec = SyncSpec.model_validate(body(Order_Id__c="order_id", Tags__c="tags"))
    schema = {"order_id": pl.Utf8(), "tags": pl.List(pl.Utf8)}

    with pytest.raises(ObjectSetupError, match=r"sync fans: .*column 'tags' \(List\(String\)\)"):
        ensure_object(client, spec, schema, None)

    assert sandbox.org.schema.get("Basket__c") is None


# -- sf-assets validate --------------------------------------------------------------------------


def test_validate_warns_with_the_fields_an_absent_object_will_get(project, client):
    write_baskets(project, ROWS)

    findings = findings_for(loaded(project, body()), client)

    assert [f.level for f in findings] == ["warning"]
    line = findings[0].line()
    assert line.startswith("WARNING fans: Basket__c does not exist yet; the first run creates")
    assert "Total__c Number(16, 2)" in line and "Order_Id__c Text(255) External ID unique" in line


def test_validate_lists_what_an_existing_object_lacks_as_errors(project, client):
    write_baskets(project, ROWS)
    existing_basket(client, Quantity__c="Number")
    spec_body = body(Order_Id__c="order_id", Name="title", Quantity__c="quantity", Total__c="total")

    findings = findings_for(loaded(project, spec_body), client)

    assert [f.line() for f in findings if f.level == "error"] == [
        "ERROR fans: Basket__c.Total__c is missing: create it as Number(16, 2)"
    ]
