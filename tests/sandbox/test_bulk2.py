"""Bulk API 2.0 through the real simple-salesforce client, against the sandbox org over HTTPS.

Every call passes `wait=0` so polling does not sleep. Results are matched to input rows by a
key column (External_Id__c or LastName), never by position: the org returns them in another
order than they were uploaded, as Salesforce does.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceOperationError

if TYPE_CHECKING:
    from tests.conftest import Wire


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def by(key: str, records: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {record[key]: record for record in records}


def contacts(http: Wire, *, include_deleted: bool = False) -> dict[str, dict[str, Any]]:
    """Contacts as the org stores them, keyed by LastName."""
    params = {"include_deleted": "true"} if include_deleted else {}
    return by("LastName", http.admin("GET", "records/Contact", params=params))


def seed(http: Wire, sobject: str, records: list[dict[str, Any]]) -> list[str]:
    """Records written straight into the org; their ids in input order."""
    outcome = http.admin("POST", f"records/{sobject}", json=records)
    assert all(item["success"] for item in outcome), outcome
    return [item["id"] for item in outcome]


def set_faults(http: Wire, **faults: Any) -> None:
    http.admin("PATCH", "faults", json=faults)


def ingest_jobs(http: Wire) -> list[dict[str, Any]]:
    return http.call("GET", "jobs/ingest").json()["records"]


def test_insert_records_writes_every_row_and_reports_the_job(sf: Salesforce, http: Wire) -> None:
    records = [{"LastName": name, "Title": "Fan"} for name in ("Ada", "Grace", "Linus")]

    (result,) = sf.bulk2.Contact.insert(records=records, wait=0)

    assert result["job_id"].startswith("750")
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (3, 0)
    assert result["numberRecordsTotal"] == 3
    stored = contacts(http)
    assert set(stored) == {"Ada", "Grace", "Linus"}
    assert {record["Title"] for record in stored.values()} == {"Fan"}


def test_insert_from_a_csv_file_reports_the_created_ids(
    sf: Salesforce, http: Wire, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("LastName,External_Id__c\nAda,C-1\nGrace,C-2\n", encoding="utf-8")

    (result,) = sf.bulk2.Contact.insert(csv_file=str(path), wait=0)

    successful = by(
        "External_Id__c", rows(sf.bulk2.Contact.get_successful_records(result["job_id"]))
    )
    stored = contacts(http)
    assert successful["C-1"]["sf__Id"] == stored["Ada"]["Id"]
    assert successful["C-2"]["sf__Id"] == stored["Grace"]["Id"]
    assert {row["sf__Created"] for row in successful.values()} == {"true"}


def test_upsert_by_external_id_tells_created_from_updated(sf: Salesforce, http: Wire) -> None:
    seed(http, "Contact", [{"LastName": "Ada", "External_Id__c": "C-1", "Title": "Fan"}])
    records = [
        {"LastName": "Ada", "External_Id__c": "C-1", "Title": "Member"},
        {"LastName": "Grace", "External_Id__c": "C-2", "Title": "Member"},
    ]

    (result,) = sf.bulk2.Contact.upsert(records=records, external_id_field="External_Id__c", wait=0)

    successful = by(
        "External_Id__c", rows(sf.bulk2.Contact.get_successful_records(result["job_id"]))
    )
    assert successful["C-1"]["sf__Created"] == "false"
    assert successful["C-2"]["sf__Created"] == "true"
    stored = contacts(http)
    assert successful["C-1"]["sf__Id"] == stored["Ada"]["Id"]
    assert {record["Title"] for record in stored.values()} == {"Member"}


def test_update_leaves_empty_cells_alone_and_clears_na_cells(sf: Salesforce, http: Wire) -> None:
    (ada_id,) = seed(http, "Contact", [{"LastName": "Ada", "Title": "Fan", "Phone": "555-0100"}])
    records = [{"Id": ada_id, "LastName": "Lovelace", "Title": "#N/A", "Phone": ""}]

    (result,) = sf.bulk2.Contact.update(records=records, wait=0)

    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (1, 0)
    stored = contacts(http)["Lovelace"]
    assert stored["Title"] is None
    assert stored["Phone"] == "555-0100"
    (echo,) = rows(sf.bulk2.Contact.get_successful_records(result["job_id"]))
    assert (echo["sf__Id"], echo["sf__Created"], echo["Title"]) == (ada_id, "false", "#N/A")


def test_delete_moves_records_to_the_bin_and_hard_delete_removes_them(
    sf: Salesforce, http: Wire
) -> None:
    soft_id, hard_id = seed(http, "Contact", [{"LastName": "Soft"}, {"LastName": "Hard"}])

    (deleted,) = sf.bulk2.Contact.delete(records=[{"Id": soft_id}], wait=0)
    (hard_deleted,) = sf.bulk2.Contact.hard_delete(records=[{"Id": hard_id}], wait=0)

    assert deleted["numberRecordsFailed"] == hard_deleted["numberRecordsFailed"] == 0
    assert contacts(http) == {}
    binned = contacts(http, include_deleted=True)
    assert set(binned) == {"Soft"}
    assert binned["Soft"]["IsDeleted"] is True


def test_a_parent_reference_column_links_records_by_the_parents_external_id(
    sf: Salesforce, http: Wire
) -> None:
    (account_id,) = seed(http, "Account", [{"Name": "Acme", "External_Id__c": "ACC-1"}])
    records = [
        {"LastName": "Ada", "Account.External_Id__c": "ACC-1"},
        {"LastName": "Grace", "Account.External_Id__c": "ACC-404"},
    ]

    (result,) = sf.bulk2.Contact.insert(records=records, wait=0)

    assert result["numberRecordsFailed"] == 1
    assert contacts(http)["Ada"]["AccountId"] == account_id
    (failure,) = rows(sf.bulk2.Contact.get_failed_records(result["job_id"]))
    assert failure["LastName"] == "Grace"
    assert failure["sf__Error"] == (
        "INVALID_FIELD:Foreign key external ID: ACC-404 not found for field External_Id__c "
        "in entity Account:--"
    )


def test_row_failures_carry_their_codes_while_good_rows_are_written(
    sf: Salesforce, http: Wire
) -> None:
    seed(http, "Contact", [{"LastName": "Existing", "External_Id__c": "TAKEN"}])
    records = [
        {"External_Id__c": "GOOD", "LastName": "Good", "Email": "good@example.com"},
        {"External_Id__c": "NO-NAME", "Title": "Fan"},
        {"External_Id__c": "LONG", "LastName": "Long", "FirstName": "x" * 41},
        {"External_Id__c": "EMAIL", "LastName": "Email", "Email": "not-an-address"},
        {"External_Id__c": "DATE", "LastName": "Date", "Birthdate": "31/12/1990"},
        {"External_Id__c": "TIER", "LastName": "Tier", "Fan_Tier__c": "Diamond"},
        {"External_Id__c": "TAKEN", "LastName": "Twin"},
    ]

    (result,) = sf.bulk2.Contact.insert(records=records, wait=0)

    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (7, 6)
    failed = by("External_Id__c", rows(sf.bulk2.Contact.get_failed_records(result["job_id"])))
    codes = {key: row["sf__Error"].split(":", 1)[0] for key, row in failed.items()}
    assert codes == {
        "NO-NAME": "REQUIRED_FIELD_MISSING",
        "LONG": "STRING_TOO_LONG",
        "EMAIL": "INVALID_EMAIL_ADDRESS",
        "DATE": "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "TIER": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "TAKEN": "DUPLICATE_VALUE",
    }
    assert failed["NO-NAME"]["sf__Error"] == (
        "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    )
    assert {row["sf__Id"] for row in failed.values()} == {""}
    assert set(contacts(http)) == {"Existing", "Good"}


def test_a_bad_header_fails_the_job_and_leaves_every_row_unprocessed(
    sf: Salesforce, http: Wire
) -> None:
    records = [{"LastName": "Ada", "Foo__c": "x"}, {"LastName": "Grace", "Foo__c": "y"}]

    with pytest.raises(
        SalesforceOperationError, match="InvalidBatch : Field name not found : Foo__c"
    ):
        sf.bulk2.Contact.insert(records=records, wait=0)

    (job,) = ingest_jobs(http)
    assert job["state"] == "Failed"
    unprocessed = rows(sf.bulk2.Contact.get_unprocessed_records(job["id"]))
    assert {row["LastName"] for row in unprocessed} == {"Ada", "Grace"}
    assert rows(sf.bulk2.Contact.get_successful_records(job["id"])) == []
    assert rows(sf.bulk2.Contact.get_failed_records(job["id"])) == []
    assert contacts(http) == {}


def test_the_fail_bulk_jobs_fault_fails_every_job_and_writes_nothing(
    sf: Salesforce, http: Wire
) -> None:
    set_faults(http, fail_bulk_jobs="InternalServerError : the pod is being restarted")

    with pytest.raises(SalesforceOperationError, match="the pod is being restarted"):
        sf.bulk2.Contact.insert(records=[{"LastName": "Ada"}], wait=0)

    (job,) = ingest_jobs(http)
    assert contacts(http) == {}
    assert [
        row["LastName"] for row in rows(sf.bulk2.Contact.get_unprocessed_records(job["id"]))
    ] == ["Ada"]


def test_the_lock_row_fault_fails_a_share_of_rows_with_unable_to_lock_row(
    sf: Salesforce, http: Wire
) -> None:
    set_faults(http, lock_row_rate=0.5, seed=7)
    records = [{"LastName": f"Fan {n:02d}"} for n in range(40)]

    (result,) = sf.bulk2.Contact.insert(records=records, wait=0)

    failed = rows(sf.bulk2.Contact.get_failed_records(result["job_id"]))
    assert 0 < len(failed) < 40
    assert result["numberRecordsFailed"] == len(failed)
    assert all(row["sf__Error"].startswith("UNABLE_TO_LOCK_ROW:") for row in failed)
    assert all(row["sf__Error"].endswith(":--") for row in failed)
    written = set(contacts(http))
    assert written.isdisjoint(row["LastName"] for row in failed)
    assert len(written) == 40 - len(failed)


def test_a_dropped_upload_breaks_the_connection_and_the_client_aborts_the_job(
    sf: Salesforce, http: Wire
) -> None:
    set_faults(http, drop_upload_after_bytes=200)
    records = [{"LastName": f"Fan {n:03d}", "Title": "Season ticket holder"} for n in range(50)]

    with pytest.raises(requests.exceptions.RequestException):
        sf.bulk2.Contact.insert(records=records, wait=0)

    (job,) = ingest_jobs(http)
    assert job["state"] == "Aborted"
    assert contacts(http) == {}


def test_query_pages_follow_max_records(sf: Salesforce, http: Wire) -> None:
    seed(http, "Contact", [{"LastName": f"Fan {n}"} for n in range(5)])

    pages = list(sf.bulk2.Contact.query("SELECT Id, LastName FROM Contact", max_records=2, wait=0))

    assert [len(rows(page)) for page in pages] == [2, 2, 1]
    assert all(page.startswith('"Id","LastName"\n') for page in pages)
    names = [row["LastName"] for page in pages for row in rows(page)]
    assert sorted(names) == [f"Fan {n}" for n in range(5)]


def test_query_all_also_returns_deleted_records(sf: Salesforce, http: Wire) -> None:
    ids = seed(http, "Contact", [{"LastName": "Kept"}, {"LastName": "Binned"}])
    sf.bulk2.Contact.delete(records=[{"Id": ids[1]}], wait=0)
    soql = "SELECT LastName, IsDeleted FROM Contact"

    live = [row for page in sf.bulk2.Contact.query(soql, wait=0) for row in rows(page)]
    every = [row for page in sf.bulk2.Contact.query_all(soql, wait=0) for row in rows(page)]

    assert live == [{"LastName": "Kept", "IsDeleted": "false"}]
    assert by("LastName", every)["Binned"]["IsDeleted"] == "true"
    assert len(every) == 2
