"""SOQL for the sandbox org: the subset sf-assets sends, parsed by hand and compiled to DuckDB SQL.

A real org answers a bad query with a precise error (`MALFORMED_QUERY`, `INVALID_FIELD`,
`INVALID_TYPE`, a caret under the offending token), and client code should meet those errors
here rather than in production. So the parser is as strict as Salesforce where that is cheap:
AND and OR cannot be mixed without parentheses, literals are typed (a quoted date is an error),
and dateTime literals only compare to dateTime fields.

The compiler reproduces where SOQL's semantics differ from SQL's: text compares
case-insensitively, a 15-character id equals its 18-character form, `!=` and `NOT IN` match
records whose field is null, a boolean `= null` means false, and ascending sorts put nulls first.

Every literal becomes a positional parameter and every identifier comes from the schema, so no
part of the query text can reach DuckDB as SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import cast

from sf_sandbox.errors import SalesforceError
from sf_sandbox.schema import NUMBER_TYPES, Field, Schema, SObject

MALFORMED_QUERY = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"
# A real org reports a wrongly typed filter value ("... must be of type date and should not be
# enclosed in quotes") as INVALID_FIELD, not MALFORMED_QUERY.
TYPE_MISMATCH = INVALID_FIELD
MAX_OFFSET = 2000
MAX_RELATIONSHIP_HOPS = 5
MAX_NESTING = 64


# --------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class SelectPath:
    """One selected field, e.g. ("Id",) or ("Account", "Name"), as the JSON renderer needs it.

    `parts` uses the schema's casing (relationship names for parents), whatever the query wrote.
    """

    parts: tuple[str, ...]
    column: str
    field: Field


@dataclass
class CompiledQuery:
    """A query ready to run: `sql` returns the rows, `count_sql` the `totalSize` of the answer.

    Both statements take the same `params`; `sql` also selects the root record's Id as `__id`
    so the caller can build `attributes.url` whether or not the query selected `Id`.
    """

    sobject: SObject
    paths: list[SelectPath]
    count_only: bool
    sql: str
    count_sql: str
    params: list[object]


def parent_id_column(chain: tuple[str, ...]) -> str:
    """The column of `sql` that holds the Id of the parent reached through `chain`
    (lower-cased relationship names), so answers can give each parent its own URL."""
    return "__id:" + ".".join(part.lower() for part in chain)


def compile_soql(
    text: str,
    schema: Schema,
    *,
    include_deleted: bool = False,
    deleted_since: datetime | None = None,
) -> CompiledQuery:
    """Parse `text` and compile it against `schema`; any problem raises SalesforceError (400).

    `include_deleted` is the queryAll behaviour: deleted rows (IsDeleted = true) and archived
    ones (IsArchived = true, on objects that have the field) stay visible. `deleted_since`
    limits the deleted rows to those still in the recycle bin, deleted at or after it.
    """
    query = _Parser(text).parse()
    return _Compiler(text, schema, query, include_deleted, deleted_since).compile()


# --------------------------------------------------------------------------------------------
# Errors in Salesforce's shape


def _location(text: str, pos: int) -> tuple[int, int, str]:
    """Row and column (1-based) of offset `pos`, and the line it is on, for the caret display."""
    pos = max(0, min(pos, len(text)))
    row = text.count("\n", 0, pos) + 1
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start : end if end >= 0 else len(text)]
    return row, pos - start + 1, line


def _query_error(code: str, text: str, pos: int, detail: str) -> SalesforceError:
    """The org's query error: the query line, a caret under the problem, its row and column."""
    row, column, line = _location(text, pos)
    caret = " " * (column - 1) + "^"
    message = f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{detail}"
    return SalesforceError(400, code, message)


