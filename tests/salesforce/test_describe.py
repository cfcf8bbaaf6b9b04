"""Describe and preflight through the real simple-salesforce client against the sandbox org: what
the validator and the mapped asset see before anything is written."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from sf_assets.salesforce.describe import UnknownObjectError, describe_object
from sf_assets.salesforce.preflight import preflight
from sf_assets.specs import SyncSpec

SYNC = "contacts_to_salesforce"
SCHEMA = {
    "fan_id": pl.Utf8(),
    "last_name": pl.Utf8(),
    "email": pl.Utf8(),
    "tickets": pl.Int64(),
    "bought": pl.Datetime("us", "UTC"),
    "company": pl.Utf8(),
}
GOOD_MAPPING = {
    "External_Id__c": "fan_id",
    "LastName": "last_name",
    "Email": "email",
    "Ticket_Count__c": "tickets",
    "Last_Purchase__c": "bought",
    "Account.External_Id__c": "company",
}


def make_spec(mapping: dict[str, str], **target: Any) -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": SYNC,
            "source": {"duckdb": "warehouse.duckdb", "table": "crm.contacts"},
            "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"}
            | target,
            "mapping": mapping,
        }
    )


def errors(sf, spec: SyncSpec, schema: dict[str, pl.DataType] = SCHEMA) -> list[str]:
    return [f.line() for f in preflight(sf, spec, schema) if f.level == "error"]


def test_describe_reads_the_org_fields(sf):
    contact = describe_object(sf, "contact")
    assert (contact.name, contact.label) == ("Contact", "Contact")
    last_name = contact.field("lastname")
    assert (last_name.type, last_name.length, last_name.required_on_create) == ("string", 80, True)
    assert contact.field("Email").matchable and not contact.field("Phone").matchable
    assert contact.field("Id").matchable
    tier = contact.field("Fan_Tier__c")
    assert tier.picklist == ("Bronze", "Silver", "Gold", "Platinum") and tier.restricted_picklist
    value = contact.field("Lifetime_Value__c")
    assert (value.type, value.precision, value.scale) == ("currency", 16, 2)
    account = contact.field("AccountId")
    assert (account.reference_to, account.relationship_name) == (("Account",), "Account")
    assert not contact.field("Name").createable and not contact.field("Name").updateable
    assert not contact.field("HasOptedOutOfEmail").required_on_create  # defaulted on create


def test_describe_reads_custom_objects(sf):
    checkout = describe_object(sf, "Checkout__c")
    assert checkout.label == "Checkout"
    assert checkout.field("Name").id_lookup and checkout.field("name").required_on_create
    assert checkout.relationship("contact__r").name == "Contact__c"


def test_an_unknown_object_raises_with_the_close_name(sf):
    with pytest.raises(UnknownObjectError) as excinfo:
        describe_object(sf, "Contakt")
    assert excinfo.value.suggestions == ("Contact",)
    assert str(excinfo.value) == (
        "Salesforce object 'Contakt' does not exist in this org or is not visible to this user "
        "(did you mean Contact?)"
    )


def test_a_name_that_is_not_an_api_name_never_reaches_the_org(sf):
    before = sf.restful("limits/")["DailyApiRequests"]["Remaining"]
    with pytest.raises(UnknownObjectError, match="'Contact/describe'"):
        describe_object(sf, "Contact/describe")
    after = sf.restful("limits/")["DailyApiRequests"]["Remaining"]
    assert before - after == 1  # only the second limits call


def test_a_good_spec_has_no_errors(sf):
    assert errors(sf, make_spec(GOOD_MAPPING)) == []


def test_an_unknown_target_object_is_one_finding(sf):
    spec = make_spec(GOOD_MAPPING, object="Contacts")
    assert [f.line() for f in preflight(sf, spec, SCHEMA)] == [
        f"ERROR {SYNC}: Salesforce object 'Contacts' does not exist in this org or is not "
        "visible to this user (did you mean Contact?)"
    ]


def test_an_unknown_field_is_found(sf):
    mapping = {**GOOD_MAPPING, "Emial": "email"}
    del mapping["Email"]
    assert errors(sf, make_spec(mapping)) == [
        f"ERROR {SYNC}: Contact.Emial: no such field on Contact (did you mean Email?)"
    ]


def test_an_unmapped_required_field_is_found(sf):
    mapping = {k: v for k, v in GOOD_MAPPING.items() if k != "LastName"}
    assert errors(sf, make_spec(mapping)) == [
        f"ERROR {SYNC}: Contact.LastName: required to create a Contact but not mapped from any "
        "column"
    ]


def test_a_field_that_cannot_be_created_is_found(sf):
    spec = make_spec({**GOOD_MAPPING, "Name": "last_name"}, operation="insert")
    assert errors(sf, spec) == [
        f"ERROR {SYNC}: Contact.Name: not createable, so an insert cannot set it (it is "
        "read-only: a system, formula or auto-number field)"
    ]


def test_a_match_on_that_is_neither_unique_nor_external_is_found(sf):
    spec = make_spec({**GOOD_MAPPING, "Phone": "fan_id"}, match_on="Phone")
    (line,) = errors(sf, spec)
    assert line.startswith(
        f"ERROR {SYNC}: Contact.Phone: match_on is not unique: Salesforce cannot tell records "
        "apart by it"
    )


def test_a_source_type_that_does_not_fit_is_found(sf):
    schema = {**SCHEMA, "tickets": pl.Date()}
    assert errors(sf, make_spec(GOOD_MAPPING), schema) == [
        f"ERROR {SYNC}: Contact.Ticket_Count__c: source column 'tickets' (Date) cannot be "
        "written to a double field"
    ]


def test_a_relationship_column_is_checked_on_the_related_object(sf):
    mapping = {**GOOD_MAPPING, "Account.Name": "company"}
    del mapping["Account.External_Id__c"]
    assert errors(sf, make_spec(mapping)) == [
        f"ERROR {SYNC}: Contact.Account.Name: Account.Name is neither an external id nor an "
        "idLookup field, so Salesforce cannot find the Account by it"
    ]
