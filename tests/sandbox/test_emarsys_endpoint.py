"""The sandbox's Emarsys sales-data endpoint, spoken to over HTTPS the way a writer would.

One server serves the whole module (starting one takes a noticeable fraction of a second);
every test starts from no uploads and the default column order.
"""

from __future__ import annotations

import gzip
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sf_sandbox.emarsys import DEFAULT_COLUMNS
from sf_sandbox.org import Org
from sf_sandbox.server import SandboxServer

HEADER = "order,timestamp,customer,item,price,quantity"
VALID = (
    f"{HEADER}\n"
    "A-1,2024-06-06T14:02:00Z,C-1,SKU-1,19.98,2\n"
    "A-1,2024-06-06T14:02:00Z,C-1,SKU-2,5.5,1\n"
)


@dataclass
class Emarsys:
    """A writer's view of the endpoint plus the admin read-back a test checks it with.

    `verify` goes on every call: requests lets REQUESTS_CA_BUNDLE override a Session's own.
    """

    info: dict[str, Any]
    http: requests.Session

    @property
    def url(self) -> str:
        return self.url_for(self.info["merchant_id"])

    def url_for(self, merchant_id: str) -> str:
        return f"{self.info['emarsys_url']}/hapi/merchant/{merchant_id}/sales-data/api"

    def post(
        self,
        body: str | bytes,
        *,
        url: str | None = None,
        headers: dict[str, str | None] | None = None,
    ) -> requests.Response:
        """A header given as None is not sent at all."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        sent = {
            "Authorization": f"Bearer {self.info['emarsys_token']}",
            "Content-Type": "text/csv",
            "Accept": "text/plain",
            **(headers or {}),
        }
        return self.http.post(
            url or self.url, data=data, headers=sent, timeout=10, verify=self.info["ca_bundle"]
        )

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.info['admin_url']}/emarsys/{path}"
        return self.http.request(method, url, timeout=10, verify=self.info["ca_bundle"], **kwargs)

    def uploads(self) -> list[dict[str, Any]]:
        return self.admin("GET", "uploads").json()

    def lines(self) -> list[dict[str, Any]]:
        return self.admin("GET", "lines").json()

    def configure(self, columns: list[str]) -> requests.Response:
        return self.admin("PUT", "columns", json=columns)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    workdir: Path = tmp_path_factory.mktemp("emarsys-sandbox")
    with SandboxServer(Org(), workdir=workdir) as running:
        yield running


@pytest.fixture
def emarsys(server: SandboxServer) -> Iterator[Emarsys]:
    info = server.info()
    with requests.Session() as http:
        client = Emarsys(info, http)
        assert client.admin("DELETE", "uploads").status_code == 200
        assert client.configure(list(DEFAULT_COLUMNS)).status_code == 200
        yield client


def assert_rejected(response: requests.Response, *fragments: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    for fragment in fragments:
        assert fragment in response.text, response.text


def csv_with(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


# -- accepted uploads -------------------------------------------------------------------------


def test_valid_upload_is_accepted_and_visible_in_read_back(emarsys: Emarsys) -> None:
    response = emarsys.post(VALID)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.strip() == "OK: 2 lines accepted"
    [upload] = emarsys.uploads()
    assert upload["merchant_id"] == emarsys.info["merchant_id"]
    assert upload["columns"] == list(DEFAULT_COLUMNS)
    assert upload["gzip"] is False
    assert upload["line_count"] == 2
    assert upload["rows"][1] == {
        "order": "A-1",
        "timestamp": "2024-06-06T14:02:00Z",
        "customer": "C-1",
        "item": "SKU-2",
        "price": "5.5",
        "quantity": "1",
    }


def test_same_upload_twice_is_stored_twice(emarsys: Emarsys) -> None:
    assert emarsys.post(VALID).status_code == 200
    assert emarsys.post(VALID).status_code == 200

    lines = emarsys.lines()
    assert len(emarsys.uploads()) == 2
    assert Counter((line["order"], line["item"]) for line in lines) == {
        ("A-1", "SKU-1"): 2,
        ("A-1", "SKU-2"): 2,
    }
    assert [(line["upload"], line["line"]) for line in lines] == [(0, 2), (0, 3), (1, 2), (1, 3)]


def test_gzip_upload_is_decompressed_and_flagged(emarsys: Emarsys) -> None:
    response = emarsys.post(gzip.compress(VALID.encode()), headers={"Content-Encoding": "gzip"})

    assert response.status_code == 200, response.text
    [upload] = emarsys.uploads()
    assert upload["gzip"] is True
    assert [row["item"] for row in upload["rows"]] == ["SKU-1", "SKU-2"]


def test_corrupt_gzip_is_rejected(emarsys: Emarsys) -> None:
    truncated = gzip.compress(VALID.encode())[:-12]

    assert_rejected(emarsys.post(truncated, headers={"Content-Encoding": "gzip"}), "gzip")
    assert_rejected(emarsys.post(b"not gzip", headers={"Content-Encoding": "gzip"}), "gzip")
    assert emarsys.uploads() == []


def test_header_only_is_an_upload_of_zero_lines_but_an_empty_body_is_not(
    emarsys: Emarsys,
) -> None:
    response = emarsys.post(HEADER + "\n")

    assert response.status_code == 200
    assert response.text.strip() == "OK: 0 lines accepted"
    assert_rejected(emarsys.post(b""), "empty body")
    assert [upload["line_count"] for upload in emarsys.uploads()] == [0]


def test_returns_with_negative_price_and_quantity_are_accepted(emarsys: Emarsys) -> None:
    body = csv_with("R-1,2024-06-07,C-1,SKU-1,-19.98,-2")

    assert emarsys.post(body).status_code == 200
    assert emarsys.lines()[0]["price"] == "-19.98"


def test_charset_parameter_crlf_and_quoting_rules_are_accepted(emarsys: Emarsys) -> None:
    body = f'{HEADER}\r\n"A,2",2024-06-06T14:02:00.250+00:00,"C ""x""", SKU-1 ,1e2,1.5\r\n'

    response = emarsys.post(body, headers={"Content-Type": "text/csv; charset=utf-8"})

    assert response.status_code == 200, response.text
    [line] = emarsys.lines()
    assert (line["order"], line["customer"], line["item"]) == ("A,2", 'C "x"', "SKU-1")


