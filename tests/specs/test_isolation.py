"""A broken spec takes nothing else down: the good syncs load, the UI shows the broken file
and why, and `sf-assets validate` exits non-zero. Plus the messages for mistakes new users
make in a spec (a reversed mapping) and the sensor's starting status."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from sf_assets.definitions import BROKEN_GROUP, load_definitions
from sf_assets.specs import SpecError, load_specs, read_specs
from tests.cli.helpers import sf_assets

GOOD = """
name: contacts_to_salesforce
source: {duckdb: warehouse.duckdb, table: crm.contacts}
target: {object: Contact, operation: upsert, match_on: External_Id__c}
mapping: {External_Id__c: contact_id, LastName: last_name}
"""
BROKEN = """
name: leads_to_salesforce
source: {duckdb: warehouse.duckdb, table: crm.leads}
target: {object: Lead, operation: upsert, match_on: Email}
mapping: {Email: email, LastName: last_name}
api: sometimes
"""


def project(tmp_path: Path, **files: str) -> Path:
    (tmp_path / "syncs").mkdir()
    for name, text in files.items():
        (tmp_path / "syncs" / f"{name}.yaml").write_text(text)
    return tmp_path


def test_a_broken_spec_is_set_aside_and_the_good_one_loads(tmp_path):
    folder = read_specs(project(tmp_path, contacts=GOOD, leads=BROKEN) / "syncs")
    assert [item.spec.name for item in folder.specs] == ["contacts_to_salesforce"]
    (broken,) = folder.broken
    assert broken.file.name == "leads.yaml"
    assert "api: Input should be 'auto', 'rest' or 'bulk'" in broken.message
    with pytest.raises(SpecError, match=r"leads\.yaml"):
        load_specs(tmp_path / "syncs")


def test_the_code_location_shows_the_broken_spec_beside_the_good_syncs(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "SF_ASSETS_SYNCS_DIR", str(project(tmp_path, contacts=GOOD, leads=BROKEN) / "syncs")
    )
    monkeypatch.setenv("SF_ASSETS_PROJECT_DIR", str(tmp_path))
    defs = load_definitions()
    with dg.instance_for_test() as instance:
        keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
        assert {"contacts_to_salesforce/written", f"{BROKEN_GROUP}/leads"} <= keys
        assert defs.resolve_sensor_def("contacts_to_salesforce_batches") is not None
        broken = defs.resolve_assets_def(dg.AssetKey([BROKEN_GROUP, "leads"]))
        description = broken.descriptions_by_key[dg.AssetKey([BROKEN_GROUP, "leads"])]
        assert "Broken sync spec leads.yaml" in description and "api:" in description
        result = dg.materialize([broken], instance=instance, raise_on_error=False)
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "api: Input should be" in failure.step_failure_data.error.message


def test_validate_exits_non_zero_and_names_the_broken_file(tmp_path):
    project(tmp_path, leads=BROKEN)
    completed = sf_assets(tmp_path, "validate")
    assert completed.returncode == 1
    assert "leads.yaml: 1 problem(s) in the sync spec" in completed.stderr


def test_a_second_file_with_the_same_name_is_the_broken_one(tmp_path):
    folder = read_specs(project(tmp_path, a=GOOD, b=GOOD) / "syncs")
    assert [item.file.name for item in folder.specs] == ["a.yaml"]
    (broken,) = folder.broken
    assert "b.yaml: sync name 'contacts_to_salesforce' is already used by" in broken.message


def test_a_reversed_mapping_is_named_as_such(tmp_path):
    reversed_spec = GOOD.replace(
        "mapping: {External_Id__c: contact_id, LastName: last_name}",
        "mapping: {contact_id: External_Id__c, last_name: LastName}",
    )
    (broken,) = read_specs(project(tmp_path, contacts=reversed_spec) / "syncs").broken
    assert "the mapping looks reversed: it has `contact_id: External_Id__c`" in broken.message
    assert "write `External_Id__c: contact_id`" in broken.message


@pytest.mark.parametrize(
    ("line", "status"), [("", "STOPPED"), ("sensor_status: running", "RUNNING")]
)
def test_a_new_syncs_sensor_starts_stopped_unless_the_spec_says_running(
    tmp_path, monkeypatch, line, status
):
    monkeypatch.setenv(
        "SF_ASSETS_SYNCS_DIR", str(project(tmp_path, contacts=GOOD + line) / "syncs")
    )
    monkeypatch.setenv("SF_ASSETS_PROJECT_DIR", str(tmp_path))
    with dg.instance_for_test():  # resolving definitions consults the current instance
        sensor = load_definitions().resolve_sensor_def("contacts_to_salesforce_batches")
    assert sensor.default_status == dg.DefaultSensorStatus[status]