def _no_such_column(text: str, pos: int, name: str, entity: str) -> SalesforceError:
    return _query_error(
        INVALID_FIELD,
        text,
        pos,
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


def _bad_relationship(text: str, pos: int, name: str) -> SalesforceError:
    return _query_error(
        INVALID_FIELD,
        text,
        pos,
        f"Didn't understand relationship '{name}' in field path. If you are attempting to use "
        "a custom relationship, be sure to append the '__r' after the custom relationship name. "
        "Please reference your WSDL or the describe call for the appropriate names.",
    )


def _unsupported_object(text: str, pos: int, name: str) -> SalesforceError:
    return _query_error(
        INVALID_TYPE,
        text,
        pos,
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    )


# --------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class _Token:
    """One lexical unit. `value` is a string literal decoded; `pattern` is the same literal as a
    DuckDB LIKE pattern, because `\\%` and `\\_` mean a literal % or _ only inside LIKE."""

    kind: str  # word, string, number, date, datetime, op, punct, error, eof
    text: str
    pos: int
    value: str = ""
    pattern: str = ""

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words

    def is_punct(self, char: str) -> bool:
        return self.kind == "punct" and self.text == char


_SPACE = re.compile(r"\s+", re.ASCII)
_PLAIN = re.compile(
    r"""
    (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>[+-]?\d+(?:\.\d+)?)
    |(?P<word>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)
    |(?P<op><=|>=|<>|!=|=|<|>)
    |(?P<punct>[(),:])
    """,
    re.VERBOSE | re.ASCII,
)
# Escapes SOQL allows in string literals (letters in either case), decoded value first.
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"'}


def _tokenize(text: str) -> list[_Token]:
    """Split the query into tokens, ending with `eof`.

    A character no token starts with becomes an `error` token, so the parser reports it like any
    other unexpected token, with its position.
    """
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        space = _SPACE.match(text, pos)
        if space:
            pos = space.end()
            continue
        token = _scan_string(text, pos) if text[pos] == "'" else _scan_plain(text, pos)
        tokens.append(token)
        pos += len(token.text)
    tokens.append(_Token("eof", "<EOF>", len(text)))
    return tokens


def _scan_plain(text: str, pos: int) -> _Token:
    match = _PLAIN.match(text, pos)
    if match is None or match.lastgroup is None:
        return _Token("error", text[pos], pos)
    return _Token(match.lastgroup, match.group(), pos)


def _scan_string(text: str, start: int) -> _Token:
    """A single-quoted literal with backslash escapes, decoded for `=` and for LIKE."""
    value: list[str] = []
    pattern: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "'":
            literal = text[start : pos + 1]
            return _Token("string", literal, start, "".join(value), "".join(pattern))
        if char == "\\":
            decoded, like = _decode_escape(text, pos)
            value.append(decoded)
            pattern.append(like)
            pos += 2
            continue
        value.append(char)
        pattern.append(char)
        pos += 1
    row, column, _ = _location(text, len(text))
    detail = f"line {row}:{column - 1} mismatched character '<EOF>' expecting '''"
    raise _query_error(MALFORMED_QUERY, text, start, detail)


def _decode_escape(text: str, pos: int) -> tuple[str, str]:
    """The escape at `pos` as (value character, LIKE pattern text)."""
    code = text[pos + 1 : pos + 2]
    if code == "\\":
        return "\\", "\\\\"
    if code in ("%", "_"):
        return code, "\\" + code
    if code.lower() in _ESCAPES:
        return _ESCAPES[code.lower()], _ESCAPES[code.lower()]
    sequence = text[pos : pos + 2]
    detail = f"Invalid string literal. Illegal character sequence '{sequence}' in string literal."
    raise _query_error(MALFORMED_QUERY, text, pos, detail)


# --------------------------------------------------------------------------------------------
# Syntax tree


@dataclass(frozen=True)
class _Path:
    """A field reference as written: `Name`, `Account.Owner.Name`."""

    names: tuple[str, ...]
    text: str
    pos: int


@dataclass(frozen=True)
class _Literal:
    """A filter value. `kind` is string, number, boolean, null, date, datetime or range (a date
    literal such as TODAY, held as the half-open day range [start, end))."""

    kind: str
    value: object
    token: _Token


@dataclass(frozen=True)
class _Comparison:
    path: _Path
    op: str
    literal: _Literal


@dataclass(frozen=True)
class _Membership:
    path: _Path
    negated: bool
    literals: tuple[_Literal, ...]


@dataclass(frozen=True)
class _Like:
    path: _Path
    literal: _Literal


@dataclass(frozen=True)
class _Not:
    operand: _Condition


@dataclass(frozen=True)
class _Junction:
    op: str  # AND or OR
    operands: tuple[_Condition, ...]


_Condition = _Comparison | _Membership | _Like | _Not | _Junction


@dataclass(frozen=True)
class _OrderItem:
    path: _Path
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class _Query:
    object_name: str
    object_pos: int
    fields: tuple[_Path, ...]
    count_only: bool
    where: _Condition | None
    order_by: tuple[_OrderItem, ...]
    limit: int | None
    offset: int | None


# --------------------------------------------------------------------------------------------
# Literal values


def _today() -> date:
    """The org's 'today' for date literals: UTC, as the sandbox keeps no user time zone."""
    return datetime.now(UTC).date()


def _month_start(day: date, shift: int) -> date:
    index = day.year * 12 + day.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


_DAY = timedelta(days=1)
# Date literal -> (today, n) -> [start, end). Ranges follow the SOQL reference: LAST_N_DAYS
# includes today, NEXT_N_DAYS starts tomorrow.
_DATE_RANGES: dict[str, Callable[[date, int], tuple[date, date]]] = {
    "YESTERDAY": lambda t, n: (t - _DAY, t),
    "TODAY": lambda t, n: (t, t + _DAY),
    "TOMORROW": lambda t, n: (t + _DAY, t + 2 * _DAY),
    "LAST_90_DAYS": lambda t, n: (t - 90 * _DAY, t + _DAY),
    "NEXT_90_DAYS": lambda t, n: (t + _DAY, t + 91 * _DAY),
    "LAST_N_DAYS": lambda t, n: (t - n * _DAY, t + _DAY),
    "NEXT_N_DAYS": lambda t, n: (t + _DAY, t + (n + 1) * _DAY),
    "THIS_MONTH": lambda t, n: (_month_start(t, 0), _month_start(t, 1)),
    "LAST_MONTH": lambda t, n: (_month_start(t, -1), _month_start(t, 0)),
    "NEXT_MONTH": lambda t, n: (_month_start(t, 1), _month_start(t, 2)),
    "THIS_YEAR": lambda t, n: (date(t.year, 1, 1), date(t.year + 1, 1, 1)),
    "LAST_YEAR": lambda t, n: (date(t.year - 1, 1, 1), date(t.year, 1, 1)),
    "NEXT_YEAR": lambda t, n: (date(t.year + 1, 1, 1), date(t.year + 2, 1, 1)),
}
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def _parse_number(text: str) -> int | float:
    """Integers stay exact while DuckDB's BIGINT can hold them; anything longer is a double."""
    digits = text.lstrip("+-")
    if "." in text or len(digits) > 18:
        return float(text)
    return int(text)


def _parse_date(text: str) -> date:
    return date(int(text[0:4]), int(text[5:7]), int(text[8:10]))


def _parse_datetime(text: str) -> datetime:
    """A dateTime literal as naive UTC, the form the store keeps TIMESTAMP columns in."""
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError(text)
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    if sign is None:
        return moment
    if int(off_h) > 23 or int(off_m) > 59:
        raise ValueError(text)
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    return moment - offset if sign == "+" else moment + offset


# Token kind -> the Python value a literal of that kind binds as.
_VALUE_PARSERS: dict[str, Callable[[_Token], object]] = {
    "string": lambda token: token.value,
    "number": lambda token: _parse_number(token.text),
    "date": lambda token: _parse_date(token.text),
    "datetime": lambda token: _parse_datetime(token.text),
}


# --------------------------------------------------------------------------------------------
# Parser

# Words that cannot name a field; a dotted path is never a keyword.
_RESERVED = frozenset(
    {
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "NULL", "TRUE", "FALSE",
        "ORDER", "BY", "LIMIT", "OFFSET", "GROUP", "HAVING", "WITH", "USING", "FOR", "ASC",
        "DESC", "NULLS", "INCLUDES", "EXCLUDES", "TYPEOF",
    }
)  # fmt: skip
# `Order` and `Group` are also standard object names, so FROM accepts them.
_NOT_OBJECTS = _RESERVED - {"ORDER", "GROUP"}
_OPERATORS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
# Valid SOQL the sandbox does not run, named so that the error says so instead of calling the
# query malformed at a token a real org would accept.
_UNSUPPORTED_CLAUSES = {
    "GROUP": "GROUP BY",
    "HAVING": "HAVING",
    "WITH": "WITH",
    "USING": "USING SCOPE",
    "FOR": "FOR VIEW, FOR REFERENCE and FOR UPDATE",
    "UPDATE": "UPDATE TRACKING and UPDATE VIEWSTAT",
}
_AGGREGATES = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})


