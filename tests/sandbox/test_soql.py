"""SOQL compiler: queries are compiled and executed against a small in-memory org, so each test
checks the rows Salesforce would return, not the SQL text."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import duckdb
import pytest
from sf_sandbox import soql
from sf_sandbox.errors import SalesforceError
from sf_sandbox.ids import make_id
from sf_sandbox.schema import Schema, load_schema
from sf_sandbox.soql import CompiledQuery, compile_soql
from sf_sandbox.store import first_row

SCHEMA = load_schema()
TODAY = date(2024, 2, 1)

USER = make_id("005", 1)
ACME, GLOBEX, INITECH = (make_id("001", n) for n in (1, 2, 3))
ADA, GRACE, ALAN, GONE = (make_id("003", n) for n in (1, 2, 3, 4))
CHECKOUT_1, CHECKOUT_2 = make_id("a01", 1), make_id("a01", 2)


def create_tables(con: duckdb.DuckDBPyConnection, schema: Schema) -> None:
    """One table per object, one column per field, typed as the store types them."""
    for sobject in schema.objects.values():
        columns = ", ".join(f'"{f.name}" {f.duckdb_type}' for f in sobject.fields.values())
        con.execute(f'CREATE TABLE "{sobject.name}" ({columns})')


def insert(con: duckdb.DuckDBPyConnection, table: str, **values: Any) -> None:
    values.setdefault("IsDeleted", False)
    names = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join("?" for _ in values)
    con.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(values.values()))


def seed(con: duckdb.DuckDBPyConnection) -> None:
    insert(con, "User", Id=USER, Username="ada@example.com", LastName="Admin", Name="Ada Admin")
    insert(con, "Account", Id=ACME, Name="Acme", OwnerId=USER, AnnualRevenue=1_000_000.0)
    insert(con, "Account", Id=GLOBEX, Name="Globex", NumberOfEmployees=50)
    insert(con, "Account", Id=INITECH, Name="Initech", IsDeleted=True)
    insert(
        con,
        "Contact",
        Id=ADA,
        LastName="Lovelace",
        FirstName="Ada",
        Email="ada@acme.test",
        AccountId=ACME,
        Birthdate=date(1990, 12, 10),
        Ticket_Count__c=5.0,
        Last_Purchase__c=datetime(2024, 1, 31, 10, 0, 0),
        HasOptedOutOfEmail=False,
        Fan_Tier__c="Gold",
        MailingCity="London",
        CreatedDate=datetime(2024, 2, 1, 8, 0, 0),
    )
    insert(
        con,
        "Contact",
        Id=GRACE,
        LastName="Hopper",
        FirstName="Grace",
        Email="grace@globex.test",
        AccountId=GLOBEX,
        Birthdate=date(1985, 6, 1),
        Ticket_Count__c=12.0,
        Last_Purchase__c=datetime(2024, 1, 31, 9, 0, 0),
        HasOptedOutOfEmail=True,
        Fan_Tier__c="Silver",
        MailingCity="new york",
        CreatedDate=datetime(2024, 1, 20, 8, 0, 0),
    )
    insert(
        con,
        "Contact",
        Id=ALAN,
        LastName="Turing",
        FirstName="Alan",
        Title="50% off_deal \\ 'quoted'",
        HasOptedOutOfEmail=False,
        CreatedDate=datetime(2023, 6, 1, 8, 0, 0),
    )
    insert(con, "Contact", Id=GONE, LastName="Gone", AccountId=ACME, IsDeleted=True)
    insert(con, "Checkout__c", Id=CHECKOUT_1, Name="CHK-1", Contact__c=ADA)
    insert(con, "Checkout__c", Id=CHECKOUT_2, Name="CHK-2")
    insert(con, "Transaction__c", Id=make_id("a02", 1), Name="TX-1", Checkout__c=CHECKOUT_1)
    insert(con, "Transaction__c", Id=make_id("a02", 2), Name="TX-2", Checkout__c=CHECKOUT_2)
    insert(con, "Transaction__c", Id=make_id("a02", 3), Name="TX-3", Amount__c=20.5)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    create_tables(connection, SCHEMA)
    seed(connection)
    yield connection
    connection.close()


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soql, "_today", lambda: TODAY)


def fetch(
    con: duckdb.DuckDBPyConnection, text: str, *, include_deleted: bool = False
) -> list[dict[str, Any]]:
    compiled = compile_soql(text, SCHEMA, include_deleted=include_deleted)
    cursor = con.execute(compiled.sql, compiled.params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def count(con: duckdb.DuckDBPyConnection, compiled: CompiledQuery) -> int:
    return first_row(con.execute(compiled.count_sql, compiled.params))[0]  # type: ignore[index]


def contacts(con: duckdb.DuckDBPyConnection, where: str) -> set[str]:
    """Last names of the live contacts matching `where`."""
    rows = fetch(con, f"SELECT LastName FROM Contact WHERE {where}")
    return {row["LastName"] for row in rows}


def error_of(text: str) -> SalesforceError:
    with pytest.raises(SalesforceError) as caught:
        compile_soql(text, SCHEMA)
    assert caught.value.status == 400
    return caught.value


# --------------------------------------------------------------------------------------------
# SELECT and FROM


def test_select_returns_root_id_and_aliased_paths(con: duckdb.DuckDBPyConnection) -> None:
    rows = fetch(con, "SELECT Name, LastName FROM Contact WHERE LastName = 'Lovelace'")
    assert rows == [{"__id": ADA, "Name": None, "LastName": "Lovelace"}]


def test_paths_use_schema_casing_and_carry_the_leaf_field() -> None:
    compiled = compile_soql("select id, account.name, OWNER.username from contact", SCHEMA)
    assert compiled.sobject.name == "Contact"
    assert [p.parts for p in compiled.paths] == [
        ("Id",),
        ("Account", "Name"),
        ("Owner", "Username"),
    ]
    assert [p.column for p in compiled.paths] == ["Id", "Account.Name", "Owner.Username"]
    assert compiled.paths[1].field is SCHEMA.objects["Account"].fields["Name"]


def test_parent_fields_join_through_lookups(con: duckdb.DuckDBPyConnection) -> None:
    rows = fetch(con, "SELECT LastName, Account.Name, Account.Owner.Username FROM Contact")
    by_name = {row["LastName"]: row for row in rows}
    assert by_name["Lovelace"]["Account.Name"] == "Acme"
    assert by_name["Lovelace"]["Account.Owner.Username"] == "ada@example.com"
    assert by_name["Hopper"]["Account.Owner.Username"] is None
    assert by_name["Turing"]["Account.Name"] is None


def test_custom_relationship(con: duckdb.DuckDBPyConnection) -> None:
    rows = fetch(
        con,
        "SELECT Name, Checkout__r.Name, Checkout__r.Contact__r.LastName FROM Transaction__c "
        "WHERE Checkout__r.Name != null ORDER BY Name",
    )
    assert [
        (r["Name"], r["Checkout__r.Name"], r["Checkout__r.Contact__r.LastName"]) for r in rows
    ] == [
        ("TX-1", "CHK-1", "Lovelace"),
        ("TX-2", "CHK-2", None),
    ]


def test_count_only(con: duckdb.DuckDBPyConnection) -> None:
    compiled = compile_soql("SELECT COUNT() FROM Contact WHERE Email != null", SCHEMA)
    assert compiled.count_only and compiled.paths == []
    assert count(con, compiled) == 2


def test_keywords_and_names_are_case_insensitive(con: duckdb.DuckDBPyConnection) -> None:
    rows = fetch(con, "sElEcT lastname FrOm CONTACT wHeRe LASTNAME = 'lovelace' oRdEr By lastNAME")
    assert rows == [{"__id": ADA, "LastName": "Lovelace"}]


def test_order_object_name_is_not_the_order_by_keyword() -> None:
    compiled = compile_soql("SELECT Id FROM Order ORDER BY OrderNumber", SCHEMA)
    assert compiled.sobject.name == "Order"


# --------------------------------------------------------------------------------------------
# WHERE


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Ticket_Count__c = 5", {"Lovelace"}),
        ("Ticket_Count__c != 5", {"Hopper", "Turing"}),
        ("Ticket_Count__c <> 5", {"Hopper", "Turing"}),
        ("Ticket_Count__c < 12", {"Lovelace"}),
        ("Ticket_Count__c <= 12", {"Lovelace", "Hopper"}),
        ("Ticket_Count__c > 5", {"Hopper"}),
        ("Ticket_Count__c >= 5.0", {"Lovelace", "Hopper"}),
        ("Ticket_Count__c > -1", {"Lovelace", "Hopper"}),
        ("HasOptedOutOfEmail = true", {"Hopper"}),
        ("HasOptedOutOfEmail = FALSE", {"Lovelace", "Turing"}),
        ("MailingCity = 'LONDON'", {"Lovelace"}),
        ("MailingCity = 'New York'", {"Hopper"}),
        ("MailingCity < 'm'", {"Lovelace"}),
    ],
)
def test_comparison_operators(
    con: duckdb.DuckDBPyConnection, where: str, expected: set[str]
) -> None:
    assert contacts(con, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Email = null", {"Turing"}),
        ("Email != null", {"Lovelace", "Hopper"}),
        ("Account.Name = null", {"Turing"}),
        ("MailingCity != 'London'", {"Hopper", "Turing"}),
        ("NOT MailingCity = 'London'", {"Hopper", "Turing"}),
        ("NOT (Ticket_Count__c > 6)", {"Lovelace", "Turing"}),
        ("HasOptedOutOfEmail = null", {"Lovelace", "Turing"}),
        ("HasOptedOutOfEmail != null", {"Hopper"}),
        ("Ticket_Count__c > null", set()),
    ],
)
def test_null_semantics_follow_soql(
    con: duckdb.DuckDBPyConnection, where: str, expected: set[str]
) -> None:
    """SOQL has no unknown: `!=` and NOT match records whose field is null."""
    assert contacts(con, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (
            "MailingCity = 'London' OR MailingCity = 'New York' OR Email = null",
            {"Lovelace", "Hopper", "Turing"},
        ),
        ("Ticket_Count__c > 1 AND Ticket_Count__c < 10 AND Email != null", {"Lovelace"}),
        ("Email = null OR (Ticket_Count__c > 1 AND Fan_Tier__c = 'silver')", {"Turing", "Hopper"}),
        ("(Email = null OR Ticket_Count__c > 1) AND Fan_Tier__c = 'silver'", {"Hopper"}),
        ("NOT (Email = null OR Fan_Tier__c = 'Gold')", {"Hopper"}),
        ("((((LastName = 'Turing'))))", {"Turing"}),
    ],
)
def test_boolean_logic_and_parentheses(
    con: duckdb.DuckDBPyConnection, where: str, expected: set[str]
) -> None:
    assert contacts(con, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Fan_Tier__c IN ('gold', 'Platinum')", {"Lovelace"}),
        ("Fan_Tier__c NOT IN ('Gold')", {"Hopper", "Turing"}),
        ("Fan_Tier__c IN ('Gold', null)", {"Lovelace", "Turing"}),
        ("Fan_Tier__c NOT IN ('Gold', null)", {"Hopper"}),
        ("Ticket_Count__c IN (5, 12)", {"Lovelace", "Hopper"}),
        ("NOT Fan_Tier__c IN ('Gold')", {"Hopper", "Turing"}),
        (f"AccountId IN ('{ACME}', '{GLOBEX[:15]}')", {"Lovelace", "Hopper"}),
        (f"Id = '{ADA[:15]}'", {"Lovelace"}),
        (f"Id != '{ADA}'", {"Hopper", "Turing"}),
    ],
)
def test_in_lists_and_ids(con: duckdb.DuckDBPyConnection, where: str, expected: set[str]) -> None:
    assert contacts(con, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("LastName LIKE 'lo%'", {"Lovelace"}),
        ("LastName LIKE '%PER'", {"Hopper"}),
        ("LastName LIKE 'T_ring'", {"Turing"}),
        ("LastName LIKE 'T_ing'", set()),
        ("Title LIKE '50\\% off%'", {"Turing"}),
        ("Title LIKE '50\\%%'", {"Turing"}),
        ("Title LIKE '5\\%%'", set()),
        ("Title LIKE '%off\\_deal%'", {"Turing"}),
        ("Title LIKE '%off\\_dea'", set()),
        ("Title LIKE '%\\\\ \\'quoted\\''", {"Turing"}),
        ("NOT LastName LIKE 'L%'", {"Hopper", "Turing"}),
        ("Account.Name LIKE 'ac%'", {"Lovelace"}),
    ],
)
def test_like(con: duckdb.DuckDBPyConnection, where: str, expected: set[str]) -> None:
    assert contacts(con, where) == expected


def test_string_escapes_decode(con: duckdb.DuckDBPyConnection) -> None:
    assert contacts(con, "Title = '50% off_deal \\\\ \\'quoted\\''") == {"Turing"}
    compiled = compile_soql("SELECT Id FROM Contact WHERE Title = 'a\\nb\\tc\\\"d'", SCHEMA)
    assert compiled.params == ['a\nb\tc"d']


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Birthdate = 1990-12-10", {"Lovelace"}),
        ("Birthdate < 1990-01-01", {"Hopper"}),
        ("Birthdate >= 1985-06-01", {"Lovelace", "Hopper"}),
        ("Last_Purchase__c = 2024-01-31T10:00:00Z", {"Lovelace"}),
        ("Last_Purchase__c = 2024-01-31T10:00:00.000Z", {"Lovelace"}),
        ("Last_Purchase__c = 2024-01-31T11:00:00+01:00", {"Lovelace"}),
        ("Last_Purchase__c = 2024-01-31T04:00:00-05:00", {"Hopper"}),
        ("Last_Purchase__c < 2024-01-31T09:30:00Z", {"Hopper"}),
        ("Last_Purchase__c > 2024-01-31T04:30:00-05:00", {"Lovelace"}),
    ],
)
def test_dates_and_datetimes(
    con: duckdb.DuckDBPyConnection, where: str, expected: set[str]
) -> None:
    assert contacts(con, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("CreatedDate = TODAY", {"Lovelace"}),
        ("CreatedDate < TODAY", {"Hopper", "Turing"}),
        ("CreatedDate = YESTERDAY", set()),
        ("CreatedDate = LAST_N_DAYS:12", {"Lovelace", "Hopper"}),
        ("CreatedDate > LAST_N_DAYS:12", set()),
        ("CreatedDate != THIS_MONTH", {"Hopper", "Turing"}),
        ("CreatedDate = LAST_YEAR", {"Turing"}),
        ("Birthdate < LAST_N_DAYS:30", {"Lovelace", "Hopper"}),
    ],
)
def test_date_literals(con: duckdb.DuckDBPyConnection, where: str, expected: set[str]) -> None:
    assert contacts(con, where) == expected


def test_deleted_rows_hidden_unless_include_deleted(con: duckdb.DuckDBPyConnection) -> None:
    text = "SELECT LastName FROM Contact WHERE AccountId = '" + ACME + "'"
    assert [r["LastName"] for r in fetch(con, text)] == ["Lovelace"]
    both = fetch(con, text + " ORDER BY LastName", include_deleted=True)
    assert [r["LastName"] for r in both] == ["Gone", "Lovelace"]
    deleted = fetch(con, "SELECT Name FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert [r["Name"] for r in deleted] == ["Initech"]
    assert fetch(con, "SELECT Name FROM Account WHERE IsDeleted = true") == []


# --------------------------------------------------------------------------------------------
# ORDER BY, LIMIT, OFFSET


def test_order_by_defaults_to_nulls_first_ascending(con: duckdb.DuckDBPyConnection) -> None:
    rows = fetch(con, "SELECT LastName FROM Contact ORDER BY Ticket_Count__c")
    assert [r["LastName"] for r in rows] == ["Turing", "Lovelace", "Hopper"]
    rows = fetch(con, "SELECT LastName FROM Contact ORDER BY Ticket_Count__c DESC")
    assert [r["LastName"] for r in rows] == ["Hopper", "Lovelace", "Turing"]
    rows = fetch(con, "SELECT LastName FROM Contact ORDER BY Ticket_Count__c ASC NULLS LAST")
    assert [r["LastName"] for r in rows] == ["Lovelace", "Hopper", "Turing"]
    rows = fetch(con, "SELECT LastName FROM Contact ORDER BY Ticket_Count__c DESC NULLS FIRST")
    assert [r["LastName"] for r in rows] == ["Turing", "Hopper", "Lovelace"]


def test_order_by_text_ignores_case_and_parent_paths(con: duckdb.DuckDBPyConnection) -> None:
    rows = fetch(
        con, "SELECT MailingCity FROM Contact WHERE MailingCity != null ORDER BY MailingCity"
    )
    assert [r["MailingCity"] for r in rows] == ["London", "new york"]
    rows = fetch(con, "SELECT LastName FROM Contact ORDER BY Account.Name DESC, LastName")
    assert [r["LastName"] for r in rows] == ["Hopper", "Lovelace", "Turing"]


def test_limit_offset_and_counts(con: duckdb.DuckDBPyConnection) -> None:
    text = "SELECT LastName FROM Contact ORDER BY LastName LIMIT 2 OFFSET 1"
    rows = fetch(con, text)
    assert [r["LastName"] for r in rows] == ["Lovelace", "Turing"]
    assert count(con, compile_soql(text, SCHEMA)) == 2
    assert count(con, compile_soql("SELECT Id FROM Contact LIMIT 0", SCHEMA)) == 0
    assert count(con, compile_soql("SELECT Id FROM Contact OFFSET 2", SCHEMA)) == 1
    assert count(con, compile_soql("SELECT Id FROM Contact", SCHEMA)) == 3
    assert count(con, compile_soql("SELECT Id FROM Contact", SCHEMA, include_deleted=True)) == 4


def test_count_sql_joins_only_what_the_filter_needs(con: duckdb.DuckDBPyConnection) -> None:
    compiled = compile_soql(
        "SELECT Account.Name, Owner.Name FROM Contact WHERE Account.Owner.Username LIKE 'ada%'",
        SCHEMA,
    )
    assert compiled.count_sql.count("LEFT JOIN") == 2
    assert compiled.sql.count("LEFT JOIN") == 3
    assert count(con, compiled) == 1


# --------------------------------------------------------------------------------------------
# Errors


def test_unexpected_first_token_is_the_bare_message() -> None:
    error = error_of("SELEKT Name FROM Account")
    assert (error.error_code, error.message) == ("MALFORMED_QUERY", "unexpected token: SELEKT")


@pytest.mark.parametrize(
    ("text", "column", "token"),
    [
        ("SELECT Id FROM Account WHERE", 29, "<EOF>"),
        ("SELECT Id, FROM Account", 12, "FROM"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", 56, "OR"),
        ("SELECT Id FROM Account LIMIT -1", 30, "-1"),
        ("SELECT Id FROM Account LIMIT 1.5", 30, "1.5"),
        ("SELECT Id FROM Account;", 23, ";"),
        ("SELECT Id FROM Account WHERE Name = Name", 37, "Name"),
        ("SELECT COUNT(), Id FROM Account", 15, ","),
        ("SELECT Id FROM Account WHERE Name IN ()", 39, ")"),
        ('SELECT Id FROM Account WHERE Name = "x"', 37, '"'),
    ],
)
def test_syntax_errors_point_at_the_token(text: str, column: int, token: str) -> None:
    error = error_of(text)
    assert error.error_code == "MALFORMED_QUERY"
    assert error.message == (
        f"\n{text}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\n"
        f"unexpected token: '{token}'"
    )


def test_unknown_field_matches_the_org_message() -> None:
    text = "SELECT Bacon__c FROM Account LIMIT 2"
    error = error_of(text)
    assert error.error_code == "INVALID_FIELD"
    assert error.message == (
        "\nSELECT Bacon__c FROM Account LIMIT 2\n       ^\nERROR at Row:1:Column:8\n"
        "No such column 'Bacon__c' on entity 'Account'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "SELECT Id FROM Contact WHERE Bacon__c = 1",
            "No such column 'Bacon__c' on entity 'Contact'",
        ),
        ("SELECT Account.Bacon FROM Contact", "No such column 'Bacon' on entity 'Account'"),
        ("SELECT Id FROM Contact ORDER BY Bacon", "No such column 'Bacon'"),
        ("SELECT Foo.Name FROM Contact", "Didn't understand relationship 'Foo'"),
        ("SELECT AccountId.Name FROM Contact", "Didn't understand relationship 'AccountId'"),
        ("SELECT Checkout__c.Name FROM Transaction__c", "relationship 'Checkout__c'"),
        ("SELECT Who.Name FROM Task", "relationship 'Who'"),
        ("SELECT Id FROM Product2 ORDER BY Description", "can not be sorted"),
    ],
)
def test_invalid_fields(text: str, fragment: str) -> None:
    error = error_of(text)
    assert error.error_code == "INVALID_FIELD"
    assert fragment in error.message


def test_unknown_object() -> None:
    error = error_of("SELECT Id FROM Foo")
    assert error.error_code == "INVALID_TYPE"
    assert error.message.startswith(
        "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\n"
    )
    assert "sObject type 'Foo' is not supported." in error.message


def test_duplicate_field() -> None:
    error = error_of("SELECT Id, Name, name FROM Account")
    assert error.error_code == "MALFORMED_QUERY"
    assert error.message.endswith("duplicate field selected: name")


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = '2024-01-31'",
            "field 'CloseDate' must be of type date and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Amount > '5'",
            "field 'Amount' must be of type double and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Account WHERE IsDeleted = 'true'",
            "field 'IsDeleted' must be of type boolean and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Account WHERE Name = 2024-01-31",
            "field 'Name' must be of type string and should be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Account WHERE Name IN ('a', 5)",
            "field 'Name' must be of type string and should be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate = 2024-01-31T00:00:00Z",
            "field 'Birthdate' must be of type date",
        ),
        (
            "SELECT Id FROM Contact WHERE CreatedDate > 2024-01-31",
            "field 'CreatedDate' must be of type dateTime",
        ),
        (
            "SELECT Id FROM Contact WHERE Account.CreatedDate > 5",
            "field 'Account.CreatedDate' must be of type dateTime",
        ),
        (
            "SELECT Id FROM Contact WHERE Ticket_Count__c LIKE '5%'",
            "field 'Ticket_Count__c' must be of type double and should not be enclosed in quotes",
        ),
    ],
)
def test_type_mismatches(text: str, detail: str) -> None:
    error = error_of(text)
    assert error.error_code == "INVALID_FIELD"
    assert error.message.endswith(detail)


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        (
            "SELECT Id FROM Contact WHERE Id = 'nope'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: nope",
        ),
        (
            "SELECT Id FROM Contact OFFSET 2001",
            "NUMBER_OUTSIDE_VALID_RANGE",
            "Maximum SOQL offset allowed is 2000",
        ),
        ("SELECT Id FROM Contact WHERE Birthdate = 2024-02-30", "MALFORMED_QUERY", "invalid value"),
        (
            "SELECT Id FROM Contact WHERE Name = 'open",
            "MALFORMED_QUERY",
            "mismatched character '<EOF>'",
        ),
        (
            "SELECT Id FROM Contact WHERE Name = 'a\\qb'",
            "MALFORMED_QUERY",
            "Illegal character sequence '\\q'",
        ),
        (
            "SELECT Account.Owner.CreatedBy.CreatedBy.CreatedBy.CreatedBy.Name FROM Contact",
            "MALFORMED_QUERY",
            "5 levels",
        ),
        (
            "SELECT Id FROM Contact WHERE " + "(" * 100 + "Name = 'a'" + ")" * 100,
            "MALFORMED_QUERY",
            "nested too deeply",
        ),
    ],
)
def test_other_errors(text: str, code: str, fragment: str) -> None:
    error = error_of(text)
    assert error.error_code == code
    assert fragment in error.message


def test_multiline_query_reports_row_and_column() -> None:
    error = error_of("SELECT Id\nFROM Contact\nWHERE Nope = 1")
    assert error.message.startswith("\nWHERE Nope = 1\n      ^\nERROR at Row:3:Column:7\n")


# --------------------------------------------------------------------------------------------
# Injection and fuzzing


def test_literals_never_reach_the_sql_text(con: duckdb.DuckDBPyConnection) -> None:
    hostile = 'x\'); DROP TABLE "Contact"; --'
    escaped = hostile.replace("'", "\\'")
    compiled = compile_soql(f"SELECT Id FROM Contact WHERE LastName = '{escaped}'", SCHEMA)
    assert "DROP" not in compiled.sql and compiled.params == [hostile]
    assert con.execute(compiled.sql, compiled.params).fetchall() == []


VALID = [
    "SELECT Id, Name, Account.Name FROM Contact WHERE Name = 'a' AND Ticket_Count__c > 3",
    "SELECT COUNT() FROM Account WHERE Name LIKE 'A%' OR Name IN ('x', 'y')",
    "SELECT Name, Checkout__r.Name FROM Transaction__c ORDER BY Name DESC NULLS LAST LIMIT 5",
    "SELECT Id FROM Contact WHERE NOT (Birthdate < 2000-01-01 OR Email = null) OFFSET 1",
    "SELECT Id FROM Contact WHERE Last_Purchase__c >= 2024-01-31T10:00:00.5+01:00",
    "SELECT Id FROM Opportunity WHERE CloseDate = LAST_N_DAYS:7 AND Amount != 1.5",
    f"SELECT Id FROM Contact WHERE AccountId NOT IN ('{ACME}', null)",
]
PIECES = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER BY", "LIMIT", "OFFSET",
    "COUNT()", "Id", "Name", "Account.Name", "Contact", "Account", "Order", "null", "true",
    "TODAY", "LAST_N_DAYS:", "2024-01-31", "2024-13-45", "2024-01-31T10:00:00Z", "9" * 30,
    "'", "'x'", "\\", "(", ")", ",", "=", "!=", "<", ">=", ":", ";", "-", ".", "\"", "٣",
    "\x00", "ü", "DESC", "NULLS", "FIRST", " ", "\n", "Ticket_Count__c", "Birthdate",
]  # fmt: skip


def mutate(text: str, rng: random.Random) -> str:
    pos = rng.randrange(len(text) + 1)
    action = rng.randrange(3)
    if action == 0:
        return text[:pos] + text[pos + 1 :]
    if action == 1:
        return text[:pos] + rng.choice(PIECES) + text[pos:]
    return text[:pos] + text[pos:][::-1]


FILTER_VALUES = {
    "LastName": ["'Lovelace'", "'x\\'y'", "null"],
    "Ticket_Count__c": ["5", "-1.5", "null"],
    "Birthdate": ["1990-12-10", "TODAY", "LAST_N_DAYS:3", "null"],
    "Last_Purchase__c": ["2024-01-31T10:00:00Z", "2024-01-31T10:00:00-05:00", "YESTERDAY"],
    "HasOptedOutOfEmail": ["true", "false", "null"],
    "Account.Name": ["'Acme'", "null"],
    "AccountId": [f"'{ACME}'", f"'{GLOBEX[:15]}'", "null"],
    "Account.Owner.Username": ["'ada@example.com'"],
}
OPERATORS = ["=", "!=", "<>", "<", "<=", ">", ">="]
LIKE_PATTERNS = ["'a%'", "'%\\_%'", "'_'"]


def random_condition(rng: random.Random, depth: int = 0) -> str:
    """A well-formed WHERE condition; some are still ill-typed, as clients write them."""
    roll = rng.random()
    if depth < 3 and roll < 0.3:
        joiner = rng.choice([" AND ", " OR "])
        operands = [random_condition(rng, depth + 1) for _ in range(rng.randrange(2, 4))]
        return "(" + joiner.join(operands) + ")"
    if depth < 3 and roll < 0.4:
        return f"NOT ({random_condition(rng, depth + 1)})"
    field = rng.choice(list(FILTER_VALUES))
    values = FILTER_VALUES[field]
    form = rng.randrange(3)
    if form == 0:
        return f"{field} {rng.choice(OPERATORS)} {rng.choice(values)}"
    if form == 1:
        listed = ", ".join(rng.sample(values, rng.randrange(1, len(values) + 1)))
        return f"{field} {rng.choice(['IN', 'NOT IN'])} ({listed})"
    pattern = rng.choice(LIKE_PATTERNS)
    return f"{field} LIKE {pattern}"


def random_query(rng: random.Random) -> str:
    fields = rng.sample(["Id", "LastName", "Account.Name", "Owner.Username", "Birthdate"], 3)
    order = rng.choice(["", " ORDER BY LastName", " ORDER BY Account.Name DESC NULLS FIRST"])
    page = rng.choice(["", " LIMIT 2", " LIMIT 5 OFFSET 1", " OFFSET 2"])
    select = "COUNT()" if rng.random() < 0.2 else ", ".join(fields)
    return f"SELECT {select} FROM Contact WHERE {random_condition(rng)}{order}{page}"


def fuzz_inputs(rng: random.Random) -> Iterator[str]:
    for _ in range(400):
        yield random_query(rng)
    for _ in range(600):
        yield " ".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 14)))
    for _ in range(600):
        yield "".join(chr(rng.randrange(0, 0x250)) for _ in range(rng.randrange(0, 40)))
    for _ in range(1500):
        text = rng.choice(VALID)
        for _ in range(rng.randrange(1, 4)):
            text = mutate(text, rng)
        yield text


def test_fuzz_raises_only_salesforce_errors(con: duckdb.DuckDBPyConnection) -> None:
    """Whatever arrives in `q`, the answer is a SalesforceError or SQL that DuckDB runs."""
    rng = random.Random(20240131)
    compiled_count = 0
    for text in [*VALID, *fuzz_inputs(rng)]:
        try:
            compiled = compile_soql(text, SCHEMA, include_deleted=rng.random() < 0.5)
        except SalesforceError as error:
            assert error.status == 400 and error.error_code
            continue
        except Exception as error:  # the assertion below names the input that broke
            pytest.fail(f"{text!r} raised {error!r}")
        try:
            con.execute(compiled.sql, compiled.params).fetchall()
            con.execute(compiled.count_sql, compiled.params).fetchall()
        except duckdb.Error as error:
            pytest.fail(f"{text!r} compiled to SQL DuckDB rejects: {error!r}")
        compiled_count += 1
    assert compiled_count > 200
