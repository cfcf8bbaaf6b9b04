"""Tests for the shape language in ``shapes.py`` (not for the sandbox itself).

All sample values below are invented for these tests.
"""

from __future__ import annotations

import re

import pytest

from . import shapes as S
from .shapes import ListOf, MapOf, assert_shape, closed, nullable, optional


def _make_id(prefix: str, body: str) -> str:
    id15 = (prefix + body)[:15]
    return id15 + S.id_checksum(id15)


ACCOUNT_ID = _make_id("001", "Zz000000TeStA")
CONTACT_ID = _make_id("003", "Zz000000tEsTb")


def test_accepts_matching_value() -> None:
    shape = {"a": int, "b": str, "c": ListOf(bool), "d": {"e": float}}
    assert_shape({"a": 1, "b": "x", "c": [True, False], "d": {"e": 1.5}}, shape)


def test_extra_keys_allowed_unless_closed() -> None:
    assert_shape({"a": 1, "zzz": 2}, {"a": int})
    with pytest.raises(AssertionError, match=re.escape("$: unexpected keys ['zzz']")):
        assert_shape({"a": 1, "zzz": 2}, closed({"a": int}))


def test_rejects_missing_key_and_names_path() -> None:
    shape = {"outer": {"inner": str}}
    with pytest.raises(AssertionError, match=re.escape("$.outer: missing key 'inner'")):
        assert_shape({"outer": {}}, shape)


def test_rejects_wrong_type_and_names_path_into_lists() -> None:
    shape = {"records": ListOf({"n": int})}
    with pytest.raises(AssertionError, match=re.escape("$.records[1].n: expected int, got str")):
        assert_shape({"records": [{"n": 1}, {"n": "2"}]}, shape)


def test_bool_is_not_a_number_and_numbers_are_not_bools() -> None:
    with pytest.raises(AssertionError, match="expected int, got bool"):
        assert_shape(True, int)
    with pytest.raises(AssertionError, match="expected bool, got int"):
        assert_shape(1, bool)
    assert_shape(59.0, S.NUMBER)
    assert_shape(60, S.NUMBER)


def test_nullable_and_optional() -> None:
    shape = {"n": nullable(str), "o": optional(int)}
    assert_shape({"n": None}, shape)
    assert_shape({"n": "x", "o": 3}, shape)
    with pytest.raises(AssertionError, match=re.escape("$.o: expected int, got null")):
        assert_shape({"n": None, "o": None}, shape)
    with pytest.raises(AssertionError, match=re.escape("$.n: expected str, got null")):
        assert_shape({"n": None}, {"n": str})


def test_choices_pattern_and_list_bounds() -> None:
    with pytest.raises(AssertionError, match="not one of"):
        assert_shape("Closed", S.Field(str, choices=S.BULK_JOB_STATES))
    with pytest.raises(AssertionError, match="does not match"):
        assert_shape("not-an-id", S.Field(str, pattern=S.RECORD_ID_RE))
    with pytest.raises(AssertionError, match="at most 0 items"):
        assert_shape(["boom"], ListOf(str, max_len=0))
    with pytest.raises(AssertionError, match="at least 1 items"):
        assert_shape([], ListOf(str, min_len=1))


def test_map_of_names_key_in_path() -> None:
    assert_shape({"x": 1, "y": 2}, MapOf(int))
    with pytest.raises(AssertionError, match=re.escape("$.y: expected int, got str")):
        assert_shape({"x": 1, "y": "2"}, MapOf(int))
    with pytest.raises(
        AssertionError, match=re.escape("$.DailyApiRequests: missing key 'Remaining'")
    ):
        assert_shape({"DailyApiRequests": {"Max": 5}}, S.LIMITS)


def test_shape_errors_returns_message() -> None:
    assert S.shape_errors({"a": 1}, {"a": int}) is None
    assert S.shape_errors({}, {"a": int}) == "$: missing key 'a'"


