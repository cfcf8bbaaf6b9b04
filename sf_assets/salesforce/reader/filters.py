"""An ingest spec's structured filter compiled to a SOQL condition.

Nothing the user wrote reaches the query as it is: field names are checked against the
object's describe, operators come from a fixed list, and each value is rendered as a literal of
the field's type: text escaped, numbers and booleans re-written from their parsed value, dates
and date-times parsed and printed in SOQL's own format. A value that does not fit its field
is an error naming the sync, the object and the field.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

from sf_assets.salesforce.describe import DECIMAL_TYPES, INT_TYPE, ObjectInfo
from sf_assets.salesforce.soql import quote_string
from sf_assets.specs.ingest import AnyOf, Condition, Scalar

OPERATORS = {
    "=": "=",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "in": "IN",
    "not in": "NOT IN",
    "like": "LIKE",
    "not like": "LIKE",  # written as NOT (field LIKE value)
}


class FilterError(ValueError):
    """A filter that cannot be compiled against the object; the message says what to fix."""


def compile_filter(items: list[Condition | AnyOf], obj: ObjectInfo, *, sync: str) -> str | None:
    """The SOQL condition every copied record must meet, or None for no filter."""
    parts = [_item(item, obj, sync) for item in items]
    if not parts:
        return None
    return " AND ".join(f"({part})" if len(parts) > 1 else part for part in parts)


def _item(item: Condition | AnyOf, obj: ObjectInfo, sync: str) -> str:
    if isinstance(item, AnyOf):
        if len(item.any) == 1:
            return _condition(item.any[0], obj, sync)
        return " OR ".join(f"({_condition(c, obj, sync)})" for c in item.any)
    return _condition(item, obj, sync)


def _condition(condition: Condition, obj: ObjectInfo, sync: str) -> str:
    info = obj.field(condition.field)
    where = f"sync {sync}: filter on {obj.name}.{condition.field}"
    if info is None:
        close = obj.close_field_names(condition.field)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise FilterError(f"{where}: {obj.name} has no such field{hint}")
    operator = OPERATORS[condition.op]
    if isinstance(condition.value, list):
        values = ", ".join(literal(v, info.type, where) for v in condition.value)
        return f"{info.name} {operator} ({values})"
    value = literal(condition.value, info.type, where)
    if condition.op == "not like":
        return f"NOT {info.name} LIKE {value}"
    return f"{info.name} {operator} {value}"


def literal(value: Scalar, field_type: str, where: str) -> str:
    """`value` as a SOQL literal for a field of `field_type`, or FilterError."""
    if value is None:
        return "null"
    if field_type == "boolean":
        if not isinstance(value, bool):
            raise FilterError(f"{where}: a checkbox compares with true or false, not {value!r}")
        return "true" if value else "false"
    if field_type == INT_TYPE or field_type in DECIMAL_TYPES:
        return _number(value, integral=field_type == INT_TYPE, where=where)
    if field_type == "date":
        return _date(value, where).isoformat()
    if field_type == "datetime":
        return _datetime(value, where)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise FilterError(f"{where}: a text field compares with text, not {value!r}")
    return quote_string(str(value))


def _number(value: Scalar, *, integral: bool, where: str) -> str:
    if isinstance(value, bool):
        raise FilterError(f"{where}: a number field compares with a number, not {value!r}")
    try:
        number = float(value) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise FilterError(f"{where}: {value!r} is not a number") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise FilterError(f"{where}: {value!r} is not a finite number")
    if integral:
        if isinstance(number, float) and not number.is_integer():
            raise FilterError(f"{where}: {value!r} is not a whole number")
        return str(int(number))
    return repr(float(number)) if isinstance(number, float) else str(number)


def _date(value: Scalar, where: str) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise FilterError(f"{where}: a date compares with YYYY-MM-DD, not {value!r}")


def _datetime(value: Scalar, where: str) -> str:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                raise FilterError(f"{where}: {value!r} needs a time zone, e.g. Z or +01:00")
            return soql_datetime(moment)
    raise FilterError(
        f"{where}: a date-time compares with ISO 8601 text, e.g. 2026-01-31T09:00:00Z, "
        f"not {value!r}"
    )


def soql_datetime(moment: datetime) -> str:
    """A date-time literal in UTC with milliseconds, the precision Salesforce keeps."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
