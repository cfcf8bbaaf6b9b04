"""Activities join their people: an Opportunity through its primary contact role, a Task
through WhoId, both via the records' links, so merged records share their activities."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl

from sf_assets.merge.activities import Activities, ActivitySources
from sf_assets.merge.tables import Source
from sf_assets.specs.ingest import PeopleMerge
from tests.merge.test_people import ORG, RUN_1, T0, Copies, merge


def land(
    copies: Copies, sobject: str, rows: dict[str, list], deleted: list[bool] | None = None
) -> None:  # type: ignore[type-arg]
    count = len(rows["Id"])
    copies.warehouse.upsert(
        sobject,
        pl.DataFrame(
            {
                **rows,
                "SystemModstamp": [T0 + timedelta(minutes=30)] * count,
                "IsDeleted": deleted or [False] * count,
                "_sf_org_id": [ORG] * count,
            }
        ),
    )


def test_opportunities_join_through_the_primary_contact_role_and_tasks_through_who(tmp_path):
    copies = Copies(tmp_path)
    copies.land(RUN_1)
    merge(copies, PeopleMerge.model_validate({"keys": {"match": "previous_key_empty"}}), {})
    land(
        copies,
        "Opportunity",
        {
            "Id": ["O1", "O2"],
            "Name": ["Tour", "Merch"],
            "Amount": [900.0, 40.0],
            "CloseDate": [date(2026, 2, 1)] * 2,
        },
    )
    land(
        copies,
        "OpportunityContactRole",
        {
            "Id": ["R1", "R2", "R3"],
            "OpportunityId": ["O1", "O1", "O2"],
            "ContactId": ["C2", "C1", "C1"],
            "IsPrimary": [True, False, False],
        },
    )
    land(
        copies,
        "Task",
        {
            "Id": ["T1", "T2", "T3"],
            "Subject": ["Call", "Mail", "Gone"],
            "WhoId": ["L1", "C2", "C1"],
        },
        deleted=[False, False, True],
    )
    raw = lambda name: Source(name, "salesforce", name.lower())  # noqa: E731
    count = Activities(copies.warehouse).rebuild(
        ActivitySources(raw("Opportunity"), raw("OpportunityContactRole"), raw("Task"))
    )
    assert count == 3
    with duckdb.connect(str(copies.warehouse.path), read_only=True) as con:
        rows = con.sql(
            "SELECT object, record_id, person_id, subject, amount FROM activities ORDER BY record_id"
        ).fetchall()
    # O1's primary role is Bo (C2); O2 has no primary role; L1 merged into Ana (C1); T3 is deleted
    assert rows == [
        ("Opportunity", "O1", f"{ORG}:C2", "Tour", 900.0),
        ("Task", "T1", f"{ORG}:C1", "Call", None),
        ("Task", "T2", f"{ORG}:C2", "Mail", None),
    ]
