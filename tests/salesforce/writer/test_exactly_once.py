"""A write killed between Salesforce's answer and the ledger commit is finished by the next run
exactly once: every row in the org once, and every row's outcome in the ledger.

The first write runs in its own process and dies (`os._exit(137)`, like a SIGKILL) at a named
point; the second runs in this process against the same staging file and sandbox org. Inserts
match on Email, which is not unique, so a blind resend would show up as duplicate records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sf_assets.salesforce.writer.crash import CRASH_ENV, EXIT_CODE

from sf_assets.state.store import StagingStore
from tests.salesforce.writer.test_writer import (
    CONTACT_FIELDS,
    FAST,
    contacts,
    emails,
    mapped,
    spec,
    write,
)

BATCH = "20261122-0930"
CHILD = """
import json, logging, sys
import polars as pl
from resources.salesforce import SalesforceResource
from sf_assets.specs import SyncSpec
from sf_assets.state.store import StagingStore
from sf_assets.salesforce.writer import WriteJob, WriteOptions, write_batch

args = json.loads(open(sys.argv[1]).read())
info = args["info"]
write_batch(
    WriteJob(
        spec=SyncSpec.model_validate(args["spec"]),
        batch=args["batch"],
        mapped=pl.read_parquet(args["frame"]),
        salesforce=SalesforceResource(
            auth_flow="password", login_url=info["login_url"], username=info["username"],
            password=info["password"], security_token=info["security_token"],
            ca_bundle=info["ca_bundle"], api_version=info["api_version"],
        ),
        staging=StagingStore(path=args["staging"]),
        run_id="crashed-run",
        log=logging.getLogger("child"),
        object_fields=args["object_fields"],
        options=WriteOptions(**args["options"]),
    )
)
print("the write finished without crashing")
"""


@pytest.fixture
def staging(tmp_path: Path) -> StagingStore:
    return StagingStore(path=str(tmp_path / "staging.duckdb"))


def crash_while_writing(
    tmp_path: Path,
    info: dict[str, Any],
    staging: StagingStore,
    sync: Any,
    frame: pl.DataFrame,
    point: str,
) -> None:
    """Run the write in a child process that dies at `point`."""
    frame_file = tmp_path / "mapped.parquet"
    frame.write_parquet(frame_file)
    args = {
        "info": info,
        "spec": sync.model_dump(),
        "batch": BATCH,
        "frame": str(frame_file),
        "staging": staging.path,
        "object_fields": CONTACT_FIELDS,
        "options": FAST.__dict__,
    }
    args_file = tmp_path / "child-args.json"
    args_file.write_text(json.dumps(args))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(args_file)],
        env={**os.environ, CRASH_ENV: point},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == EXIT_CODE, child.stdout + child.stderr


def assert_exactly_once(http: Any, staging: StagingStore, expected: list[str]) -> None:
    stored = [r["Email"] for r in contacts(http)]
    assert sorted(stored) == sorted(expected), "every row in the org exactly once"
    latest = staging.latest_outcomes("fans", BATCH)
    assert sorted(latest["source_key"]) == sorted(expected)
    assert set(latest["status"]) == {"created"}
    ids = {r["Email"]: r["Id"] for r in contacts(http)}
    assert dict(latest.select("source_key", "target_id").rows()) == ids
    assert staging.open_jobs("fans", BATCH) == []
    assert staging.watermark("fans") == BATCH


def test_bulk_killed_after_the_upload_is_finished_once(tmp_path, sandbox, http, staging) -> None:
    """The job was uploaded but never closed: the next run aborts it and sends the rows anew."""
    info = sandbox.info()
    sync = spec("insert", "bulk", match_on="Email")
    frame = mapped(emails(300), match_on="Email")
    crash_while_writing(tmp_path, info, staging, sync, frame, "bulk_upload")
    [left_open] = staging.open_jobs("fans", BATCH)
    assert len(left_open.keys) == 300 and contacts(http) == []
    assert staging.ledger("fans").height == 0

    report = write(info, staging, sync, frame, batch=BATCH)
    assert report.created == 300 and report.sent == 300
    assert left_open.job_id in report.bulk_job_ids and len(report.bulk_job_ids) == 2
    jobs = staging.jobs("fans").filter(pl.col("job_id") == left_open.job_id)
    assert jobs["state"].to_list() == ["Aborted"]
    assert_exactly_once(http, staging, emails(300))


def test_bulk_killed_after_salesforce_processed_the_job_is_finished_from_its_results(
    tmp_path, sandbox, http, staging
) -> None:
    """The job completed in Salesforce but no outcome reached the ledger: the next run reads
    the job's results and uploads nothing again."""
    info = sandbox.info()
    sync = spec("insert", "bulk", match_on="Email")
    frame = mapped(emails(300), match_on="Email")
    crash_while_writing(tmp_path, info, staging, sync, frame, "bulk_results")
    assert len(contacts(http)) == 300 and staging.ledger("fans").height == 0
    [left_open] = staging.open_jobs("fans", BATCH)

    report = write(info, staging, sync, frame, batch=BATCH)
    assert (report.sent, report.created, report.bulk_job_ids) == (0, 300, [left_open.job_id])
    assert_exactly_once(http, staging, emails(300))


def test_rest_killed_after_a_collections_call_answered_creates_no_duplicates(
    tmp_path, sandbox, http, staging
) -> None:
    """The first 200 inserts were created but not recorded: the next run finds them by Email
    and sends only the 300 rows never sent."""
    info = sandbox.info()
    sync = spec("insert", "rest", match_on="Email")
    frame = mapped(emails(500), match_on="Email")
    crash_while_writing(tmp_path, info, staging, sync, frame, "rest_answer")
    assert len(contacts(http)) == 200 and staging.ledger("fans").height == 0
    assert len(staging.open_jobs("fans", BATCH)) == 1

    report = write(info, staging, sync, frame, batch=BATCH)
    assert (report.sent, report.created) == (300, 500)
    assert_exactly_once(http, staging, emails(500))
