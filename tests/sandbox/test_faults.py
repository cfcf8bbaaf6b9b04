"""Injected faults behave like the real org's limits and failures, as the client sees them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)


def test_daily_api_limit_refuses_with_request_limit_exceeded(sf, http):
    http.admin("PATCH", "faults", json={"daily_api_limit": 3})
    sf.Contact.create({"LastName": "one"})
    sf.Contact.create({"LastName": "two"})
    sf.Contact.create({"LastName": "three"})
    with pytest.raises(SalesforceRefusedRequest) as excinfo:
        sf.Contact.create({"LastName": "four"})
    assert excinfo.value.status == 403
    assert excinfo.value.content[0] == {
        "message": "TotalRequests Limit exceeded.",
        "errorCode": "REQUEST_LIMIT_EXCEEDED",
    }
    assert http.admin("GET", "records/Contact").__len__() == 3


def test_concurrent_request_limit(http):
    http.admin("PATCH", "faults", json={"concurrent_request_limit": 2, "latency_ms": 400})
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda _: http.call("GET", "limits"), range(5)))
    refused = [r for r in responses if r.status_code == 403]
    assert refused, "five simultaneous calls against a limit of two must refuse some"
    assert all(r.json()[0]["message"] == "ConcurrentPerOrgLongTxn Limit exceeded." for r in refused)
    assert sum(r.status_code == 200 for r in responses) >= 2


def test_session_expiry_mid_run(sf, http):
    http.admin("PATCH", "faults", json={"expire_sessions_after_calls": 2})
    sf.Contact.create({"LastName": "a"})
    sf.Contact.create({"LastName": "b"})
    with pytest.raises(SalesforceExpiredSession) as excinfo:
        sf.Contact.create({"LastName": "c"})
    assert excinfo.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_sessions_expired_through_admin(sf, http):
    sf.Contact.create({"LastName": "before"})
    http.admin("POST", "sessions/expire")
    with pytest.raises(SalesforceExpiredSession):
        sf.Contact.create({"LastName": "after"})


def test_server_unavailable_for_the_next_calls(sf, http):
    http.admin("PATCH", "faults", json={"server_unavailable_next": 1})
    with pytest.raises(SalesforceGeneralError) as excinfo:
        sf.Contact.create({"LastName": "unlucky"})
    assert excinfo.value.status == 503
    assert excinfo.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert sf.Contact.create({"LastName": "lucky"})["success"] is True


def test_server_unavailable_share_is_seeded(http):
    http.admin("PATCH", "faults", json={"server_unavailable_rate": 0.5, "seed": 7})
    first = [http.call("GET", "limits").status_code for _ in range(20)]
    http.admin("PATCH", "faults", json={"server_unavailable_rate": 0.5, "seed": 7})
    second = [http.call("GET", "limits").status_code for _ in range(20)]
    assert first == second and 503 in first and 200 in first


def test_unable_to_lock_row_on_a_share_of_records(sf, http):
    http.admin("PATCH", "faults", json={"lock_row_rate": 0.5, "seed": 3})
    records = [{"attributes": {"type": "Contact"}, "LastName": str(n)} for n in range(40)]
    result = sf.restful("composite/sobjects", method="POST", json={"records": records})
    locked = [r for r in result if not r["success"]]
    assert 5 < len(locked) < 35
    assert {r["errors"][0]["statusCode"] for r in locked} == {"UNABLE_TO_LOCK_ROW"}
    assert len(http.admin("GET", "records/Contact")) == 40 - len(locked)


def test_added_latency(http):
    http.admin("PATCH", "faults", json={"latency_ms": 300})
    started = time.perf_counter()
    http.call("GET", "limits")
    assert time.perf_counter() - started >= 0.3


def test_lost_response_after_the_write_happened(sf, http):
    http.admin(
        "PATCH",
        "faults",
        json={"lose_responses": {"path_contains": "/sobjects/Contact", "count": 1}},
    )
    with pytest.raises(requests.exceptions.RequestException):
        sf.Contact.create({"LastName": "Written but unanswered"})
    assert [r["LastName"] for r in http.admin("GET", "records/Contact")] == [
        "Written but unanswered"
    ]
    assert sf.Contact.create({"LastName": "answered"})["success"] is True


def test_invalid_fault_settings_are_refused(http):
    response = http.session.patch(http.url("/__admin/faults"), json={"latency_ms": -1})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FAULTS"
    unknown = http.session.put(http.url("/__admin/faults"), json={"no_such_fault": 1})
    assert unknown.status_code == 400


def test_lost_response_of_an_update_without_body(sf, http):
    record = sf.Contact.create({"LastName": "Before"})
    http.admin(
        "PATCH", "faults", json={"lose_responses": {"path_contains": record["id"], "count": 1}}
    )
    with pytest.raises(requests.exceptions.RequestException):
        sf.Contact.update(record["id"], {"LastName": "After"})
    assert sf.Contact.get(record["id"])["LastName"] == "After"
