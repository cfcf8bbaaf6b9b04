"""Structured filters compile to SOQL in which no value can change the query: text is escaped,
every other type is re-written from its parsed value, and values that do not fit their field
are errors naming the sync, the object and the field."""

from __future__ import annotations

import pytest

from sf_assets.salesforce.describe import FieldInfo, ObjectInfo
from sf_assets.salesforce.reader.filters import FilterError, compile_filter
from sf_assets.specs.ingest import ObjectRead
from tests.salesforce.reader.conftest import ingest_spec

HOSTILE = "O'Brien \\ ' OR LastName != '"
CONTACT = ObjectInfo(
    "Contact",
    "Contact",
    {
        name: FieldInfo(name, name, kind)
        for name, kind in {
            "LastName": "string",
            "Ticket_Count__c": "double",
            "NumberOfVisits__c": "int",
            "HasOptedOutOfEmail": "boolean",
            "Birthdate": "date",
            "Last_Purchase__c": "datetime",
            "LeadSource": "picklist",
        }.items()
    },
)


def compiled(*items: dict) -> str | None:
    read = ObjectRead.model_validate({"filter": list(items)})
    return compile_filter(read.filter, CONTACT, sync="crm")


def test_text_values_are_escaped_so_they_stay_one_literal():
    assert compiled({"field": "LastName", "value": HOSTILE}) == (
        "LastName = 'O\\'Brien \\\\ \\' OR LastName != \\''"
    )


def test_every_operator_and_type_is_rendered_from_its_parsed_value():
    text = compiled(
        {"field": "lastname", "op": "like", "value": "Mc%"},
        {"field": "Ticket_Count__c", "op": ">=", "value": 2},
        {"field": "NumberOfVisits__c", "op": "<", "value": "10"},
        {"field": "HasOptedOutOfEmail", "value": False},
        {"field": "Birthdate", "op": ">", "value": "1990-01-31"},
        {"field": "Last_Purchase__c", "op": ">=", "value": "2026-01-31T10:00:00+01:00"},
        {"field": "LeadSource", "op": "not in", "value": ["Web", "Other"]},
        {
            "any": [
                {"field": "LastName", "value": None},
                {"field": "LastName", "op": "not like", "value": "x%"},
            ]
        },
    )
    assert text == (
        "(LastName LIKE 'Mc%') AND (Ticket_Count__c >= 2) AND (NumberOfVisits__c < 10) AND "
        "(HasOptedOutOfEmail = false) AND (Birthdate > 1990-01-31) AND "
        "(Last_Purchase__c >= 2026-01-31T09:00:00.000Z) AND "
        "(LeadSource NOT IN ('Web', 'Other')) AND "
        "((LastName = null) OR (NOT LastName LIKE 'x%'))"
    )


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ({"field": "Ticket_Count__c", "value": "1 OR LastName != ''"}, "is not a number"),
        ({"field": "NumberOfVisits__c", "value": 1.5}, "not a whole number"),
        ({"field": "HasOptedOutOfEmail", "value": "true OR Id != null"}, "true or false"),
        ({"field": "Birthdate", "value": "1990-01-01 OR Id != null"}, "YYYY-MM-DD"),
        ({"field": "Last_Purchase__c", "value": "2026-01-31T10:00:00"}, "needs a time zone"),
        ({"field": "Last_Purchase__c", "value": "yesterday"}, "ISO 8601"),
        ({"field": "LastNmae", "value": "x"}, "did you mean LastName"),
        ({"field": "LastName", "value": True}, "compares with text"),
    ],
)
def test_a_value_that_does_not_fit_its_field_names_sync_object_and_field(item, words):
    with pytest.raises(FilterError) as excinfo:
        compiled(item)
    message = str(excinfo.value)
    assert message.startswith(f"sync crm: filter on Contact.{item['field']}") and words in message


def test_a_hostile_filter_value_cannot_change_the_query_against_the_org(org, reading):
    org.seed(
        "Contact",
        [{"LastName": HOSTILE}, {"LastName": "O'Brien"}, {"LastName": "Someone else"}],
    )
    spec = ingest_spec(
        {"Contact": {"fields": ["LastName"], "filter": [{"field": "LastName", "value": HOSTILE}]}}
    )
    report = reading.read(spec, "Contact")
    assert report.records == 1 and report.cursor.count.passed
    assert reading.copy("Contact")["LastName"].to_list() == [HOSTILE]
    like = ingest_spec(
        {
            "Contact": {
                "fields": ["LastName"],
                "filter": [{"field": "LastName", "op": "like", "value": "O'B%"}],
            }
        }
    )
    assert reading.read(like, "Contact", full_refresh=True).records == 2
