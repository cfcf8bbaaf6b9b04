"""`sf-assets demo`: start the sandbox org, talk to it the way the pipeline will, and stop it.

It logs in with the username-password flow through the Salesforce resource, creates an
Account over REST, queries it back with SOQL, and loads Contacts (two of them deliberately bad)
through a Bulk API 2.0 ingest job, printing what each step did.
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
from pathlib import Path
from typing import Any

from sf_assets.local_org import local_org, salesforce_resource

CONTACTS = 1000


def sample_contacts(account_id: str) -> list[dict[str, str]]:
    rows = [
        {
            "FirstName": f"Fan{n:04d}",
            "LastName": "Ticketbuyer",
            "Email": f"fan{n:04d}@example.com",
            "External_Id__c": f"demo-{n:04d}",
            "AccountId": account_id,
            "Ticket_Count__c": str(n % 7 + 1),
        }
        for n in range(CONTACTS)
    ]
    rows[10]["LastName"] = ""  # required field missing
    rows[20]["Email"] = "not-an-email"
    return rows


def run_demo(workdir: Path | None = None) -> int:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sf-assets-demo-"))
    print("sf-assets demo: a local Salesforce org, driven by the real simple-salesforce client\n")
    with local_org(workdir) as info:
        print(f"  sandbox org ready at {info['instance_url']} (API v{info['api_version']})")
        sf = salesforce_resource(info).client()
        print(f"  logged in as {info['username']} (SOAP login, password + security token)")
        account_id = create_account(sf)
        query_account(sf, account_id)
        bulk_insert(sf, account_id)
        daily = sf.limits()["DailyApiRequests"]
        used = daily["Max"] - daily["Remaining"]
        print(f"\n  API calls spent (GET /limits): {used} of {daily['Max']} daily calls")
    print("  sandbox org stopped\n")
    print("Run your own: sf-assets sandbox --port 8443 --info-file .sf-assets/sandbox.json")
    return 0


def create_account(sf: Any) -> str:
    result = sf.Account.create({"Name": "Demo Ticketing Co", "External_Id__c": "demo-account"})
    print(f"  REST create   Account {result['id']} 'Demo Ticketing Co' (201 Created)")
    return result["id"]


def query_account(sf: Any, account_id: str) -> None:
    soql = f"SELECT Id, Name, External_Id__c, CreatedDate FROM Account WHERE Id = '{account_id}'"
    result = sf.query(soql)
    record = result["records"][0]
    print(f"  SOQL query    {soql}")
    print(
        f"                -> {result['totalSize']} row: {record['Name']}, created {record['CreatedDate']}"
    )


def bulk_insert(sf: Any, account_id: str) -> None:
    rows = sample_contacts(account_id)
    started = time.perf_counter()
    jobs = sf.bulk2.Contact.insert(records=rows, wait=0.2)
    elapsed = time.perf_counter() - started
    job = jobs[0]
    print(
        f"  Bulk 2.0      insert {len(rows)} Contacts in job {job['job_id']}: "
        f"{job['numberRecordsProcessed'] - job['numberRecordsFailed']} written, "
        f"{job['numberRecordsFailed']} failed ({elapsed:.1f} s)"
    )
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(job["job_id"]))))
    for row in failed:
        print(f"                rejected {row['External_Id__c']}: {row['sf__Error']}")
