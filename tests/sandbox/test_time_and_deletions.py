"""Time and deletions like a real org, over HTTPS: an administrator's patch sets system fields
without spending calls or stamping, getDeleted answers only for what the recycle bin still
holds, and emptying the bin removes records from queryAll and getDeleted alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

if TYPE_CHECKING:
    from tests.conftest import Wire


def seed(http: Wire, count: int) -> list[str]:
    outcome = http.admin(
        "POST", "records/Contact", json=[{"LastName": f"C{n}"} for n in range(count)]
    )
    return [item["id"] for item in outcome]


def days_ago(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def stored(http: Wire, include_deleted: bool = True) -> dict[str, dict[str, Any]]:
    rows = http.admin("GET", "records/Contact", params={"include_deleted": str(include_deleted)})
    return {row["Id"]: row for row in rows}


def patch(http: Wire, records: list[dict[str, Any]]) -> requests.Response:
    return http.session.patch(http.url("/__admin/records/Contact"), json=records, timeout=60)


def replication_error(call: Any) -> dict[str, Any]:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        call()
    assert excinfo.value.status == 400
    return excinfo.value.content[0]


def deleted_ids(sf: Salesforce, start: datetime) -> list[str]:
    answer = sf.Contact.deleted(start, datetime.now(UTC) + timedelta(minutes=1))
    return [d["id"] for d in answer["deletedRecords"]]


# -- the administrator's patch ------------------------------------------------------------------


def test_patch_sets_system_fields_without_spending_calls_or_stamping(sf, http):
    ids = seed(http, 2500)
    before = http.admin("GET", "calls")["total"]

    answer = http.admin(
        "PATCH",
        "records/Contact",
        json=[{"Id": i, "SystemModstamp": "2026-01-01T00:00:00.000Z"} for i in ids],
    )

    assert answer == {"updated": 2500}
    assert http.admin("GET", "calls")["total"] == before
    records = stored(http)
    assert {r["SystemModstamp"] for r in records.values()} == {"2026-01-01T00:00:00.000+0000"}
    assert {r["LastModifiedDate"] == r["CreatedDate"] for r in records.values()} == {True}


def test_patch_changes_only_the_fields_it_names_and_can_clear_one(sf, http):
    record = sf.Contact.create({"LastName": "Kept", "Email": "kept@x.test", "Title": "Dr"})["id"]
    modstamp = sf.Contact.get(record)["SystemModstamp"]

    http.admin(
        "PATCH",
        "records/Contact",
        json=[{"Id": record[:15], "CreatedDate": "2020-05-01T10:00:00+02:00", "Title": None}],
    )

    after = sf.Contact.get(record)
    assert (after["LastName"], after["Email"], after["Title"]) == ("Kept", "kept@x.test", None)
    assert after["CreatedDate"] == "2020-05-01T08:00:00.000+0000"
    assert after["SystemModstamp"] == modstamp


def test_patch_can_delete_a_record_and_age_the_deletion(sf, http):
    (record,) = seed(http, 1)

    http.admin(
        "PATCH",
        "records/Contact",
        json=[{"Id": record, "IsDeleted": True, "SystemModstamp": stamp(days_ago(3))}],
    )

    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0
    assert deleted_ids(sf, days_ago(4)) == [record]
    assert deleted_ids(sf, days_ago(2)) == []


@pytest.mark.parametrize(
    ("records", "fragment"),
    [
        ([{"Id": "FIRST", "Nope__c": 1}], "Contact has no field Nope__c"),
        ([{"LastName": "no id"}], "every record needs its Id"),
        (
            [{"Id": "0035g0000009999AAA", "LastName": "x"}],
            "Contact has no record 0035g0000009999AAA",
        ),
        ([{"Id": "not-an-id"}], "Contact record 0: 'not-an-id' is not an Id"),
        (
            [{"Id": "FIRST", "LastName": "ok"}, {"Id": "SECOND", "SystemModstamp": "yesterday"}],
            "Contact record 1 (Id SECOND): SystemModstamp: 'yesterday' is not a datetime",
        ),
        ([{"Id": "FIRST"}, {"Id": "FIRST"}], "records FIRST are listed twice"),
        ({"Id": "FIRST"}, "the body must be a JSON list"),
    ],
)
def test_a_bad_patch_names_the_record_and_field_and_changes_nothing(http, records, fragment):
    first, second = seed(http, 2)
    before = stored(http)
    body = [
        {k: {"FIRST": first, "SECOND": second}.get(v, v) if k == "Id" else v for k, v in r.items()}
        for r in (records if isinstance(records, list) else [records])
    ]
    if not isinstance(records, list):
        body = body[0]

    response = patch(http, body)

    assert response.status_code == 400
    (error,) = response.json()
    assert error["errorCode"] == "INVALID_PATCH"
    expected = fragment.replace("FIRST", first).replace("SECOND", second)
    assert expected in error["message"] and error["message"].endswith("nothing was changed")
    assert stored(http) == before


# -- getDeleted and the recycle bin ---------------------------------------------------------------


def test_get_deleted_refuses_a_start_older_than_the_retention_window(sf):
    error = replication_error(lambda: sf.Contact.deleted(days_ago(16), datetime.now(UTC)))

    assert error == {
        "message": "startDate cannot be more than 15 days ago",
        "errorCode": "INVALID_REPLICATION_DATE",
    }
    assert sf.Contact.deleted(days_ago(14), datetime.now(UTC))["deletedRecords"] == []


def test_the_retention_window_is_an_org_setting(sf, http):
    http.admin("PATCH", "faults", json={"deleted_retention_days": 2})

    error = replication_error(lambda: sf.Contact.deleted(days_ago(3), datetime.now(UTC)))
    answer = sf.Contact.deleted(days_ago(1), datetime.now(UTC))

    assert error["message"] == "startDate cannot be more than 2 days ago"
    earliest = datetime.strptime(answer["earliestDateAvailable"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert abs(earliest - days_ago(2)) < timedelta(minutes=1)


def test_get_updated_looks_back_thirty_days_at_most(sf):
    error = replication_error(lambda: sf.Contact.updated(days_ago(31), datetime.now(UTC)))

    assert error["errorCode"] == "INVALID_REPLICATION_DATE"
    assert error["message"] == "startDate cannot be more than 30 days ago"


def test_deletions_older_than_the_retention_leave_query_all_too(sf, http):
    recent, aged = seed(http, 2)
    sf.Contact.delete(recent)
    http.admin(
        "PATCH",
        "records/Contact",
        json=[{"Id": aged, "IsDeleted": True, "SystemModstamp": stamp(days_ago(20))}],
    )

    everything = sf.query_all("SELECT Id FROM Contact", include_deleted=True)["records"]

    assert [r["Id"] for r in everything] == [recent]


def test_emptying_the_recycle_bin_removes_deleted_records_for_good(sf, http):
    kept, gone = seed(http, 2)
    start = datetime.now(UTC) - timedelta(minutes=5)
    sf.Contact.delete(gone)
    assert deleted_ids(sf, start) == [gone]

    answer = http.admin("POST", "records/Contact/purge")

    assert answer == {"purged": 1}
    assert [r["Id"] for r in sf.query_all("SELECT Id FROM Contact", True)["records"]] == [kept]
    assert set(stored(http)) == {kept}
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert sf.Contact.deleted(later, later + timedelta(minutes=2))["deletedRecords"] == []


def test_get_deleted_from_before_the_bin_was_emptied_asks_for_a_full_read(sf, http):
    (gone,) = seed(http, 1)
    start = datetime.now(UTC) - timedelta(minutes=5)
    sf.Contact.delete(gone)
    http.admin("POST", "records/Contact/purge")

    error = replication_error(lambda: sf.Contact.deleted(start, datetime.now(UTC)))

    assert error["errorCode"] == "INVALID_REPLICATION_DATE"
    assert "the recycle bin was emptied since" in error["message"]


def test_emptying_an_empty_bin_purges_nothing_and_keeps_get_deleted_answering(sf, http):
    seed(http, 1)
    start = datetime.now(UTC) - timedelta(minutes=5)

    assert http.admin("POST", "records/Contact/purge") == {"purged": 0}
    assert deleted_ids(sf, start) == []
