"""The Emarsys Smart Insight sales-data endpoint, and admin read-back of what it received.

`POST /hapi/merchant/{merchant_id}/sales-data/api` takes a CSV of order lines, the way the
real service does: a static `Authorization: Bearer` token per account, `text/csv`, optionally
gzip-compressed. It lives outside `/services` so the Salesforce gateway never sees it; it does
its own authentication.

The real service documents its CSV rules but not its error answers, so this one is strict on
purpose: every rule of the CSV guidelines is checked, and a violation is a 400 whose plain-text
body names the line and column, which is what a developer fixing a writer needs. A rejected
upload stores nothing, matching "the upload fails". Like the real service, nothing is
de-duplicated: the same order line posted twice is stored twice, which is exactly what the
tests of a writer's idempotency need to be able to see.

Admin read-back, unauthenticated like the rest of `/__admin`: `GET`/`DELETE
/__admin/emarsys/uploads`, `GET /__admin/emarsys/lines` (every line with its upload index, to
count duplicates) and `GET`/`PUT /__admin/emarsys/columns` (the merchant's agreed column order,
standing in for re-agreeing the format with Emarsys support).

Decisions where the documentation is silent:

- The token is checked before the merchant id (401 before 404), so a caller without the token
  learns nothing about which merchants exist.
- A Content-Type other than `text/csv` (charset UTF-8 if given) or a Content-Encoding other than
  gzip is a 415; gzip that does not decompress is a 400; a body over 64 MB is a 413.
- Any problem rejects the whole upload. Each bad line is reported with its first problem, up to
  20 lines, so one answer fixes many.
- An empty body is a 400 (the first line must be the header); a header-only body is accepted
  as an upload of 0 lines, so a writer that posts an empty batch is visible, not an error.
- Negative `price` and `quantity` are accepted: returns and cancellations belong in sales data.
- Custom columns take the `s_`, `i_` and `f_` prefixes; `d_` is refused because dates are
  documented only for the separate batch-load product. Custom values may be empty.
- Unquoted blanks around a value are trimmed, as the guidelines say; blanks outside a quoted
  value and blank lines are errors. A leading UTF-8 byte-order mark is skipped.
- Timestamps must end in `Z` or `+00:00`; a bare date means midnight UTC. Numbers are plain
  decimals (exponent allowed, no `+`, no thousands separator, no NaN or infinity); `quantity`
  may be fractional; an `email` must look like `someone@somewhere`.
- Rows are stored as the strings received, after unquoting and trimming, not converted.
- The 200 body is `OK: <n> lines accepted`; the real body is undocumented and clients only
  look at the status.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import secrets
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from sf_sandbox.org import Credentials, Org

DEFAULT_COLUMNS = ("order", "timestamp", "customer", "item", "price", "quantity")
STANDARD_COLUMNS = frozenset(
    {"order", "timestamp", "customer", "email", "item", "price", "quantity"}
)
REQUIRED_COLUMNS = ("order", "timestamp", "item", "price")
CONTACT_COLUMNS = ("customer", "email")
CUSTOM_PREFIXES = ("s_", "i_", "f_")
CUSTOM_NAME = re.compile(r"[sif]_[A-Za-z0-9_]+")
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_REPORTED_ERRORS = 20
BOM = b"\xef\xbb\xbf"
BLANKS = " \t"

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", re.ASCII)
INTEGER = re.compile(r"-?\d+", re.ASCII)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?P<zone>Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)


# -- state ----------------------------------------------------------------------------------


@dataclass
class Upload:
    """One accepted POST, kept as received so tests can see exactly what a writer sent."""

    received_at: str
    merchant_id: str
    columns: list[str]
    rows: list[dict[str, str]]
    gzip: bool

    def as_json(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "received_at": self.received_at,
            "merchant_id": self.merchant_id,
            "columns": self.columns,
            "gzip": self.gzip,
            "line_count": len(self.rows),
            "rows": self.rows,
        }


@dataclass
class EmarsysState:
    """Kept in `org.extensions["emarsys"]`: uploads in arrival order and each merchant's columns."""

    uploads: list[Upload] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)

    def columns_for(self, merchant_id: str) -> list[str]:
        """The column order agreed at onboarding; the real service fails any other order."""
        return self.columns.get(merchant_id, list(DEFAULT_COLUMNS))


def state_of(org: Org) -> EmarsysState:
    return org.extensions.setdefault("emarsys", EmarsysState())


def org_of(request: Request) -> Org:
    return request.app.state.org


