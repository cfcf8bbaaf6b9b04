"""The merge of Contacts and Leads into people, on the worked example of the README
("Merging people"): the same conflicting records under each merge strategy and each key
strategy give exactly the documented people, row by row, and the documented links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from sf_assets.merge.people import People
from sf_assets.merge.tables import Source
from sf_assets.salesforce.reader.warehouse import Warehouse
from sf_assets.specs.ingest import PeopleMerge

ORG = "00DA0000000001A"
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
FIELDS = ("Email", "Phone", "FirstName", "LastName")

# The worked example: (minute, object, Id, Email, Phone, FirstName, LastName, opted out)
RUN_1 = [
    (1, "Contact", "C1", "ana@example.com", "+1 555 0100", "Ana", "Lima", False),
    (2, "Lead", "L1", "ANA@example.com", "+1 555 0199", "Anna", "Lima", False),
    (3, "Lead", "L2", None, "+1-555-0100", None, "Lima", False),
    (4, "Contact", "C2", "bo@example.com", "+1 555 0100", "Bo", "Berg", False),
    (5, "Lead", "L3", "cy@example.com", None, "Cy", "Chen", True),
]
RUN_2 = [
    (6, "Contact", "C1", "ana@example.com", "+1 555 0100", "Ana Maria", "Lima", False),
    (7, "Lead", "L4", "bo@example.com", None, "Bo", "Berg", False),
]


def person(pid: str, email, phone, first, last, opt_in: bool, *sources: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "person_id": f"{ORG}:{pid}",
        "Email": email,
        "Phone": phone,
        "FirstName": first,
        "LastName": last,
        "email_opt_in": opt_in,
        "sources": sorted(sources),
    }


# (strategy, key strategy) -> people after run 1, people after run 2
EXPECTED = {
    ("append_only", "any_key"): (
        [
            person(
                "C1", "ana@example.com", "+1 555 0100", "Ana", "Lima", True, "C1", "L1", "L2", "C2"
            ),
            person("L3", "cy@example.com", None, "Cy", "Chen", False, "L3"),
        ],
        [
            person(
                "C1", "ana@example.com", "+1 555 0100", "Ana", "Lima", True, "C1", "L1", "L2", "C2"
            ),
            person("L3", "cy@example.com", None, "Cy", "Chen", False, "L3"),
            person("L4", "bo@example.com", None, "Bo", "Berg", True, "L4"),
        ],
    ),
    ("overwrite", "any_key"): (
        [
            person("C1", "ANA@example.com", "+1 555 0199", "Anna", "Lima", True, "C1", "L1"),
            person("L2", "bo@example.com", "+1 555 0100", "Bo", "Berg", True, "L2", "C2"),
            person("L3", "cy@example.com", None, "Cy", "Chen", False, "L3"),
        ],
        [
            person("C1", "ana@example.com", "+1 555 0100", "Ana Maria", "Lima", True, "C1", "L1"),
            person("L2", "bo@example.com", "+1 555 0100", "Bo", "Berg", True, "L2", "C2", "L4"),
            person("L3", "cy@example.com", None, "Cy", "Chen", False, "L3"),
        ],
    ),
    ("ignore", "any_key"): (
        [
            person(
                "C1", "ana@example.com", "+1 555 0100", "Ana", "Lima", True, "C1", "L1", "L2", "C2"
            ),
            person("L3", "cy@example.com", None, "Cy", "Chen", False, "L3"),
        ],
        [
            person(
                "C1", "ana@example.com", "+1 555 0100", "Ana", "Lima", True, "C1", "L1", "L2", "C2"
            ),
            person("L3", "cy@example.com", None, "Cy", "Chen", False, "L3"),
            person("L4", "bo@example.com", None, "Bo", "Berg", True, "L4"),
        ],
    ),
    ("append_only", "previous_key_empty"): (
        [
            person("C1", "ana@example.com", "+1 555 0100", "Ana", "Lima", True, "C1", "L1", "L2"),
            person("C2", "bo@example.com", "+1 555 0100", "Bo", "Berg", True, "C2"),
            person("L3", "cy@example.com", None, "Cy", "Chen", False, "L3"),
        ],
        [
            person("C1", "ana@example.com", "+1 555 0100", "Ana", "Lima", True, "C1", "L1", "L2"),
            person("C2", "bo@example.com", "+1 555 0100", "Bo", "Berg", True, "C2", "L4"),
            person("L3", "cy@example.com", None, "Cy", "Chen", False, "L3"),
        ],
    ),
}


class Copies:
    """Raw copies of Contacts and Leads as the reader commits them."""

    def __init__(self, root: Path) -> None:
        self.warehouse = Warehouse(root / "warehouse.duckdb", "salesforce")

    def land(self, rows: list[tuple], org: str = ORG, deleted: bool = False) -> None:  # type: ignore[type-arg]
        for sobject in ("Contact", "Lead"):
            mine = [r for r in rows if r[1] == sobject]
            if not mine:
                continue
            frame = pl.DataFrame(
                {
                    "Id": [r[2] for r in mine],
                    "SystemModstamp": [T0 + timedelta(minutes=r[0]) for r in mine],
                    "IsDeleted": [deleted] * len(mine),
                    **{f: [r[3 + i] for r in mine] for i, f in enumerate(FIELDS)},
                    "HasOptedOutOfEmail": [r[7] for r in mine],
                    "_sf_org_id": [org] * len(mine),
                },
                schema_overrides={f: pl.Utf8 for f in FIELDS},
            )
            self.warehouse.upsert(sobject, frame)

    def people(self, config: PeopleMerge) -> People:
        return People(config, self.warehouse)

    def sources(self) -> list[Source]:
        return [Source(o, "salesforce", o.lower()) for o in ("Contact", "Lead")]


def merge(copies: Copies, config: PeopleMerge, since: dict[str, int]) -> dict[str, int]:
    report = copies.people(config).merge(copies.sources(), since)
    return {**since, **report.seen}


def people_table(copies: Copies) -> list[dict[str, Any]]:
    with duckdb.connect(str(copies.warehouse.path), read_only=True) as con:
        people = con.sql(
            "SELECT person_id, Email, Phone, FirstName, LastName, email_opt_in FROM people "
            "ORDER BY person_id"
        ).pl()
        links = con.sql(
            "SELECT person_id, list(record_id ORDER BY record_id) AS sources FROM people_sources "
            "WHERE current GROUP BY person_id"
        ).pl()
    by_person = {row["person_id"]: row["sources"] for row in links.iter_rows(named=True)}
    return [{**row, "sources": by_person[row["person_id"]]} for row in people.iter_rows(named=True)]


@pytest.mark.parametrize(("strategy", "match"), list(EXPECTED))
def test_the_worked_example_gives_the_documented_people_row_by_row(tmp_path, strategy, match):
    config = PeopleMerge.model_validate(
        {"strategy": strategy, "keys": {"match": match}, "email_opt_in": True}
    )
    copies = Copies(tmp_path)
    after_first, after_second = EXPECTED[(strategy, match)]
    copies.land(RUN_1)
    since = merge(copies, config, {})
    assert people_table(copies) == after_first
    copies.land(RUN_2)
    merge(copies, config, since)
    assert people_table(copies) == after_second


def test_a_run_merges_only_records_changed_since_its_cursor(tmp_path):
    config = PeopleMerge.model_validate({"email_opt_in": True})
    copies = Copies(tmp_path)
    copies.land(RUN_1)
    since = merge(copies, config, {})
    report = copies.people(config).merge(copies.sources(), since)
    assert (report.records, report.created, report.updated) == (0, 0, 0)
    copies.land(RUN_2)
    report = copies.people(config).merge(copies.sources(), since)
    assert (report.records, report.created, report.updated) == (2, 1, 0)


def test_merging_the_same_records_again_changes_nothing(tmp_path):
    config = PeopleMerge.model_validate({"strategy": "overwrite", "email_opt_in": True})
    copies = Copies(tmp_path)
    copies.land(RUN_1)
    merge(copies, config, {})
    first = people_table(copies)
    merge(copies, config, {})  # a crash before the cursor moved: the same records again
    assert people_table(copies) == first


def test_a_deleted_record_unlinks_and_a_person_without_records_is_inactive(tmp_path):
    config = PeopleMerge.model_validate({})
    copies = Copies(tmp_path)
    copies.land(RUN_1)
    since = merge(copies, config, {})
    copies.land([(9, "Lead", "L3", "cy@example.com", None, "Cy", "Chen", True)], deleted=True)
    copies.land([(9, "Lead", "L1", "ANA@example.com", None, "Anna", "Lima", False)], deleted=True)
    merge(copies, config, since)
    with duckdb.connect(str(copies.warehouse.path), read_only=True) as con:
        active = dict(con.sql("SELECT person_id, active FROM people").fetchall())
        current = dict(con.sql("SELECT record_id, current FROM people_sources").fetchall())
    assert active == {f"{ORG}:C1": True, f"{ORG}:L3": False}
    assert current == {"C1": True, "L1": False, "L2": True, "C2": True, "L3": False}


def test_an_opt_out_in_salesforce_unsubscribes_an_existing_person(tmp_path):
    config = PeopleMerge.model_validate({"strategy": "ignore", "email_opt_in": True})
    copies = Copies(tmp_path)
    copies.land(RUN_1)
    since = merge(copies, config, {})
    copies.land([(8, "Contact", "C1", "ana@example.com", "+1 555 0100", "Ana", "Lima", True)])
    merge(copies, config, since)
    ana = next(p for p in people_table(copies) if p["person_id"] == f"{ORG}:C1")
    assert ana["email_opt_in"] is False and ana["FirstName"] == "Ana"


def test_columns_added_to_people_keep_their_values_when_the_merge_updates_a_person(tmp_path):
    config = PeopleMerge.model_validate({"strategy": "overwrite"})
    copies = Copies(tmp_path)
    copies.land(RUN_1)
    since = merge(copies, config, {})
    with copies.warehouse.transaction() as con:  # enrichment the user keeps in the table
        con.execute("ALTER TABLE people ADD COLUMN segment VARCHAR")
        con.execute("UPDATE people SET segment = 'gold'")
    copies.land(RUN_2)
    merge(copies, config, since)
    with duckdb.connect(str(copies.warehouse.path), read_only=True) as con:
        rows = dict(con.sql("SELECT FirstName, segment FROM people").fetchall())
    assert rows == {"Ana Maria": "gold", "Bo": "gold", "Cy": "gold"}
