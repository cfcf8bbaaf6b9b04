"""Bulk API 2.0 on the wire: status codes, JSON and CSV shapes, headers and state rules, checked
with plain HTTPS calls so that nothing a client library smooths over goes unnoticed."""

from __future__ import annotations

import csv
import gzip
import io
import re
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests
from sf_sandbox import bulk

if TYPE_CHECKING:
    from tests.conftest import Wire

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
SUMMARY_KEYS = [
    "id",
    "operation",
    "object",
    "createdById",
    "createdDate",
    "systemModstamp",
    "state",
    "concurrencyMode",
    "contentType",
    "apiVersion",
]
INGEST_INFO_KEYS = [
    *SUMMARY_KEYS,
    "jobType",
    "contentUrl",
    "lineEnding",
    "columnDelimiter",
    "numberRecordsProcessed",
    "numberRecordsFailed",
    "retries",
    "totalProcessingTime",
    "apiActiveProcessingTime",
    "apexProcessingTime",
]


# -- helpers ----------------------------------------------------------------------------------


def create(http: Wire, **body: Any) -> requests.Response:
    return http.call(
        "POST", "jobs/ingest", json={"object": "Contact", "operation": "insert", **body}
    )


def open_job(http: Wire, **body: Any) -> str:
    response = create(http, **body)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def upload(
    http: Wire, job_id: str, data: str | bytes, content_type: str = "text/csv"
) -> requests.Response:
    body = data.encode("utf-8") if isinstance(data, str) else data
    return http.call(
        "PUT", f"jobs/ingest/{job_id}/batches", data=body, headers={"Content-Type": content_type}
    )


def set_state(http: Wire, job_id: str, state: str, kind: str = "ingest") -> requests.Response:
    return http.call("PATCH", f"jobs/{kind}/{job_id}", json={"state": state})


def info(http: Wire, job_id: str, kind: str = "ingest") -> dict[str, Any]:
    return http.call("GET", f"jobs/{kind}/{job_id}").json()


def finished(http: Wire, job_id: str, kind: str = "ingest") -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        current = info(http, job_id, kind)
        if current["state"] in ("JobComplete", "Failed", "Aborted"):
            return current
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def run_ingest(http: Wire, data: str | bytes, **body: Any) -> dict[str, Any]:
    """Create, upload, close and wait: the job info once it is done."""
    job_id = open_job(http, **body)
    assert upload(http, job_id, data).status_code == 201
    assert set_state(http, job_id, "UploadComplete").status_code == 200
    return finished(http, job_id)


def results(http: Wire, job_id: str, segment: str) -> requests.Response:
    return http.call("GET", f"jobs/ingest/{job_id}/{segment}")


def table(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def error_of(response: requests.Response) -> tuple[int, str, str]:
    (item,) = response.json()
    return response.status_code, item["errorCode"], item["message"]


def run_query(http: Wire, soql: str, operation: str = "query") -> str:
    response = http.call("POST", "jobs/query", json={"operation": operation, "query": soql})
    assert response.status_code == 200, response.text
    job_id = response.json()["id"]
    assert finished(http, job_id, "query")["state"] == "JobComplete"
    return job_id


def seed(http: Wire, sobject: str, records: list[dict[str, Any]]) -> list[str]:
    outcome = http.admin("POST", f"records/{sobject}", json=records)
    assert all(item["success"] for item in outcome), outcome
    return [item["id"] for item in outcome]


def stored_contacts(http: Wire) -> list[dict[str, Any]]:
    return http.admin("GET", "records/Contact")


# -- creating ingest jobs -----------------------------------------------------------------------


def test_create_answers_200_with_the_open_job(http: Wire) -> None:
    response = create(http, externalIdFieldName="External_Id__c", operation="upsert")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    job = response.json()
    assert list(job) == [
        *SUMMARY_KEYS[:7],
        "externalIdFieldName",
        *SUMMARY_KEYS[7:],
        "contentUrl",
        "lineEnding",
        "columnDelimiter",
    ]
    assert re.fullmatch(r"750[A-Za-z0-9]{15}", job["id"])
    assert job["contentUrl"] == f"services/data/v59.0/jobs/ingest/{job['id']}/batches"
    assert (job["state"], job["operation"], job["object"]) == ("Open", "upsert", "Contact")
    assert job["apiVersion"] == 59.0 and isinstance(job["apiVersion"], float)
    assert (job["concurrencyMode"], job["contentType"]) == ("Parallel", "CSV")
    assert (job["lineEnding"], job["columnDelimiter"]) == ("LF", "COMMA")
    assert job["createdById"].startswith("005")
    assert TIMESTAMP.match(job["createdDate"]) and TIMESTAMP.match(job["systemModstamp"])


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"object": "Foo__c"}, "INVALIDJOB", "InvalidJob : Unable to find object: Foo__c"),
        (
            {"operation": "upsert"},
            "INVALIDJOB",
            "InvalidJob : External ID was blank for Contact. "
            "An External ID must be specified for upsert.",
        ),
        (
            {"operation": "upsert", "externalIdFieldName": "LastName"},
            "INVALIDJOB",
            "InvalidJob : Field name provided, LastName does not match an External ID for Contact",
        ),
        (
            {"operation": "merge"},
            "API_ERROR",
            "Invalid value: 'merge' supplied for property: 'operation'",
        ),
        (
            {"lineEnding": "CR"},
            "API_ERROR",
            "Invalid value: 'CR' supplied for property: 'lineEnding'",
        ),
        (
            {"contentType": "JSON"},
            "API_ERROR",
            "Invalid value: 'JSON' supplied for property: 'contentType'",
        ),
    ],
)
def test_create_refuses_an_invalid_job(
    http: Wire, body: dict[str, str], code: str, message: str
) -> None:
    assert error_of(create(http, **body)) == (400, code, message)


