"""check_spec: a spec that cannot work against the object is stopped before anything is written,
with the field, what is wrong and, for a misspelling, the name that was probably meant."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from sf_sandbox.schema import load_schema

from sf_assets.salesforce.describe import FieldInfo, ObjectInfo, UnknownObjectError
from sf_assets.salesforce.preflight import Finding, check_spec, object_missing
from sf_assets.specs import SyncSpec

SYNC = "contacts_to_salesforce"


def describe(name: str) -> ObjectInfo:
    schema = load_schema()
    return ObjectInfo.from_describe(schema.get(name).describe("59.0", schema))


CONTACT = describe("Contact")
ACCOUNT = describe("Account")
GOOD_MAPPING = {
    "External_Id__c": "fan_id",
    "LastName": "last_name",
    "Email": "email",
    "Ticket_Count__c": "tickets",
    "Birthdate": "born",
}
GOOD_SCHEMA = {
    "fan_id": pl.Utf8,
    "last_name": pl.Utf8,
    "email": pl.Utf8,
    "tickets": pl.Int64,
    "born": pl.Date,
    "_BATCH_ID_": pl.Utf8,
}


def make_spec(
    mapping: dict[str, str] | None = None,
    *,
    operation: str = "upsert",
    match_on: str = "External_Id__c",
    obj: str = "Contact",
    **extra: Any,
) -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": SYNC,
            "source": {"duckdb": "w.duckdb", "table": "crm.contacts", **extra.pop("source", {})},
            "target": {"object": obj, "operation": operation, "match_on": match_on},
            "mapping": GOOD_MAPPING if mapping is None else mapping,
            **extra,
        }
    )


def lines(findings: list[Finding]) -> list[str]:
    return [finding.line() for finding in findings]


def test_a_good_spec_has_no_findings():
    assert check_spec(make_spec(), CONTACT, GOOD_SCHEMA) == []
    assert check_spec(make_spec(), CONTACT) == []


def test_an_unknown_field_is_an_error_with_the_close_name():
    mapping = {**GOOD_MAPPING, "Emial": "email"}
    del mapping["Email"]
    assert lines(check_spec(make_spec(mapping), CONTACT)) == [
        f"ERROR {SYNC}: Contact.Emial: no such field on Contact (did you mean Email?)"
    ]


def test_an_unknown_field_without_a_close_name_gets_no_suggestion():
    (finding,) = check_spec(make_spec({**GOOD_MAPPING, "Zzyzx__c": "x"}), CONTACT)
    assert (finding.level, finding.field, finding.message) == (
        "error",
        "Zzyzx__c",
        "no such field on Contact",
    )


def test_field_names_match_without_case():
    mapping = {"external_id__c": "fan_id", "LASTNAME": "last_name"}
    assert check_spec(make_spec(mapping, match_on="External_ID__C"), CONTACT) == []


@pytest.mark.parametrize(
    ("operation", "flag"),
    [("insert", "createable"), ("update", "updateable"), ("upsert", "createable")],
)
def test_read_only_fields_cannot_be_written_by_any_operation(operation, flag):
    spec = make_spec({**GOOD_MAPPING, "Name": "full_name"}, operation=operation)
    assert lines(check_spec(spec, CONTACT)) == [
        f"ERROR {SYNC}: Contact.Name: not {flag}, so an {operation} cannot set it (it is "
        "read-only: a system, formula or auto-number field)"
    ]


def create_only_object() -> ObjectInfo:
    """Fan__c with Code__c: createable but not updateable (set once, like a create-only field)."""
    fields = {
        "Id": FieldInfo(
            "Id",
            "Fan ID",
            "id",
            18,
            nillable=False,
            createable=False,
            updateable=False,
            id_lookup=True,
        ),
        "Key__c": FieldInfo("Key__c", "Key", "string", 80, external_id=True, id_lookup=True),
        "Code__c": FieldInfo("Code__c", "Code", "string", 10, updateable=False),
        "Serial__c": FieldInfo("Serial__c", "Serial", "string", 20, unique=True),
    }
    return ObjectInfo("Fan__c", "Fan", fields)


def test_upsert_needs_fields_that_are_both_createable_and_updateable():
    obj = create_only_object()
    spec = make_spec({"Key__c": "k", "Code__c": "c"}, obj="Fan__c", match_on="Key__c")
    assert lines(check_spec(spec, obj)) == [
        f"ERROR {SYNC}: Fan__c.Code__c: not updateable, so an upsert cannot set it"
    ]
    insert = make_spec(
        {"Key__c": "k", "Code__c": "c"}, obj="Fan__c", match_on="Key__c", operation="insert"
    )
    assert check_spec(insert, obj) == []


def test_required_fields_must_be_mapped_for_insert_and_upsert_but_not_update():
    mapping = {"External_Id__c": "fan_id", "Email": "email"}
    for operation in ("insert", "upsert"):
        assert lines(check_spec(make_spec(mapping, operation=operation), CONTACT)) == [
            f"ERROR {SYNC}: Contact.LastName: required to create a Contact but not mapped from "
            "any column"
        ]
    assert check_spec(make_spec(mapping, operation="update"), CONTACT) == []


def test_match_on_must_identify_one_record():
    spec = make_spec({"Phone": "phone", "LastName": "last_name"}, match_on="Phone")
    (finding,) = check_spec(spec, CONTACT)
    assert (finding.level, finding.field) == ("error", "Phone")
    assert "not unique: Salesforce cannot tell records apart by it" in finding.message


def test_match_on_id_works_for_update_but_not_insert():
    update = make_spec({"Id": "sf_id", "Title": "title"}, match_on="Id", operation="update")
    assert check_spec(update, CONTACT) == []
    insert = make_spec({"Id": "sf_id", "LastName": "n"}, match_on="Id", operation="insert")
    assert lines(check_spec(insert, CONTACT)) == [
        f"ERROR {SYNC}: Contact.Id: match_on Id cannot work for an insert: Salesforce "
        "assigns the Id"
    ]


def test_an_upsert_may_match_on_a_field_that_is_only_unique():
    # The writer looks the ids up first, so Salesforce need not upsert on it natively.
    obj = create_only_object()
    upsert = make_spec({"Serial__c": "s", "Code__c": "c"}, obj="Fan__c", match_on="Serial__c")
    assert [f for f in check_spec(upsert, obj) if f.field == "Serial__c"] == []
    insert = make_spec(
        {"Serial__c": "s", "Code__c": "c"}, obj="Fan__c", match_on="Serial__c", operation="insert"
    )
    assert check_spec(insert, obj) == []


def test_an_unknown_match_on_fed_by_the_source_key_is_reported_once():
    spec = make_spec({"LastName": "n"}, match_on="Externl_Id__c", source={"key": "fan_id"})
    assert lines(check_spec(spec, CONTACT)) == [
        f"ERROR {SYNC}: Contact.Externl_Id__c: match_on: no such field on Contact (did you mean "
        "External_Id__c?)"
    ]


def test_mapping_a_restricted_picklist_is_a_warning():
    (finding,) = check_spec(make_spec({**GOOD_MAPPING, "Fan_Tier__c": "tier"}), CONTACT)
    assert finding.line() == (
        f"WARNING {SYNC}: Contact.Fan_Tier__c: restricted picklist: values other than Bronze, "
        "Silver, Gold, Platinum are rejected row by row"
    )


def test_an_object_the_user_cannot_create_records_in():
    read_only = ObjectInfo("Report", "Report", CONTACT.fields, createable=False)
    findings = check_spec(make_spec(operation="insert"), read_only)
    assert [f.message for f in findings] == ["Report records cannot be created by this user"]


# -- source columns -------------------------------------------------------------------------


def test_source_columns_must_exist_with_the_close_name_suggested():
    schema = {**GOOD_SCHEMA, "emails": pl.Utf8}
    del schema["email"]
    assert lines(check_spec(make_spec(), CONTACT, schema)) == [
        f"ERROR {SYNC}: Contact.Email: source column 'email' is not in the dataset (did you mean "
        "emails?)"
    ]


def test_a_missing_source_key_column_is_an_error():
    spec = make_spec(source={"key": "fan"})
    (finding,) = check_spec(spec, CONTACT, GOOD_SCHEMA)
    assert (finding.level, finding.field) == ("error", None)
    assert finding.message == "source key column 'fan' is not in the dataset (did you mean fan_id?)"


@pytest.mark.parametrize(
    ("field", "dtype", "level", "words"),
    [
        ("Ticket_Count__c", pl.Utf8, "warning", "text into a number field"),
        ("Ticket_Count__c", pl.Float32, None, None),
        ("Ticket_Count__c", pl.Decimal(10, 2), None, None),
        ("Ticket_Count__c", pl.Date, "error", "cannot be written to a double field"),
        ("Ticket_Count__c", pl.Boolean, "error", "cannot be written to a double field"),
        ("Title", pl.Int64, None, None),
        ("Title", pl.Date, None, None),
        ("Title", pl.List(pl.Utf8), "error", "cannot be written to a Salesforce field"),
        ("Birthdate", pl.Utf8, "warning", "text into a date field"),
        ("Birthdate", pl.Datetime("us", "UTC"), "warning", "keeps its UTC date"),
        ("Birthdate", pl.Int64, "error", "cannot be written to a date field"),
        ("Last_Purchase__c", pl.Datetime("us", "UTC"), None, None),
        ("Last_Purchase__c", pl.Datetime("ns"), "warning", "has no time zone"),
        ("Last_Purchase__c", pl.Date, None, None),
        ("HasOptedOutOfEmail", pl.Boolean, None, None),
        ("HasOptedOutOfEmail", pl.Int8, "warning", "only 0 and 1"),
        ("HasOptedOutOfEmail", pl.Date, "error", "cannot be written to a boolean field"),
        ("AccountId", pl.Utf8, None, None),
        ("AccountId", pl.Int64, "error", "cannot be written to a reference field"),
        ("Email", pl.Null, None, None),
    ],
)
def test_source_types_are_checked_against_field_types(field, dtype, level, words):
    spec = make_spec({**GOOD_MAPPING, field: "col"})
    findings = check_spec(spec, CONTACT, {**GOOD_SCHEMA, "col": dtype})
    if level is None:
        assert findings == []
        return
    (finding,) = findings
    assert (finding.level, finding.field) == (level, field)
    assert finding.message.startswith("source column 'col' (") and words in finding.message


def test_a_float_into_an_int_field_is_a_warning():
    spec = make_spec(
        {"External_Id__c": "id", "Name": "name", "NumberOfEmployees": "staff"}, obj="Account"
    )
    schema = {"id": pl.Utf8, "name": pl.Utf8, "staff": pl.Float64}
    (finding,) = check_spec(spec, ACCOUNT, schema)
    assert finding.level == "warning" and "fractions rejected" in finding.message


def test_dtype_classes_are_accepted_as_well_as_instances():
    schema = {**GOOD_SCHEMA, "tickets": pl.Utf8(), "born": pl.Date()}
    assert [f.level for f in check_spec(make_spec(), CONTACT, schema)] == ["warning"]


# -- relationship columns -------------------------------------------------------------------


def test_relationship_columns_are_checked_against_the_related_object():
    spec = make_spec({**GOOD_MAPPING, "Account.External_Id__c": "company"})
    assert check_spec(spec, CONTACT, related={"Account": ACCOUNT}) == []
    by_name = make_spec({**GOOD_MAPPING, "Account.Name": "company"})
    (finding,) = check_spec(by_name, CONTACT, related={"Account": ACCOUNT})
    assert finding.field == "Account.Name"
    assert "neither an external id nor an idLookup field" in finding.message
    typo = make_spec({**GOOD_MAPPING, "Account.External_Idd__c": "company"})
    (finding,) = check_spec(typo, CONTACT, related={"Account": ACCOUNT})
    assert finding.message == "no such field on Account (did you mean External_Id__c?)"


def test_an_unknown_relationship_is_an_error_with_the_close_name():
    (finding,) = check_spec(make_spec({**GOOD_MAPPING, "Acount.External_Id__c": "c"}), CONTACT)
    assert finding.message == "no relationship 'Acount' on Contact (did you mean Account?)"


def test_a_lookup_set_twice_is_an_error():
    spec = make_spec({**GOOD_MAPPING, "AccountId": "account_id", "Account.External_Id__c": "c"})
    (finding,) = check_spec(spec, CONTACT)
    assert finding.line() == (
        f"ERROR {SYNC}: Contact.AccountId: set twice, by AccountId and by Account.External_Id__c"
    )


# -- findings -------------------------------------------------------------------------------


def test_errors_come_before_warnings():
    spec = make_spec({**GOOD_MAPPING, "Fan_Tier__c": "tier", "Emial": "x"})
    assert [f.level for f in check_spec(spec, CONTACT)] == ["error", "warning"]


def test_finding_lines_without_field_or_object():
    assert Finding("error", SYNC, None, "no batches yet").line() == f"ERROR {SYNC}: no batches yet"
    assert Finding("warning", SYNC, "Email", "odd").line() == f"WARNING {SYNC}: Email: odd"


def test_an_unknown_object_becomes_a_finding():
    finding = object_missing(make_spec(), UnknownObjectError("Contakt", ("Contact",)))
    assert finding.line() == (
        f"ERROR {SYNC}: Salesforce object 'Contakt' does not exist in this org or is not visible "
        "to this user (did you mean Contact?)"
    )


# -- write modes that look ids up ------------------------------------------------------------


@pytest.mark.parametrize("operation", ["upsert", "update", "delete"])
def test_an_id_lookup_field_that_is_not_an_external_id_can_be_matched_on(operation):
    spec = make_spec(match_on="Email", operation=operation)
    assert [f for f in check_spec(spec, CONTACT) if f.level == "error"] == []


def test_an_update_only_sync_need_not_map_required_fields():
    spec = make_spec({"Email": "email", "Title": "title"}, match_on="Email", operation="update")
    assert check_spec(spec, CONTACT) == []


def test_an_update_that_creates_missing_records_needs_the_required_fields():
    spec = SyncSpec.model_validate(
        {
            "name": SYNC,
            "source": {"duckdb": "w.duckdb", "table": "crm.contacts"},
            "target": {
                "object": "Contact",
                "operation": "update",
                "match_on": "Email",
                "create_missing": True,
            },
            "mapping": {"Email": "email", "Title": "title"},
        }
    )
    assert any("required to create" in f.message for f in check_spec(spec, CONTACT))


def test_a_delete_needs_no_field_permissions():
    spec = make_spec({"Email": "email"}, match_on="Email", operation="delete")
    assert check_spec(spec, CONTACT) == []


@pytest.mark.parametrize("operation", ["upsert", "update", "delete"])
def test_a_match_on_field_that_is_not_unique_is_rejected(operation):
    spec = make_spec({"Phone": "phone", "LastName": "n"}, match_on="Phone", operation=operation)
    errors = [f for f in check_spec(spec, CONTACT) if f.field == "Phone"]
    assert [f.level for f in errors] == ["error"]
    assert "not unique: Salesforce cannot tell records apart by it" in errors[0].message


def test_an_unknown_match_on_field_is_rejected_for_a_delete():
    spec = make_spec({"Emial": "email"}, match_on="Emial", operation="delete")
    assert any(
        f.field == "Emial" and "no such field" in f.message for f in check_spec(spec, CONTACT)
    )


def test_entries_written_source_column_first_are_named_a_reversed_mapping():
    mapping = {"External_Id__c": "fan_id", "last_name": "LastName", "Email": "email"}
    findings = lines(check_spec(make_spec(mapping), CONTACT))
    assert (
        f"ERROR {SYNC}: Contact.last_name: no such field on Contact, but LastName is one: the "
        "mapping looks reversed; a mapping goes Salesforce field -> source column, so write "
        "`LastName: last_name`"
    ) in findings


def test_a_missing_source_column_gets_the_close_column_names():
    schema = {**GOOD_SCHEMA}
    schema["last_nmae"] = schema.pop("last_name")
    findings = lines(check_spec(make_spec(), CONTACT, schema))
    assert (
        f"ERROR {SYNC}: Contact.LastName: source column 'last_name' is not in the dataset "
        "(did you mean last_nmae?)"
    ) in findings