class _Parser:
    """Recursive descent over the token list, one method per grammar rule:

    query     := SELECT (COUNT '(' ')' | path (',' path)*) FROM object
                 [WHERE condition] [ORDER BY item (',' item)*] [LIMIT int] [OFFSET int]
    condition := unary (AND unary)* | unary (OR unary)*      -- mixing needs parentheses
    unary     := NOT unary | '(' condition ')' | predicate
    predicate := path (op value | [NOT] IN '(' value (',' value)* ')' | LIKE value)
    item      := path [ASC | DESC] [NULLS (FIRST | LAST)]
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    # Token access

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def ahead(self, n: int) -> _Token:
        """The token `n` places after the current one (the end token past the end)."""
        return self.tokens[min(self.index + n, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def accept_word(self, word: str) -> bool:
        if self.peek().is_word(word):
            self.advance()
            return True
        return False

    def accept_punct(self, char: str) -> bool:
        if self.peek().is_punct(char):
            self.advance()
            return True
        return False

    def expect_word(self, word: str) -> None:
        if not self.accept_word(word):
            raise self.unexpected()

    def expect_punct(self, char: str) -> None:
        if not self.accept_punct(char):
            raise self.unexpected()

    def unsupported(self, what: str, token: _Token | None = None) -> SalesforceError:
        token = token or self.peek()
        detail = (
            f"{what} is valid SOQL that the sandbox org does not run; "
            "rewrite the query without it to test against the sandbox"
        )
        return _query_error(MALFORMED_QUERY, self.text, token.pos, detail)

    def reject_unsupported_clause(self) -> None:
        token = self.peek()
        if token.kind == "word" and token.text.upper() in _UNSUPPORTED_CLAUSES:
            raise self.unsupported(_UNSUPPORTED_CLAUSES[token.text.upper()])

    def unexpected(self, token: _Token | None = None) -> SalesforceError:
        """Salesforce answers a bad first word with the bare message, anything later with the
        caret display and the token in quotes."""
        token = token or self.peek()
        if token is self.tokens[0]:
            return SalesforceError(400, MALFORMED_QUERY, f"unexpected token: {token.text}")
        detail = f"unexpected token: '{token.text}'"
        return _query_error(MALFORMED_QUERY, self.text, token.pos, detail)

    # Clauses

    def parse(self) -> _Query:
        self.expect_word("SELECT")
        count_only, fields = self.parse_select_list()
        self.expect_word("FROM")
        object_token = self.parse_object_name()
        self.reject_unsupported_clause()
        where = self.parse_condition() if self.accept_word("WHERE") else None
        self.reject_unsupported_clause()
        order_by = self.parse_order_by()
        limit = self.parse_integer_clause("LIMIT")
        offset = self.parse_integer_clause("OFFSET")
        self.reject_unsupported_clause()
        if self.peek().kind != "eof":
            raise self.unexpected()
        return _Query(
            object_name=object_token.text,
            object_pos=object_token.pos,
            fields=tuple(fields),
            count_only=count_only,
            where=where,
            order_by=order_by,
            limit=limit,
            offset=offset,
        )

    def parse_select_list(self) -> tuple[bool, list[_Path]]:
        if (
            self.peek().is_word("COUNT")
            and self.ahead(1).is_punct("(")
            and (self.ahead(2).is_punct(")"))
        ):
            self.advance()
            self.expect_punct("(")
            self.expect_punct(")")
            return True, []
        fields = [self.parse_selected()]
        while self.accept_punct(","):
            fields.append(self.parse_selected())
        return False, fields

    def parse_selected(self) -> _Path:
        """One entry of the select list: a field path, or a form the sandbox names as
        unsupported (subqueries, aggregates, TYPEOF, FIELDS())."""
        token, following = self.peek(), self.ahead(1)
        if token.is_punct("(") and following.is_word("SELECT"):
            raise self.unsupported("A parent-to-child subquery")
        if token.is_word("TYPEOF"):
            raise self.unsupported("TYPEOF")
        if token.kind == "word" and following.is_punct("("):
            name = token.text.upper()
            if name in _AGGREGATES:
                raise self.unsupported(f"The aggregate function {name}()")
            if name == "FIELDS":
                raise self.unsupported("FIELDS()")
        return self.parse_path()

    def parse_object_name(self) -> _Token:
        token = self.peek()
        if token.kind != "word" or "." in token.text or token.text.upper() in _NOT_OBJECTS:
            raise self.unexpected()
        return self.advance()

    def parse_path(self) -> _Path:
        token = self.peek()
        if token.kind != "word" or token.text.upper() in _RESERVED:
            raise self.unexpected()
        self.advance()
        return _Path(tuple(token.text.split(".")), token.text, token.pos)

    def parse_order_by(self) -> tuple[_OrderItem, ...]:
        if not self.accept_word("ORDER"):
            return ()
        self.expect_word("BY")
        items = [self.parse_order_item()]
        while self.accept_punct(","):
            items.append(self.parse_order_item())
        return tuple(items)

    def parse_order_item(self) -> _OrderItem:
        path = self.parse_path()
        descending = self.accept_word("DESC")
        if not descending:
            self.accept_word("ASC")
        nulls_first = not descending
        if self.accept_word("NULLS"):
            if self.accept_word("FIRST"):
                nulls_first = True
            else:
                self.expect_word("LAST")
                nulls_first = False
        return _OrderItem(path, descending, nulls_first)

    def parse_integer_clause(self, keyword: str) -> int | None:
        if not self.accept_word(keyword):
            return None
        return self.parse_count()

    def parse_count(self) -> int:
        """A non-negative integer, as LIMIT, OFFSET and LAST_N_DAYS:n take."""
        token = self.peek()
        if token.kind != "number" or not token.text.isdigit() or len(token.text) > 18:
            raise self.unexpected()
        self.advance()
        return int(token.text)

    # WHERE

    def parse_condition(self) -> _Condition:
        first = self.parse_unary()
        joiner = self.peek()
        if not joiner.is_word("AND", "OR"):
            return first
        op = joiner.text.upper()
        operands = [first]
        while self.accept_word(op):
            operands.append(self.parse_unary())
        if self.peek().is_word("AND", "OR"):
            raise self.unexpected()
        return _Junction(op, tuple(operands))

    def parse_unary(self) -> _Condition:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                detail = "the WHERE clause is nested too deeply"
                raise _query_error(MALFORMED_QUERY, self.text, self.peek().pos, detail)
            if self.accept_word("NOT"):
                return _Not(self.parse_unary())
            if self.accept_punct("("):
                inner = self.parse_condition()
                self.expect_punct(")")
                return inner
            return self.parse_predicate()
        finally:
            self.depth -= 1

    def parse_predicate(self) -> _Condition:
        path = self.parse_path()
        if self.accept_word("NOT"):
            self.expect_word("IN")
            return _Membership(path, True, self.parse_value_list())
        if self.accept_word("IN"):
            return _Membership(path, False, self.parse_value_list())
        if self.accept_word("LIKE"):
            return _Like(path, self.parse_value())
        if self.peek().is_word("INCLUDES", "EXCLUDES"):
            raise self.unsupported(self.peek().text.upper())
        token = self.peek()
        if token.kind != "op":
            raise self.unexpected()
        self.advance()
        return _Comparison(path, _OPERATORS[token.text], self.parse_value())

    def parse_value_list(self) -> tuple[_Literal, ...]:
        if self.peek().is_punct("(") and self.ahead(1).is_word("SELECT"):
            raise self.unsupported("A semi-join (IN or NOT IN with a subquery)")
        self.expect_punct("(")
        values = [self.parse_value()]
        while self.accept_punct(","):
            values.append(self.parse_value())
        self.expect_punct(")")
        return tuple(values)

    def parse_value(self) -> _Literal:
        token = self.peek()
        try:
            literal = self.literal_for(token)
        except (ValueError, OverflowError):
            detail = f"invalid value: {token.text}"
            raise _query_error(MALFORMED_QUERY, self.text, token.pos, detail) from None
        if literal is None:
            raise self.unexpected()
        return literal

    def literal_for(self, token: _Token) -> _Literal | None:
        """The literal starting at `token` (consumed), or None when no value starts there.

        Raises ValueError/OverflowError for impossible dates and out-of-range date literals.
        """
        if token.kind in _VALUE_PARSERS:
            value = _VALUE_PARSERS[token.kind](token)
            self.advance()
            return _Literal(token.kind, value, token)
        if token.is_word("TRUE", "FALSE"):
            self.advance()
            return _Literal("boolean", token.text.upper() == "TRUE", token)
        if token.is_word("NULL"):
            self.advance()
            return _Literal("null", None, token)
        if token.kind == "word" and token.text.upper() in _DATE_RANGES:
            return self.date_range(token)
        return None

    def date_range(self, token: _Token) -> _Literal:
        self.advance()
        name = token.text.upper()
        n = 0
        if "_N_" in name:
            self.expect_punct(":")
            n = self.parse_count()
        return _Literal("range", _DATE_RANGES[name](_today(), n), token)


# --------------------------------------------------------------------------------------------
# Compiler


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _category(field: Field) -> str:
    """The SOQL value type a field compares with, named as Salesforce's messages name it."""
    if field.type in ("id", "reference"):
        return "id"
    if field.type == "boolean":
        return "boolean"
    if field.type == "int":
        return "integer"
    if field.type in NUMBER_TYPES:
        return "double"
    if field.type == "date":
        return "date"
    if field.type == "datetime":
        return "dateTime"
    return "string"


