"""`sf-assets describe OBJECT`: what the org says about an object's fields, so that writing a
mapping never means guessing API names, types or which fields are required."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from sf_assets.cli.org import ConnectionProblem, login
from sf_assets.salesforce.describe import FieldInfo, ObjectInfo, UnknownObjectError, describe_object

SHOWN_PICKLIST_VALUES = 8


def run_describe(name: str, connection: str = "default") -> int:
    try:
        obj = describe_object(login(connection), name)
    except (ConnectionProblem, UnknownObjectError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    console().print(fields_table(obj))
    print_summary(obj)
    return 0


def console() -> Console:
    """Wide enough for the table when the output goes to a file or a pipe."""
    out = Console()
    return out if out.is_terminal else Console(width=200, no_color=True)


def fields_table(obj: ObjectInfo) -> Table:
    table = Table(title=f"{obj.name} ({obj.label}): {len(obj.fields)} fields")
    for column in ("field", "label", "type", "required", "create", "update", "keys", "values"):
        table.add_column(column, overflow="fold")
    for field in sorted(obj.fields.values(), key=lambda f: (not f.required_on_create, f.name)):
        table.add_row(
            field.name,
            field.label,
            field.type_label(),
            required(field),
            yes(field.createable),
            yes(field.updateable),
            ", ".join(field.keys()),
            picklist(field),
        )
    return table


def required(field: FieldInfo) -> str:
    if field.required_on_create:
        return "yes"
    # Writable fields the org fills when a row leaves them out (e.g. a picklist default).
    defaulted = field.createable and field.defaulted_on_create and not field.nillable
    return "default" if defaulted else ""


def yes(flag: bool) -> str:
    return "yes" if flag else ""


def picklist(field: FieldInfo) -> str:
    values = list(field.picklist)
    shown = ", ".join(values[:SHOWN_PICKLIST_VALUES])
    if len(values) > SHOWN_PICKLIST_VALUES:
        shown += f", … ({len(values) - SHOWN_PICKLIST_VALUES} more)"
    if shown and field.restricted_picklist:
        shown += " (restricted)"
    return shown


def print_summary(obj: ObjectInfo) -> None:
    """The three facts a mapping needs first: what must be set, and what can match records."""
    fields = obj.fields.values()
    needed = [f.name for f in fields if f.required_on_create]
    external = [f.name for f in fields if f.external_id]
    lookup = [f.name for f in fields if f.id_lookup and not f.external_id]
    print(f"required to create a {obj.name}: {', '.join(needed) or 'none'}")
    print(f"external ids (upsert matches natively): {', '.join(external) or 'none'}")
    print(f"idLookup fields (matched by a lookup first): {', '.join(lookup) or 'none'}")
