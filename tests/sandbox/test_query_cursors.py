"""REST query paging through real cursors, with simple-salesforce over HTTPS: a query's result
is fixed at its first call, pages come from that snapshot, and locators run out the way a real
org's do (15 minutes idle, 10 per user, then `INVALID_QUERY_LOCATOR`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

if TYPE_CHECKING:
    from sf_sandbox.server import SandboxServer

    from tests.conftest import Wire

SOQL = "SELECT Id, LastName FROM Contact ORDER BY LastName"


def seed_contacts(http: Wire, count: int, prefix: str = "Fan") -> list[str]:
    outcome = http.admin(
        "POST", "records/Contact", json=[{"LastName": f"{prefix} {n:05d}"} for n in range(count)]
    )
    assert all(item["success"] for item in outcome)
    return [item["id"] for item in outcome]


def next_page(sf: Salesforce, page: dict[str, Any]) -> dict[str, Any]:
    return sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)


def locator_error(excinfo: pytest.ExceptionInfo[SalesforceMalformedRequest]) -> dict[str, Any]:
    assert excinfo.value.status == 400
    return excinfo.value.content[0]


def test_pages_cover_every_record_once_with_the_total_on_every_page(sf, http):
    seed_contacts(http, 4500)

    first = sf.query(SOQL)
    second = next_page(sf, first)
    third = next_page(sf, second)

    assert [len(p["records"]) for p in (first, second, third)] == [2000, 2000, 500]
    assert [p["totalSize"] for p in (first, second, third)] == [4500] * 3
    assert [p["done"] for p in (first, second, third)] == [False, False, True]
    assert "nextRecordsUrl" not in third
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    names = [r["LastName"] for p in (first, second, third) for r in p["records"]]
    assert names == [f"Fan {n:05d}" for n in range(4500)]


def test_later_pages_come_from_the_snapshot_of_the_first_call(sf, http):
    ids = seed_contacts(http, 3000)
    first = sf.query(SOQL)

    seed_contacts(http, 500, prefix="Aardvark")  # would sort before every seeded name
    sf.Contact.delete(ids[2500])
    sf.Contact.update(ids[2999], {"LastName": "Zz renamed"})
    second = next_page(sf, first)

    assert second["totalSize"] == 3000 and second["done"] is True
    assert [r["Id"] for r in second["records"]] == ids[2000:]
    assert second["records"][-1]["LastName"] == "Fan 02999"
    fresh = sf.query("SELECT COUNT() FROM Contact")
    assert fresh["totalSize"] == 3499


def test_a_page_can_be_asked_for_again(sf, http):
    seed_contacts(http, 2500)
    first = sf.query(SOQL)

    once = next_page(sf, first)
    again = next_page(sf, first)

    assert once == again and len(once["records"]) == 500


def test_a_result_that_fits_one_page_opens_no_cursor(sf, http, sandbox: SandboxServer):
    seed_contacts(http, 2000)

    answer = sf.query(SOQL)

    assert answer["done"] is True and "nextRecordsUrl" not in answer
    assert len(answer["records"]) == 2000
    assert len(sandbox.org.cursors) == 0


def test_batch_size_header_sets_the_page_size_within_salesforce_bounds(sandbox, http):
    seed_contacts(http, 1200)

    def page_sizes(batch_size: int) -> list[int]:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        page = http.call("GET", "query", params={"q": SOQL}, headers=headers).json()
        sizes = [len(page["records"])]
        while not page["done"]:
            page = http.call("GET", page["nextRecordsUrl"], headers=headers).json()
            sizes.append(len(page["records"]))
        return sizes

    assert page_sizes(500) == [500, 500, 200]
    assert page_sizes(50) == [200] * 6  # the minimum is 200
    assert page_sizes(5000) == [1200]  # the maximum is 2,000


def test_an_unknown_locator_is_invalid_query_locator(sf, http):
    seed_contacts(http, 2100)
    url = sf.query(SOQL)["nextRecordsUrl"]
    base = url.rsplit("/", 1)[0]

    for bad in (f"{base}/01g5g0000000001AAA-2000", url.replace("-2000", "-9000"), f"{base}/x"):
        with pytest.raises(SalesforceMalformedRequest) as excinfo:
            sf.query_more(bad, identifier_is_url=True)
        assert locator_error(excinfo) == {
            "message": "invalid query locator",
            "errorCode": "INVALID_QUERY_LOCATOR",
        }


def test_a_cursor_expires_after_its_idle_timeout(sf, http):
    http.admin("PATCH", "faults", json={"query_cursor_timeout_seconds": 1})
    seed_contacts(http, 2100)
    first = sf.query(SOQL)

    time.sleep(1.5)

    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        next_page(sf, first)
    assert locator_error(excinfo)["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_using_a_cursor_keeps_it_alive(sf, http):
    http.admin("PATCH", "faults", json={"query_cursor_timeout_seconds": 3})
    seed_contacts(http, 8500)
    page = sf.query(SOQL)

    # 4 s in all, never 3 s idle: the 2 s to spare cover serving and parsing a page on a
    # loaded machine (a cursor's idle time runs from one request's arrival to the next's).
    for _ in range(4):
        time.sleep(1.0)
        page = next_page(sf, page)

    assert page["done"] is True and len(page["records"]) == 500


def test_opening_one_cursor_too_many_releases_the_oldest(sf, http, sandbox: SandboxServer):
    http.admin("PATCH", "faults", json={"query_cursors_per_user": 2})
    seed_contacts(http, 2100)

    oldest, middle, newest = (sf.query(SOQL) for _ in range(3))

    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        next_page(sf, oldest)
    assert locator_error(excinfo)["errorCode"] == "INVALID_QUERY_LOCATOR"
    assert len(next_page(sf, middle)["records"]) == 100
    assert len(next_page(sf, newest)["records"]) == 100
    assert len(sandbox.org.cursors) == 2


def test_open_cursors_stay_bounded_at_ten_per_user(sf, http, sandbox: SandboxServer):
    seed_contacts(http, 2100)

    pages = [sf.query(SOQL) for _ in range(15)]

    assert len(sandbox.org.cursors) == 10
    assert len(next_page(sf, pages[-1])["records"]) == 100
    with pytest.raises(SalesforceMalformedRequest):
        next_page(sf, pages[4])


def test_query_all_pages_include_deleted_records_and_query_does_not(sf, http):
    ids = seed_contacts(http, 2500)
    for record_id in ids[:3]:
        sf.Contact.delete(record_id)

    live = list(sf.query_all_iter("SELECT Id, IsDeleted FROM Contact ORDER BY Id"))
    everything = list(
        sf.query_all_iter("SELECT Id, IsDeleted FROM Contact ORDER BY Id", include_deleted=True)
    )

    assert [r["Id"] for r in live] == ids[3:]
    assert [r["Id"] for r in everything] == ids
    assert [r["IsDeleted"] for r in everything[:4]] == [True, True, True, False]


def test_query_all_includes_archived_activities_and_query_does_not(sf, http):
    tasks = http.admin(
        "POST",
        "records/Task",
        json=[{"Subject": s, "Status": "Completed", "Priority": "Normal"} for s in ("old", "new")],
    )
    old_id = tasks[0]["id"]
    http.admin("PATCH", "records/Task", json=[{"Id": old_id, "IsArchived": True}])

    live = sf.query("SELECT Subject FROM Task ORDER BY Subject")["records"]
    everything = sf.query_all("SELECT Subject, IsArchived FROM Task ORDER BY Subject", True)

    assert [r["Subject"] for r in live] == ["new"]
    assert [(r["Subject"], r["IsArchived"]) for r in everything["records"]] == [
        ("new", False),
        ("old", True),
    ]
