"""map_batch: every value is checked before anything is sent, bad rows are set aside with a reason a
person can act on (sync, batch, row, key, column), and good rows come out typed for the field.

The object is the sandbox org's Contact (and Account), built from the describe payload the org
serves, so the rules meet the same lengths, picklists and precisions the org enforces.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from sf_sandbox.schema import load_schema

from sf_assets.rows import REJECT_SCHEMA
from sf_assets.salesforce.describe import FieldInfo, ObjectInfo
from sf_assets.salesforce.mapping import MappingError, map_batch
from sf_assets.specs import SyncSpec

BATCH = "20261122-0930"
SYNC = "contacts_to_salesforce"
ID_15 = "0015g0000000001"
ID_18 = "0015g0000000001AAA"


def describe(name: str) -> ObjectInfo:
    schema = load_schema()
    return ObjectInfo.from_describe(schema.get(name).describe("59.0", schema))


CONTACT = describe("Contact")
ACCOUNT = describe("Account")


def make_spec(
    mapping: dict[str, str],
    *,
    obj: str = "Contact",
    operation: str = "upsert",
    match_on: str = "External_Id__c",
    **extra: Any,
) -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": SYNC,
            "source": {
                "duckdb": "warehouse.duckdb",
                "table": "crm.contacts",
                **extra.pop("source", {}),
            },
            "target": {"object": obj, "operation": operation, "match_on": match_on},
            "mapping": mapping,
            **extra,
        }
    )


def one_field(field: str, values: list[Any], dtype: pl.DataType | None = None, **spec: Any):
    """Map `values` into `field` next to a valid key and LastName; returns (rows, rejects)."""
    count = len(values)
    frame = pl.DataFrame(
        {
            "fan_id": [f"fan-{i}" for i in range(1, count + 1)],
            "last_name": ["Lovelace"] * count,
            "value": pl.Series(values, dtype=dtype),
        }
    )
    mapping = {"External_Id__c": "fan_id", "LastName": "last_name", field: "value"}
    result = map_batch(make_spec(mapping, **spec), CONTACT, frame, BATCH)
    return result.rows, result.rejects


def codes(rejects: pl.DataFrame) -> dict[int, str]:
    return dict(rejects.select("row", "code").iter_rows())


# -- good rows ------------------------------------------------------------------------------

MAPPING = {
    "External_Id__c": "fan_id",
    "LastName": "last_name",
    "Email": "email",
    "Ticket_Count__c": "tickets",
    "Lifetime_Value__c": "ltv",
    "Birthdate": "born",
    "Last_Purchase__c": "bought",
    "HasOptedOutOfEmail": "opted_out",
    "Fan_Tier__c": "tier",
    "AccountId": "account",
}
TYPED = pl.DataFrame(
    {
        "fan_id": ["fan-1", "fan-2"],
        "last_name": ["Lovelace", "Hopper"],
        "email": ["ada@example.com", None],
        "tickets": [3, 12],
        "ltv": [120.5, 0.25],
        "born": [date(1815, 12, 10), None],
        "bought": [datetime(2026, 11, 22, 9, 30), datetime(2026, 1, 2, 3, 4, 5, 6)],
        "opted_out": [True, False],
        "tier": ["Gold", None],
        "account": [ID_18, None],
    }
)
CSV = pl.DataFrame(
    {
        "fan_id": ["fan-1", "fan-2"],
        "last_name": ["Lovelace", "Hopper"],
        "email": ["ada@example.com", ""],
        "tickets": ["3", " 12 "],
        "ltv": ["120.50", ".25"],
        "born": ["1815-12-10", ""],
        "bought": ["2026-11-22T10:30:00+01:00", "2026-01-02 03:04:05.000006"],
        "opted_out": ["yes", "0"],
        "tier": ["Gold", None],
        "account": [ID_18, "  "],
    }
)


def test_good_rows_come_out_typed_in_mapping_order():
    result = map_batch(make_spec(MAPPING), CONTACT, TYPED, BATCH)
    assert result.rejects.is_empty()
    rows = result.rows
    assert rows.columns == ["_row", "_key", "_hash", *MAPPING]
    assert dict(rows.schema) == {
        "_row": pl.Int64,
        "_key": pl.Utf8,
        "_hash": pl.Utf8,
        "External_Id__c": pl.Utf8,
        "LastName": pl.Utf8,
        "Email": pl.Utf8,
        "Ticket_Count__c": pl.Float64,
        "Lifetime_Value__c": pl.Float64,
        "Birthdate": pl.Date,
        "Last_Purchase__c": pl.Datetime("us", "UTC"),
        "HasOptedOutOfEmail": pl.Boolean,
        "Fan_Tier__c": pl.Utf8,
        "AccountId": pl.Utf8,
    }
    first = rows.row(0, named=True)
    assert (first["_row"], first["_key"], first["Ticket_Count__c"]) == (1, "fan-1", 3.0)
    assert first["Last_Purchase__c"] == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert rows["_hash"].str.contains(r"^x2:[0-9]{1,39}$").all()


def test_csv_style_text_maps_to_the_same_values_and_hashes_as_typed_input():
    typed = map_batch(make_spec(MAPPING), CONTACT, TYPED, BATCH).rows
    text = map_batch(make_spec(MAPPING), CONTACT, CSV, BATCH).rows
    assert text.equals(typed)


def test_field_names_are_canonicalised_and_row_numbers_come_from_the_reader():
    frame = pl.DataFrame({"_row": [101, 102], "id": ["a", "b"], "name": ["A", "B"]})
    spec = make_spec({"external_id__C": "id", "lastname": "name"}, match_on="EXTERNAL_ID__C")
    rows = map_batch(spec, CONTACT, frame, BATCH).rows
    assert rows.columns[3:] == ["External_Id__c", "LastName"]
    assert rows["_row"].to_list() == [101, 102]


def test_a_frame_without_row_numbers_is_numbered_from_one():
    frame = pl.DataFrame({"id": ["a", "b"], "name": ["A", None]})
    result = map_batch(make_spec({"External_Id__c": "id", "LastName": "name"}), CONTACT, frame, "b")
    assert result.rows["_row"].to_list() == [1]
    assert result.rejects["row"].to_list() == [2]


# -- rejects --------------------------------------------------------------------------------


def test_a_reject_names_sync_batch_row_key_column_and_field():
    frame = pl.DataFrame(
        {
            "_row": [16, 17],
            "fan_id": ["fan-16", "fan-17"],
            "last_name": ["A", "B"],
            "email": ["a@example.com", "not-an-email"],
        }
    )
    spec = make_spec({"External_Id__c": "fan_id", "LastName": "last_name", "Email": "email"})
    result = map_batch(spec, CONTACT, frame, BATCH)
    assert result.rows["_key"].to_list() == ["fan-16"]
    assert result.rejects.schema == pl.Schema(REJECT_SCHEMA)
    assert result.rejects.row(0, named=True) == {
        "sync": SYNC,
        "batch": BATCH,
        "row": 17,
        "key": "fan-17",
        "column": "email",
        "field": "Email",
        "value": "not-an-email",
        "code": "INVALID_EMAIL_ADDRESS",
        "reason": f"{SYNC} batch {BATCH} row 17 (key fan-17): column 'email' -> Email: "
        "'not-an-email' is not a valid email address",
    }


def test_a_row_is_rejected_once_with_its_first_problem_in_mapping_order():
    frame = pl.DataFrame({"id": ["a"], "name": ["A"], "email": ["bad"], "tier": ["Diamond"]})
    email_first = {
        "External_Id__c": "id",
        "LastName": "name",
        "Email": "email",
        "Fan_Tier__c": "tier",
    }
    tier_first = {
        "External_Id__c": "id",
        "LastName": "name",
        "Fan_Tier__c": "tier",
        "Email": "email",
    }
    assert codes(map_batch(make_spec(email_first), CONTACT, frame, BATCH).rejects) == {
        1: "INVALID_EMAIL_ADDRESS"
    }
    assert codes(map_batch(make_spec(tier_first), CONTACT, frame, BATCH).rejects) == {
        1: "INVALID_PICKLIST_VALUE"
    }


def test_missing_keys_are_rejected_and_the_other_rows_go_on():
    frame = pl.DataFrame({"id": ["a", None, "", "   ", "e"], "name": ["A", "B", "C", "D", "E"]})
    result = map_batch(
        make_spec({"External_Id__c": "id", "LastName": "name"}), CONTACT, frame, BATCH
    )
    assert codes(result.rejects) == {2: "MISSING_KEY", 3: "MISSING_KEY", 4: "MISSING_KEY"}
    assert result.rejects["reason"][0].startswith(
        f"{SYNC} batch {BATCH} row 2 (no key): column 'id'"
    )
    assert result.rows["_key"].to_list() == ["a", "e"]


def test_every_occurrence_of_a_duplicate_key_is_rejected():
    frame = pl.DataFrame({"id": ["x", "y", "x", "z", "x"], "name": ["A"] * 5})
    result = map_batch(
        make_spec({"External_Id__c": "id", "LastName": "name"}), CONTACT, frame, BATCH
    )
    assert codes(result.rejects) == {1: "DUPLICATE_KEY", 3: "DUPLICATE_KEY", 5: "DUPLICATE_KEY"}
    assert set(result.rejects["reason"].str.split(": ").list.last()) == {
        "key 'x' appears 3 times in the batch"
    }
    assert result.rows["_key"].to_list() == ["y", "z"]


def test_keys_that_differ_only_in_case_are_duplicates_when_the_match_field_ignores_case():
    frame = pl.DataFrame({"email": ["Ada@Example.com", "ada@example.com"], "name": ["A", "B"]})
    spec = make_spec({"Email": "email", "LastName": "name"}, match_on="Email")
    rejects = map_batch(spec, CONTACT, frame, BATCH).rejects
    assert codes(rejects) == {1: "DUPLICATE_KEY", 2: "DUPLICATE_KEY"}
    assert "ignoring case, as matching on Email does" in rejects["reason"][0]


def test_a_separate_key_column_that_is_not_mapped_is_named_as_the_source_key():
    frame = pl.DataFrame({"fan": ["k1", "k1"], "ext": ["a", "b"], "name": ["A", "B"]})
    spec = make_spec({"External_Id__c": "ext", "LastName": "name"}, source={"key": "fan"})
    reasons = map_batch(spec, CONTACT, frame, BATCH).rejects["reason"].to_list()
    assert reasons[0] == (
        f"{SYNC} batch {BATCH} row 1 (key k1): column 'fan' (source key): "
        "key 'k1' appears 2 times in the batch"
    )


def test_text_longer_than_the_field_is_rejected_never_cut():
    rows, rejects = one_field("FirstName", ["x" * 40, "y" * 41])
    assert rows["FirstName"].to_list() == ["x" * 40]
    assert codes(rejects) == {2: "STRING_TOO_LONG"}
    assert "is 41 characters, longer than the 40 the field holds" in rejects["reason"][0]


def test_invalid_email_addresses_are_rejected():
    rows, rejects = one_field("Email", ["ada@example.com", "ada@", "no at sign", "a b@example.com"])
    assert rows["Email"].to_list() == ["ada@example.com"]
    assert codes(rejects) == dict.fromkeys([2, 3, 4], "INVALID_EMAIL_ADDRESS")


def test_restricted_picklists_take_only_their_values_case_included():
    rows, rejects = one_field("Fan_Tier__c", ["Gold", "gold", "Diamond", None])
    assert rows["Fan_Tier__c"].to_list() == ["Gold", None]
    assert codes(rejects) == {2: "INVALID_PICKLIST_VALUE", 3: "INVALID_PICKLIST_VALUE"}
    assert (
        "'Diamond' is not a value of this restricted picklist (Bronze, Silver, Gold, Platinum)"
        in (rejects["reason"][1])
    )


def test_unrestricted_picklists_accept_any_value():
    rows, rejects = one_field("LeadSource", ["Web", "Carrier pigeon"])
    assert rejects.is_empty()
    assert rows["LeadSource"].to_list() == ["Web", "Carrier pigeon"]


def test_restricted_multi_select_picklists_check_each_value():
    field = FieldInfo(
        name="Interests__c",
        label="Interests",
        type="multipicklist",
        length=4099,
        picklist=("Jazz", "Rock", "Folk"),
        restricted_picklist=True,
    )
    key = FieldInfo(name="Key__c", label="Key", type="string", length=20, external_id=True)
    obj = ObjectInfo(name="Fan__c", label="Fan", fields={"Key__c": key, "Interests__c": field})
    frame = pl.DataFrame({"k": ["a", "b"], "likes": ["Jazz;Folk", "Jazz;Polka"]})
    spec = make_spec({"Key__c": "k", "Interests__c": "likes"}, obj="Fan__c", match_on="Key__c")
    result = map_batch(spec, obj, frame, BATCH)
    assert result.rows["Interests__c"].to_list() == ["Jazz;Folk"]
    assert codes(result.rejects) == {2: "INVALID_PICKLIST_VALUE"}


@pytest.mark.parametrize("bad", ["abc", "1,5", "12 tickets", "nan", "inf", "0x10", "--1"])
def test_text_that_is_not_a_number_is_rejected(bad):
    rows, rejects = one_field("Ticket_Count__c", ["7", bad])
    assert rows["Ticket_Count__c"].to_list() == [7.0]
    assert codes(rejects) == {2: "INVALID_NUMBER"}
    assert f"'{bad}' is not a number" in rejects["reason"][0]


def test_numbers_outside_precision_and_scale_are_rejected():
    # Lifetime_Value__c is currency(16, 2): at most 14 digits before the point.
    rows, rejects = one_field(
        "Lifetime_Value__c", ["99999999999999.99", "100000000000000", "-1e15"]
    )
    assert rows["Lifetime_Value__c"].to_list() == [99999999999999.99]
    assert codes(rejects) == {2: "NUMBER_OUTSIDE_VALID_RANGE", 3: "NUMBER_OUTSIDE_VALID_RANGE"}
    assert "(at most 14 digits before the point)" in rejects["reason"][0]


def test_numbers_are_rounded_to_the_scale_half_away_from_zero_like_salesforce():
    rows, _ = one_field("Lifetime_Value__c", ["1.005", "-1.005", "2.675", "0.1", "7"])
    assert rows["Lifetime_Value__c"].to_list() == [1.01, -1.01, 2.68, 0.1, 7.0]
    rows, _ = one_field("Lifetime_Value__c", [1.005, 2.675, 0.1], pl.Float64)
    assert rows["Lifetime_Value__c"].to_list() == [1.01, 2.68, 0.1]
    rows, _ = one_field(
        "Lifetime_Value__c", [Decimal("1.005"), Decimal("-0.125")], pl.Decimal(10, 3)
    )
    assert rows["Lifetime_Value__c"].to_list() == [1.01, -0.13]
    rows, _ = one_field("Ticket_Count__c", [2.5, -2.5, 2.4], pl.Float64)  # double(18, 0)
    assert rows["Ticket_Count__c"].to_list() == [3.0, -3.0, 2.0]


def test_int_fields_take_whole_numbers_only():
    frame = pl.DataFrame(
        {
            "ext": ["a", "b", "c", "d", "e", "f"],
            "name": ["A"] * 6,
            "staff": ["12", "3.0", "2.5", "100000000", "-99999999", "many"],
        }
    )
    spec = make_spec(
        {"External_Id__c": "ext", "Name": "name", "NumberOfEmployees": "staff"}, obj="Account"
    )
    result = map_batch(spec, ACCOUNT, frame, BATCH)
    assert result.rows.schema["NumberOfEmployees"] == pl.Int64
    assert result.rows["NumberOfEmployees"].to_list() == [12, 3, -99999999]
    assert codes(result.rejects) == {
        3: "INVALID_NUMBER",
        4: "NUMBER_OUTSIDE_VALID_RANGE",
        6: "INVALID_NUMBER",
    }
    assert "'2.5' is not a whole number" in result.rejects["reason"][0]


def test_int_fields_reject_fractional_floats_and_keep_integers_exact():
    frame = pl.DataFrame({"ext": ["a", "b"], "name": ["A", "B"], "staff": [4.0, 4.5]})
    spec = make_spec(
        {"External_Id__c": "ext", "Name": "name", "NumberOfEmployees": "staff"}, obj="Account"
    )
    result = map_batch(spec, ACCOUNT, frame, BATCH)
    assert result.rows["NumberOfEmployees"].to_list() == [4]
    assert codes(result.rejects) == {2: "INVALID_NUMBER"}


@pytest.mark.parametrize("bad", ["2024-02-30", "31/01/2024", "2024-1-5", "yesterday", "1699-12-31"])
def test_unparsable_dates_are_rejected(bad):
    rows, rejects = one_field("Birthdate", ["2024-01-31", bad])
    assert rows["Birthdate"].to_list() == [date(2024, 1, 31)]
    assert codes(rejects) == {2: "INVALID_DATE"}


@pytest.mark.parametrize("bad", ["2024-01-31T25:00:00Z", "2024-01-31T10:00:00+5", "10:00", "soon"])
def test_unparsable_datetimes_are_rejected(bad):
    _, rejects = one_field("Last_Purchase__c", ["2024-01-31T10:00:00Z", bad])
    assert codes(rejects) == {2: "INVALID_DATE"}


def test_datetimes_in_any_zone_or_none_end_up_in_utc():
    utc = datetime(2024, 1, 31, 9, 0, tzinfo=UTC)
    texts = [
        "2024-01-31T09:00:00Z",
        "2024-01-31T10:00:00+01:00",
        "2024-01-31T10:00:00+0100",
        "2024-01-31T04:00:00-05",
        "2024-01-31 09:00:00",  # naive: UTC
        "2024-01-31 09:00",
        "2024-01-31t09:00:00.000z",
    ]
    rows, rejects = one_field("Last_Purchase__c", texts)
    assert rejects.is_empty()
    assert rows["Last_Purchase__c"].to_list() == [utc] * len(texts)
    rows, _ = one_field("Last_Purchase__c", ["2024-01-31", "2024-01-31T09:00:00.123456Z"])
    assert rows["Last_Purchase__c"].to_list() == [
        datetime(2024, 1, 31, tzinfo=UTC),
        datetime(2024, 1, 31, 9, 0, 0, 123456, tzinfo=UTC),
    ]


def test_datetime_dtypes_are_converted_to_utc_and_naive_ones_taken_as_utc():
    berlin = pl.Series([datetime(2024, 7, 1, 12, 0)]).dt.replace_time_zone("Europe/Berlin")
    rows, _ = one_field("Last_Purchase__c", berlin.to_list(), berlin.dtype)
    assert rows["Last_Purchase__c"].to_list() == [datetime(2024, 7, 1, 10, 0, tzinfo=UTC)]
    rows, _ = one_field("Last_Purchase__c", [datetime(2024, 7, 1, 12, 0)], pl.Datetime("ns"))
    assert rows["Last_Purchase__c"].to_list() == [datetime(2024, 7, 1, 12, 0, tzinfo=UTC)]
    rows, _ = one_field("Last_Purchase__c", [date(2024, 7, 1)], pl.Date)
    assert rows["Last_Purchase__c"].to_list() == [datetime(2024, 7, 1, tzinfo=UTC)]


def test_a_datetime_into_a_date_field_keeps_its_utc_date():
    late = datetime(2024, 1, 31, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    rows, _ = one_field("Birthdate", [late], pl.Datetime("us", "America/New_York"))
    assert rows["Birthdate"].to_list() == [date(2024, 2, 1)]
    rows, _ = one_field("Birthdate", ["2024-01-31T23:30:00-05:00"])
    assert rows["Birthdate"].to_list() == [date(2024, 2, 1)]


def test_booleans_from_bools_numbers_and_words():
    rows, rejects = one_field("HasOptedOutOfEmail", ["TRUE", "false", "Yes", "no", "1", "0", None])
    assert rejects.is_empty()
    assert rows["HasOptedOutOfEmail"].to_list() == [True, False, True, False, True, False, None]
    rows, rejects = one_field("HasOptedOutOfEmail", [1, 0, 2], pl.Int64)
    assert rows["HasOptedOutOfEmail"].to_list() == [True, False]
    assert codes(rejects) == {3: "INVALID_BOOLEAN"}
    rows, rejects = one_field("HasOptedOutOfEmail", ["maybe"])
    assert codes(rejects) == {1: "INVALID_BOOLEAN"}
    assert "'maybe' is not a boolean" in rejects["reason"][0]


def test_reference_fields_need_a_salesforce_id():
    rows, rejects = one_field("AccountId", [ID_15, ID_18, "001xx", "Acme Ltd"])
    assert rows["AccountId"].to_list() == [ID_15, ID_18]
    assert codes(rejects) == {3: "MALFORMED_ID", 4: "MALFORMED_ID"}
    assert "map a relationship column such as Account.<external id field>" in rejects["reason"][0]


def test_a_relationship_column_carries_the_related_records_external_id():
    frame = pl.DataFrame({"id": ["a"], "name": ["A"], "company": ["ACME-1"]})
    spec = make_spec(
        {"External_Id__c": "id", "LastName": "name", "account.External_Id__c": "company"}
    )
    rows = map_batch(spec, CONTACT, frame, BATCH).rows
    assert rows["Account.External_Id__c"].to_list() == ["ACME-1"]


def test_text_with_replacement_characters_is_rejected_as_invalid_utf8():
    rows, rejects = one_field("Title", ["Café", "Caf\ufffd"])
    assert rows["Title"].to_list() == ["Café"]
    assert codes(rejects) == {2: "INVALID_UTF8"}
    assert "column 'value' -> Title: the text holds U+FFFD" in rejects["reason"][0]


def test_required_fields_must_have_a_value_on_insert_and_upsert():
    frame = pl.DataFrame({"id": ["a", "b", "c"], "name": ["A", None, ""]})
    mapping = {"External_Id__c": "id", "LastName": "name"}
    for operation in ("insert", "upsert"):
        result = map_batch(make_spec(mapping, operation=operation), CONTACT, frame, BATCH)
        assert codes(result.rejects) == {2: "REQUIRED_FIELD_MISSING", 3: "REQUIRED_FIELD_MISSING"}
        assert "empty, but LastName is required to create a Contact" in result.rejects["reason"][0]


def test_an_update_may_leave_a_required_field_alone_but_not_clear_it():
    frame = pl.DataFrame({"id": ["a", "b"], "name": ["A", None]})
    mapping = {"External_Id__c": "id", "LastName": "name"}
    ignore = make_spec(mapping, operation="update", null_values="ignore")
    assert map_batch(ignore, CONTACT, frame, BATCH).rejects.is_empty()
    clear = make_spec(mapping, operation="update", null_values="clear")
    assert codes(map_batch(clear, CONTACT, frame, BATCH).rejects) == {2: "REQUIRED_FIELD_MISSING"}


def test_a_source_key_column_feeds_an_unmapped_match_on_field():
    frame = pl.DataFrame({"fan": ["k1", "k2"], "name": ["A", "B"]})
    spec = make_spec({"LastName": "name"}, source={"key": "fan"})
    rows = map_batch(spec, CONTACT, frame, BATCH).rows
    assert rows.columns[3:] == ["LastName", "External_Id__c"]
    assert rows["External_Id__c"].to_list() == ["k1", "k2"]


def test_categorical_and_null_columns_are_read():
    frame = pl.DataFrame(
        {
            "id": pl.Series(["a", "b"], dtype=pl.Categorical),
            "name": ["A", "B"],
            "born": pl.Series([None, None], dtype=pl.Null),
        }
    )
    spec = make_spec({"External_Id__c": "id", "LastName": "name", "Birthdate": "born"})
    rows = map_batch(spec, CONTACT, frame, BATCH).rows
    assert rows["_key"].to_list() == ["a", "b"]
    assert rows.schema["Birthdate"] == pl.Date


def test_an_empty_batch_gives_empty_frames_of_the_right_shape():
    result = map_batch(make_spec(MAPPING), CONTACT, TYPED.clear(), BATCH)
    typed = map_batch(make_spec(MAPPING), CONTACT, TYPED, BATCH)
    assert result.rows.schema == typed.rows.schema and result.rows.is_empty()
    assert result.rejects.schema == pl.Schema(REJECT_SCHEMA) and result.rejects.is_empty()


def test_spec_problems_raise_instead_of_rejecting_every_row():
    frame = pl.DataFrame({"id": ["a"], "name": ["A"]})
    with pytest.raises(MappingError, match="no field 'Emial'"):
        map_batch(make_spec({"External_Id__c": "id", "Emial": "name"}), CONTACT, frame, BATCH)
    with pytest.raises(MappingError, match=r"no source column 'surname'.*fix the column name"):
        map_batch(make_spec({"External_Id__c": "id", "LastName": "surname"}), CONTACT, frame, BATCH)
    with pytest.raises(MappingError, match=r"no source column 'nmae' \(did you mean name\?\)"):
        map_batch(make_spec({"External_Id__c": "id", "LastName": "nmae"}), CONTACT, frame, BATCH)


# -- the content hash -----------------------------------------------------------------------


def test_the_hash_is_the_same_for_the_same_values_and_changes_with_any_value():
    first = map_batch(make_spec(MAPPING), CONTACT, TYPED, BATCH).rows
    again = map_batch(make_spec(MAPPING), CONTACT, TYPED, "another-batch").rows
    assert first["_hash"].to_list() == again["_hash"].to_list()
    assert first["_hash"].n_unique() == 2
    changed = TYPED.with_columns(
        pl.when(pl.col("fan_id") == "fan-2").then(13).otherwise(pl.col("tickets")).alias("tickets")
    )
    hashes = map_batch(make_spec(MAPPING), CONTACT, changed, BATCH).rows["_hash"].to_list()
    assert hashes[0] == first["_hash"][0] and hashes[1] != first["_hash"][1]
    emptied = TYPED.with_columns(pl.lit(None, pl.Utf8).alias("tier"))
    hashes = map_batch(make_spec(MAPPING), CONTACT, emptied, BATCH).rows["_hash"].to_list()
    assert hashes[0] != first["_hash"][0]


def test_the_hash_does_not_depend_on_mapping_order_but_on_the_fields_mapped():
    reordered = dict(reversed(list(MAPPING.items())))
    first = map_batch(make_spec(MAPPING), CONTACT, TYPED, BATCH).rows["_hash"]
    assert map_batch(make_spec(reordered), CONTACT, TYPED, BATCH).rows["_hash"].equals(first)
    fewer = {k: v for k, v in MAPPING.items() if k != "AccountId"}
    assert not map_batch(make_spec(fewer), CONTACT, TYPED, BATCH).rows["_hash"].equals(first)


HASH_IN_ANOTHER_PROCESS = """
import json, sys
import polars as pl
from sf_sandbox.schema import load_schema
from sf_assets.salesforce.describe import ObjectInfo
from sf_assets.salesforce.mapping import map_batch
from sf_assets.specs import SyncSpec
schema = load_schema()
contact = ObjectInfo.from_describe(schema.get("Contact").describe("59.0", schema))
spec = SyncSpec.model_validate(json.loads(sys.argv[1]))
rows = map_batch(spec, contact, pl.read_parquet(sys.argv[2]), "b").rows
print(",".join(rows["_hash"]))
"""


def test_the_hash_is_the_same_in_another_process(tmp_path):
    here = map_batch(make_spec(MAPPING), CONTACT, TYPED, BATCH).rows["_hash"].to_list()
    TYPED.write_parquet(tmp_path / "batch.parquet")
    command = [
        sys.executable,
        "-c",
        HASH_IN_ANOTHER_PROCESS,
        make_spec(MAPPING).model_dump_json(),
        str(tmp_path / "batch.parquet"),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == here
