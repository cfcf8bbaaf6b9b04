"""One write engine for every DML path: REST single records, sObject Collections and Bulk 2.0.

A write takes rows of wire text and answers one outcome per row, in input order, the way the
org would: the first problem found in a row decides its error, and rows without problems are
written. Checks run in the order Salesforce applies them (fields, types, references, required
fields, uniqueness), each as a column operation so the cost does not grow with Python loops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from sf_sandbox.errors import SalesforceError
from sf_sandbox.ids import normalize_id
from sf_sandbox.schema import Field, Schema, SObject
from sf_sandbox.store import Store, quote, utc_now
from sf_sandbox.values import NULL, parse_column

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
PERMISSION_MESSAGE = (
    "Unable to create/update fields: {}. Please check the security settings of this field and "
    "verify that it is read/write for your profile or permission set."
)


@dataclass
class WriteRequest:
    sobject: SObject
    operation: str
    rows: pl.DataFrame  # every column Utf8; None = not provided, NULL = set null
    external_id_field: str | None = None
    all_or_none: bool = False
    strict_types: bool = False  # REST: a value JSON cannot carry for the type fails the request
    dry_run: bool = False  # check every row, write nothing (allOrNone across object types)


class Errors:
    """Per-row error columns where the first error recorded for a row wins."""

    def __init__(self, height: int) -> None:
        self.code = pl.Series("code", [None] * height, dtype=pl.Utf8)
        self.message = pl.Series("message", [None] * height, dtype=pl.Utf8)
        # one empty list repeated: building a million Python lists would cost seconds
        self.fields = pl.Series("fields", [[]], dtype=pl.List(pl.Utf8)).new_from_index(0, height)

    @property
    def ok(self) -> pl.Series:
        return self.code.is_null()

    def add(
        self,
        mask: pl.Series,
        code: str | pl.Series,
        message: str | pl.Series,
        fields: list[str] | pl.Series | None = None,
    ) -> None:
        take = mask.fill_null(False) & self.ok
        if not take.any():
            return
        frame = pl.DataFrame(
            {"take": take, "code": self.code, "message": self.message, "fields": self.fields}
        )
        out = frame.select(
            pl.when("take").then(_text(code)).otherwise("code").alias("code"),
            pl.when("take").then(_text(message)).otherwise("message").alias("message"),
            pl.when("take").then(_field_list(fields)).otherwise("fields").alias("fields"),
        )
        self.code, self.message, self.fields = out["code"], out["message"], out["fields"]


def fmt(template: str, values: pl.Series) -> pl.Series:
    """`template` with `{}` filled from `values`, row by row."""
    return pl.select(pl.format(template, pl.lit(values))).to_series()


def _text(value: str | pl.Series) -> pl.Expr:
    return pl.lit(value) if isinstance(value, pl.Series) else pl.lit(value, dtype=pl.Utf8)


def _field_list(fields: list[str] | pl.Series | None) -> pl.Expr:
    """One list for every row, or a list per row."""
    if isinstance(fields, pl.Series):
        return pl.lit(fields)
    return pl.lit(pl.Series([fields or []], dtype=pl.List(pl.Utf8))).first()


@dataclass
class Column:
    """A request column resolved against the object."""

    name: str
    field: Field | None  # the field written (for a relationship: the lookup field)
    parent: SObject | None = None  # set for `Relationship.ExternalField` columns
    parent_field: Field | None = None


class WriteEngine:
    def __init__(
        self,
        schema: Schema,
        store: Store,
        owner_id: Callable[[], str],
        lock_mask: Callable[[int], pl.Series] | None = None,
    ) -> None:
        self.schema = schema
        self.store = store
        self.owner_id = owner_id
        self.lock_mask = lock_mask

    def write(self, request: WriteRequest) -> pl.DataFrame:
        """Outcome per input row: id, success, created, code, message, fields, type_error."""
        run = _Run(self, request)
        return run.execute()


class _Run:
    """The state of one write while its checks run."""

    def __init__(self, engine: WriteEngine, request: WriteRequest) -> None:
        self.engine = engine
        self.schema = engine.schema
        self.store = engine.store
        self.request = request
        self.sobject = request.sobject
        self.rows = request.rows
        self.height = request.rows.height
        self.errors = Errors(self.height)
        self.type_error = pl.Series("type_error", [False] * self.height)
        self.target = pl.Series("target", [None] * self.height, dtype=pl.Utf8)
        self.values: dict[str, pl.Series] = {}
        self.set_null: dict[str, pl.Series] = {}
        self.provided: dict[str, pl.Series] = {}

    # -- the sequence -------------------------------------------------------------------

    def execute(self) -> pl.DataFrame:
        operation = self.request.operation
        if operation in ("delete", "hardDelete"):
            self.match_by_id()
            self.check_object_permissions()
        else:
            columns = self.resolve_columns()
            self.parse(columns)
            if self.request.strict_types:
                self.raise_first_type_error(columns)
            if operation == "update":
                self.match_by_id()
            elif operation == "upsert":
                self.match_by_key()
            self.check_object_permissions()
            self.check_permissions()
            self.resolve_relationships(columns)
            self.check_references()
            self.check_required()
            self.check_unique()
        self.inject_lock_faults()
        if self.request.all_or_none and not self.errors.ok.all():
            self.errors.add(
                self.errors.ok,
                "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "Record rolled back because not all records were valid and the request was "
                "using AllOrNone header",
            )
        if self.request.dry_run:
            return self.outcome(pl.Series("Id", [None] * self.height, dtype=pl.Utf8))
        created_ids = self.apply()
        return self.outcome(created_ids)

    # -- columns and values ---------------------------------------------------------------

    def resolve_columns(self) -> list[Column]:
        columns = []
        for name in self.rows.columns:
            column = self.resolve_column(name)
            if column is None:
                self.errors.add(
                    self.rows[name].is_not_null(),
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {self.sobject.name}",
                    [],
                )
                continue
            columns.append(column)
        return columns

    def resolve_column(self, name: str) -> Column | None:
        if "." not in name:
            field = self.sobject.field(name)
            return Column(name, field) if field else None
        relationship, _, parent_field_name = name.partition(".")
        lookup = self.sobject.relationship(relationship)
        if lookup is None or len(lookup.reference_to) != 1:
            return None
        parent = self.schema.get(lookup.reference_to[0])
        parent_field = parent.field(parent_field_name) if parent else None
        if parent_field is None or not (parent_field.is_matchable or parent_field.unique):
            return None
        return Column(name, lookup, parent, parent_field)

    def parse(self, columns: list[Column]) -> None:
        for column in columns:
            if column.parent is not None:
                continue
            field = column.field
            parsed = parse_column(self.rows[column.name], field)
            self.errors.add(
                parsed.error_code.is_not_null(),
                parsed.error_code,
                parsed.error_message,
                [field.name],
            )
            self.type_error = self.type_error | parsed.type_error
            self.values[field.name] = parsed.values
            self.provided[field.name] = parsed.provided
            self.set_null[field.name] = parsed.set_null

    def raise_first_type_error(self, columns: list[Column]) -> None:
        """REST bodies are deserialised before any record is looked at, so one value of the
        wrong type fails the whole request, as Salesforce's JSON parser does."""
        if not self.type_error.any():
            return
        row = int(self.type_error.arg_true()[0])
        for column in columns:
            field = column.field
            if column.parent is not None or field.name not in self.values:
                continue
            value = self.rows[column.name][row]
            parsed = parse_column(pl.Series([value], dtype=pl.Utf8), field)
            if parsed.type_error[0]:
                raise SalesforceError(
                    400,
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of {field.type} from VALUE_STRING value "
                    f"{value} or request may be missing a required field",
                )

    # -- matching ---------------------------------------------------------------------------

    def match_by_id(self) -> None:
        if "Id" not in self.values and "id" not in [c.lower() for c in self.rows.columns]:
            self.errors.add(
                pl.Series([True] * self.height),
                "MISSING_ARGUMENT",
                "Id not specified in an update call",
                [],
            )
            return
        raw = self.values.get("Id")
        if raw is None:
            name = next(c for c in self.rows.columns if c.lower() == "id")
            raw = parse_column(self.rows[name], self.sobject.field("Id")).values
        ids = normalize_ids(raw)
        self.errors.add(raw.is_null(), "MISSING_ARGUMENT", "Id not specified in an update call", [])
        wrong = ids.is_null() | ~ids.str.starts_with(self.sobject.key_prefix)
        self.errors.add(
            raw.is_not_null() & wrong,
            "MALFORMED_ID",
            fmt("Record ID: id value of incorrect type: {}", raw),
            ["Id"],
        )
        found = self.store.find(self.sobject, "Id", ids.drop_nulls(), case_insensitive=False)
        state = pl.DataFrame({"key": ids}).join(found, on="key", how="left")
        self.errors.add(
            state["IsDeleted"].fill_null(False), "ENTITY_IS_DELETED", "entity is deleted", []
        )
        self.errors.add(
            ids.is_not_null() & state["Id"].is_null(),
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            [],
        )
        self.target = state["Id"]
        self.values.pop("Id", None)

    def match_by_key(self) -> None:
        key_field = self.sobject.field(self.request.external_id_field or "")
        if key_field is None:
            raise ValueError("the caller checks the external id field before writing")
        if key_field.name == "Id":
            self.match_by_id()
            return
        keys = self.values.get(key_field.name)
        if keys is None:
            keys = pl.Series([None] * self.height, dtype=pl.Utf8)
        text = keys.cast(pl.Utf8)
        self.errors.add(text.is_null(), "MISSING_ARGUMENT", f"{key_field.name} not specified", [])
        folded = text if key_field.case_sensitive else text.str.to_lowercase()
        repeated = folded.is_duplicated() & folded.is_not_null()
        self.errors.add(
            repeated,
            "DUPLICATE_EXTERNAL_ID",
            fmt("Duplicate external id specified: {}", text),
            [],
        )
        found = self.store.find(
            self.sobject,
            key_field.name,
            text.drop_nulls(),
            case_insensitive=not key_field.case_sensitive,
        ).filter(~pl.col("IsDeleted"))
        if not key_field.case_sensitive:
            found = found.with_columns(pl.col("key").str.to_lowercase())
        per_key = found.group_by("key").agg(pl.col("Id").first(), pl.len().alias("matches"))
        state = pl.DataFrame({"key": folded}).join(per_key, on="key", how="left")
        self.errors.add(
            state["matches"].fill_null(0) > 1,
            "DUPLICATE_EXTERNAL_ID",
            "A user-specified external ID matches more than one record during an upsert.",
            [key_field.name],
        )
        self.target = state["Id"]

    # -- checks -----------------------------------------------------------------------------

    def check_object_permissions(self) -> None:
        """Some objects take no DML at all (Organization): every row is refused."""
        sobject = self.sobject
        creating = self.target.is_null()
        if self.request.operation in ("delete", "hardDelete"):
            refusals = [(pl.Series([not sobject.deletable] * self.height), "deleted")]
        else:
            refusals = [
                (creating & (not sobject.createable), "inserted"),
                (~creating & (not sobject.updateable), "updated"),
            ]
        for mask, verb in refusals:
            self.errors.add(
                mask,
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                f"entity type cannot be {verb}: {sobject.label}",
                [],
            )

    def check_permissions(self) -> None:
        creating = self.target.is_null()
        for name, provided in self.provided.items():
            field = self.sobject.field(name)
            if name == "Id":
                if self.request.operation == "insert":
                    self.errors.add(
                        provided,
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        "cannot specify Id in an insert call",
                        ["Id"],
                    )
                continue
            denied = (creating & (not field.createable)) | (~creating & (not field.updateable))
            self.errors.add(
                provided & denied,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                PERMISSION_MESSAGE.format(field.name),
                [field.name],
            )

    def resolve_relationships(self, columns: list[Column]) -> None:
        for column in columns:
            if column.parent is None:
                continue
            raw = self.rows[column.name].cast(pl.Utf8)
            wanted = raw.filter(raw.is_not_null() & (raw != NULL))
            found = self.store.find(
                column.parent,
                column.parent_field.name,
                wanted,
                case_insensitive=not column.parent_field.case_sensitive,
            ).filter(~pl.col("IsDeleted"))
            found = found.with_columns(pl.col("key").str.to_lowercase())
            per_key = found.group_by("key").agg(pl.col("Id").first(), pl.len().alias("n"))
            state = pl.DataFrame({"key": raw.str.to_lowercase()}).join(
                per_key, on="key", how="left"
            )
            given = raw.is_not_null() & (raw != NULL)
            self.errors.add(
                given & state["Id"].is_null(),
                "INVALID_FIELD",
                fmt(
                    f"Foreign key external ID: {{}} not found for field "
                    f"{column.parent_field.name} in entity {column.parent.name}",
                    raw,
                ),
                [],
            )
            lookup = column.field.name
            self.values[lookup] = state["Id"]
            self.provided[lookup] = raw.is_not_null()
            self.set_null[lookup] = (raw == NULL).fill_null(False)

    def check_references(self) -> None:
        for name, values in self.values.items():
            field = self.sobject.field(name)
            if field.type != "reference" or values.null_count() == self.height:
                continue
            ids = normalize_ids(values)
            prefixes = [
                parent.key_prefix
                for parent in map(self.schema.get, field.reference_to)
                if parent is not None
            ]
            wrong_type = values.is_not_null() & ~ids.str.slice(0, 3).is_in(prefixes)
            self.errors.add(
                wrong_type,
                "FIELD_INTEGRITY_EXCEPTION",
                fmt(f"{field.label}: id value of incorrect type: {{}}", values),
                [field.name],
            )
            exists = pl.Series([False] * self.height)
            for parent_name in field.reference_to:
                parent = self.schema.get(parent_name)
                if parent is None:
                    continue
                found = self.store.find(parent, "Id", ids.drop_nulls(), case_insensitive=False)
                live = found.filter(~pl.col("IsDeleted"))["key"]
                exists = exists | ids.is_in(live.implode()).fill_null(False)
            self.errors.add(
                values.is_not_null() & ~exists,
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                [field.name],
            )
            self.values[name] = ids

    def check_required(self) -> None:
        creating = self.target.is_null()
        missing_parts = []
        for field in self.sobject.fields.values():
            values = self.values.get(field.name)
            set_null = self.set_null.get(field.name, pl.Series([False] * self.height))
            if field.required_on_create:
                absent = values.is_null() if values is not None else pl.Series([True] * self.height)
                missing = (creating & absent) | (~creating & set_null)
            elif not field.nillable and field.updateable:
                missing = set_null
            else:
                continue
            if missing.any():
                missing_parts.append(
                    pl.select(pl.when(pl.lit(missing)).then(pl.lit(field.name))).to_series()
                )
        if not missing_parts:
            return
        names = pl.select(
            pl.concat_list([pl.lit(s) for s in missing_parts]).list.drop_nulls().alias("names")
        ).to_series()
        self.errors.add(
            names.list.len() > 0,
            "REQUIRED_FIELD_MISSING",
            fmt("Required fields are missing: [{}]", names.list.join(", ")),
            names,
        )

    def check_unique(self) -> None:
        for name, values in self.values.items():
            field = self.sobject.field(name)
            if not (field.unique or field.external_id) or values.null_count() == self.height:
                continue
            text = values.cast(pl.Utf8)
            folded = text if field.case_sensitive else text.str.to_lowercase()
            live = self.errors.ok & text.is_not_null()
            first_seen = pl.select(pl.lit(folded).is_first_distinct()).to_series()
            self.errors.add(
                live & ~first_seen,
                "DUPLICATE_VALUE",
                "duplicate value found: <unknown> duplicates value on record with id: <unknown>",
                [],
            )
            found = self.store.find(
                self.sobject, name, text.drop_nulls(), case_insensitive=not field.case_sensitive
            ).filter(~pl.col("IsDeleted"))
            found = found.with_columns(
                pl.col("key").str.to_lowercase() if not field.case_sensitive else pl.col("key")
            )
            owner = found.group_by("key").agg(pl.col("Id").first().alias("holder"))
            state = pl.DataFrame({"key": folded, "target": self.target}).join(
                owner, on="key", how="left"
            )
            clash = state["holder"].is_not_null() & (
                state["target"].is_null() | (state["holder"] != state["target"]).fill_null(True)
            )
            self.errors.add(
                clash,
                "DUPLICATE_VALUE",
                fmt(
                    f"duplicate value found: {field.name} duplicates value on record with id: {{}}",
                    state["holder"],
                ),
                [],
            )

    def inject_lock_faults(self) -> None:
        if self.engine.lock_mask is None:
            return
        mask = self.engine.lock_mask(self.height)
        if mask is None:
            return
        self.errors.add(
            mask,
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access to this record or 1 records",
            [],
        )

    # -- applying -----------------------------------------------------------------------

    def apply(self) -> pl.Series:
        ok = self.errors.ok
        creating = ok & self.target.is_null()
        updating = ok & self.target.is_not_null()
        created_ids = pl.Series("Id", [None] * self.height, dtype=pl.Utf8)
        operation = self.request.operation
        with self.store.transaction():
            if operation in ("delete", "hardDelete"):
                ids = self.target.filter(ok).to_list()
                self.store.delete(self.sobject, ids, hard=operation == "hardDelete")
                return created_ids
            if creating.any():
                created_ids = self.insert_rows(creating)
            if updating.any():
                self.update_rows(updating)
            self.refresh_derived(created_ids, updating)
        return created_ids

    def insert_rows(self, creating: pl.Series) -> pl.Series:
        now = utc_now()
        owner = self.engine.owner_id()
        new_ids = self.store.new_ids(self.sobject, int(creating.sum()))
        written = [
            values.filter(creating).alias(name)
            for name, values in self.values.items()
            if name != "Id"
        ]
        frame = pl.DataFrame({"Id": new_ids}).with_columns(
            *written,
            pl.lit(False).alias("IsDeleted"),
            pl.lit(now).alias("CreatedDate"),
            pl.lit(now).alias("LastModifiedDate"),
            pl.lit(now).alias("SystemModstamp"),
            pl.lit(owner).alias("CreatedById"),
            pl.lit(owner).alias("LastModifiedById"),
        )
        frame = frame.with_columns(self.defaults(frame, owner))
        self.store.insert(self.sobject, frame)
        placed = pl.Series("Id", [None] * self.height, dtype=pl.Utf8)
        return placed.scatter(creating.arg_true(), new_ids)

    def defaults(self, frame: pl.DataFrame, owner: str) -> list[pl.Expr]:
        """Values the org fills in on create: the owner, checkbox defaults and the default
        value of a picklist such as Lead.Status."""
        fills = []
        for field in self.sobject.fields.values():
            if field.name == "OwnerId":
                default = owner
            elif field.type == "boolean" and field.default_value is not None:
                default = bool(field.default_value)
            elif field.defaulted_on_create and field.createable and field.default_value:
                default = field.default_value
            else:
                continue
            column = pl.col(field.name) if field.name in frame.columns else pl.lit(None)
            fills.append(column.fill_null(default).alias(field.name))
        return fills

    def update_rows(self, updating: pl.Series) -> None:
        fields = [n for n in self.values if n != "Id"]
        columns: dict[str, pl.Series] = {"Id": self.target.filter(updating)}
        for name in fields:
            columns[name] = self.values[name].filter(updating)
            flag = self.set_null.get(name, pl.Series([False] * self.height))
            columns["__null__" + name] = flag.filter(updating)
        frame = pl.DataFrame(columns).with_columns(pl.lit(utc_now()).alias("__now"))
        self.store.update(self.sobject, frame, fields)

    def refresh_derived(self, created_ids: pl.Series, updating: pl.Series) -> None:
        """Fields Salesforce computes: a person's Name, products (a line's TotalPrice),
        auto numbers."""
        touched = pl.concat([created_ids.drop_nulls(), self.target.filter(updating)])
        fields = self.sobject.fields
        table = quote(self.sobject.name)
        if touched.is_empty():
            return
        with self.store.registered("_touched", pl.DataFrame({"Id": touched})) as con:
            if "Name" in fields and not fields["Name"].createable and "LastName" in fields:
                con.execute(
                    f"UPDATE {table} SET Name = trim(concat_ws(' ', FirstName, LastName)) "
                    "WHERE Id IN (SELECT Id FROM _touched)"
                )
            for field in fields.values():
                if field.product_of:
                    factors = " * ".join(quote(name) for name in field.product_of)
                    con.execute(
                        f"UPDATE {table} SET {quote(field.name)} = {factors} "
                        "WHERE Id IN (SELECT Id FROM _touched)"
                    )
                if field.auto_number:
                    con.execute(
                        f"UPDATE {table} SET {quote(field.name)} = "
                        "lpad(CAST(CAST(substr(Id, 6, 10) AS BIGINT) + 100 AS VARCHAR), 8, '0') "
                        f"WHERE Id IN (SELECT Id FROM _touched) AND {quote(field.name)} IS NULL"
                    )

    def outcome(self, created_ids: pl.Series) -> pl.DataFrame:
        ok = self.errors.ok
        ids = pl.select(
            pl.when(pl.lit(created_ids).is_not_null())
            .then(pl.lit(created_ids))
            .otherwise(pl.lit(self.target))
        ).to_series()
        return pl.DataFrame(
            {
                "id": ids,
                "success": ok,
                "created": ok & created_ids.is_not_null(),
                "code": self.errors.code,
                "message": self.errors.message,
                "fields": self.errors.fields,
                "type_error": self.type_error & ~ok,
            }
        )


def normalize_ids(values: pl.Series) -> pl.Series:
    """18-character forms of 15- or 18-character ids; null for anything malformed, including
    an 18-character id whose suffix does not match (real orgs check it)."""
    text = values.cast(pl.Utf8)
    mapping = {value: normalize_id(value) for value in text.drop_nulls().unique().to_list()}
    return text.replace_strict(mapping, default=None, return_dtype=pl.Utf8)