def test_create_refuses_malformed_json(http: Wire) -> None:
    response = http.call(
        "POST",
        "jobs/ingest",
        data=b'{"object": "Contact",',
        headers={"Content-Type": "application/json"},
    )

    status, code, _ = error_of(response)
    assert (status, code) == (400, "JSON_PARSER_ERROR")


def test_create_refuses_a_body_that_is_not_json(http: Wire) -> None:
    response = http.call(
        "POST", "jobs/ingest", data=b"object=Contact", headers={"Content-Type": "text/plain"}
    )

    assert error_of(response)[:2] == (415, "UNSUPPORTED_MEDIA_TYPE")


# -- uploading ------------------------------------------------------------------------------------


def test_upload_answers_201_and_takes_only_one_upload_per_job(http: Wire) -> None:
    job_id = open_job(http)

    first = upload(http, job_id, "LastName\nAda\n")
    second = upload(http, job_id, "LastName\nGrace\n")

    assert (first.status_code, first.content) == (201, b"")
    assert error_of(second) == (
        400,
        "BULK_API_ERROR",
        f"Found multipe contents for job: <{job_id[:15]}>, please 'Close' / 'Abort' / 'Delete' "
        "the current Job then create a new Job and make sure you only do 'PUT' once on a given Job.",
    )


def test_upload_refuses_a_body_that_is_not_csv(http: Wire) -> None:
    job_id = open_job(http)

    refused = upload(http, job_id, '[{"LastName": "Ada"}]', content_type="application/json")

    assert error_of(refused)[:2] == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert upload(http, job_id, "LastName\nAda\n").status_code == 201


