"""The login reroute adapter and the Metadata API session hook, against a local HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from simple_salesforce.metadata import SfdcMetadataApi

from resources.login_reroute import (
    LoginRerouteAdapter,
    is_salesforce_host,
    login_server,
    reroute,
    share_session_with_metadata_api,
)

READ_RESPONSE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns="http://soap.sforce.com/2006/04/metadata" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
    '<readMetadataResponse><result><records xsi:type="CustomObject"><fullName>Widget__c</fullName>'
    "</records></result></readMetadataResponse></soapenv:Body></soapenv:Envelope>"
)


@dataclass
class Seen:
    method: str
    path: str
    host: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Recorder(ThreadingHTTPServer):
    """A plain-HTTP server that records each request and answers with a fixed body."""

    def __init__(self, answer: str, content_type: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer = answer.encode()
        self.content_type = content_type
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        self.record()

    def do_GET(self) -> None:
        self.record()

    def record(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.seen.append(
            Seen(self.command, self.path, self.headers["host"], body, dict(self.headers))
        )
        self.send_response(200)
        self.send_header("content-type", self.server.content_type)
        self.send_header("content-length", str(len(self.server.answer)))
        self.end_headers()
        self.wfile.write(self.server.answer)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


def serve(answer: str, content_type: str) -> Iterator[Recorder]:
    server = Recorder(answer, content_type)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    yield from serve('{"ok": true}', "application/json")


@pytest.fixture
def metadata_server() -> Iterator[Recorder]:
    yield from serve(READ_RESPONSE, "text/xml")


# -- which hosts are rerouted -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "login.salesforce.com",
        "test.salesforce.com",
        "acme.my.salesforce.com",
        "ACME.MY.Salesforce.com",
    ],
)
def test_salesforce_login_hosts_are_recognised(host: str) -> None:
    assert is_salesforce_host(host)


@pytest.mark.parametrize(
    "host", ["salesforce.com.example.net", "notsalesforce.com", "127.0.0.1", "example.com", None]
)
def test_other_hosts_are_not(host: str | None) -> None:
    assert not is_salesforce_host(host)


TARGET = login_server("https://127.0.0.1:8443")


def test_login_url_moves_onto_the_target_keeping_path_and_query() -> None:
    url = "https://login.salesforce.com/services/oauth2/token?format=json&x=1"

    assert reroute(url, TARGET) == "https://127.0.0.1:8443/services/oauth2/token?format=json&x=1"


def test_my_domain_url_moves_onto_the_target() -> None:
    url = "https://rerouted.my.salesforce.com/services/Soap/u/59.0"

    assert reroute(url, TARGET) == "https://127.0.0.1:8443/services/Soap/u/59.0"


def test_other_urls_pass_through() -> None:
    url = "https://na1.example.com/services/data/v59.0/limits/"

    assert reroute(url, TARGET) == url


def test_plain_http_target_is_reached_over_http_for_its_own_host() -> None:
    target = login_server("http://127.0.0.1:8080")

    assert reroute("https://127.0.0.1:8080/services/data/v59.0/", target) == (
        "http://127.0.0.1:8080/services/data/v59.0/"
    )


@pytest.mark.parametrize("bad", ["127.0.0.1:8443", "ftp://files.example.com", "https://"])
def test_login_url_needs_a_scheme_and_host(bad: str) -> None:
    with pytest.raises(ValueError, match="login_url must look like"):
        login_server(bad)


# -- the adapter on a real session ---------------------------------------------------------------------


def test_adapter_sends_salesforce_requests_to_the_login_server(recorder: Recorder) -> None:
    session = requests.Session()
    session.mount("https://", LoginRerouteAdapter(recorder.url))

    response = session.post(
        "https://login.salesforce.com/services/oauth2/token?format=json",
        data={"grant_type": "password"},
        timeout=10,
    )

    assert response.json() == {"ok": True}
    assert response.url == f"{recorder.url}/services/oauth2/token?format=json"
    [seen] = recorder.seen
    assert (seen.method, seen.path) == ("POST", "/services/oauth2/token?format=json")
    assert seen.host == recorder.url.removeprefix("http://")
    assert seen.body == b"grant_type=password"


def test_adapter_leaves_the_prepared_request_alone(recorder: Recorder) -> None:
    session = requests.Session()
    session.mount("https://", LoginRerouteAdapter(recorder.url))
    prepared = requests.Request("GET", "https://test.salesforce.com/id").prepare()

    session.send(prepared, timeout=10)

    assert prepared.url == "https://test.salesforce.com/id"
    assert recorder.seen[0].path == "/id"


# -- the Metadata API uses the shared session -----------------------------------------------------------


def test_metadata_api_calls_go_through_the_shared_session(metadata_server: Recorder) -> None:
    session = requests.Session()
    session.headers["X-Shared-Session"] = "yes"
    api = SfdcMetadataApi(
        session=session,
        session_id="00Dtest!session",
        instance="127.0.0.1",
        metadata_url=f"{metadata_server.url}/services/Soap/m/59.0/",
        headers={},
        api_version="59.0",
    )

    share_session_with_metadata_api(api, session)
    record = api.CustomObject.read(["Widget__c"])

    assert record.fullName == "Widget__c"
    [seen] = metadata_server.seen
    assert seen.headers["X-Shared-Session"] == "yes"
    assert b"00Dtest!session" in seen.body