# Literal kinds each category accepts (null is accepted everywhere).
_ACCEPTS = {
    "string": {"string"},
    "id": {"string"},
    "boolean": {"boolean"},
    "integer": {"number"},
    "double": {"number"},
    "date": {"date", "range"},
    "dateTime": {"datetime", "range"},
}
_ID_LITERAL = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?", re.ASCII)


def _looks_like_id(value: object) -> bool:
    """The org rejects an id filter value that cannot be an id; an empty string matches nothing."""
    return value == "" or _ID_LITERAL.fullmatch(str(value)) is not None


@dataclass(frozen=True)
class _Join:
    """LEFT JOIN of a parent table, keyed by its relationship chain from the root."""

    alias: str
    table: str
    child_alias: str
    foreign_key: str


@dataclass(frozen=True)
class _Column:
    """A resolved path: its SQL expression, leaf field, canonical parts and join chain."""

    sql: str
    field: Field
    parts: tuple[str, ...]
    chain: tuple[str, ...]

    @property
    def name(self) -> str:
        return ".".join(self.parts)

    @property
    def category(self) -> str:
        return _category(self.field)


class _Compiler:
    """Resolves the syntax tree against the schema and writes the two SQL statements."""

    def __init__(
        self,
        text: str,
        schema: Schema,
        query: _Query,
        include_deleted: bool,
        deleted_since: datetime | None,
    ) -> None:
        self.text = text
        self.schema = schema
        self.query = query
        self.include_deleted = include_deleted
        self.deleted_since = deleted_since
        self.root = self.resolve_object()
        self.joins: dict[tuple[str, ...], _Join] = {}
        self.filter_chains: set[tuple[str, ...]] = set()
        self.params: list[object] = []

    def compile(self) -> CompiledQuery:
        selected = [] if self.query.count_only else self.select_list()
        where = self.where_clause()
        order_by = self.order_by_clause()
        page = self.page_clause()
        columns = ['t0."Id" AS "__id"'] + [f"{sql} AS {_quote(p.column)}" for p, sql in selected]
        columns += [
            f'{join.alias}."Id" AS {_quote(parent_id_column(chain))}'
            for chain, join in self.joins.items()
        ]
        rows_from = self.from_clause(self.joins)
        sql = f"SELECT {', '.join(columns)}\n{rows_from}{where}\n{order_by}{page}"
        count_from = self.from_clause(self.filter_chains)
        if page:
            count_sql = f"SELECT count(*) FROM (SELECT 1\n{count_from}{where}{page}) AS page"
        else:
            count_sql = f"SELECT count(*)\n{count_from}{where}"
        return CompiledQuery(
            sobject=self.root,
            paths=[path for path, _ in selected],
            count_only=self.query.count_only,
            sql=sql,
            count_sql=count_sql,
            params=self.params,
        )

    # Names

    def resolve_object(self) -> SObject:
        sobject = self.schema.get(self.query.object_name)
        if sobject is None:
            raise _unsupported_object(self.text, self.query.object_pos, self.query.object_name)
        return sobject

    def resolve(self, path: _Path) -> _Column:
        """Walk the relationship names to the leaf field, adding a join per parent hop."""
        if len(path.names) - 1 > MAX_RELATIONSHIP_HOPS:
            detail = (
                "SOQL statements cannot query relationships that are more than "
                f"{MAX_RELATIONSHIP_HOPS} levels away from the root entity object."
            )
            raise _query_error(MALFORMED_QUERY, self.text, path.pos, detail)
        sobject, alias, chain = self.root, "t0", ()
        for name in path.names[:-1]:
            lookup, parent = self.parent_of(sobject, name, path)
            chain = (*chain, lookup.relationship_name or name)
            alias = self.join(chain, parent, alias, lookup)
            sobject = parent
        leaf = sobject.field(path.names[-1])
        if leaf is None:
            raise _no_such_column(self.text, path.pos, path.names[-1], sobject.name)
        return _Column(f"{alias}.{_quote(leaf.name)}", leaf, (*chain, leaf.name), chain)

    def parent_of(self, sobject: SObject, name: str, path: _Path) -> tuple[Field, SObject]:
        """The lookup behind relationship `name` and the object it points to.

        Polymorphic lookups (Task.Who) would need one join per target type; they are refused.
        """
        lookup = sobject.relationship(name)
        if lookup is None or len(lookup.reference_to) != 1:
            raise _bad_relationship(self.text, path.pos, name)
        parent = self.schema.get(lookup.reference_to[0])
        if parent is None:
            raise _bad_relationship(self.text, path.pos, name)
        return lookup, parent

    def join(self, chain: tuple[str, ...], parent: SObject, child_alias: str, lookup: Field) -> str:
        key = tuple(part.lower() for part in chain)
        if key not in self.joins:
            alias = f"t{len(self.joins) + 1}"
            self.joins[key] = _Join(alias, parent.name, child_alias, lookup.name)
        return self.joins[key].alias

    # SELECT

    def select_list(self) -> list[tuple[SelectPath, str]]:
        selected: list[tuple[SelectPath, str]] = []
        seen: set[str] = set()
        for path in self.query.fields:
            column = self.resolve(path)
            if column.name in seen:
                detail = f"duplicate field selected: {path.text}"
                raise _query_error(MALFORMED_QUERY, self.text, path.pos, detail)
            seen.add(column.name)
            selected.append((SelectPath(column.parts, column.name, column.field), column.sql))
        return selected

    # FROM, ORDER BY, LIMIT

    def from_clause(self, keys: Iterable[tuple[str, ...]]) -> str:
        wanted = set(keys)
        lines = [f"FROM {_quote(self.root.name)} AS t0"]
        for key, join in self.joins.items():
            if key in wanted:
                lines.append(
                    f"LEFT JOIN {_quote(join.table)} AS {join.alias} "
                    f'ON {join.child_alias}.{_quote(join.foreign_key)} = {join.alias}."Id"'
                )
        return "\n".join(lines)

    def order_by_clause(self) -> str:
        """Text sorts case-insensitively as in the org; the root Id breaks ties, so pages cut
        from the same query never overlap."""
        items: list[str] = []
        for item in self.query.order_by:
            column = self.resolve(item.path)
            if column.field.type == "textarea":
                detail = f"field '{column.name}' can not be sorted in a query call"
                raise _query_error(INVALID_FIELD, self.text, item.path.pos, detail)
            expr = f"lower({column.sql})" if column.category == "string" else column.sql
            direction = "DESC" if item.descending else "ASC"
            nulls = "FIRST" if item.nulls_first else "LAST"
            items.append(f"{expr} {direction} NULLS {nulls}")
        items.append('t0."Id"')
        return f"ORDER BY {', '.join(items)}"

    def page_clause(self) -> str:
        limit, offset = self.query.limit, self.query.offset
        if offset is not None and offset > MAX_OFFSET:
            message = f"Maximum SOQL offset allowed is {MAX_OFFSET}"
            raise SalesforceError(400, "NUMBER_OUTSIDE_VALID_RANGE", message)
        page = "" if limit is None else f"\nLIMIT {int(limit)}"
        return page if offset is None else f"{page}\nOFFSET {int(offset)}"

    # WHERE

    def where_clause(self) -> str:
        filters: list[str] = []
        if not self.include_deleted:
            filters.append('t0."IsDeleted" = false')
            if self.root.field("IsArchived") is not None:
                filters.append('coalesce(t0."IsArchived", false) = false')
        elif self.deleted_since is not None:
            since = self.param(self.deleted_since)
            filters.append(f'(t0."IsDeleted" = false OR t0."SystemModstamp" >= {since})')
        if self.query.where is not None:
            filters.append(self.condition(self.query.where))
        return f"\nWHERE {' AND '.join(filters)}" if filters else ""

    def condition(self, node: _Condition) -> str:
        """SQL for one condition. Leaves may yield NULL where SOQL's logic says false; that is
        harmless under AND/OR and is repaired with coalesce wherever NOT inverts it."""
        match node:
            case _Junction(op, operands):
                return "(" + f" {op} ".join(self.condition(o) for o in operands) + ")"
            case _Not(operand):
                return f"NOT coalesce({self.condition(operand)}, false)"
            case _Membership():
                return self.membership(node)
            case _Like():
                return self.like(node)
            case _Comparison():
                return self.comparison(node)
        raise AssertionError(node)  # pragma: no cover - the parser builds only the cases above

    def filter_column(self, path: _Path) -> _Column:
        """Resolve a WHERE path and remember its joins: the count query needs only those."""
        column = self.resolve(path)
        for end in range(1, len(column.chain) + 1):
            self.filter_chains.add(tuple(part.lower() for part in column.chain[:end]))
        return column

    def param(self, value: object) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def left_side(self, column: _Column) -> str:
        """The field as compared: lower-cased text, the case-sensitive 15-character id."""
        if column.category == "string":
            return f"lower({column.sql})"
        if column.category == "id":
            return f"left({column.sql}, 15)"
        return column.sql

    def right_side(self, column: _Column, literal: _Literal) -> str:
        if column.category == "string":
            return f"lower({self.param(literal.value)})"
        if column.category == "id":
            return self.param(str(literal.value)[:15])
        return self.param(literal.value)

    def comparison(self, node: _Comparison) -> str:
        column = self.filter_column(node.path)
        if node.literal.kind == "null":
            return self.null_comparison(column, node.op)
        self.check_value(column, node.literal)
        if node.literal.kind == "range":
            return self.range_comparison(column, node.op, node.literal)
        left, right = self.left_side(column), self.right_side(column, node.literal)
        if node.op == "!=":
            return f"({column.sql} IS NULL OR {left} <> {right})"
        return f"{left} {node.op} {right}"

    def null_comparison(self, column: _Column, op: str) -> str:
        """`= null` is IS NULL, except that a boolean field is never null: it means false."""
        if column.category == "boolean" and op in ("=", "!="):
            return f"coalesce({column.sql}, false) = {'false' if op == '=' else 'true'}"
        if op == "=":
            return f"{column.sql} IS NULL"
        if op == "!=":
            return f"{column.sql} IS NOT NULL"
        return "false"

    def range_comparison(self, column: _Column, op: str, literal: _Literal) -> str:
        """A date literal is a day range [start, end): `=` means inside it, `<` before it."""
        start, end = cast(tuple[date, date], literal.value)
        if column.category == "dateTime":
            start = datetime(start.year, start.month, start.day)
            end = datetime(end.year, end.month, end.day)
        sql = column.sql
        if op == "=":
            return f"({sql} >= {self.param(start)} AND {sql} < {self.param(end)})"
        if op == "!=":
            return f"({sql} IS NULL OR {sql} < {self.param(start)} OR {sql} >= {self.param(end)})"
        bound = {"<": ("<", start), "<=": ("<", end), ">": (">=", end), ">=": (">=", start)}
        sql_op, value = bound[op]
        return f"{sql} {sql_op} {self.param(value)}"

    def membership(self, node: _Membership) -> str:
        """IN / NOT IN. A null in the list matches null fields; NOT IN keeps null fields unless
        the list names null."""
        column = self.filter_column(node.path)
        values = [literal for literal in node.literals if literal.kind != "null"]
        lists_null = len(values) < len(node.literals)
        for literal in values:
            self.check_value(column, literal)
            if literal.kind == "range":
                detail = f"unexpected token: '{literal.token.text}'"
                raise _query_error(MALFORMED_QUERY, self.text, literal.token.pos, detail)
        tests: list[str] = []
        if values:
            right = ", ".join(self.right_side(column, literal) for literal in values)
            keyword = "NOT IN" if node.negated else "IN"
            tests.append(f"{self.left_side(column)} {keyword} ({right})")
        if node.negated and lists_null:
            return "(" + " AND ".join([f"{column.sql} IS NOT NULL", *tests]) + ")"
        if node.negated:
            return f"({column.sql} IS NULL OR {tests[0]})"
        if lists_null:
            tests.append(f"{column.sql} IS NULL")
        return "(" + " OR ".join(tests) + ")"

    def like(self, node: _Like) -> str:
        """SOQL LIKE is case-insensitive, with % and _ as wildcards and \\% \\_ as escapes."""
        column = self.filter_column(node.path)
        literal = node.literal
        if literal.kind == "null":
            return self.null_comparison(column, "=")
        if column.category not in ("string", "id") or literal.kind != "string":
            raise self.type_mismatch(column, literal)
        return f"{column.sql} ILIKE {self.param(literal.token.pattern)} ESCAPE '\\'"

    # Type checks

    def check_value(self, column: _Column, literal: _Literal) -> None:
        if literal.kind not in _ACCEPTS[column.category]:
            raise self.type_mismatch(column, literal)
        if column.category == "id" and not _looks_like_id(literal.value):
            detail = f"invalid ID field: {literal.value}"
            code = "INVALID_QUERY_FILTER_OPERATOR"
            raise _query_error(code, self.text, literal.token.pos, detail)

    def type_mismatch(self, column: _Column, literal: _Literal) -> SalesforceError:
        expected = column.category
        detail = f"value of filter criterion for field '{column.name}' must be of type {expected}"
        if literal.kind == "string":
            detail += " and should not be enclosed in quotes"
        elif expected in ("string", "id"):
            detail += " and should be enclosed in quotes"
        return _query_error(TYPE_MISMATCH, self.text, literal.token.pos, detail)
