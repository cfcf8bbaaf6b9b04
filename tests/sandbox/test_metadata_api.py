"""The Metadata API through simple-salesforce's `sf.mdapi` (a zeep client of the real WSDL).

A created object must be usable at once: in describe, and writable over REST with the org's
rules (types, restricted picklists, lookups) applied to its new fields.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import zeep.exceptions
from sf_sandbox.server import SandboxServer
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from resources.salesforce import SalesforceResource

MD_NS = "http://soap.sforce.com/2006/04/metadata"


@pytest.fixture
def sf(sandbox: SandboxServer) -> Salesforce:
    """A client logged in through the resource, so `sf.mdapi` trusts the org's CA too."""
    info = sandbox.info()
    return SalesforceResource(
        login_url=info["login_url"],
        ca_bundle=info["ca_bundle"],
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
    ).client()


def widget(md: Any, name: str = "Widget__c", **extra: Any) -> Any:
    """A custom object with one field of most types the sandbox supports."""
    fields = [
        md.CustomField(fullName="Size__c", label="Size", type=md.FieldType("Number"), precision=8, scale=2),
        md.CustomField(fullName="Code__c", label="Code", type=md.FieldType("Text"), length=20, externalId=True, unique=True),
        md.CustomField(fullName="Active__c", label="Active", type=md.FieldType("Checkbox"), defaultValue="true"),
        md.CustomField(fullName="Notes__c", label="Notes", type=md.FieldType("LongTextArea"), length=5000, visibleLines=3),
        md.CustomField(fullName="Owner_Email__c", label="Owner Email", type=md.FieldType("Email")),
        md.CustomField(fullName="Contact__c", label="Contact", type=md.FieldType("Lookup"), referenceTo="Contact", relationshipName="Widgets"),
        md.CustomField(
            fullName="Color__c",
            label="Color",
            type=md.FieldType("Picklist"),
            valueSet=md.ValueSet(
                restricted=True,
                valueSetDefinition=md.ValueSetValuesDefinition(
                    sorted=False,
                    value=[md.CustomValue(fullName=c, default=False, label=c) for c in ("Red", "Blue")],
                ),
            ),
        ),
    ]  # fmt: skip
    return md.CustomObject(
        fullName=name,
        label="Widget",
        pluralLabel="Widgets",
        nameField=md.CustomField(label="Widget Name", type=md.FieldType("Text")),
        deploymentStatus=md.DeploymentStatus("Deployed"),
        sharingModel=md.SharingModel("ReadWrite"),
        fields=fields,
        **extra,
    )


def number_field(md: Any, full_name: str, **extra: Any) -> Any:
    options = {"precision": 18, "scale": 0, **extra}
    return md.CustomField(
        fullName=full_name, label="Shoe Size", type=md.FieldType("Number"), **options
    )


def describe_fields(sf: Salesforce, name: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in getattr(sf, name).describe()["fields"]}


# -- CustomObject ---------------------------------------------------------------------------------


def test_created_object_appears_in_global_describe(sf: Salesforce) -> None:
    sf.mdapi.CustomObject.create([widget(sf.mdapi)])

    entries = {o["name"]: o for o in sf.describe()["sobjects"]}

    assert entries["Widget__c"]["custom"] is True
    assert entries["Widget__c"]["label"] == "Widget"
    assert entries["Widget__c"]["labelPlural"] == "Widgets"
    assert entries["Widget__c"]["keyPrefix"].startswith("a")
    assert entries["Widget__c"]["keyPrefix"] not in {
        o["keyPrefix"] for name, o in entries.items() if name != "Widget__c"
    }


def test_created_object_describes_its_fields(sf: Salesforce) -> None:
    sf.mdapi.CustomObject.create([widget(sf.mdapi)])

    fields = describe_fields(sf, "Widget__c")

    assert {"Id", "Name", "OwnerId", "CreatedDate", "SystemModstamp"} <= fields.keys()
    assert fields["Name"]["label"] == "Widget Name"
    assert fields["Name"]["nameField"] is True
    assert (fields["Size__c"]["type"], fields["Size__c"]["precision"]) == ("double", 8)
    assert fields["Size__c"]["scale"] == 2
    assert (fields["Code__c"]["type"], fields["Code__c"]["length"]) == ("string", 20)
    assert fields["Code__c"]["externalId"] and fields["Code__c"]["unique"]
    assert (fields["Active__c"]["type"], fields["Active__c"]["defaultValue"]) == ("boolean", True)
    assert (fields["Notes__c"]["type"], fields["Notes__c"]["length"]) == ("textarea", 5000)
    assert fields["Owner_Email__c"]["type"] == "email"
    assert fields["Contact__c"]["referenceTo"] == ["Contact"]
    assert fields["Contact__c"]["relationshipName"] == "Widgets__r"
    assert [v["value"] for v in fields["Color__c"]["picklistValues"]] == ["Red", "Blue"]
    assert fields["Color__c"]["restrictedPicklist"] is True