class Rejected(Exception):
    """An upload refused with a status and a one-line-per-problem plain-text explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- the endpoint ---------------------------------------------------------------------------


async def sales_data(request: Request) -> Response:
    org = org_of(request)
    state = state_of(org)
    try:
        merchant_id = authorized_merchant(request, org.credentials)
        require_csv(request.headers.get("content-type", ""))
        raw = await request.body()
        encoding = request.headers.get("content-encoding", "")
        configured = state.columns_for(merchant_id)
        gzipped, columns, rows = await run_in_threadpool(read_upload, raw, encoding, configured)
    except Rejected as rejected:
        return refusal(rejected)
    state.uploads.append(Upload(utc_timestamp(), merchant_id, columns, rows, gzipped))
    noun = "line" if len(rows) == 1 else "lines"
    return PlainTextResponse(f"OK: {len(rows)} {noun} accepted\n")


def read_upload(
    raw: bytes, content_encoding: str, configured: list[str]
) -> tuple[bool, list[str], list[dict[str, str]]]:
    """Off the event loop: a large upload must not stall the Salesforce API beside it."""
    gzipped, body = decoded_body(raw, content_encoding)
    columns, rows = parse_sales_csv(body, configured)
    return gzipped, columns, rows


def refusal(rejected: Rejected) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if rejected.status == 401 else None
    return PlainTextResponse(rejected.message + "\n", rejected.status, headers=headers)


def authorized_merchant(request: Request, credentials: Credentials) -> str:
    """Check the token before the merchant, so an unauthenticated caller learns nothing."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = credentials.emarsys_token.encode()
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.strip().encode("latin-1"), expected
    ):
        raise Rejected(401, "missing or invalid bearer token")
    merchant_id = request.path_params["merchant_id"]
    if merchant_id != credentials.merchant_id:
        raise Rejected(404, f"unknown merchant: {shown(merchant_id)}")
    return merchant_id


def require_csv(content_type: str) -> None:
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    if media_type.lower() != "text/csv":
        raise Rejected(415, f"Content-Type must be text/csv, got {shown(content_type)}")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise Rejected(415, f"the body must be UTF-8, got charset {shown(charset)}")


def decoded_body(raw: bytes, content_encoding: str) -> tuple[bool, bytes]:
    """The CSV bytes and whether they came gzipped; only gzip is used by real clients."""
    if len(raw) > MAX_BODY_BYTES:
        raise Rejected(413, f"body larger than {MAX_BODY_BYTES} bytes")
    encodings = [part.strip().lower() for part in content_encoding.split(",") if part.strip()]
    if encodings in ([], ["identity"]):
        return False, raw
    if encodings in (["gzip"], ["x-gzip"]):
        return True, gunzipped(raw)
    raise Rejected(415, f"unsupported Content-Encoding {shown(content_encoding)}; use gzip")