def test_upload_over_the_size_limit_is_refused(http: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MAX_UPLOAD_BYTES", 1024)
    job_id = open_job(http)

    refused = upload(http, job_id, "LastName\n" + "Fan\n" * 300)

    assert error_of(refused) == (
        400,
        "BULK_API_ERROR",
        "Exceeded max size limit of 1024 bytes for the job data: 1209 bytes were uploaded",
    )
    assert info(http, job_id)["state"] == "Open"
    assert upload(http, job_id, "LastName\nFan\n").status_code == 201


def test_upload_is_refused_once_the_job_is_closed(http: Wire) -> None:
    job_id = open_job(http)
    set_state(http, job_id, "UploadComplete")

    status, code, _ = error_of(upload(http, job_id, "LastName\nAda\n"))

    assert (status, code) == (400, "INVALIDJOBSTATE")


# -- states -----------------------------------------------------------------------------------


def test_closing_answers_at_once_and_polls_see_in_progress_then_job_complete(
    http: Wire,
) -> None:
    http.admin("PATCH", "timing", json={"bulk_ingest_rows_per_second": 2})  # 0.5 s a row
    job_id = open_job(http)
    upload(http, job_id, "LastName\nAda\n")

    closed = set_state(http, job_id, "UploadComplete")
    polled = info(http, job_id)["state"]

    assert closed.status_code == 200
    assert list(closed.json()) == SUMMARY_KEYS
    assert closed.json()["state"] == "UploadComplete"
    assert polled in ("UploadComplete", "InProgress")
    time.sleep(0.2)
    assert info(http, job_id)["state"] == "InProgress"
    assert finished(http, job_id)["state"] == "JobComplete"


def test_illegal_state_changes_are_refused(http: Wire) -> None:
    done = run_ingest(http, "LastName\nAda\n")["id"]
    job_id = open_job(http)

    assert error_of(set_state(http, done, "UploadComplete")) == (
        400,
        "INVALIDJOBSTATE",
        "InvalidJobState : Closing already Completed Job not allowed",
    )
    assert error_of(set_state(http, done, "Aborted")) == (
        400,
        "INVALIDJOBSTATE",
        "InvalidJobState : Aborting already Completed Job not allowed",
    )
    assert error_of(set_state(http, job_id, "JobComplete"))[:2] == (400, "API_ERROR")
    assert error_of(http.call("DELETE", f"jobs/ingest/{job_id}"))[:2] == (400, "INVALIDJOBSTATE")


def test_an_aborted_job_can_be_deleted_and_is_gone_after(http: Wire) -> None:
    job_id = open_job(http)

    aborted = set_state(http, job_id, "Aborted")
    deleted = http.call("DELETE", f"jobs/ingest/{job_id}")

    assert (aborted.status_code, aborted.json()["state"]) == (200, "Aborted")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert error_of(http.call("GET", f"jobs/ingest/{job_id}")) == (
        404,
        "NOT_FOUND",
        "The requested resource does not exist",
    )


def test_a_job_closed_without_data_completes_with_no_records(http: Wire) -> None:
    job_id = open_job(http)

    set_state(http, job_id, "UploadComplete")
    job = finished(http, job_id)

    assert (job["state"], job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (
        "JobComplete",
        0,
        0,
    )
    assert results(http, job_id, "successfulResults").text == '"sf__Id","sf__Created"\n'


def test_a_finished_job_reports_every_key_with_its_type(http: Wire) -> None:
    job = run_ingest(http, "LastName,Email\nAda,ada@example.com\nGrace,not-an-address\n")

    assert list(job) == INGEST_INFO_KEYS
    assert job["jobType"] == "V2Ingest"
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (2, 1)
    counters = INGEST_INFO_KEYS[-6:]
    assert all(type(job[key]) is int for key in counters)


def test_the_job_list_holds_every_ingest_job(http: Wire) -> None:
    first, second = open_job(http), open_job(http, operation="delete")

    listing = http.call("GET", "jobs/ingest").json()

    assert (listing["done"], listing["nextRecordsUrl"]) == (True, None)
    assert [job["id"] for job in listing["records"]] == [first, second]
    assert listing["records"][1]["operation"] == "delete"
    assert listing["records"][0]["jobType"] == "V2Ingest"


# -- results ------------------------------------------------------------------------------------


def test_successful_results_quote_every_value_and_echo_the_cells_as_sent(http: Wire) -> None:
    job = run_ingest(http, "LastName,Title,Phone\nAda,#N/A,\n")
    (stored,) = stored_contacts(http)

    response = results(http, job["id"], "successfulResults")

    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.text == (
        '"sf__Id","sf__Created","LastName","Title","Phone"\n'
        f'"{stored["Id"]}","true","Ada","#N/A",""\n'
    )


def test_failed_results_carry_sf_error_with_and_without_fields(http: Wire) -> None:
    data = "LastName,Account.External_Id__c\n,\nGrace,NOPE\n"

    job = run_ingest(http, data)
    rows = table(results(http, job["id"], "failedResults").text)

    assert rows[0] == ["sf__Id", "sf__Error", "LastName", "Account.External_Id__c"]
    assert sorted(rows[1:]) == [
        [
            "",
            "INVALID_FIELD:Foreign key external ID: NOPE not found for field External_Id__c in "
            "entity Account:--",
            "Grace",
            "NOPE",
        ],
        ["", "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --", "", ""],
    ]


def test_results_come_back_in_another_order_than_uploaded(http: Wire) -> None:
    names = [f"Fan {n}" for n in range(6)]
    job = run_ingest(http, "LastName\n" + "\n".join(names) + "\n")

    returned = [row[2] for row in table(results(http, job["id"], "successfulResults").text)[1:]]

    assert sorted(returned) == names
    assert returned != names


def test_result_segments_match_any_case_with_or_without_a_trailing_slash(http: Wire) -> None:
    job_id = run_ingest(http, "LastName\nAda\n")["id"]

    for segment in (
        "unprocessedrecords",
        "unprocessedRecords/",
        "SUCCESSFULRESULTS",
        "failedResults/",
    ):
        assert results(http, job_id, segment).status_code == 200, segment
    assert error_of(results(http, job_id, "allResults"))[:2] == (404, "NOT_FOUND")


def test_results_use_the_jobs_delimiter_and_line_ending(http: Wire) -> None:
    job = run_ingest(
        http, "LastName|Title\r\nAda|Fan\r\n", columnDelimiter="PIPE", lineEnding="CRLF"
    )

    text = results(http, job["id"], "successfulResults").text

    assert job["state"] == "JobComplete"
    assert text.startswith('"sf__Id"|"sf__Created"|"LastName"|"Title"\r\n')
    assert text.endswith('|"true"|"Ada"|"Fan"\r\n')


def test_results_are_gzipped_for_clients_that_accept_it(http: Wire) -> None:
    job_id = run_ingest(http, "LastName\nAda\n")["id"]

    response = http.call(
        "GET",
        f"jobs/ingest/{job_id}/successfulResults",
        headers={"Accept-Encoding": "gzip"},
        stream=True,
    )

    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.raw.read()).decode().endswith('"true","Ada"\n')


# -- job-level failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "body", "message"),
    [
        (
            "LastName,Foo__c,Bar__c\nAda,x,y\n",
            {},
            "InvalidBatch : Field name not found : Foo__c",
        ),
        (
            "LastName,Title,LastName\nAda,Fan,Ada\n",
            {},
            "InvalidBatch : Duplicate field name: LastName",
        ),
        (
            "Id,LastName\n0035g0000000001AAA,Ada\n",
            {"operation": "delete"},
            "InvalidBatch : The 'delete' batch must contain only 'Id' field",
        ),
    ],
    ids=["unknown-field", "duplicate-field", "delete-with-more-than-id"],
)
def test_a_header_problem_fails_the_job_and_writes_nothing(
    http: Wire, data: str, body: dict[str, str], message: str
) -> None:
    job = run_ingest(http, data, **body)

    assert (job["state"], job["errorMessage"]) == ("Failed", message)
    assert job["numberRecordsProcessed"] == 0
    assert len(table(results(http, job["id"], "unprocessedrecords").text)) == 2
    assert stored_contacts(http) == []