def test_created_object_takes_records_over_rest(sf: Salesforce) -> None:
    sf.mdapi.CustomObject.create([widget(sf.mdapi)])
    contact = sf.Contact.create({"LastName": "Buyer"})

    created = sf.Widget__c.create(
        {"Name": "W-1", "Size__c": 2.5, "Color__c": "Red", "Contact__c": contact["id"]}
    )
    record = sf.Widget__c.get(created["id"])

    assert created["success"] is True
    assert (record["Name"], record["Size__c"], record["Color__c"]) == ("W-1", 2.5, "Red")
    assert record["Active__c"] is True
    assert record["Contact__c"] == contact["id"]


def test_created_object_enforces_its_restricted_picklist(sf: Salesforce) -> None:
    sf.mdapi.CustomObject.create([widget(sf.mdapi)])

    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Widget__c.create({"Name": "W-2", "Color__c": "Green"})

    assert caught.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_auto_number_name_is_assigned_by_the_org(sf: Salesforce) -> None:
    md = sf.mdapi
    ticket = md.CustomObject(
        fullName="Ticket__c",
        label="Ticket",
        pluralLabel="Tickets",
        nameField=md.CustomField(label="Ticket Number", type=md.FieldType("AutoNumber")),
        deploymentStatus=md.DeploymentStatus("Deployed"),
        sharingModel=md.SharingModel("ReadWrite"),
        fields=[md.CustomField(fullName="Subject__c", label="Subject", type=md.FieldType("Text"), length=80)],
    )  # fmt: skip
    md.CustomObject.create([ticket])

    name = describe_fields(sf, "Ticket__c")["Name"]
    record = sf.Ticket__c.get(sf.Ticket__c.create({"Subject__c": "Late"})["id"])

    assert (name["autoNumber"], name["createable"]) == (True, False)
    assert record["Name"]


def test_creating_an_object_again_is_a_duplicate(sf: Salesforce) -> None:
    sf.mdapi.CustomObject.create([widget(sf.mdapi)])

    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        sf.mdapi.CustomObject.create([widget(sf.mdapi)])


def test_each_component_succeeds_or_fails_on_its_own(
    sf: Salesforce, sandbox: SandboxServer
) -> None:
    md = sf.mdapi

    with pytest.raises(Exception, match=r"Bad__c__c: \(FIELD_INTEGRITY_EXCEPTION") as caught:
        md.CustomObject.create([widget(md, "Gadget__c"), widget(md, "Bad__c__c")])

    assert "Gadget__c" not in str(caught.value)
    assert sandbox.org.schema.get("Gadget__c") is not None
    assert sandbox.org.schema.get("Bad__c__c") is None


def test_object_without_plural_label_is_refused(sf: Salesforce) -> None:
    md = sf.mdapi
    thing = md.CustomObject(
        fullName="Thing__c",
        label="Thing",
        nameField=md.CustomField(label="Thing Name", type=md.FieldType("Text")),
    )

    with pytest.raises(
        Exception, match=r"REQUIRED_FIELD_MISSING, Required field is missing: pluralLabel"
    ):
        md.CustomObject.create([thing])


def test_more_than_ten_components_is_a_fault(sf: Salesforce) -> None:
    md = sf.mdapi
    many = [widget(md, f"Widget{n}__c") for n in range(11)]

    with pytest.raises(zeep.exceptions.Fault) as caught:
        md.CustomObject.create(many)

    assert caught.value.code == "sf:EXCEEDED_ID_LIMIT"


def test_read_returns_what_was_created(sf: Salesforce) -> None:
    sf.mdapi.CustomObject.create([widget(sf.mdapi)])

    read = sf.mdapi.CustomObject.read(["Widget__c"])

    assert (read.fullName, read.label, read.pluralLabel) == ("Widget__c", "Widget", "Widgets")
    assert (read.nameField.label, read.nameField.type) == ("Widget Name", "Text")
    by_name = {f.fullName: f for f in read.fields}
    assert by_name["Code__c"].length == 20 and by_name["Code__c"].externalId is True
    assert by_name["Contact__c"].referenceTo == "Contact"
    assert [v.fullName for v in by_name["Color__c"].valueSet.valueSetDefinition.value] == [
        "Red",
        "Blue",
    ]


