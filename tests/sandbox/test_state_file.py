"""The `--state` file: private to its owner because it holds the org's credentials, and the
keeper of what the Metadata API created, so a restarted org still has those objects (checked
with real restarts of the program)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sf_sandbox.org import Org
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from resources.salesforce import SalesforceResource
from tests.sandbox.processes import admin, running_sandbox
from tests.sandbox.test_metadata_api import number_field, widget


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def state_files(state: Path) -> list[Path]:
    """The state file and whatever DuckDB keeps beside it (its write-ahead log)."""
    return [p for p in state.parent.iterdir() if p.name.startswith(state.name)]


def client(info: dict[str, Any]) -> Salesforce:
    return SalesforceResource(
        login_url=info["login_url"],
        ca_bundle=info["ca_bundle"],
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
    ).client()


def test_the_program_creates_the_state_file_and_its_log_for_its_owner_only(tmp_path):
    state = tmp_path / "org.duckdb"
    with running_sandbox(tmp_path, "--state", str(state)) as info:
        admin(info, "POST", "records/Account", json=[{"Name": "Written"}])
        running = {p.name: mode(p) for p in state_files(state)}
        info_mode = mode(tmp_path / "info.json")
    stopped = {p.name: mode(p) for p in state_files(state)}

    assert state.name in running and state.name in stopped
    assert set(running.values()) == {0o600} and set(stopped.values()) == {0o600}
    assert info_mode == 0o600


def test_a_state_file_left_readable_by_others_is_tightened_on_start(tmp_path):
    state = tmp_path / "org.duckdb"
    Org(state_path=state).close()
    os.chmod(state, 0o644)

    with running_sandbox(tmp_path, "--state", str(state)):
        during = mode(state)

    assert during == 0o600


def test_an_org_in_a_test_process_keeps_its_credentials_in_the_private_file(tmp_path):
    state = tmp_path / "org.duckdb"
    org = Org(state_path=state)
    try:
        secrets = [org.credentials.password, org.credentials.client_secret]
        assert mode(state) == 0o600
        for companion in state_files(state):
            if companion != state:  # a log written since, by this process's umask
                data = companion.read_bytes()
                assert not any(secret.encode() in data for secret in secrets), companion.name
    finally:
        org.close()


def test_objects_and_fields_created_through_the_metadata_api_survive_a_restart(tmp_path):
    state = tmp_path / "org.duckdb"
    with running_sandbox(tmp_path, "--state", str(state)) as first:
        sf = client(first)
        md = sf.mdapi
        md.CustomObject.create(widget(md))
        md.CustomField.create(number_field(md, "Contact.Shoe_Size__c"))
        created = sf.Widget__c.create({"Name": "Kept", "Color__c": "Red", "Size__c": 2.5})["id"]
        described = sf.Widget__c.describe()

    with running_sandbox(tmp_path, "--state", str(state)) as second:
        sf = client(second)
        after = sf.Widget__c.describe()
        record = sf.Widget__c.get(created)
        global_names = {o["name"] for o in sf.describe()["sobjects"]}
        contact_fields = {f["name"] for f in sf.Contact.describe()["fields"]}
        sf.Contact.create({"LastName": "Big feet", "Shoe_Size__c": 47})
        with pytest.raises(SalesforceMalformedRequest) as excinfo:
            sf.Widget__c.create({"Name": "Wrong", "Color__c": "Green"})
        newer = sf.Widget__c.create({"Name": "After restart", "Color__c": "Blue"})["id"]

    assert after == described
    assert (record["Name"], record["Color__c"], record["Size__c"]) == ("Kept", "Red", 2.5)
    assert "Widget__c" in global_names and "Shoe_Size__c" in contact_fields
    assert excinfo.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert newer.startswith(after["keyPrefix"]) and newer != created
