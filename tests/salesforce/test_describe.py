"""Describe and preflight through the real simple-salesforce client against the sandbox org: what
the validator and the mapped asset see before anything is written."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import pytest
import requests
from sf_sandbox.schema import field_from_spec

from resources.salesforce import SalesforceLoginError, SalesforceResource
from sf_assets.cli.local_org import salesforce_resource
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.describe import UnknownObjectError, describe_object
from sf_assets.salesforce.describe_cache import DescribeCache
from sf_assets.salesforce.options import ApiOptions
from sf_assets.salesforce.preflight import preflight
from sf_assets.specs import SyncSpec

SYNC = "contacts_to_salesforce"
SCHEMA = {
    "fan_id": pl.Utf8(),
    "last_name": pl.Utf8(),
    "email": pl.Utf8(),
    "tickets": pl.Int64(),
    "bought": pl.Datetime("us", "UTC"),
    "company": pl.Utf8(),
}
GOOD_MAPPING = {
    "External_Id__c": "fan_id",
    "LastName": "last_name",
    "Email": "email",
    "Ticket_Count__c": "tickets",
    "Last_Purchase__c": "bought",
    "Account.External_Id__c": "company",
}


def make_spec(mapping: dict[str, str], **target: Any) -> SyncSpec:
    return SyncSpec.model_validate(
        {
            "name": SYNC,
            "source": {"duckdb": "warehouse.duckdb", "table": "crm.contacts"},
            "target": {"object": "Contact", "operation": "upsert", "match_on": "External_Id__c"}
            | target,
            "mapping": mapping,
        }
    )


def errors(sf, spec: SyncSpec, schema: dict[str, pl.DataType] = SCHEMA) -> list[str]:
    return [f.line() for f in preflight(sf, spec, schema) if f.level == "error"]


def test_describe_reads_the_org_fields(sf):
    contact = describe_object(sf, "contact")
    assert (contact.name, contact.label) == ("Contact", "Contact")
    last_name = contact.field("lastname")
    assert (last_name.type, last_name.length, last_name.required_on_create) == ("string", 80, True)
    assert contact.field("Email").matchable and not contact.field("Phone").matchable
    assert contact.field("Id").matchable
    tier = contact.field("Fan_Tier__c")
    assert tier.picklist == ("Bronze", "Silver", "Gold", "Platinum") and tier.restricted_picklist
    value = contact.field("Lifetime_Value__c")
    assert (value.type, value.precision, value.scale) == ("currency", 16, 2)
    account = contact.field("AccountId")
    assert (account.reference_to, account.relationship_name) == (("Account",), "Account")
    assert not contact.field("Name").createable and not contact.field("Name").updateable
    assert not contact.field("HasOptedOutOfEmail").required_on_create  # defaulted on create


def test_describe_reads_custom_objects(sf):
    checkout = describe_object(sf, "Checkout__c")
    assert checkout.label == "Checkout"
    assert checkout.field("Name").id_lookup and checkout.field("name").required_on_create
    assert checkout.relationship("contact__r").name == "Contact__c"


def test_an_unknown_object_raises_with_the_close_name(sf):
    with pytest.raises(UnknownObjectError) as excinfo:
        describe_object(sf, "Contakt")
    assert excinfo.value.suggestions == ("Contact",)
    assert str(excinfo.value) == (
        "Salesforce object 'Contakt' does not exist in this org or is not visible to this user "
        "(did you mean Contact?)"
    )


def test_a_name_that_is_not_an_api_name_never_reaches_the_org(sf):
    before = sf.restful("limits/")["DailyApiRequests"]["Remaining"]
    with pytest.raises(UnknownObjectError, match="'Contact/describe'"):
        describe_object(sf, "Contact/describe")
    after = sf.restful("limits/")["DailyApiRequests"]["Remaining"]
    assert before - after == 1  # only the second limits call


def test_a_good_spec_has_no_errors(sf):
    assert errors(sf, make_spec(GOOD_MAPPING)) == []


def test_an_unknown_target_object_is_one_finding(sf):
    spec = make_spec(GOOD_MAPPING, object="Contacts")
    assert [f.line() for f in preflight(sf, spec, SCHEMA)] == [
        f"ERROR {SYNC}: Salesforce object 'Contacts' does not exist in this org or is not "
        "visible to this user (did you mean Contact?)"
    ]


def test_an_unknown_field_is_found(sf):
    mapping = {**GOOD_MAPPING, "Emial": "email"}
    del mapping["Email"]
    assert errors(sf, make_spec(mapping)) == [
        f"ERROR {SYNC}: Contact.Emial: no such field on Contact (did you mean Email?)"
    ]


def test_an_unmapped_required_field_is_found(sf):
    mapping = {k: v for k, v in GOOD_MAPPING.items() if k != "LastName"}
    assert errors(sf, make_spec(mapping)) == [
        f"ERROR {SYNC}: Contact.LastName: required to create a Contact but not mapped from any "
        "column"
    ]


def test_a_field_that_cannot_be_created_is_found(sf):
    spec = make_spec({**GOOD_MAPPING, "Name": "last_name"}, operation="insert")
    assert errors(sf, spec) == [
        f"ERROR {SYNC}: Contact.Name: not createable, so an insert cannot set it (it is "
        "read-only: a system, formula or auto-number field)"
    ]


def test_a_match_on_that_is_neither_unique_nor_external_is_found(sf):
    spec = make_spec({**GOOD_MAPPING, "Phone": "fan_id"}, match_on="Phone")
    (line,) = errors(sf, spec)
    assert line.startswith(
        f"ERROR {SYNC}: Contact.Phone: match_on is not unique: Salesforce cannot tell records "
        "apart by it"
    )


def test_a_source_type_that_does_not_fit_is_found(sf):
    schema = {**SCHEMA, "tickets": pl.Date()}
    assert errors(sf, make_spec(GOOD_MAPPING), schema) == [
        f"ERROR {SYNC}: Contact.Ticket_Count__c: source column 'tickets' (Date) cannot be "
        "written to a double field"
    ]


def test_a_relationship_column_is_checked_on_the_related_object(sf):
    mapping = {**GOOD_MAPPING, "Account.Name": "company"}
    del mapping["Account.External_Id__c"]
    assert errors(sf, make_spec(mapping)) == [
        f"ERROR {SYNC}: Contact.Account.Name: Account.Name is neither an external id nor an "
        "idLookup field, so Salesforce cannot find the Account by it"
    ]


# -- the describe cache: one describe per run, a conditional one between runs -------------------


class Requests:
    """Every request the client's session sends, as (method, path, If-Modified-Since)."""

    def __init__(self, salesforce: SalesforceResource) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        salesforce.client().session.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        path = urlsplit(request.url or "").path
        self.seen.append((request.method or "", path, request.headers.get("If-Modified-Since")))

    def describes(self) -> list[str | None]:
        """The If-Modified-Since header of each describe call (None when absent)."""
        return [since for _, path, since in self.seen if path.endswith("/describe")]