def test_read_of_an_unknown_object_is_empty(sf: Salesforce) -> None:
    read = sf.mdapi.CustomObject.read(["Nothing__c"])

    assert read.fullName is None


# -- CustomField ----------------------------------------------------------------------------------


def test_field_on_an_existing_object_is_writable_at_once(sf: Salesforce) -> None:
    sf.mdapi.CustomField.create([number_field(sf.mdapi, "Contact.Shoe_Size__c")])

    field = describe_fields(sf, "Contact")["Shoe_Size__c"]
    created = sf.Contact.create({"LastName": "Walker", "Shoe_Size__c": 44})

    assert (field["type"], field["custom"], field["label"]) == ("double", True, "Shoe Size")
    assert sf.Contact.get(created["id"])["Shoe_Size__c"] == 44


def test_required_field_is_not_nillable(sf: Salesforce) -> None:
    sf.mdapi.CustomField.create([number_field(sf.mdapi, "Account.Rank__c", required=True)])

    assert describe_fields(sf, "Account")["Rank__c"]["nillable"] is False


def test_existing_field_is_a_duplicate(sf: Salesforce) -> None:
    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        sf.mdapi.CustomField.create([number_field(sf.mdapi, "Contact.Ticket_Count__c")])


def test_field_on_an_unknown_object_is_invalid(sf: Salesforce) -> None:
    with pytest.raises(Exception, match="INVALID_FIELD"):
        sf.mdapi.CustomField.create([number_field(sf.mdapi, "Nowhere__c.Shoe_Size__c")])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"type": "Text"}, "Length is required"),
        ({"type": "Text", "length": 300}, "Length must be between 1 and 255"),
        ({"type": "Number"}, "Precision is required"),
        ({"type": "Number", "precision": 4, "scale": 6}, "Scale can not be greater than precision"),
        ({"type": "Date", "externalId": True}, "can be unique or an External ID"),
        ({"type": "Lookup", "referenceTo": "Nowhere__c", "relationshipName": "X"}, "does not resolve"),
        ({"type": "Picklist"}, "at least one value"),
    ],
)  # fmt: skip
def test_bad_field_definitions_are_refused(
    sf: Salesforce, options: dict[str, Any], message: str
) -> None:
    md = sf.mdapi
    kind = options.pop("type")
    field = md.CustomField(
        fullName="Contact.Odd__c", label="Odd", type=md.FieldType(kind), **options
    )

    with pytest.raises(Exception, match=f"FIELD_INTEGRITY_EXCEPTION, .*{message}"):
        md.CustomField.create([field])


# -- sessions and API usage ---------------------------------------------------------------------


def test_expired_session_is_an_invalid_session_fault(
    sf: Salesforce, sandbox: SandboxServer
) -> None:
    md = sf.mdapi
    sandbox.org.expire_sessions()

    with pytest.raises(zeep.exceptions.Fault) as caught:
        md.CustomObject.create([widget(md)])

    assert caught.value.code == "sf:INVALID_SESSION_ID"
    assert "Invalid Session ID found in SessionHeader" in caught.value.message


def test_each_metadata_call_spends_one_api_call(sf: Salesforce, sandbox: SandboxServer) -> None:
    before = sandbox.org.api_calls_used

    sf.mdapi.CustomObject.create([widget(sf.mdapi)])
    sf.mdapi.CustomObject.read(["Widget__c"])

    assert sandbox.org.api_calls_used == before + 2


def test_wire_fault_for_a_bad_session(sandbox: SandboxServer) -> None:
    info = sandbox.info()
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:m="{MD_NS}"><soapenv:Header><m:SessionHeader><m:sessionId>00Dbogus'
        "</m:sessionId></m:SessionHeader></soapenv:Header><soapenv:Body><m:readMetadata>"
        "<m:type>CustomObject</m:type><m:fullNames>Account</m:fullNames></m:readMetadata>"
        "</soapenv:Body></soapenv:Envelope>"
    )

    response = requests.post(
        f"{info['instance_url']}/services/Soap/m/{info['api_version']}",
        data=envelope,
        headers={"Content-Type": "text/xml", "SOAPAction": '""'},
        verify=info["ca_bundle"],
        timeout=30,
    )

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/xml")
    assert "<faultcode>sf:INVALID_SESSION_ID</faultcode>" in response.text
    assert "<sf:exceptionCode>INVALID_SESSION_ID</sf:exceptionCode>" in response.text
