"""The timing model over HTTPS: REST calls take their latency, Collections calls their time per
record, Bulk jobs queue and then progress at their throughput, batch by batch, and none of the
waiting holds up other requests.

Only lower bounds are asserted tightly (a wait is never shorter than the model says); upper
bounds are loose, since the machine running the suite may be busy.
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
from sf_sandbox.org import Org
from sf_sandbox.server import SandboxServer
from sf_sandbox.timing import PROFILES

from tests.sandbox.test_bulk2_wire import info, open_job, set_state, table, upload

if TYPE_CHECKING:
    from tests.conftest import Wire

REALISTIC = {
    "profile": "realistic",
    "rest_call_ms": 150.0,
    "rest_record_ms": 5.0,
    "bulk_queue_ms": 2000.0,
    "bulk_ingest_rows_per_second": 2000.0,
    "bulk_query_queue_ms": 2000.0,
    "bulk_query_rows_per_second": 10000.0,
}


def set_timing(http: Wire, method: str = "PATCH", **fields: Any) -> dict[str, Any]:
    return http.admin(method, "timing", json=fields)


def elapsed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def contacts_csv(count: int) -> str:
    buffer = io.StringIO()
    pl.DataFrame({"LastName": [f"Row {n:06d}" for n in range(count)]}).write_csv(buffer)
    return buffer.getvalue()


def stored_count(http: Wire) -> int:
    return http.admin("GET", "records/Contact/count")["count"]


@dataclass
class Poll:
    at: float  # seconds since the job was closed
    state: str
    processed: int
    took: float  # how long the poll took to answer


def watch(
    http: Wire, job_id: str, kind: str = "ingest", since: float | None = None, timeout: float = 30
) -> list[Poll]:
    """Poll a job every 50 ms until it finishes; times count from `since` (default: now)."""
    started = time.perf_counter() if since is None else since
    polls: list[Poll] = []
    while time.perf_counter() - started < timeout:
        asked = time.perf_counter()
        job = info(http, job_id, kind)
        polls.append(
            Poll(
                asked - started,
                job["state"],
                job["numberRecordsProcessed"],
                time.perf_counter() - asked,
            )
        )
        if job["state"] in ("JobComplete", "Failed", "Aborted"):
            return polls
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {polls[-1]}")


def close_ingest(http: Wire, rows: int) -> str:
    job_id = open_job(http)
    assert upload(http, job_id, contacts_csv(rows)).status_code == 201
    assert set_state(http, job_id, "UploadComplete").status_code == 200
    return job_id


# -- profiles and the admin endpoint ---------------------------------------------------------------


def test_python_classes_answer_instantly_unless_told_otherwise(tmp_path):
    org = Org()
    assert org.timing == PROFILES["instant"]
    with SandboxServer(org, workdir=tmp_path) as server:
        assert server.org.timing.profile == "instant"


def test_the_endpoint_switches_profiles_and_changes_single_fields(http):
    assert set_timing(http, "GET")["profile"] == "instant"

    realistic = http.session.put(http.url("/__admin/timing"), json="realistic", timeout=30).json()
    patched = set_timing(http, bulk_queue_ms=250)
    replaced = set_timing(http, "PUT", rest_call_ms=20)
    instant = set_timing(http, "PUT", profile="instant")

    assert realistic == REALISTIC
    assert patched == {**REALISTIC, "bulk_queue_ms": 250.0}
    assert replaced == {**REALISTIC, "rest_call_ms": 20.0}
    assert instant["rest_call_ms"] == 0 and instant["bulk_ingest_rows_per_second"] is None


@pytest.mark.parametrize(
    "body", [{"rest_call_ms": -1}, {"profile": "glacial"}, {"bulk_queue_seconds": 1}, [1]]
)
def test_invalid_timing_is_refused_and_changes_nothing(http, body):
    before = set_timing(http, "GET")

    response = http.session.patch(http.url("/__admin/timing"), json=body, timeout=30)

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_TIMING"
    assert set_timing(http, "GET") == before


# -- REST ----------------------------------------------------------------------------------------


def test_every_rest_call_takes_the_base_latency(sf, http):
    set_timing(http, rest_call_ms=400)

    assert elapsed(sf.limits) >= 0.4
    assert elapsed(lambda: sf.query("SELECT Id FROM Contact")) >= 0.4
    assert elapsed(lambda: sf.Contact.create({"LastName": "Slow"})) >= 0.4


def test_waiting_calls_do_not_hold_each_other_up(http):
    set_timing(http, rest_call_ms=600)

    with ThreadPoolExecutor(max_workers=6) as pool:
        started = time.perf_counter()
        answers = list(pool.map(lambda _: http.call("GET", "limits"), range(6)))
        took = time.perf_counter() - started

    assert all(a.status_code == 200 for a in answers)
    assert 0.6 <= took < 2.4  # six calls one after another would take 3.6 s


def test_collections_take_longer_the_more_records_they_carry(sf, http):
    set_timing(http, rest_record_ms=10)

    def insert(count: int) -> float:
        records = [{"attributes": {"type": "Contact"}, "LastName": f"C{n}"} for n in range(count)]
        return elapsed(
            lambda: sf.restful("composite/sobjects", method="POST", json={"records": records})
        )

    assert insert(200) >= 2.0
    assert insert(10) < 1.5


# -- Bulk API 2.0 ingest -----------------------------------------------------------------------------


def test_an_ingest_job_queues_then_progresses_batch_by_batch(http):
    set_timing(http, bulk_queue_ms=600, bulk_ingest_rows_per_second=10_000)
    job_id = close_ingest(http, 25_000)
    started = time.perf_counter()  # the job entered the queue just before
    polls: list[Poll] = []
    counts_when_one_batch_done: list[int] = []
    while not polls or polls[-1].state not in ("JobComplete", "Failed"):
        job = info(http, job_id)
        polls.append(
            Poll(time.perf_counter() - started, job["state"], job["numberRecordsProcessed"], 0)
        )
        if job["state"] == "InProgress" and job["numberRecordsProcessed"] == 10_000:
            counts_when_one_batch_done.append(stored_count(http))
        assert polls[-1].at < 30, polls[-1]
        time.sleep(0.05)

    states = [p.state for p in polls]
    assert states[0] == "UploadComplete" and states[-1] == "JobComplete"
    assert min(p.at for p in polls if p.state == "InProgress") >= 0.55
    processed = [p.processed for p in polls]
    assert processed == sorted(processed) and processed[-1] == 25_000
    assert {p.processed for p in polls if p.state == "InProgress"} >= {10_000, 20_000}
    assert counts_when_one_batch_done and all(
        10_000 <= c < 25_000 for c in counts_when_one_batch_done
    )
    assert polls[-1].at >= 0.6 + 2.5  # the queue, then 25,000 rows at 10,000 a second
    assert stored_count(http) == 25_000


def test_queued_jobs_wait_side_by_side_and_polls_are_answered_meanwhile(http):
    set_timing(http, bulk_queue_ms=1500)
    started = time.perf_counter()
    job_ids = [close_ingest(http, 10) for _ in range(5)]

    polls = [poll for job_id in job_ids for poll in watch(http, job_id, since=started)]

    assert {p.state for p in polls} >= {"UploadComplete", "JobComplete"}
    assert max(p.took for p in polls) < 0.5
    assert min(p.at for p in polls if p.state == "JobComplete") >= 1.5
    assert max(p.at for p in polls) < 5  # one job after another would take 7.5 s


def test_ingest_jobs_in_progress_at_once_share_the_orgs_throughput(http):
    """The modelled rate is the org's: two jobs of 20,000 rows at 10,000 rows/s take turns a
    batch each, so the first ends after three batches' time and the second after four (each
    alone would take two); a client gains nothing from splitting its rows into more jobs."""
    set_timing(http, bulk_ingest_rows_per_second=10_000)
    started = time.perf_counter()
    first, second = close_ingest(http, 20_000), close_ingest(http, 20_000)

    with ThreadPoolExecutor(2) as pool:
        ends = [
            polls[-1].at
            for polls in pool.map(lambda j: watch(http, j, since=started), [first, second])
        ]

    assert ends[0] >= 3 * 1.0 and ends[1] >= 4 * 1.0, ends
    assert ends[0] < ends[1]
    assert stored_count(http) == 40_000


def test_an_abort_keeps_the_batches_written_and_leaves_the_rest_unprocessed(http):
    set_timing(http, bulk_ingest_rows_per_second=10_000)
    job_id = close_ingest(http, 30_000)
    while info(http, job_id)["numberRecordsProcessed"] < 10_000:
        time.sleep(0.02)

    aborted = set_state(http, job_id, "Aborted")
    time.sleep(1.5)  # long enough for another batch, had the job gone on
    final = info(http, job_id)

    assert aborted.json()["state"] == "Aborted" and final["state"] == "Aborted"
    done = final["numberRecordsProcessed"]
    assert done in (10_000, 20_000)
    assert stored_count(http) == done
    successful = table(http.call("GET", f"jobs/ingest/{job_id}/successfulResults").text)
    unprocessed = table(http.call("GET", f"jobs/ingest/{job_id}/unprocessedrecords").text)
    assert len(successful) - 1 == done
    assert len(unprocessed) - 1 == 30_000 - done
    written = {row[2] for row in successful[1:]}
    assert written.isdisjoint(row[0] for row in unprocessed[1:])


def test_an_instant_job_is_written_in_one_batch(http):
    job_id = close_ingest(http, 25_000)

    polls = watch(http, job_id)

    assert polls[-1].state == "JobComplete" and polls[-1].processed == 25_000
    assert all(p.processed in (0, 25_000) for p in polls)


def test_simple_salesforce_bulk_insert_waits_for_the_modelled_time(sf, http):
    set_timing(http, bulk_queue_ms=300, bulk_ingest_rows_per_second=5000)
    records = [{"LastName": f"Fan {n}"} for n in range(3000)]

    started = time.perf_counter()
    (result,) = sf.bulk2.Contact.insert(records=records, wait=0.1)
    took = time.perf_counter() - started

    assert result["numberRecordsProcessed"] == 3000 and result["numberRecordsFailed"] == 0
    assert took >= 0.3 + 0.6


# -- Bulk API 2.0 query ----------------------------------------------------------------------------


def test_a_query_job_queues_then_counts_its_records_out(http):
    http.admin("POST", "records/Contact/csv", data=contacts_csv(25_000).encode())
    set_timing(http, bulk_query_queue_ms=500, bulk_query_rows_per_second=10_000)
    started = time.perf_counter()
    job_id = http.call(
        "POST", "jobs/query", json={"operation": "query", "query": "SELECT Id FROM Contact"}
    ).json()["id"]

    early = http.call("GET", f"jobs/query/{job_id}/results")
    polls = watch(http, job_id, "query", since=started)

    assert early.status_code == 412
    assert min(p.at for p in polls if p.state != "UploadComplete") >= 0.45
    assert {p.processed for p in polls if p.state == "InProgress"} & {10_000, 20_000}
    assert polls[-1].state == "JobComplete" and polls[-1].processed == 25_000
    assert polls[-1].at >= 0.5 + 2.5
    page = http.call("GET", f"jobs/query/{job_id}/results")
    assert page.headers["Sforce-NumberOfRecords"] == "25000"
