"""Deriving a created object's field types from source dtypes and sample values."""

from __future__ import annotations

import polars as pl
import pytest

from sf_assets.salesforce.object_setup import (
    FieldType,
    ObjectSetupError,
    derive_type,
    float_scale,
    plan_fields,
    text_type,
)
from sf_assets.specs import SyncSpec


def derived(dtype: pl.DataType, values: list | None = None) -> FieldType:
    series = pl.Series("c", values, dtype=dtype) if values is not None else None
    return derive_type("checkouts", "c", dtype, series)


def checkout_spec(**mapping: str) -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": "checkouts",
            "source": {"duckdb": "w.duckdb", "table": "checkouts"},
            "target": {
                "object": "Checkout__c",
                "operation": "upsert",
                "match_on": "Order_Id__c",
                "create_object": {
                    "name": "Checkout__c",
                    "label": "Checkout",
                    "plural_label": "Checkouts",
                },
            },
            "mapping": {"Order_Id__c": "order_id", **mapping},
        }
    )


@pytest.mark.parametrize(
    ("longest", "expected"),
    [
        (0, FieldType("Text", length=10)),
        (1, FieldType("Text", length=10)),
        (10, FieldType("Text", length=10)),
        (11, FieldType("Text", length=20)),
        (81, FieldType("Text", length=120)),
        (255, FieldType("Text", length=255)),
        (256, FieldType("LongTextArea", length=32768)),
        (40000, FieldType("LongTextArea", length=131072)),
        (None, FieldType("Text", length=255)),
    ],
)
def test_text_length_is_the_longest_value_rounded_up(longest, expected):
    assert text_type(longest) == expected


def test_text_length_comes_from_the_sample_values():
    assert derived(pl.Utf8(), ["ab", None, "x" * 33]) == FieldType("Text", length=40)
    assert derived(pl.Utf8(), ["é" * 12]) == FieldType("Text", length=20)  # characters, not bytes
    assert derived(pl.Utf8()) == FieldType("Text", length=255)


def test_categorical_is_text():
    assert derived(pl.Categorical(), ["gold", "silver"]).kind == "Text"


@pytest.mark.parametrize("dtype", [pl.Int8(), pl.Int64(), pl.UInt32()])
def test_integers_are_whole_numbers(dtype):
    assert derived(dtype, [1, 2]) == FieldType("Number", precision=18, scale=0)


@pytest.mark.parametrize(
    ("values", "scale"),
    [([1.5, 2.25], 2), ([3.0, 100.0], 0), ([1e-05], 5), ([0.1 + 0.2], 8), ([None], 8), (None, 8)],
)
def test_float_scale_is_read_from_the_values_up_to_eight(values, scale):
    series = pl.Series("c", values, dtype=pl.Float64) if values is not None else None
    assert float_scale(series) == scale


def test_decimal_keeps_its_precision_and_scale():
    assert derived(pl.Decimal(16, 2)) == FieldType("Number", precision=16, scale=2)


def test_decimal_wider_than_salesforce_numbers_is_an_error():
    with pytest.raises(ObjectSetupError, match=r"column 'c' \(Decimal\(precision=38, scale=2\)\)"):
        derived(pl.Decimal(38, 2))


@pytest.mark.parametrize(
    ("dtype", "kind"),
    [(pl.Boolean(), "Checkbox"), (pl.Date(), "Date"), (pl.Datetime("us", "UTC"), "DateTime")],
)
def test_booleans_dates_and_datetimes(dtype, kind):
    assert derived(dtype) == FieldType(kind)


@pytest.mark.parametrize(
    "dtype",
    [pl.List(pl.Utf8), pl.Struct({"a": pl.Int64}), pl.Null(), pl.Object(), pl.Time(), pl.Binary()],
)
def test_underivable_dtypes_are_errors_naming_sync_column_and_dtype(dtype):
    with pytest.raises(ObjectSetupError) as caught:
        derived(dtype)
    message = str(caught.value)
    assert "sync checkouts" in message and "column 'c'" in message and str(dtype) in message


def test_type_labels_are_what_an_admin_sets_up():
    assert FieldType("Number", precision=16, scale=2).label() == "Number(16, 2)"
    assert FieldType("Text", length=40, external_id=True).label() == "Text(40) External ID unique"
    assert FieldType("LongTextArea", length=32768).label() == "LongTextArea(32768)"
    assert FieldType("Checkbox").label() == "Checkbox"


def test_plan_has_name_first_and_the_key_as_external_id():
    spec = checkout_spec(Total__c="total", Name="title")
    schema = {"order_id": pl.Int64(), "total": pl.Decimal(16, 2), "title": pl.Utf8()}
    sample = pl.DataFrame({"order_id": [12345, 7]}, schema={"order_id": pl.Int64})

    plans = plan_fields(spec, schema, sample)

    assert [(p.field, p.type.label()) for p in plans] == [
        ("Name", "Text(80)"),
        ("Order_Id__c", "Text(10) External ID unique"),
        ("Total__c", "Number(16, 2)"),
    ]


def test_plan_reports_every_problem_at_once():
    spec = checkout_spec(Tags__c="tags", Account__c="nowhere", Email="email")
    schema = {"order_id": pl.Utf8(), "tags": pl.List(pl.Utf8), "email": pl.Utf8()}

    with pytest.raises(ObjectSetupError) as caught:
        plan_fields(spec, schema, None)

    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert "column 'tags' (List(String))" in lines[0]
    assert "column 'nowhere' (mapped to Account__c) is not in the dataset" in lines[1]
    assert "Checkout__c.Email: create_object creates custom fields" in lines[2]


def test_spec_object_must_equal_create_object_name():
    body = checkout_spec().model_dump()
    body["target"]["object"] = "Order__c"
    with pytest.raises(ValueError, match="must equal object 'Order__c'"):
        SyncSpec.model_validate(body)


def test_create_object_name_must_be_custom():
    body = checkout_spec().model_dump()
    body["target"]["object"] = body["target"]["create_object"]["name"] = "Checkout"
    with pytest.raises(ValueError, match=r"create_object\.name"):
        SyncSpec.model_validate(body)