@pytest.mark.parametrize(
    ("data", "body", "message"),
    [
        (
            'LastName,Title\nAda,"Fan\nGrace,Member\n',
            {},
            "ClientInputError : LineEnding is invalid on user data. "
            "Current LineEnding setting is LF",
        ),
        (
            "LastName,Title\r\nAda,Fan\r\n",
            {},
            "ClientInputError : LineEnding is invalid on user data. "
            "Current LineEnding setting is LF",
        ),
        (
            "LastName,Title\nAda,Fan\n",
            {"lineEnding": "CRLF"},
            "ClientInputError : LineEnding is invalid on user data. "
            "Current LineEnding setting is CRLF",
        ),
        (
            b"LastName\nM\xfcller\n",
            {},
            "ClientInputError : The uploaded data is not valid UTF-8: invalid byte 0xFC at "
            "offset 10. Bulk API 2.0 accepts UTF-8 only",
        ),
    ],
    ids=["unbalanced-quote", "crlf-in-lf-job", "lf-in-crlf-job", "latin-1"],
)
def test_malformed_csv_fails_the_job(
    http: Wire, data: str | bytes, body: dict[str, str], message: str
) -> None:
    job = run_ingest(http, data, **body)

    assert (job["state"], job["errorMessage"]) == ("Failed", message)
    assert stored_contacts(http) == []


# -- query jobs -------------------------------------------------------------------------------


