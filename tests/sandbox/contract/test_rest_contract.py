"""The sandbox's REST answers hold the shapes real orgs answer with (see shapes.py for where each
fact was observed): same keys, value types, status codes and headers, call by call."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from . import shapes as S


def create_contact(http, **fields) -> str:
    body = {"LastName": "Shape", **fields}
    response = http.call("POST", "sobjects/Contact/", json=body)
    assert response.status_code == S.CREATE_STATUS, response.text
    return response.json()["id"]


def assert_error(response, expected: tuple[int, str]) -> dict:
    status, code = expected
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == S.JSON_CONTENT_TYPE
    body = response.json()
    S.assert_shape(body, S.ERROR_LIST)
    assert body[0]["errorCode"] == code
    return body[0]


def test_versions_list(http):
    response = http.session.get(http.url("/services/data"))
    assert response.status_code == 200
    S.assert_shape(response.json(), S.VERSIONS_LIST)
    assert http.version in [v["version"] for v in response.json()]


def test_create_answers_201_with_location_and_limit_info(http):
    response = http.call("POST", "sobjects/Contact/", json={"LastName": "Wire"})
    assert response.status_code == S.CREATE_STATUS
    assert response.headers["Content-Type"] == S.JSON_CONTENT_TYPE
    S.assert_shape(response.json(), S.CREATE_SUCCESS)
    assert re.fullmatch(S.SOBJECT_URL_RE, response.headers[S.HEADER_LOCATION])
    used, limit = S.parse_limit_info(response.headers[S.HEADER_LIMIT_INFO])
    assert 1 <= used <= limit
    record_id = response.json()["id"]
    assert S.is_valid_record_id(record_id) and record_id.startswith("003")


def test_update_and_delete_answer_204_without_body(http):
    record_id = create_contact(http)
    update = http.call("PATCH", f"sobjects/Contact/{record_id}", json={"Title": "Chief"})
    assert update.status_code == S.UPDATE_STATUS and update.content == b""
    assert S.HEADER_LIMIT_INFO in update.headers
    delete = http.call("DELETE", f"sobjects/Contact/{record_id}")
    assert delete.status_code == S.DELETE_STATUS and delete.content == b""


def test_deleting_twice_is_entity_is_deleted(http):
    record_id = create_contact(http)
    http.call("DELETE", f"sobjects/Contact/{record_id}")
    error = assert_error(http.call("DELETE", f"sobjects/Contact/{record_id}"), S.DELETE_AGAIN)
    assert error["message"] == S.MSG_ENTITY_IS_DELETED
    assert error["fields"] == []


def test_retrieve_record_shape(http):
    record_id = create_contact(http, Email="shape@example.com", Birthdate="1990-02-03")
    record = http.call("GET", f"sobjects/Contact/{record_id}").json()
    S.assert_shape(record, S.QUERY_RECORD)
    assert re.fullmatch(S.REST_DATETIME_RE, record["CreatedDate"])
    assert re.fullmatch(S.REST_DATE_RE, record["Birthdate"])
    assert record["Email"] == "shape@example.com"


def test_unknown_object_is_not_found(http):
    error = assert_error(http.call("POST", "sobjects/Nope__c/", json={}), S.UNKNOWN_OBJECT)
    assert error["message"] == S.MSG_NOT_FOUND
    assert "fields" not in error


def test_unknown_api_version_is_not_found_without_limit_info(http):
    response = http.call("GET", "/services/data/v12.0/sobjects/Contact/describe")
    assert_error(response, S.INVALID_API_VERSION)
    assert S.HEADER_LIMIT_INFO not in response.headers


def test_invalid_token_is_401_with_www_authenticate(http):
    response = http.call("GET", "sobjects/Contact/describe", token="not-a-session")
    error = assert_error(response, S.INVALID_TOKEN)
    assert error["message"] == S.MSG_INVALID_SESSION
    assert response.headers[S.HEADER_WWW_AUTHENTICATE] == "Token"
    assert S.HEADER_LIMIT_INFO not in response.headers


def test_unknown_field_on_create(http):
    response = http.call("POST", "sobjects/Contact/", json={"LastName": "x", "Bacon__c": 1})
    error = assert_error(response, S.INVALID_FIELD)
    match = S.message_matches(S.MSG_INVALID_FIELD_DML_RE, error["message"])
    assert match and match["field"] == "Bacon__c" and match["sobject"] == "Contact"


def test_required_field_missing(http):
    response = http.call("POST", "sobjects/Contact/", json={"FirstName": "NoLast"})
    error = assert_error(response, S.REQUIRED_FIELD_MISSING)
    match = S.message_matches(S.MSG_REQUIRED_FIELD_MISSING_RE, error["message"])
    assert match and match["fields"] == "LastName"
    assert error["fields"] == ["LastName"]


def test_restricted_picklist_names_the_label(http):
    body = {"LastName": "x", "Fan_Tier__c": "Diamond"}
    error = assert_error(http.call("POST", "sobjects/Contact/", json=body), S.RESTRICTED_PICKLIST)
    match = S.message_matches(S.MSG_RESTRICTED_PICKLIST_RE, error["message"])
    assert match and match["label"] == "Fan Tier" and match["value"] == "Diamond"
    assert error["fields"] == ["Fan_Tier__c"]


def test_malformed_id_on_update(http):
    record_id = create_contact(http)
    wrong_suffix = record_id[:15] + ("AAB" if record_id[15:] != "AAB" else "AAC")
    response = http.call("PATCH", f"sobjects/Contact/{wrong_suffix}", json={"Title": "x"})
    error = assert_error(response, S.MALFORMED_ID)
    match = S.message_matches(S.MSG_MALFORMED_ID_RE, error["message"])
    assert match and match["label"] == S.MSG_MALFORMED_ID_LABEL
    assert error["fields"] == ["Id"]


def test_upsert_statuses_and_bodies(http):
    path = "sobjects/Contact/External_Id__c/ext-1"
    created = http.call("PATCH", path, json={"LastName": "Up"})
    assert created.status_code == S.UPSERT_CREATED
    S.assert_shape(created.json(), S.UPSERT_RESULT)
    assert created.json()["created"] is True
    updated = http.call("PATCH", path, json={"LastName": "Up again"})
    assert updated.status_code == S.UPSERT_UPDATED
    S.assert_shape(updated.json(), S.UPSERT_RESULT)
    assert updated.json()["created"] is False
    assert updated.json()["id"] == created.json()["id"]


def test_upsert_on_several_matches_is_300(http):
    create_contact(http, Email="twin@example.com")
    create_contact(http, Email="twin@example.com")
    response = http.call("PATCH", "sobjects/Contact/Email/twin@example.com", json={"Title": "x"})
    assert response.status_code == S.UPSERT_MULTIPLE_MATCHES
    urls = response.json()
    assert len(urls) == 2 and all(re.fullmatch(S.SOBJECT_URL_RE, u) for u in urls)


def test_collections_create_items(http):
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Contact"}, "LastName": "One"},
            {"attributes": {"type": "Contact"}, "FirstName": "Missing last name"},
        ],
    }
    response = http.call("POST", "composite/sobjects", json=body)
    assert response.status_code == S.COLLECTIONS_STATUS
    ok, failed = response.json()
    S.assert_shape(ok, S.COLLECTION_SUCCESS_ITEM)
    assert "created" not in ok
    S.assert_shape(failed, S.COLLECTION_FAILURE_ITEM)
    assert failed["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"


def test_collections_all_or_none_rolls_back_the_good_records(http):
    body = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Contact"}, "LastName": "Would be fine"},
            {"attributes": {"type": "Contact"}, "LastName": "Bad", "Email": "nope"},
        ],
    }
    first, second = http.call("POST", "composite/sobjects", json=body).json()
    assert first["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert second["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert http.admin("GET", "records/Contact") == []


def test_collections_upsert_items_carry_created(http):
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Contact"}, "LastName": "A", "External_Id__c": "c-1"}],
    }
    path = "composite/sobjects/Contact/External_Id__c"
    (first,) = http.call("PATCH", path, json=body).json()
    (second,) = http.call("PATCH", path, json=body).json()
    S.assert_shape(first, S.COLLECTION_UPSERT_SUCCESS_ITEM)
    assert first["created"] is True and second["created"] is False


def test_query_paging_follows_next_records_url(http):
    rows = [{"LastName": f"P{n:05d}"} for n in range(S.QUERY_PAGE_SIZE + 5)]
    http.admin("POST", "records/Contact", json=rows)
    first = http.call("GET", "query/", params={"q": "SELECT Id, LastName FROM Contact"}).json()
    S.assert_query_page(first)
    assert first["totalSize"] == len(rows) and len(first["records"]) == S.QUERY_PAGE_SIZE
    assert re.fullmatch(S.NEXT_RECORDS_URL_RE, first["nextRecordsUrl"])
    assert first["nextRecordsUrl"].endswith(f"-{S.QUERY_PAGE_SIZE}")
    second = http.call("GET", first["nextRecordsUrl"]).json()
    S.assert_query_page(second)
    assert second["done"] is True and len(second["records"]) == 5
    seen = {r["Id"] for r in first["records"]} | {r["Id"] for r in second["records"]}
    assert len(seen) == len(rows)


def test_query_parent_record_shape(http):
    account = http.call("POST", "sobjects/Account/", json={"Name": "Parent Co"}).json()["id"]
    create_contact(http, AccountId=account)
    create_contact(http)
    page = http.call(
        "GET", "query", params={"q": "SELECT Name, Account.Name FROM Contact ORDER BY Account.Name"}
    ).json()
    orphan, child = page["records"]
    assert orphan["Account"] is None
    S.assert_shape(child["Account"], S.PARENT_RECORD)
    assert child["Account"]["Name"] == "Parent Co"


def test_query_errors(http):
    unknown = http.call("GET", "query", params={"q": "SELECT Bacon__c FROM Account"})
    error = assert_error(unknown, S.INVALID_FIELD_SOQL)
    assert S.message_matches(S.MSG_INVALID_FIELD_SOQL_RE, error["message"])
    malformed = http.call("GET", "query", params={"q": "SELEKT Id FROM Account"})
    error = assert_error(malformed, S.MALFORMED_QUERY)
    assert S.message_matches(S.MSG_MALFORMED_QUERY_TOKEN_RE, error["message"])


def test_get_updated_and_deleted_shapes(http):
    record_id = create_contact(http)
    http.call("DELETE", f"sobjects/Contact/{record_id}")
    # Within the windows the org keeps (30 days of updates, 15 of deletions).
    now = datetime.now(UTC).replace(microsecond=0)
    window = {
        "start": (now - timedelta(days=1)).isoformat(),
        "end": (now + timedelta(days=1)).isoformat(),
    }
    updated = http.call("GET", "sobjects/Contact/updated/", params=window).json()
    S.assert_shape(updated, S.GET_UPDATED)
    deleted = http.call("GET", "sobjects/Contact/deleted/", params=window).json()
    S.assert_shape(deleted, S.GET_DELETED)


@pytest.mark.parametrize("name", ["Contact", "Account", "Checkout__c"])
def test_describe_shapes(http, name):
    describe = http.call("GET", f"sobjects/{name}/describe").json()
    S.assert_shape(describe, S.SOBJECT_DESCRIBE)
    for field in describe["fields"]:
        S.assert_shape(field, S.DESCRIBE_FIELD, f"$.fields[{field['name']}]")


def test_global_describe_and_limits(http):
    S.assert_shape(http.call("GET", "sobjects").json(), S.GLOBAL_DESCRIBE)
    limits = http.call("GET", "limits/").json()
    S.assert_shape(limits, S.LIMITS)
    for name in (*S.LIMITS_REQUIRED_NAMES, *S.LIMITS_BULK_NAMES):
        assert name in limits