# -- authentication and routing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Basic {token}", "Bearer {token}x", "Bearer"],
)
def test_missing_or_wrong_token_is_401_and_never_echoed(
    emarsys: Emarsys, authorization: str | None
) -> None:
    token = emarsys.info["emarsys_token"]
    headers = {"Authorization": authorization and authorization.format(token=token)}

    response = emarsys.post(VALID, headers=headers)

    assert_rejected(response, "token", status=401)
    assert token not in response.text
    assert "wrong-token" not in response.text
    assert emarsys.uploads() == []


def test_unknown_merchant_is_404(emarsys: Emarsys) -> None:
    response = emarsys.post(VALID, url=emarsys.url_for("0123456789ABCDEF"))

    assert_rejected(response, "unknown merchant", "0123456789ABCDEF", status=404)
    assert emarsys.uploads() == []


def test_body_must_be_declared_as_csv(emarsys: Emarsys) -> None:
    assert_rejected(emarsys.post(VALID, headers={"Content-Type": "application/json"}), status=415)
    latin = emarsys.post(VALID, headers={"Content-Type": "text/csv; charset=iso-8859-1"})
    assert_rejected(latin, "UTF-8", status=415)


# -- the header -------------------------------------------------------------------------------


def test_wrong_column_order_is_rejected_naming_the_expected_order(emarsys: Emarsys) -> None:
    body = csv_with(
        "A-1,C-1,2024-06-06T14:02:00Z,SKU-1,19.98,2",
        header="order,customer,timestamp,item,price,quantity",
    )

    assert_rejected(emarsys.post(body), "line 1:", ",".join(DEFAULT_COLUMNS))
    assert emarsys.uploads() == []


def test_customer_and_email_together_are_rejected(emarsys: Emarsys) -> None:
    body = csv_with(
        "A-1,2024-06-06T14:02:00Z,C-1,a@example.com,SKU-1,19.98,2",
        header="order,timestamp,customer,email,item,price,quantity",
    )

    assert_rejected(emarsys.post(body), "line 1:", "'customer' and 'email'")


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("channel", "needs a type prefix s_, i_ or f_"),
        ("d_shipped", "d_"),
        ("Price", "lower-case"),
        ("s_sales channel", "letters, digits"),
    ],
)
def test_custom_column_names_need_a_known_type_prefix(
    emarsys: Emarsys, column: str, message: str
) -> None:
    body = csv_with("A-1,2024-06-06T14:02:00Z,C-1,SKU-1,19.98,2,x", header=f"{HEADER},{column}")

    assert_rejected(emarsys.post(body), "line 1:", column, message)