def api(salesforce: SalesforceResource) -> Api:
    """The HTTP layer a run's steps describe through."""
    return Api(salesforce, logging.getLogger("test"), ApiOptions(retry_initial_seconds=0.01))


def test_a_run_describes_once_and_the_next_run_asks_if_modified_since(sandbox_info, tmp_path):
    cache = DescribeCache(tmp_path / "describe")
    salesforce = salesforce_resource(sandbox_info)
    calls = Requests(salesforce)

    first = cache.describe(api(salesforce), "Contact", run_id="run-1")
    again = cache.describe(api(salesforce), "contact", run_id="run-1")
    assert calls.describes() == [None]
    assert again == first and first.field("External_Id__c").external_id

    next_run = cache.describe(api(salesforce), "Contact", run_id="run-2")
    (since,) = calls.describes()[1:]
    assert since is not None and parsedate_to_datetime(since).tzinfo is not None
    assert next_run == first


def test_a_later_step_of_the_run_needs_no_login(sandbox_info, tmp_path):
    """The writing step reads what the mapping step fetched: not even a login is spent."""
    cache = DescribeCache(tmp_path / "describe")
    cache.describe(api(salesforce_resource(sandbox_info)), "Contact", run_id="run-1")
    locked_out = salesforce_resource({**sandbox_info, "password": "wrong"})
    assert cache.describe(api(locked_out), "Contact", run_id="run-1").name == "Contact"
    with pytest.raises(SalesforceLoginError):  # a new run must ask the org, so log in
        cache.describe(api(locked_out), "Contact", run_id="run-2")


