"""Mapping a batch of source rows onto a Salesforce object, every value checked on the way.

Each mapped column is parsed into its field's type and checked against what the org enforces
(`rules`) before anything is sent, so that a bad row costs no API call and its reason names the
source column a person can fix.

A row with problems is set aside once, with its first problem in mapping order (the key comes
first); all other rows go on. Nothing is guessed: a key that appears twice rejects every
occurrence, and text is never trimmed or cut to fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from sf_assets.names import did_you_mean
from sf_assets.rows import (
    HASH,
    KEY,
    REJECT_SCHEMA,
    ROW,
    content_hash_of,
    reject_reason,
    repeated,
)
from sf_assets.salesforce.describe import DECIMAL_TYPES, FieldInfo, ObjectInfo
from sf_assets.salesforce.mapping.rules import (
    Checked,
    Problem,
    first_problem,
    invalid_utf8,
    parser_for,
)
from sf_assets.salesforce.mapping.values import (
    UTC_DATETIME,
    Scope,
    as_text,
    is_supported,
    is_text,
    quoted,
    to_lowercase,
)
from sf_assets.specs import SyncSpec

# Output dtype per field type; every other type (text, picklists, ids) is Utf8.
FIELD_DTYPES: dict[str, pl.DataType] = {
    "boolean": pl.Boolean(),
    "int": pl.Int64(),
    **dict.fromkeys(DECIMAL_TYPES, pl.Float64()),
    "date": pl.Date(),
    "datetime": UTC_DATETIME,
}


class MappingError(ValueError):
    """A spec that does not fit the object or the batch; preflight reports these up front."""


@dataclass(frozen=True)
class MappedField:
    """One mapped field: the source column it reads and the field it writes."""

    name: str  # output column: the field's API name, or `Relationship.ExternalIdField`
    column: str
    field: FieldInfo  # for a relationship column, the lookup field it sets
    relationship: bool = False


@dataclass
class MappedBatch:
    """Rows that passed (`_row`, `_key`, `_hash`, one typed column per field) and rejects."""

    rows: pl.DataFrame
    rejects: pl.DataFrame


def map_batch(spec: SyncSpec, obj: ObjectInfo, frame: pl.DataFrame, batch: str) -> MappedBatch:
    """Map one batch onto `obj`: typed rows that passed every rule, and one reject per bad row."""
    frame = _with_row_numbers(frame)
    targets = resolve_targets(spec, obj)
    _require_columns(spec, targets, frame)
    scope = Scope()
    checks = [_key_check(spec, obj, targets, frame.schema, scope)]
    checks += [
        _field_check(spec, obj, target, frame.schema[target.column], scope) for target in targets
    ]
    checks = [_with_kept_conditions(check, scope) for check in checks]
    read = dict.fromkeys([ROW, spec.key_column, *[t.column for t in targets]])
    checked = _first_problems(scope.apply(frame.select(list(read))), checks)
    is_bad = pl.col("__first").is_not_null()
    names = [t.name for t in targets]
    values = (
        checked.lazy()
        .filter(~is_bad)
        .select(
            pl.col(ROW),
            checks[0].value.alias(KEY),
            *[
                check.value.cast(output_dtype(t)).alias(t.name)
                for check, t in zip(checks[1:], targets, strict=True)
            ],
        )
    )
    hashed = content_hash_of(values.collect_schema(), names).alias(HASH)
    rows = values.select(ROW, KEY, hashed, *names)
    rejects = _rejects(spec, batch, targets, checks, checked.lazy().filter(is_bad))
    # Both at once: the hash's text and the rejects' reasons keep both cores busy.
    rows_frame, rejects_frame = pl.collect_all([rows, rejects])
    return MappedBatch(rows=rows_frame, rejects=rejects_frame)


def resolve_targets(spec: SyncSpec, obj: ObjectInfo) -> list[MappedField]:
    """The spec's mapping resolved against the object, in mapping order.

    When the key column is named as `source.key` and match_on is not mapped, the key column
    feeds match_on: the writer needs the match values as a field like any other.
    """
    targets = [target_for(name, column, obj) for name, column in spec.mapping.items()]
    match_on = spec.target.match_on.lower()
    if all(t.name.lower() != match_on for t in targets):
        targets.append(target_for(spec.target.match_on, spec.key_column, obj))
    return targets


def output_dtype(target: MappedField) -> pl.DataType:
    """The dtype of a mapped column: relationship columns carry text external ids."""
    if target.relationship:
        return pl.Utf8()
    return FIELD_DTYPES.get(target.field.type, pl.Utf8())


def target_for(name: str, column: str, obj: ObjectInfo) -> MappedField:
    """Resolve one mapping entry: a field name, or `Relationship.ExternalIdField`."""
    if "." in name:
        relationship, external_field = name.split(".", 1)
        lookup = obj.relationship(relationship)
        if lookup is None:
            raise MappingError(
                f"{obj.name} has no relationship {relationship!r} (mapped as {name})"
            )
        return MappedField(f"{lookup.relationship_name}.{external_field}", column, lookup, True)
    info = obj.field(name)
    if info is None:
        raise MappingError(f"{obj.name} has no field {name!r}; run the preflight check")
    return MappedField(info.name, column, info)


def _with_row_numbers(frame: pl.DataFrame) -> pl.DataFrame:
    """Readers number the rows; a frame built by hand gets 1-based numbers here."""
    if ROW in frame.columns:
        return frame.with_columns(pl.col(ROW).cast(pl.Int64))
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def _require_columns(spec: SyncSpec, targets: list[MappedField], frame: pl.DataFrame) -> None:
    wanted = [spec.key_column, *[t.column for t in targets]]
    missing = sorted({column for column in wanted if column not in frame.schema})
    if missing:
        present = [c for c in frame.columns if c != ROW]
        named = "; ".join(f"{column!r}{did_you_mean(column, present)}" for column in missing)
        raise MappingError(
            f"{spec.name}: the batch has no source column {named}: fix the column name in the "
            f"sync's mapping (the batch has {', '.join(present)})"
        )
    for column in wanted:
        dtype = frame.schema[column]
        if not is_supported(dtype):
            raise MappingError(
                f"{spec.name}: column {column!r} holds {dtype}, which cannot be written to "
                "a Salesforce field"
            )


def _with_kept_conditions(check: Checked, scope: Scope) -> Checked:
    """Each rule's condition as a column of its own: worked out once, beside the other columns
    of its stage, and read again by the rejects instead of evaluated (and its regex compiled)
    a second time."""
    problems = [
        replace(problem, when=scope.keep(problem.when.fill_null(False)))
        for problem in check.problems
    ]
    return replace(check, problems=problems)


def _first_problems(frame: pl.DataFrame, checks: list[Checked]) -> pl.DataFrame:
    """`__first`: the index of the check that rejects the row, null for a good row.

    Only whether a rule holds is worked out for every row; codes and reasons wait for the
    rejected rows, which are few.
    """
    failed = [
        pl.any_horizontal([problem.when for problem in check.problems])
        if check.problems
        else pl.lit(False)
        for check in checks
    ]
    first = pl.coalesce([pl.when(fails).then(pl.lit(i)) for i, fails in enumerate(failed)])
    return frame.with_columns(first.alias("__first"))


def _rejects(
    spec: SyncSpec,
    batch: str,
    targets: list[MappedField],
    checks: list[Checked],
    bad: pl.LazyFrame,
) -> pl.LazyFrame:
    """One row per rejected source row, with its first problem spelled out.

    The rows are split by the check that rejects them, so each row's code and text are worked
    out from its own check's rules alone, not from every check's (a chain over all checks
    evaluated all their texts on every rejected row). Every occurrence of a duplicate key is
    rejected by the key check, so its part still counts the spellings of the whole group.
    """
    columns = [spec.key_column, *[t.column for t in targets]]
    fields = [_key_field(spec, targets), *[t.name for t in targets]]
    ordered = bad.with_row_index("__order")
    parts = []
    for i, check in enumerate(checks):
        code, problem = first_problem(check.problems)
        parts.append(
            ordered.filter(pl.col("__first") == i).select(
                pl.col("__order"),
                pl.lit(spec.name).alias("sync"),
                pl.lit(batch).alias("batch"),
                pl.col(ROW).alias("row"),
                checks[0].value.alias("key"),
                pl.lit(columns[i], pl.Utf8).alias("column"),
                pl.lit(fields[i], pl.Utf8).alias("field"),
                check.shown.cast(pl.Utf8).alias("value"),
                code.cast(pl.Utf8).alias("code"),
                problem.cast(pl.Utf8).alias("problem"),
            )
        )
    table = pl.concat(parts).sort("__order")
    return table.with_columns(reject_reason(spec.name, batch).alias("reason")).select(
        [pl.col(name).cast(dtype) for name, dtype in REJECT_SCHEMA.items()]
    )


def _key_field(spec: SyncSpec, targets: list[MappedField]) -> str | None:
    """The field the key column is mapped to, if any (for naming it in reasons)."""
    return next((t.name for t in targets if t.column == spec.key_column), None)


def _key_check(
    spec: SyncSpec, obj: ObjectInfo, targets: list[MappedField], schema: pl.Schema, scope: Scope
) -> Checked:
    """Every row needs a key, and a key may appear only once in the batch.

    Keys are compared without case when the key feeds a match_on field that ignores case
    (most do): `A@x.com` and `a@x.com` would reach the same Salesforce record.
    """
    column = spec.key_column
    text = as_text(pl.col(column), schema[column])
    key = scope.keep(pl.when(text.str.strip_chars() != "").then(text))
    match = obj.field(spec.target.match_on)
    folds_case = (
        match is not None
        and not match.case_sensitive
        and any(t.column == column and t.field == match for t in targets)
    )
    compared = scope.keep(to_lowercase(key, scope)) if folds_case else key
    # A hash seen twice (polars' own, stable in this process only) marks candidates, and the
    # keys themselves are counted among those alone, so a collision never rejects a row.
    candidate = scope.keep(repeated(scope.keep(compared.hash())))
    count = scope.sparse(pl.len().over(compared), where=candidate, default=1)
    duplicate = pl.format("key {} appears {} times in the batch", quoted(key), count)
    if folds_case and match is not None:
        note = f" (ignoring case, as matching on {match.name} does)"
        # Reasons are worked out on the rejected rows only; every occurrence of a duplicate
        # is among them, so counting spellings there sees the whole group.
        spellings = key.n_unique().over(compared)
        duplicate = pl.when(spellings > 1).then(duplicate + note).otherwise(duplicate)
    problems = [
        Problem(key.is_null(), "MISSING_KEY", pl.lit("the key is empty")),
        Problem(count > 1, "DUPLICATE_KEY", duplicate),
    ]
    return Checked(key, problems, text)


def _field_check(
    spec: SyncSpec, obj: ObjectInfo, target: MappedField, dtype: pl.DataType, scope: Scope
) -> Checked:
    """Parse one mapped column for its field and check it, invalid UTF-8 first."""
    source = pl.col(target.column)
    if is_text(dtype):
        source, dtype = source.cast(pl.Utf8), pl.Utf8()
    value, problems = parser_for(target.field, target.relationship)(
        target.field, source, dtype, scope
    )
    value = scope.keep(value)
    if dtype == pl.Utf8:
        problems.insert(0, invalid_utf8(source, scope))
    problems += _emptiness_rules(spec, obj, target, value)
    return Checked(value, problems, as_text(pl.col(target.column), dtype))


def _emptiness_rules(
    spec: SyncSpec, obj: ObjectInfo, target: MappedField, value: pl.Expr
) -> list[Problem]:
    """Null values that Salesforce would refuse: match values, required and uncleared fields."""
    field = target.field
    empty = value.is_null()
    if not target.relationship and field.name.lower() == spec.target.match_on.lower():
        return [Problem(empty, "MISSING_KEY", pl.lit("empty, but rows are matched on it"))]
    operation = spec.target.operation
    if operation in ("insert", "upsert") and field.required_on_create:
        text = f"empty, but {field.name} is required to create a {obj.name}"
        return [Problem(empty, "REQUIRED_FIELD_MISSING", pl.lit(text))]
    clears = operation == "update" and spec.null_values == "clear"
    if clears and not field.nillable and field.updateable and field.type != "boolean":
        text = f"empty, but {field.name} cannot be cleared (the spec's null_values is clear)"
        return [Problem(empty, "REQUIRED_FIELD_MISSING", pl.lit(text))]
    return []