def test_a_query_job_starts_as_upload_complete(http: Wire) -> None:
    response = http.call(
        "POST", "jobs/query", json={"operation": "query", "query": "SELECT Id FROM Contact"}
    )

    job = response.json()
    assert response.status_code == 200
    assert list(job) == [*SUMMARY_KEYS, "lineEnding", "columnDelimiter"]
    assert (job["state"], job["object"], job["operation"]) == ("UploadComplete", "Contact", "query")
    full = finished(http, job["id"], "query")
    assert (full["jobType"], full["numberRecordsProcessed"]) == ("V2Query", 0)


def test_query_results_before_completion_are_412(http: Wire) -> None:
    http.admin("PATCH", "timing", json={"bulk_query_queue_ms": 500})
    job_id = http.call(
        "POST", "jobs/query", json={"operation": "query", "query": "SELECT Id FROM Contact"}
    ).json()["id"]

    early = http.call("GET", f"jobs/query/{job_id}/results")

    assert error_of(early)[:2] == (412, "JOB_NOT_COMPLETE")


def test_query_results_come_in_pages_with_locator_and_record_count(http: Wire) -> None:
    seed(http, "Contact", [{"LastName": f"Fan {n}"} for n in range(5)])
    job_id = run_query(http, "SELECT LastName FROM Contact ORDER BY LastName")
    pages, locator = [], None

    while locator != "null":
        params = {"maxRecords": 2, **({"locator": locator} if locator else {})}
        page = http.call("GET", f"jobs/query/{job_id}/results", params=params)
        locator = page.headers["Sforce-Locator"]
        pages.append((int(page.headers["Sforce-NumberOfRecords"]), table(page.text)))

    assert [count for count, _ in pages] == [2, 2, 1]
    assert all(rows[0] == ["LastName"] for _, rows in pages)
    assert [row[0] for _, rows in pages for row in rows[1:]] == [f"Fan {n}" for n in range(5)]


def test_query_results_render_values_the_way_bulk_csv_does(http: Wire) -> None:
    (account_id,) = seed(http, "Account", [{"Name": "Acme"}])
    contact = {
        "LastName": "Ada",
        "Birthdate": "1990-05-01",
        "HasOptedOutOfEmail": "true",
        "Last_Purchase__c": "2024-01-01T10:00:00.000Z",
        "AccountId": account_id,
    }
    seed(http, "Contact", [contact])
    soql = (
        "SELECT LastName, Birthdate, HasOptedOutOfEmail, Last_Purchase__c, Phone, Account.Name "
        "FROM Contact"
    )

    text = http.call("GET", f"jobs/query/{run_query(http, soql)}/results").text

    assert text == (
        '"LastName","Birthdate","HasOptedOutOfEmail","Last_Purchase__c","Phone","Account.Name"\n'
        '"Ada","1990-05-01","true","2024-01-01T10:00:00.000Z","","Acme"\n'
    )


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT COUNT() FROM Contact",
        "SELECT LeadSource, COUNT(Id) FROM Contact GROUP BY LeadSource",
        "SELECT Id FROM Contact ORDER BY Id LIMIT 10 OFFSET 5",
        "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
    ],
    ids=["count", "group-by", "offset", "subquery"],
)
def test_a_query_job_refuses_what_bulk_cannot_run(http: Wire, soql: str) -> None:
    response = http.call("POST", "jobs/query", json={"operation": "query", "query": soql})

    assert error_of(response)[:2] == (400, "FEATURENOTENABLED")


def test_a_query_job_refuses_malformed_soql_with_the_query_error(http: Wire) -> None:
    response = http.call(
        "POST", "jobs/query", json={"operation": "query", "query": "SELEKT Id FROM Contact"}
    )

    assert error_of(response)[:2] == (400, "MALFORMED_QUERY")


def test_a_finished_query_job_cannot_be_aborted_but_can_be_deleted(http: Wire) -> None:
    job_id = run_query(http, "SELECT Id FROM Contact")

    aborted = set_state(http, job_id, "Aborted", kind="query")
    deleted = http.call("DELETE", f"jobs/query/{job_id}")

    assert error_of(aborted)[:2] == (400, "INVALIDJOBSTATE")
    assert deleted.status_code == 204
    assert http.call("GET", f"jobs/query/{job_id}").status_code == 404