def test_record_id_checksum() -> None:
    assert S.is_valid_record_id(ACCOUNT_ID)
    broken = ACCOUNT_ID[:15] + ("AAA" if ACCOUNT_ID[15:] != "AAA" else "AAB")
    assert not S.is_valid_record_id(broken)
    assert S.id_checksum("000000000000000") == "AAA"
    assert S.id_checksum("AAAAAAAAAAAAAAA") == "555"


def test_constants_are_usable_shapes() -> None:
    created = {"id": ACCOUNT_ID, "success": True, "errors": []}
    assert_shape(created, S.CREATE_SUCCESS)
    with pytest.raises(AssertionError, match="unexpected keys"):
        assert_shape({**created, "created": True}, S.CREATE_SUCCESS)
    assert_shape({**created, "created": False}, S.UPSERT_RESULT)
    assert_shape([{"message": "m", "errorCode": "NOT_FOUND"}], S.ERROR_LIST)

    url = f"/services/data/v59.0/sobjects/Contact/{CONTACT_ID}"
    page = {
        "totalSize": 3,
        "done": False,
        "nextRecordsUrl": "/services/data/v59.0/query/01gZz0000000000AAA-2000",
        "records": [
            {
                "attributes": {"type": "Contact", "url": url},
                "LastName": None,
                "Account": {
                    "attributes": {
                        "type": "Account",
                        "url": f"/services/data/v59.0/sobjects/Account/{ACCOUNT_ID}",
                    },
                    "Name": "n",
                },
            }
        ],
    }
    S.assert_query_page(page)
    assert_shape(page["records"][0]["Account"], S.PARENT_RECORD)
    with pytest.raises(AssertionError, match="needs nextRecordsUrl"):
        S.assert_query_page({**{k: v for k, v in page.items() if k != "nextRecordsUrl"}})

    job = {
        "id": _make_id("750", "Zz000000JoBxx"),
        "operation": "query",
        "object": "Account",
        "createdById": _make_id("005", "Zz000000UsEr1"),
        "createdDate": "2024-01-02T03:04:05.000+0000",
        "systemModstamp": "2024-01-02T03:04:05.000+0000",
        "state": "UploadComplete",
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": 59.0,
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    }
    assert_shape(job, S.BULK_QUERY_JOB_CREATED)
    with pytest.raises(
        AssertionError, match=re.escape("$.apiVersion: expected int | float, got str")
    ):
        assert_shape({**job, "apiVersion": "59.0"}, S.BULK_QUERY_JOB_CREATED)


def test_format_helpers() -> None:
    assert S.parse_limit_info("api-usage=7/15000") == (7, 15000)
    assert S.parse_limit_info("api-usage=7/15000; per-app-api-usage=1/10(appName=x)") == (7, 15000)
    with pytest.raises(AssertionError):
        S.parse_limit_info("7/15000")
    code, message, fields = S.split_sf_error(
        "REQUIRED_FIELD_MISSING:Required fields are missing: [Foo__c]:Foo__c --"
    )
    assert (code, message, fields) == (
        "REQUIRED_FIELD_MISSING",
        "Required fields are missing: [Foo__c]",
        ["Foo__c"],
    )
    assert S.message_matches(S.MSG_REQUIRED_FIELD_MISSING_RE, message)
    soql_error = (
        "\nSELECT Nope__c FROM Thing__c\n       ^\nERROR at Row:1:Column:8\n"
        "No such column 'Nope__c' on entity 'Thing__c'. Some advice follows."
    )
    m = S.message_matches(S.MSG_INVALID_FIELD_SOQL_RE, soql_error)
    assert m and m["field"] == "Nope__c" and m["column"] == "8"
    assert re.fullmatch(S.REST_DATETIME_RE, "2024-01-02T03:04:05.000+0000")
    assert not re.fullmatch(S.REST_DATETIME_RE, "2024-01-02T03:04:05Z")