def test_prefixed_custom_columns_are_accepted_and_type_checked(emarsys: Emarsys) -> None:
    columns = [*DEFAULT_COLUMNS, "s_channel", "i_store", "f_discount"]
    assert emarsys.configure(columns).status_code == 200
    header = ",".join(columns)

    accepted = emarsys.post(
        csv_with(
            "A-1,2024-06-06,C-1,SKU-1,19.98,2,web,12,1.5",
            "A-2,2024-06-06,C-1,SKU-1,1,1,,,",
            header=header,
        )
    )
    bad_integer = emarsys.post(csv_with("A-1,2024-06-06,C-1,SKU-1,1,1,web,1.5,0", header=header))
    bad_float = emarsys.post(csv_with("A-1,2024-06-06,C-1,SKU-1,1,1,web,1,ten", header=header))

    assert accepted.status_code == 200, accepted.text
    assert emarsys.lines()[0]["s_channel"] == "web"
    assert_rejected(bad_integer, "line 2: column 'i_store': not an integer: '1.5'")
    assert_rejected(bad_float, "line 2: column 'f_discount': not a number: 'ten'")


def test_configured_columns_change_through_the_admin_endpoint(emarsys: Emarsys) -> None:
    columns = ["item", "price", "order", "timestamp", "email", "quantity", "s_channel"]

    configured = emarsys.configure(columns)
    old_order = emarsys.post(VALID)
    new_order = emarsys.post(
        csv_with(
            "SKU-1,9.99,A-1,2024-06-06T14:02:00Z,a@example.com,1,web", header=",".join(columns)
        )
    )

    assert configured.json()["columns"] == columns
    assert emarsys.admin("GET", "columns").json()["columns"] == columns
    assert_rejected(old_order, ",".join(columns))
    assert new_order.status_code == 200, new_order.text
    assert emarsys.lines()[0]["email"] == "a@example.com"


@pytest.mark.parametrize(
    "columns",
    [
        "order,item",
        ["order", "timestamp", "item", "price"],
        ["order", "timestamp", "customer", "email", "item", "price"],
        ["order", "timestamp", "customer", "item", "price", "colour"],
        ["order", "timestamp", "customer", "item", "price", "price"],
    ],
)
def test_invalid_column_configuration_is_refused(emarsys: Emarsys, columns: Any) -> None:
    response = emarsys.configure(columns)

    assert response.status_code == 400
    assert response.json()["error"]
    assert emarsys.admin("GET", "columns").json()["columns"] == list(DEFAULT_COLUMNS)


# -- the lines --------------------------------------------------------------------------------


def test_row_missing_its_customer_is_rejected_with_its_line_number(emarsys: Emarsys) -> None:
    body = csv_with("A-1,2024-06-06T14:02:00Z,C-1,SKU-1,1,1", "A-2,2024-06-06T14:02:00Z,,SKU-1,1,1")

    assert_rejected(emarsys.post(body), "line 3: column 'customer': empty")
    assert emarsys.uploads() == []


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("A-1,2024-06-06,C-1,SKU-1,abc,1", "line 2: column 'price': not a number: 'abc'"),
        ("A-1,2024-06-06,C-1,SKU-1,1;5,1", "column 'price': not a number: '1;5'"),
        ("A-1,2024-06-06,C-1,SKU-1,nan,1", "column 'price': not a number: 'nan'"),
        ("A-1,2024-06-06,C-1,SKU-1,١٢,1", "column 'price': not a number: '١٢'"),
        ("A-1,2024-06-06,C-1,SKU-1,1e999,1", "column 'price': number out of range"),
        ("A-1,2024-06-06,C-1,SKU-1,1,two", "line 2: column 'quantity': not a number: 'two'"),
        ("A-1,2024-06-06,C-1,SKU-1,1,", "column 'quantity': empty"),
    ],
)
def test_non_numeric_price_or_quantity_is_rejected(
    emarsys: Emarsys, row: str, message: str
) -> None:
    assert_rejected(emarsys.post(csv_with(row)), message)


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        ("06/06/2024", "not an ISO 8601 timestamp"),
        ("2024-06-06 14:02:00Z", "not an ISO 8601 timestamp"),
        ("2024-06-06T14:02:00", "must be in UTC"),
        ("2024-06-06T14:02:00+02:00", "must be in UTC"),
        ("2024-02-30", "not a valid date"),
        ("2024-06-06T25:00:00Z", "not a valid date or time"),
    ],
)
def test_bad_timestamp_is_rejected(emarsys: Emarsys, timestamp: str, message: str) -> None:
    body = csv_with(f"A-1,{timestamp},C-1,SKU-1,1,1")

    assert_rejected(emarsys.post(body), "line 2: column 'timestamp':", message)


