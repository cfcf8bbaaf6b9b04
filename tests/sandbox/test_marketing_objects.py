"""The objects a marketing platform reads, through simple-salesforce over HTTPS: the org's
Organization record, orders with their lines, opportunity contact roles, the fields people and
organisations are merged on, and Lead.Status defaulted the way real orgs default it."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

SYSTEM_FIELDS = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted"}
MERGE_FIELDS = {
    "Contact": {"Email", "Phone", "MobilePhone", "HasOptedOutOfEmail", "AccountId", "FirstName"},
    "Lead": {"Email", "Phone", "MobilePhone", "HasOptedOutOfEmail", "Company", "Website"},
    "Account": {"Name", "Website", "Phone", "BillingCity", "BillingCountry", "ParentId"},
}


def fields_of(sf: Salesforce, name: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in getattr(sf, name).describe()["fields"]}


def error_code(excinfo: pytest.ExceptionInfo[SalesforceMalformedRequest]) -> str:
    return excinfo.value.content[0]["errorCode"]


def test_the_connection_check_query_finds_the_one_organization(sf, sandbox):
    answer = sf.query("SELECT Id, Name FROM Organization")

    assert answer["totalSize"] == 1
    (organization,) = answer["records"]
    assert organization["Id"] == sandbox.org.org_id and organization["Id"].startswith("00D")
    assert organization["attributes"]["type"] == "Organization"
    assert organization["Name"]


def test_the_organization_record_describes_a_sandbox(sf, sandbox):
    record = sf.Organization.get(sandbox.org.org_id)

    assert (record["OrganizationType"], record["IsSandbox"]) == ("Developer Edition", True)
    assert record["InstanceName"] and record["CreatedDate"]


def test_organization_is_describable_and_read_only(sf):
    describe = sf.Organization.describe()

    assert describe["keyPrefix"] == "00D"
    assert (describe["queryable"], describe["createable"], describe["updateable"]) == (
        True,
        False,
        False,
    )
    assert describe["deletable"] is False
    assert {"Name", "OrganizationType", "InstanceName", "IsSandbox"} <= set(
        f["name"] for f in describe["fields"]
    )
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.Organization.create({})
    assert error_code(excinfo) == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
    assert excinfo.value.content[0]["message"] == "entity type cannot be inserted: Organization"


def test_every_object_has_the_system_fields(sf):
    for summary in sf.describe()["sobjects"]:
        names = set(fields_of(sf, summary["name"]))
        assert names >= SYSTEM_FIELDS, summary["name"]


@pytest.mark.parametrize("name", sorted(MERGE_FIELDS))
def test_people_and_organisations_have_the_fields_a_merge_needs(sf, name):
    assert MERGE_FIELDS[name] <= set(fields_of(sf, name))


def test_order_lines_point_at_their_order_and_compute_their_total(sf):
    account = sf.Account.create({"Name": "Buyer"})["id"]
    order = sf.Order.create(
        {"AccountId": account, "EffectiveDate": "2026-01-05", "Status": "Draft"}
    )["id"]
    product = sf.Product2.create({"Name": "Season ticket"})["id"]

    line = sf.OrderItem.create(
        {"OrderId": order, "Product2Id": product, "Quantity": 3, "UnitPrice": 49.5}
    )["id"]
    sf.OrderItem.update(line, {"Quantity": 4})

    rows = sf.query(
        "SELECT OrderId, Order.Status, Product2.Name, Quantity, UnitPrice, TotalPrice "
        "FROM OrderItem"
    )["records"]
    assert [
        (r["OrderId"], r["Order"]["Status"], r["Product2"]["Name"], r["TotalPrice"]) for r in rows
    ] == [(order, "Draft", "Season ticket", 198.0)]
    fields = fields_of(sf, "OrderItem")
    assert fields["OrderId"]["referenceTo"] == ["Order"] and not fields["OrderId"]["nillable"]
    assert not fields["TotalPrice"]["createable"] and not fields["TotalPrice"]["updateable"]


def test_an_order_line_needs_its_order_quantity_and_price(sf):
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.OrderItem.create({"Description": "no order"})
    assert error_code(excinfo) == "REQUIRED_FIELD_MISSING"
    assert set(excinfo.value.content[0]["fields"]) == {"OrderId", "Quantity", "UnitPrice"}


def test_opportunity_contact_roles_link_people_to_deals(sf):
    contact = sf.Contact.create({"LastName": "Buyer", "Email": "buyer@x.test"})["id"]
    opportunity = sf.Opportunity.create(
        {"Name": "Box", "StageName": "Prospecting", "CloseDate": "2026-03-01"}
    )["id"]

    sf.OpportunityContactRole.create(
        {
            "OpportunityId": opportunity,
            "ContactId": contact,
            "IsPrimary": True,
            "Role": "Decision Maker",
        }
    )

    (role,) = sf.query(
        "SELECT Contact.Email, Opportunity.Name, IsPrimary, Role FROM OpportunityContactRole"
    )["records"]
    assert (role["Contact"]["Email"], role["Opportunity"]["Name"], role["IsPrimary"]) == (
        "buyer@x.test",
        "Box",
        True,
    )
    assert role["Role"] == "Decision Maker"


def test_lead_status_is_described_as_defaulted_not_required(sf):
    status = fields_of(sf, "Lead")["Status"]

    assert (status["nillable"], status["defaultedOnCreate"], status["createable"]) == (
        False,
        True,
        True,
    )
    assert status["defaultValue"] == "Open - Not Contacted"
    defaults = [v["value"] for v in status["picklistValues"] if v["defaultValue"]]
    assert defaults == ["Open - Not Contacted"]


def test_a_lead_created_without_status_gets_the_default(sf):
    lead = sf.Lead.create({"LastName": "Prospect", "Company": "Acme"})["id"]
    chosen = sf.Lead.create(
        {"LastName": "Warm", "Company": "Acme", "Status": "Working - Contacted"}
    )["id"]

    assert sf.Lead.get(lead)["Status"] == "Open - Not Contacted"
    assert sf.Lead.get(chosen)["Status"] == "Working - Contacted"
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.Lead.update(lead, {"Status": None})
    assert error_code(excinfo) == "REQUIRED_FIELD_MISSING"


def test_bulk_leads_without_status_get_the_default_too(sf):
    sf.bulk2.Lead.insert(records=[{"LastName": "Bulk", "Company": "Acme"}], wait=0)

    assert [r["Status"] for r in sf.query("SELECT Status FROM Lead")["records"]] == [
        "Open - Not Contacted"
    ]
