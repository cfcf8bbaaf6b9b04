"""The SOQL an incremental reader sends, over HTTPS through simple-salesforce: keyset pages on
(SystemModstamp, Id), counts, date literals, the usual operators, literals escaped by the
client's own `format_soql`, and the org's error codes for what it cannot run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest
from simple_salesforce.format import format_soql

if TYPE_CHECKING:
    from tests.conftest import Wire

SHARED_STAMP = "2026-01-01T00:00:00.000Z"
KEYSET = (
    "SELECT Id, LastName, SystemModstamp FROM Contact "
    "WHERE HasOptedOutOfEmail = false AND (SystemModstamp > {stamp} "
    "OR (SystemModstamp = {stamp} AND Id > '{last_id}')) "
    "ORDER BY SystemModstamp, Id LIMIT {limit}"
)


def seed(http: Wire, sobject: str, records: list[dict[str, Any]]) -> list[str]:
    outcome = http.admin("POST", f"records/{sobject}", json=records)
    assert all(item["success"] for item in outcome), outcome
    return [item["id"] for item in outcome]


def last_names(sf: Salesforce, soql: str) -> list[str]:
    return [r["LastName"] for r in sf.query_all(soql)["records"]]


def query_error(sf: Salesforce, soql: str) -> dict[str, Any]:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.query(soql)
    return excinfo.value.content[0]


def test_keyset_pages_read_records_sharing_one_system_modstamp_exactly_once(sf, http):
    ids = seed(
        http,
        "Contact",
        [{"LastName": f"K{n:04d}", "HasOptedOutOfEmail": str(n % 10 == 0)} for n in range(2500)],
    )
    http.admin(
        "PATCH", "records/Contact", json=[{"Id": i, "SystemModstamp": SHARED_STAMP} for i in ids]
    )
    opted_in = sorted(i for n, i in enumerate(ids) if n % 10 != 0)

    seen: list[str] = []
    stamp, last_id = "2025-12-31T00:00:00Z", "000000000000000"
    while True:
        soql = KEYSET.format(stamp=stamp, last_id=last_id, limit=1000)
        page = sf.query_all(soql)["records"]
        if not page:
            break
        seen += [r["Id"] for r in page]
        stamp = page[-1]["SystemModstamp"].replace("+0000", "Z")
        last_id = page[-1]["Id"]

    assert seen == opted_in  # 2,250 rows in three pages, none twice, none missed
    assert {
        r["SystemModstamp"] for r in sf.query_all("SELECT SystemModstamp FROM Contact")["records"]
    } == {"2026-01-01T00:00:00.000+0000"}


def test_count_with_and_without_a_filter(sf, http):
    seed(http, "Contact", [{"LastName": n, "Email": f"{n}@x.test"} for n in ("a", "b", "c")])
    seed(http, "Contact", [{"LastName": "d"}])

    assert sf.query("SELECT COUNT() FROM Contact") == {
        "totalSize": 4,
        "done": True,
        "records": [],
    }
    assert sf.query("SELECT COUNT() FROM Contact WHERE Email != null")["totalSize"] == 3


def test_datetime_literals_and_last_n_days(sf, http):
    ids = seed(http, "Contact", [{"LastName": n} for n in ("recent", "old", "ancient")])
    now = datetime.now(UTC).replace(microsecond=0)
    created = {ids[1]: now - timedelta(days=60), ids[2]: now - timedelta(days=400)}
    patch = [{"Id": i, "CreatedDate": at.isoformat()} for i, at in created.items()]
    http.admin("PATCH", "records/Contact", json=patch)
    cutoff = now - timedelta(days=100)
    select = "SELECT LastName FROM Contact WHERE CreatedDate "

    assert last_names(sf, select + "= LAST_N_DAYS:90 ORDER BY LastName") == ["old", "recent"]
    assert last_names(sf, select + cutoff.strftime("< %Y-%m-%dT%H:%M:%SZ")) == ["ancient"]
    assert last_names(sf, select + cutoff.strftime("< %Y-%m-%dT%H:%M:%S.000-02:00")) == ["ancient"]
    later = format_soql(select + "> {} ORDER BY LastName", cutoff)  # `…+00:00`, as the client
    assert last_names(sf, later) == ["old", "recent"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("LastName IN ('Ada', 'Grace')", ["Ada", "Grace"]),
        ("LastName NOT IN ('Ada', 'Grace')", ["Alan", "Edsger"]),
        ("LastName LIKE 'A%'", ["Ada", "Alan"]),
        ("LastName != 'Ada'", ["Alan", "Edsger", "Grace"]),
        ("Email = null", ["Edsger"]),
        ("Email != null AND Title = null", ["Ada", "Alan", "Grace"]),
        ("(LastName = 'Ada' OR LastName = 'Edsger') AND Email != null", ["Ada"]),
    ],
)
def test_operators(sf, http, where, expected):
    seed(
        http,
        "Contact",
        [
            {"LastName": "Ada", "Email": "ada@x.test"},
            {"LastName": "Grace", "Email": "grace@x.test"},
            {"LastName": "Alan", "Email": "alan@x.test"},
            {"LastName": "Edsger"},
        ],
    )
    assert (
        last_names(sf, f"SELECT LastName FROM Contact WHERE {where} ORDER BY LastName") == expected
    )


@pytest.mark.parametrize(
    "value", ["O'Brien", "a\\b", "' OR LastName != '", "\\' OR LastName != \\'", "tab\there"]
)
def test_client_escaped_literals_stay_one_literal(sf, http, value):
    seed(http, "Contact", [{"LastName": value}, {"LastName": "Bystander"}])

    found = last_names(sf, format_soql("SELECT LastName FROM Contact WHERE LastName = {}", value))
    counted = sf.query(format_soql("SELECT COUNT() FROM Contact WHERE LastName != {}", value))

    assert found == [value]
    assert counted["totalSize"] == 1


def test_hand_escaped_quotes_and_backslashes(sf, http):
    seed(http, "Contact", [{"LastName": "O'Brien"}, {"LastName": "a\\b"}])

    assert last_names(sf, "SELECT LastName FROM Contact WHERE LastName = 'O\\'Brien'") == [
        "O'Brien"
    ]
    assert last_names(sf, "SELECT LastName FROM Contact WHERE LastName = 'a\\\\b'") == ["a\\b"]


def test_an_unescaped_quote_is_a_malformed_query_not_a_wider_filter(sf, http):
    seed(http, "Contact", [{"LastName": "Ada"}])
    hostile = "' OR LastName != '"

    error = query_error(
        sf, f"SELECT Id FROM Contact WHERE IsDeleted = false AND LastName = '{hostile}'"
    )

    assert error["errorCode"] == "MALFORMED_QUERY"


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        ("SELEKT Id FROM Contact", "MALFORMED_QUERY", "unexpected token: SELEKT"),
        ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
        ("SELECT Nope__c FROM Contact", "INVALID_FIELD", "No such column 'Nope__c'"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE", "sObject type 'Nope__c' is not supported"),
        (
            "SELECT Id FROM Contact WHERE SystemModstamp > '2026-01-01'",
            "INVALID_FIELD",
            "must be of type dateTime and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Contact WHERE LastName = 'a' AND Email = 'b' OR Title = 'c'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        (
            "SELECT LeadSource, COUNT(Id) FROM Contact GROUP BY LeadSource",
            "MALFORMED_QUERY",
            "COUNT() is valid SOQL that the sandbox org does not run",
        ),
        (
            "SELECT Id FROM Contact GROUP BY LeadSource",
            "MALFORMED_QUERY",
            "GROUP BY is valid SOQL that the sandbox org does not run",
        ),
        (
            "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
            "MALFORMED_QUERY",
            "subquery is valid SOQL that the sandbox org does not run",
        ),
        (
            "SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account)",
            "MALFORMED_QUERY",
            "semi-join",
        ),
        (
            "SELECT FIELDS(ALL) FROM Contact LIMIT 200",
            "MALFORMED_QUERY",
            "FIELDS() is valid SOQL",
        ),
        ("SELECT Id FROM Contact FOR UPDATE", "MALFORMED_QUERY", "FOR UPDATE"),
    ],
)
def test_what_the_org_cannot_run_gets_the_real_error_code(sf, soql, code, fragment):
    error = query_error(sf, soql)

    assert error["errorCode"] == code
    assert fragment in error["message"]
