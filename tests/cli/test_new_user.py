"""The new user's path end to end, as the README tells it: a 5,000-row DuckDB table of leads,
`sf-assets init` → `describe` → `validate` → `plan` (nothing written, the counts right) →
materialize in a real Dagster instance → the org holds the rows. The settings live in the
project's `.env`, as they would for `dg dev`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml
from dotenv import dotenv_values

from sf_assets.definitions import load_definitions
from sf_assets.state import DuckDBStateStore
from tests.cli.helpers import org_settings, sf_assets, write_env_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ROWS = 5000
IN_THE_ORG = 10  # leads the org already has (same emails): updated, not duplicated
BAD_STATUS = 3  # rows whose status the org's restricted picklist does not allow
BATCH = "20261201"
SYNC = "leads_to_salesforce"


def make_leads(project: Path) -> None:
    with duckdb.connect(str(project / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA marketing")
        con.execute(
            f"""
            CREATE TABLE marketing.leads AS
            SELECT 'lead' || i || '@example.com' AS email,
                   'First' || i AS first_name,
                   'Last' || i AS last_name,
                   'Company ' || (i % 50) AS company,
                   CASE WHEN i <= {BAD_STATUS} THEN 'Hot' ELSE 'Open - Not Contacted' END AS status,
                   'note ' || i AS notes,
                   '{BATCH}' AS _BATCH_ID_
            FROM range(1, {ROWS} + 1) t(i)
            """
        )


def leads(http: Any) -> list[dict[str, Any]]:
    return http.admin("GET", "records/Lead")


def ledger_rows(staging: Path) -> tuple[int, int]:
    """(ledger rows, open jobs) of the staging file, read without going through sf-assets."""
    with duckdb.connect(str(staging), read_only=True) as con:
        ledger = con.execute("SELECT count(*) FROM write_ledger").fetchone()
        jobs = con.execute("SELECT count(*) FROM write_jobs").fetchone()
    assert ledger is not None and jobs is not None
    return ledger[0], jobs[0]


def test_from_a_table_to_a_first_sync(tmp_path, sandbox_info, http, monkeypatch):
    project = tmp_path
    make_leads(project)
    write_env_file(project, org_settings(sandbox_info))
    existing = [
        {
            "LastName": f"Known{i}",
            "Company": "Known",
            "Status": "Working - Contacted",
            "Email": f"lead{i}@example.com",
        }
        for i in range(ROWS - IN_THE_ORG + 1, ROWS + 1)
    ]
    http.admin("POST", "records/Lead", json=existing)

    init = sf_assets(
        project,
        "init",
        SYNC,
        "--object",
        "Lead",
        "--duckdb",
        "warehouse.duckdb",
        "--table",
        "marketing.leads",
    )
    assert init.returncode == 0, init.stdout + init.stderr
    spec = yaml.safe_load((project / "syncs" / f"{SYNC}.yaml").read_text())
    assert spec["target"] == {
        "salesforce": "default",
        "object": "Lead",
        "operation": "upsert",
        "match_on": "Email",
    }
    assert spec["mapping"] == {
        "Email": "email",
        "FirstName": "first_name",
        "LastName": "last_name",
        "Company": "company",
        "Status": "status",
    }
    assert spec["source"]["batch_column"] == "_BATCH_ID_"
    assert spec["sensor_status"] == "stopped"
    assert "not matched to any field: notes" in init.stdout
    assert "match key: Email" in init.stdout
    assert f"OK    {SYNC}: Lead mapping fits the org" in init.stdout

    describe = sf_assets(project, "describe", "Lead")
    assert describe.returncode == 0, describe.stderr
    # real orgs default Lead.Status (its picklist default), so it is not required
    assert "required to create a Lead: LastName, Company\n" in describe.stdout
    assert re.search(r"Email\s+│ Email\s+│ email\(80\)", describe.stdout)
    assert "Open - Not Contacted" in describe.stdout

    validate = sf_assets(project, "validate")
    assert validate.returncode == 0, validate.stdout + validate.stderr

    before = leads(http)
    plan = sf_assets(project, "plan", SYNC)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    counts = dict(
        re.findall(r"^  (create|update|reject|leave unchanged)\s+(\d+)", plan.stdout, re.M)
    )
    assert counts == {
        "create": str(ROWS - IN_THE_ORG - BAD_STATUS),
        "update": str(IN_THE_ORG),
        "leave unchanged": "0",
        "reject": str(BAD_STATUS),
    }
    assert "INVALID_PICKLIST_VALUE" in plan.stdout
    assert "nothing was written" in plan.stdout
    assert leads(http) == before, "plan must not change the org"
    assert not (project / ".sf-assets").exists(), "plan must not create the staging file"
    assert sandbox_info["password"] not in plan.stdout + plan.stderr

    settings = dotenv_values(project / ".env")
    for name, value in settings.items():
        monkeypatch.setenv(name, value or "")
    monkeypatch.setenv("SF_ASSETS_SYNCS_DIR", str(project / "syncs"))
    monkeypatch.setenv("SF_ASSETS_PROJECT_DIR", str(project))
    defs = load_definitions()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(f"{SYNC}_batches", [BATCH])
        job = defs.resolve_job_def(f"{SYNC}_writeback")
        result = job.execute_in_process(instance=instance, partition_key=BATCH)
    assert result.success
    in_the_org = {r["Email"]: r for r in leads(http)}
    assert len(in_the_org) == ROWS - BAD_STATUS
    assert in_the_org["lead42@example.com"]["LastName"] == "Last42"
    assert in_the_org[f"lead{ROWS}@example.com"]["LastName"] == f"Last{ROWS}"  # updated

    staging = project / ".sf-assets" / "staging.duckdb"
    state = ledger_rows(staging)
    again = sf_assets(project, "plan", SYNC, "--batch", BATCH)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(rf"leave unchanged\s+{ROWS - BAD_STATUS}\b", again.stdout)
    assert re.search(r"^  create\s+0$", again.stdout, re.M)
    assert ledger_rows(staging) == state, "plan must not add ledger rows or jobs"
    statuses = DuckDBStateStore(path=str(staging)).batch_statuses(SYNC)
    assert statuses.select("batch", "status").rows() == [(BATCH, "written")]