def test_the_sandbox_answers_304_and_the_kept_describe_is_used(sandbox, tmp_path):
    """The sandbox honours If-Modified-Since as a real org does: while the schema is unchanged
    the next run gets a 304 and keeps its payload (here marked, to see which one is used)."""
    sandbox.org.schema_changed_at -= timedelta(seconds=10)  # loaded a while ago
    cache = DescribeCache(tmp_path / "describe")
    salesforce = salesforce_resource(sandbox.info())
    calls = Requests(salesforce)
    cache.describe(api(salesforce), "Contact", run_id="run-1")
    (kept,) = (tmp_path / "describe").glob("*/contact.json")
    marked = json.loads(kept.read_text())
    marked["payload"]["label"] = "Kept Contact"
    kept.write_text(json.dumps(marked))
    assert cache.describe(api(salesforce), "Contact", run_id="run-2").label == "Kept Contact"
    assert calls.describes()[1] == marked["since"]


def test_a_schema_change_answers_200_and_replaces_the_kept_describe(sandbox, tmp_path):
    """A field created since the kept describe: the conditional request gets the new payload."""
    sandbox.org.schema_changed_at -= timedelta(seconds=10)
    cache = DescribeCache(tmp_path / "describe")
    salesforce = salesforce_resource(sandbox.info())
    cache.describe(api(salesforce), "Contact", run_id="run-1")
    (kept,) = (tmp_path / "describe").glob("*/contact.json")
    stale = json.loads(kept.read_text())
    stale["payload"]["label"] = "Stale Contact"
    kept.write_text(json.dumps(stale))
    assert cache.describe(api(salesforce), "Contact", run_id="run-1").label == "Stale Contact"
    contact = sandbox.org.schema.get("Contact")
    sandbox.org.add_field(contact, field_from_spec("Shoe_Size__c", {"type": "double"}))
    fresh = cache.describe(api(salesforce), "Contact", run_id="run-2")
    assert fresh.label == "Contact" and fresh.field("Shoe_Size__c") is not None
    assert json.loads(kept.read_text())["payload"]["label"] == "Contact"


def test_connections_as_other_users_keep_their_own_describes(sandbox_info, tmp_path):
    cache = DescribeCache(tmp_path / "describe")
    cache.describe(api(salesforce_resource(sandbox_info)), "Contact", run_id="run-1")
    other = salesforce_resource({**sandbox_info, "username": "other@example.com"})
    with pytest.raises(SalesforceLoginError):  # not served from the first user's file
        cache.describe(api(other), "Contact", run_id="run-1")


def test_an_unknown_object_through_the_cache_names_the_close_one(sandbox_info, tmp_path):
    cache = DescribeCache(tmp_path / "describe")
    with pytest.raises(UnknownObjectError) as excinfo:
        cache.describe(api(salesforce_resource(sandbox_info)), "Contakt", run_id="run-1")
    assert excinfo.value.suggestions == ("Contact",)
    assert not list((tmp_path / "describe").rglob("*.json"))


class NotModifiedOrg(requests.adapters.BaseAdapter):
    """An org that honours If-Modified-Since, with a schema date the test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.modified = datetime(2026, 11, 1, tzinfo=UTC)
        self.asked: list[str | None] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        since = request.headers.get("If-Modified-Since")
        self.asked.append(since)
        response = requests.Response()
        response.request, response.url = request, request.url or ""
        response.headers["Date"] = format_datetime(datetime.now(UTC), usegmt=True)
        if since and parsedate_to_datetime(since) >= self.modified:
            response.status_code = 304
            return response
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        fields = [{"name": "Id", "type": "id"}, {"name": "Name", "type": "string"}]
        payload = {"name": "Widget__c", "label": "Widget", "fields": fields}
        response._content = json.dumps(payload).encode()
        return response

    def close(self) -> None:
        pass


def test_a_304_keeps_the_describe_and_costs_no_payload(tmp_path):
    salesforce = SalesforceResource(
        auth_flow="session", session_id="00D!session", instance_url="https://acme.my.salesforce.com"
    )
    org = NotModifiedOrg()
    salesforce.client().session.mount("https://", org)
    cache = DescribeCache(tmp_path / "describe")

    assert cache.describe(api(salesforce), "Widget__c", run_id="run-1").label == "Widget"
    (kept,) = (tmp_path / "describe").glob("*/widget__c.json")
    fetched = json.loads(kept.read_text())
    assert cache.describe(api(salesforce), "Widget__c", run_id="run-2").label == "Widget"
    assert org.asked == [None, fetched["since"]]  # one plain call, then one conditional one
    revalidated = json.loads(kept.read_text())
    assert revalidated["payload"] == fetched["payload"] and revalidated["run_id"] == "run-2"

    org.modified = datetime.now(UTC) + timedelta(days=1)  # changed since: a full answer
    assert cache.describe(api(salesforce), "Widget__c", run_id="run-3").label == "Widget"
    assert org.asked[-1] == revalidated["since"]
