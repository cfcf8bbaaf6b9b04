"""Ingest specs: a `read:` block makes the third kind; what merges and orders need must be
read, and a bad filter or schedule names the field."""

from __future__ import annotations

import pytest

from sf_assets.specs import IngestSpec, SpecError, load_specs

GOOD = """
name: crm
read:
  objects:
    Contact: {}
    Lead: {fields: [FirstName, LastName, Email, Phone]}
into: {duckdb: warehouse.duckdb}
merge: {people: {}}
"""


def load(tmp_path, text: str):  # type: ignore[no-untyped-def]
    folder = tmp_path / "syncs"
    folder.mkdir(exist_ok=True)
    (folder / "crm.yaml").write_text(text)
    return load_specs(folder)


def test_a_read_block_makes_an_ingest_spec_with_its_defaults(tmp_path):
    (loaded,) = load(tmp_path, GOOD)
    spec = loaded.spec
    assert isinstance(spec, IngestSpec) and spec.kind == "ingest"
    assert (spec.connection, spec.into.raw_schema, spec.schedule) == (
        "default",
        "salesforce",
        "*/15 * * * *",
    )
    assert spec.read.objects["Contact"].fields == "all"
    people = spec.merge.people
    assert people is not None and people.sources == ["Contact", "Lead"]
    assert (people.strategy, people.keys.primary, people.keys.fallback, people.keys.match) == (
        "append_only",
        "Email",
        "Phone",
        "any_key",
    )
    assert spec.read.deletions.source == "query_all" and spec.read.lookback_seconds == 60


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            "read: {objects: {Lead: {fields: [LastName]}}}",
            "(top)",
            "Contact must be listed under read.objects",
        ),
        (
            "read: {objects: {Contact: {}, Lead: {fields: [LastName]}}}",
            "(top)",
            "read.objects.Lead.fields must include Email, Phone, FirstName",
        ),
        (
            "read: {objects: {Contact: {filter: [{field: Email, op: in, value: x}]}, Lead: {}}}",
            "read.objects.Contact.filter.0.condition",
            "`in` needs a non-empty list",
        ),
        ("read: {objects: {'Contact; DROP': {}}}", "read.objects", "not an object API name"),
        ("schedule: every hour", "schedule", "not a five-field cron schedule"),
        ("merge: {people: {strategy: merge_all}}", "merge.people.strategy", "'append_only'"),
    ],
)
def test_a_bad_ingest_spec_names_the_field_and_the_problem(tmp_path, change, path, words):
    key = change.split(":")[0]
    lines = [line for line in GOOD.strip().splitlines() if not line.startswith(key + ":")]
    if key == "read":
        lines = [line for line in lines if not line.startswith(("  ", "    "))]
    with pytest.raises(SpecError) as excinfo:
        load(tmp_path, "\n".join([*lines, change]))
    message = str(excinfo.value)
    assert "crm.yaml" in message and f"  {path}:" in message and words in message


def test_orders_need_order_and_its_items(tmp_path):
    with pytest.raises(SpecError, match=r"OrderItem must be listed under read\.objects"):
        load(
            tmp_path,
            "name: f\nread: {objects: {Order: {}}}\ninto: {duckdb: w.duckdb}\norders: true\n",
        )
