"""The REST API through the real simple-salesforce client: what a pipeline's writer and reader
will meet, including the org's validation of bad values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.content[0]["errorCode"]


def test_create_get_update_delete_round_trip(sf):
    created = sf.Contact.create(
        {
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Email": "ada@example.com",
            "Ticket_Count__c": 3,
        }
    )
    record = sf.Contact.get(created["id"])
    assert (record["Name"], record["Email"], record["Ticket_Count__c"]) == (
        "Ada Lovelace",
        "ada@example.com",
        3.0,
    )
    assert sf.Contact.update(created["id"], {"Title": "Countess", "Email": None}) == 204
    record = sf.Contact.get(created["id"])
    assert record["Title"] == "Countess" and record["Email"] is None
    assert record["LastModifiedDate"] >= record["CreatedDate"]
    assert sf.Contact.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as excinfo:
        sf.Contact.delete(created["id"])
    assert error_code(excinfo) == "ENTITY_IS_DELETED"


def test_fifteen_character_id_finds_the_record(sf):
    created = sf.Account.create({"Name": "Short Id"})
    assert sf.Account.get(created["id"][:15])["Id"] == created["id"]


def test_upsert_creates_then_updates_and_get_by_external_id(sf):
    assert sf.Contact.upsert("External_Id__c/fan-1", {"LastName": "First"}) == 201
    assert sf.Contact.upsert("External_Id__c/fan-1", {"LastName": "Second"}) == 200
    assert sf.Contact.get_by_custom_id("External_Id__c", "fan-1")["LastName"] == "Second"
    assert len(sf.query("SELECT Id FROM Contact")["records"]) == 1


def test_upsert_by_id_lookup_field_with_several_matches_raises(sf):
    sf.Contact.create({"LastName": "A", "Email": "same@example.com"})
    sf.Contact.create({"LastName": "B", "Email": "SAME@example.com"})
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Contact.upsert("Email/same@example.com", {"Title": "x"})


def test_parent_reference_by_external_id(sf):
    account = sf.Account.create({"Name": "Parent", "External_Id__c": "acc-1"})
    contact = sf.Contact.create({"LastName": "Child", "Account": {"External_Id__c": "acc-1"}})
    assert sf.Contact.get(contact["id"])["AccountId"] == account["id"]
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.Contact.create({"LastName": "Orphan", "Account": {"External_Id__c": "missing"}})
    assert error_code(excinfo) == "INVALID_FIELD"
    assert "Foreign key external ID: missing not found" in excinfo.value.content[0]["message"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"LastName": "x" * 81}, "STRING_TOO_LONG"),
        ({"LastName": "x", "Email": "nope"}, "INVALID_EMAIL_ADDRESS"),
        ({"LastName": "x", "Fan_Tier__c": "Diamond"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ({"LastName": "x", "Birthdate": "31/12/1990"}, "JSON_PARSER_ERROR"),
        ({"LastName": "x", "Ticket_Count__c": "many"}, "JSON_PARSER_ERROR"),
        ({"LastName": "x", "AccountId": "003000000000000AAA"}, "FIELD_INTEGRITY_EXCEPTION"),
        ({"LastName": "x", "AccountId": "0015g0000009999AAA"}, "INVALID_CROSS_REFERENCE_KEY"),
        ({"LastName": "x", "Name": "read only"}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"FirstName": "no last name"}, "REQUIRED_FIELD_MISSING"),
        ({"LastName": "x", "Unknown__c": "y"}, "INVALID_FIELD"),
    ],
)
def test_invalid_values_are_refused_with_the_real_code(sf, fields, code):
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.Contact.create(fields)
    assert error_code(excinfo) == code
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_unique_external_id_duplicate_names_the_holder(sf):
    first = sf.Contact.create({"LastName": "A", "External_Id__c": "dup"})
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.Contact.create({"LastName": "B", "External_Id__c": "DUP"})
    assert error_code(excinfo) == "DUPLICATE_VALUE"
    assert first["id"] in excinfo.value.content[0]["message"]


def test_datetime_values_are_stored_in_utc(sf):
    created = sf.Contact.create(
        {"LastName": "Tz", "Last_Purchase__c": "2024-05-01T12:30:00.000+02:00"}
    )
    assert sf.Contact.get(created["id"])["Last_Purchase__c"] == "2024-05-01T10:30:00.000+0000"


def test_a_query_writes_values_and_parents_as_a_record_read_does(sf):
    """Query pages render a whole page at once; a record GET renders one value at a time.
    Both must write instants (to the millisecond, truncated), dates and nulls alike."""
    account = sf.Account.create({"Name": "Parent"})
    fields = {"Last_Purchase__c": "2024-05-01T12:30:00.999+02:00", "Birthdate": "1990-12-31"}
    child = sf.Contact.create({"LastName": "Child", "AccountId": account["id"], **fields})
    orphan = sf.Contact.create({"LastName": "Orphan"})
    rows = sf.query(
        "SELECT Id, Last_Purchase__c, Birthdate, Email, Account.Name FROM Contact"
        f" WHERE Id IN ('{child['id']}', '{orphan['id']}') ORDER BY LastName"
    )["records"]
    for row, created in zip(rows, (child, orphan), strict=True):
        record = sf.Contact.get(created["id"])
        assert row["attributes"] == {
            "type": "Contact",
            "url": record["attributes"]["url"],
        }
        for name in ("Id", "Last_Purchase__c", "Birthdate", "Email"):
            assert row[name] == record[name], name
    assert rows[0]["Last_Purchase__c"] == "2024-05-01T10:30:00.999+0000"
    assert rows[0]["Account"]["Name"] == "Parent"
    assert rows[0]["Account"]["attributes"]["url"].endswith(f"/Account/{account['id']}")
    assert rows[1]["Account"] is None


def test_collections_mixed_types_keep_request_order(sf):
    result = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "A"},
                {"attributes": {"type": "Contact"}, "LastName": "C"},
                {"attributes": {"type": "Account"}},
            ],
        },
    )
    assert [item["success"] for item in result] == [True, True, False]
    assert result[0]["id"].startswith("001") and result[1]["id"].startswith("003")
    assert result[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"


def test_collections_refuse_more_than_200_records(sf):
    records = [{"attributes": {"type": "Contact"}, "LastName": str(n)} for n in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert error_code(excinfo) == "EXCEEDED_ID_LIMIT"


def test_collections_update_and_delete(sf):
    ids = [sf.Contact.create({"LastName": str(n)})["id"] for n in range(3)]
    updates = [{"attributes": {"type": "Contact"}, "id": i, "Title": "T"} for i in ids]
    updates.append({"attributes": {"type": "Contact"}, "id": "0035g0000009999AAA", "Title": "T"})
    result = sf.restful("composite/sobjects", method="PATCH", json={"records": updates})
    assert [r["success"] for r in result] == [True, True, True, False]
    assert result[3]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids[:2])})
    assert [(r["id"], r["success"]) for r in deleted] == [(ids[0], True), (ids[1], True)]
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 1


def test_query_all_sees_deleted_records_and_where_clauses_work(sf):
    keep = sf.Contact.create({"LastName": "Keep", "Email": "keep@example.com"})
    gone = sf.Contact.create({"LastName": "Gone", "Email": "gone@example.com"})
    sf.Contact.delete(gone["id"])
    live = sf.query("SELECT Id FROM Contact WHERE Email LIKE '%@example.com'")
    assert [r["Id"] for r in live["records"]] == [keep["id"]]
    everything = sf.query_all(
        "SELECT Id, IsDeleted FROM Contact ORDER BY LastName", include_deleted=True
    )
    assert [(r["Id"], r["IsDeleted"]) for r in everything["records"]] == [
        (gone["id"], True),
        (keep["id"], False),
    ]


def test_query_all_iterates_every_page(sf, http):
    http.admin("POST", "records/Account", json=[{"Name": f"A{n:05d}"} for n in range(4500)])
    names = [r["Name"] for r in sf.query_all_iter("SELECT Name FROM Account ORDER BY Name")]
    assert names == [f"A{n:05d}" for n in range(4500)]


def test_incremental_read_by_system_modstamp(sf):
    before = sf.Contact.create({"LastName": "Before"})
    stamp = sf.Contact.get(before["id"])["SystemModstamp"].replace("+0000", "Z")
    after = sf.Contact.create({"LastName": "After"})
    sf.Contact.update(before["id"], {"Title": "touched"})
    changed = sf.query(
        f"SELECT Id FROM Contact WHERE SystemModstamp > {stamp} ORDER BY SystemModstamp"
    )
    assert [r["Id"] for r in changed["records"]] == [after["id"], before["id"]]


def test_get_updated_and_get_deleted(sf):
    start = datetime.now(UTC) - timedelta(minutes=5)
    kept = sf.Contact.create({"LastName": "Kept"})
    gone = sf.Contact.create({"LastName": "Gone"})
    sf.Contact.delete(gone["id"])
    end = datetime.now(UTC) + timedelta(minutes=2)
    assert kept["id"] in sf.Contact.updated(start, end)["ids"]
    deleted = sf.Contact.deleted(start, end)["deletedRecords"]
    assert [d["id"] for d in deleted] == [gone["id"]]


def test_every_call_is_counted_in_limits_and_header(sf, http):
    before = http.admin("GET", "calls")["total"]
    sf.Contact.create({"LastName": "Counted"})
    sf.query("SELECT Id FROM Contact")
    limits = sf.limits()
    used = http.admin("GET", "calls")["total"]
    assert used == before + 3
    assert limits["DailyApiRequests"]["Max"] - limits["DailyApiRequests"]["Remaining"] == used
    assert sf.api_usage["api-usage"].used == used


def test_malformed_json_and_wrong_content_type(http):
    bad_json = http.call(
        "POST", "sobjects/Contact/", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    wrong_type = http.call(
        "POST", "sobjects/Contact/", data=b"LastName,x", headers={"Content-Type": "text/csv"}
    )
    assert wrong_type.status_code == 415
    assert wrong_type.json()[0]["errorCode"] == "UNSUPPORTED_MEDIA_TYPE"


def test_unknown_route_and_method_answer_in_salesforce_shape(http):
    missing = http.call("GET", "nothing/here")
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    wrong_method = http.call("PUT", "sobjects/Contact/0035g0000000001AAA", json={})
    assert wrong_method.status_code == 405
    assert wrong_method.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


def test_create_with_no_fields_names_every_required_field(sf):
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.Task.create({})
    assert error_code(excinfo) == "REQUIRED_FIELD_MISSING"
    assert excinfo.value.content[0]["fields"] == ["Status", "Priority"]


def test_describe_answers_304_until_the_schema_changes(sandbox, sf):
    """A conditional describe costs no payload while nothing changed, as on a real org; a
    field created afterwards makes the same request answer 200 with the new field."""
    from sf_sandbox.schema import field_from_spec

    # The schema was loaded a while ago (an HTTP date has whole seconds, so a change in the
    # very second of the answer's Date would rightly not count as unchanged).
    sandbox.org.schema_changed_at -= timedelta(seconds=10)
    url = f"{sf.base_url}sobjects/Contact/describe"
    first = sf.session.get(url, headers=sf.headers)
    assert first.status_code == 200
    date = first.headers["Date"]

    unchanged = sf.session.get(url, headers={**sf.headers, "If-Modified-Since": date})
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    earlier = "Mon, 01 Jan 2024 00:00:00 GMT"
    stale = sf.session.get(url, headers={**sf.headers, "If-Modified-Since": earlier})
    assert stale.status_code == 200 and stale.json()["name"] == "Contact"

    garbled = sf.session.get(url, headers={**sf.headers, "If-Modified-Since": "yesterday"})
    assert garbled.status_code == 200

    contact = sandbox.org.schema.get("Contact")
    sandbox.org.add_field(contact, field_from_spec("Shoe_Size__c", {"type": "double"}))
    changed = sf.session.get(url, headers={**sf.headers, "If-Modified-Since": date})
    assert changed.status_code == 200
    assert "Shoe_Size__c" in {f["name"] for f in changed.json()["fields"]}