def gunzipped(raw: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(MAX_BODY_BYTES + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise Rejected(400, f"body is not a valid gzip stream: {error}") from None
    if len(data) > MAX_BODY_BYTES:
        raise Rejected(413, f"decompressed body larger than {MAX_BODY_BYTES} bytes")
    return data


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shown(value: str, limit: int = 60) -> str:
    """A value quoted for an error message, cut short so a huge field cannot flood the answer."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


# -- the CSV --------------------------------------------------------------------------------


class LineProblem(Exception):
    """A problem inside one line; `field` is the 0-based position it was found at, if known."""

    def __init__(self, message: str, field: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def parse_sales_csv(body: bytes, configured: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Header first, then every line; all line problems are collected so one answer fixes many."""
    lines = numbered_lines(body)
    first = next(lines, None)
    if first is None:
        raise Rejected(400, "empty body: the first line must be the header")
    columns = parse_header(*first, configured)
    rows: list[dict[str, str]] = []
    problems: list[str] = []
    for number, raw in lines:
        try:
            rows.append(parse_row(raw, columns))
        except LineProblem as problem:
            problems.append(located(number, problem, columns))
    if problems:
        raise Rejected(400, summarized(problems))
    return columns, rows


def numbered_lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """Physical lines are records, because no field may hold a newline, even quoted."""
    chunks = body.removeprefix(BOM).split(b"\n")
    if chunks[-1] == b"":
        chunks.pop()  # the last line's terminator, not an empty line
    for number, chunk in enumerate(chunks, start=1):
        yield number, chunk.removesuffix(b"\r")


def located(number: int, problem: LineProblem, columns: list[str]) -> str:
    if problem.field is None:
        return f"line {number}: {problem.message}"
    if problem.field < len(columns):
        return f"line {number}: column {columns[problem.field]!r}: {problem.message}"
    return f"line {number}: field {problem.field + 1}: {problem.message}"


def summarized(problems: list[str]) -> str:
    shown_problems = problems[:MAX_REPORTED_ERRORS]
    if len(problems) > MAX_REPORTED_ERRORS:
        shown_problems.append(f"… and {len(problems) - MAX_REPORTED_ERRORS} more problems")
    return "\n".join(shown_problems)


def parse_header(number: int, raw: bytes, configured: list[str]) -> list[str]:
    try:
        columns = split_fields(decoded_line(raw))
    except LineProblem as problem:
        raise Rejected(400, located(number, problem, [])) from None
    problem = columns_problem(columns)
    if problem is not None:
        raise Rejected(400, f"line {number}: {problem}")
    if columns != configured:
        raise Rejected(
            400,
            f"line {number}: the columns must be exactly {','.join(configured)} in this order "
            f"(as agreed for this merchant), got {shown(','.join(columns), 200)}",
        )
    return columns


def parse_row(raw: bytes, columns: list[str]) -> dict[str, str]:
    values = split_fields(decoded_line(raw))
    if len(values) != len(columns):
        raise LineProblem(f"expected {len(columns)} fields, found {len(values)}")
    for position, (column, value) in enumerate(zip(columns, values, strict=True)):
        problem = VALUE_RULES[rule_name(column)](value)
        if problem is not None:
            raise LineProblem(problem, position)
    return dict(zip(columns, values, strict=True))


def decoded_line(raw: bytes) -> str:
    if not raw:
        raise LineProblem("empty line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = raw[error.start]
        raise LineProblem(f"not valid UTF-8 (byte 0x{bad:02x} at byte {error.start + 1})") from None
    if "\r" in text:
        raise LineProblem("carriage return inside the line (fields may not hold newlines)")
    if "\x00" in text:
        raise LineProblem("NUL character inside the line")
    return text


# -- splitting a line into fields -------------------------------------------------------------


def split_fields(line: str) -> list[str]:
    """Comma-separated fields; a quoted field escapes a quote by doubling it, nothing else."""
    fields: list[str] = []
    position = 0
    while True:
        value, position = read_field(line, position, len(fields))
        fields.append(value)
        if position == len(line):
            return fields
        position += 1  # past the comma


def read_field(line: str, start: int, index: int) -> tuple[str, int]:
    """The field starting at `start`, and the position of the comma (or end) after it."""
    opening = start
    while opening < len(line) and line[opening] in BLANKS:
        opening += 1
    if opening < len(line) and line[opening] == '"':
        if opening != start:
            raise LineProblem("blank before an opening quote", index)
        return read_quoted(line, opening, index)
    end = line.find(",", start)
    end = len(line) if end == -1 else end
    value = line[start:end]
    if '"' in value:
        raise LineProblem(
            "quote inside an unquoted field (quote the whole field and double the quote)", index
        )
    return value.strip(BLANKS), end


def read_quoted(line: str, opening: int, index: int) -> tuple[str, int]:
    parts: list[str] = []
    position = opening + 1
    while True:
        quote = line.find('"', position)
        if quote == -1:
            raise LineProblem(
                "quoted field not closed on this line (fields may not hold newlines)", index
            )
        parts.append(line[position:quote])
        if line.startswith('""', quote):
            parts.append('"')
            position = quote + 2
            continue
        after = quote + 1
        if after < len(line) and line[after] != ",":
            raise LineProblem("text after the closing quote", index)
        return "".join(parts), after


# -- column names ---------------------------------------------------------------------------


def columns_problem(columns: list[str]) -> str | None:
    """Why this column list cannot be a sales-data header (or configuration), if it cannot."""
    for name in columns:
        problem = name_problem(name)
        if problem is not None:
            return problem
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            return f"column {shown(name)} appears more than once"
        seen.add(name)
    if all(contact in seen for contact in CONTACT_COLUMNS):
        return "both 'customer' and 'email' are present; send exactly one of them"
    if not any(contact in seen for contact in CONTACT_COLUMNS):
        return "a 'customer' or an 'email' column is needed"
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        return f"missing required columns: {', '.join(missing)}"
    return None


def name_problem(name: str) -> str | None:
    if name in STANDARD_COLUMNS or CUSTOM_NAME.fullmatch(name):
        return None
    if not name:
        return "empty column name"
    if name.lower() in STANDARD_COLUMNS:
        return f"column {shown(name)}: standard column names are lower-case ({name.lower()!r})"
    if name.startswith("d_"):
        return f"column {shown(name)}: date custom fields (d_) are not supported; use s_"
    if name[:2] in CUSTOM_PREFIXES:
        return f"column {shown(name)}: custom names hold only letters, digits and '_'"
    return f"column {shown(name)}: a custom column needs a type prefix s_, i_ or f_"


def rule_name(column: str) -> str:
    return column if column in STANDARD_COLUMNS else column[:2]


# -- values ---------------------------------------------------------------------------------


def required(value: str) -> str | None:
    return "empty; every line needs a value here" if not value else None


def email(value: str) -> str | None:
    return required(value) or (
        None if EMAIL.fullmatch(value) else f"not an e-mail address: {shown(value)}"
    )


def number(value: str) -> str | None:
    if not value:
        return "empty; every line needs a number here"
    if not NUMBER.fullmatch(value):
        return f"not a number: {shown(value)}"
    return None if math.isfinite(float(value)) else f"number out of range: {shown(value)}"


def timestamp(value: str) -> str | None:
    if not value:
        return "empty; every line needs a timestamp"
    if DATE.fullmatch(value):
        return valid_instant(date.fromisoformat, value)
    match = DATETIME.fullmatch(value)
    if match is None:
        return f"not an ISO 8601 timestamp like 2024-06-06T14:02:00Z: {shown(value)}"
    if match["zone"] not in ("Z", "+00:00"):
        return f"timestamp must be in UTC, ending in Z: {shown(value)}"
    return valid_instant(datetime.fromisoformat, value.replace("Z", "+00:00"))


def valid_instant(parse: Callable[[str], object], value: str) -> str | None:
    try:
        parse(value)
    except ValueError:
        return f"not a valid date or time: {shown(value)}"
    return None


def optional(rule: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """Custom fields may be left empty; a value, when given, must fit the prefix's type."""
    return lambda value: None if not value else rule(value)


def integer(value: str) -> str | None:
    return None if INTEGER.fullmatch(value) else f"not an integer: {shown(value)}"


VALUE_RULES: dict[str, Callable[[str], str | None]] = {
    "order": required,
    "item": required,
    "customer": required,
    "email": email,
    "timestamp": timestamp,
    "price": number,
    "quantity": number,
    "s_": lambda value: None,
    "i_": optional(integer),
    "f_": optional(number),
}


# -- admin ----------------------------------------------------------------------------------


async def list_uploads(request: Request) -> Response:
    uploads = state_of(org_of(request)).uploads
    return JSONResponse([upload.as_json(index) for index, upload in enumerate(uploads)])


async def list_lines(request: Request) -> Response:
    """Every line ever accepted, so a test can count an order line sent more than once."""
    uploads = state_of(org_of(request)).uploads
    return JSONResponse(
        [
            {"upload": index, "line": number, **row}
            for index, upload in enumerate(uploads)
            for number, row in enumerate(upload.rows, start=2)
        ]
    )


async def clear_uploads(request: Request) -> Response:
    state = state_of(org_of(request))
    count = len(state.uploads)
    state.uploads.clear()
    return JSONResponse({"deleted": count})


async def get_columns(request: Request) -> Response:
    org = org_of(request)
    merchant_id = org.credentials.merchant_id
    columns = state_of(org).columns_for(merchant_id)
    return JSONResponse({"merchant_id": merchant_id, "columns": columns})


async def put_columns(request: Request) -> Response:
    """Stand-in for re-agreeing the format with Emarsys support, which a writer must follow."""
    try:
        columns = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "the body must be a JSON list of column names"}, 400)
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        return JSONResponse({"error": "the body must be a JSON list of column names"}, 400)
    problem = columns_problem(columns)
    if problem is not None:
        return JSONResponse({"error": problem}, 400)
    org = org_of(request)
    state_of(org).columns[org.credentials.merchant_id] = columns
    return await get_columns(request)


def routes() -> list[BaseRoute]:
    return [
        Route("/hapi/merchant/{merchant_id}/sales-data/api", sales_data, methods=["POST"]),
        Route("/__admin/emarsys/uploads", list_uploads, methods=["GET"]),
        Route("/__admin/emarsys/uploads", clear_uploads, methods=["DELETE"]),
        Route("/__admin/emarsys/lines", list_lines, methods=["GET"]),
        Route("/__admin/emarsys/columns", get_columns, methods=["GET"]),
        Route("/__admin/emarsys/columns", put_columns, methods=["PUT"]),
    ]