@pytest.mark.parametrize(
    "timestamp", ["2024-06-06", "2024-06-06T14:02Z", "2024-06-06T14:02:00.123456Z"]
)
def test_iso_utc_timestamps_and_bare_dates_are_accepted(emarsys: Emarsys, timestamp: str) -> None:
    assert emarsys.post(csv_with(f"A-1,{timestamp},C-1,SKU-1,1,1")).status_code == 200


def test_newline_inside_a_quoted_field_is_rejected(emarsys: Emarsys) -> None:
    body = csv_with('A-1,2024-06-06,C-1,"SKU\n1",1,1')

    assert_rejected(emarsys.post(body), "line 2: column 'item':", "not closed")
    assert emarsys.uploads() == []


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('A-1,2024-06-06,C-1,SKU"1,1,1', "line 2: column 'item': quote inside an unquoted field"),
        ('A-1,2024-06-06,C-1,"SKU"1,1,1', "line 2: column 'item': text after the closing quote"),
        ('A-1,2024-06-06,C-1, "SKU",1,1', "line 2: column 'item': blank before an opening quote"),
        ("A-1,2024-06-06,C-1,SKU-1,1", "line 2: expected 6 fields, found 5"),
    ],
)
def test_quotes_only_with_the_doubled_quote_escape(
    emarsys: Emarsys, row: str, message: str
) -> None:
    assert_rejected(emarsys.post(csv_with(row)), message)


def test_invalid_utf8_is_rejected_naming_the_line(emarsys: Emarsys) -> None:
    body = csv_with("A-1,2024-06-06,C-1,SKU-1,1,1").encode() + b"A-2,2024-06-06,C-\xff,SKU-1,1,1\n"

    assert_rejected(emarsys.post(body), "line 3: not valid UTF-8", "0xff")


def test_every_bad_line_is_reported_and_nothing_is_stored(emarsys: Emarsys) -> None:
    body = csv_with(
        "A-1,2024-06-06,C-1,SKU-1,1,1",
        "A-2,2024-06-06,C-1,,1,1",
        "",
        "A-3,2024-06-06,C-1,SKU-1,x,1",
    )

    response = emarsys.post(body)

    assert_rejected(
        response, "line 3: column 'item'", "line 4: empty line", "line 5: column 'price'"
    )
    assert "line 2" not in response.text
    assert emarsys.uploads() == []


def test_clearing_uploads_empties_the_read_back(emarsys: Emarsys) -> None:
    emarsys.post(VALID)

    cleared = emarsys.admin("DELETE", "uploads")

    assert cleared.json() == {"deleted": 1}
    assert emarsys.uploads() == []
    assert emarsys.lines() == []


# -- garbage --------------------------------------------------------------------------------


def garbage_bodies(rng: random.Random) -> Iterator[tuple[bytes, dict[str, str]]]:
    """Random bytes, random text under a valid header, and broken or random gzip streams."""
    alphabet = 'ab1-.,"\r\n \t\x00é\xff'
    for _ in range(60):
        yield rng.randbytes(rng.randint(1, 300)), {}
    for _ in range(60):
        noise = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
        yield f"{HEADER}\n{noise}".encode("utf-8", "surrogatepass"), {}
    for _ in range(20):
        packed = gzip.compress(rng.randbytes(rng.randint(0, 200)) + b"\n")
        cut = packed[: rng.randint(0, len(packed))]
        yield rng.choice([packed, cut, rng.randbytes(40)]), {"Content-Encoding": "gzip"}


def test_garbage_bodies_are_answered_400_never_500(emarsys: Emarsys) -> None:
    rng = random.Random(20240606)
    statuses: Counter[int] = Counter()

    for body, headers in garbage_bodies(rng):
        response = emarsys.post(body, headers=headers)
        statuses[response.status_code] += 1
        assert response.status_code == 400, (body, response.status_code, response.text)
        assert "Traceback" not in response.text

    assert statuses == {400: 140}
    assert emarsys.uploads() == []
