"""Organizations are keyed by (org id, account id): the same company in two orgs never merges,
and an Account's changes follow the spec's strategy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest

from sf_assets.merge.organizations import Organizations
from sf_assets.merge.tables import Source
from sf_assets.salesforce.reader.warehouse import Warehouse
from sf_assets.specs.ingest import OrganizationsMerge

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def accounts(warehouse: Warehouse, org: str, rows: list[tuple], deleted: bool = False) -> None:  # type: ignore[type-arg]
    """(minute, Id, Name, Website) rows as the reader commits them."""
    warehouse.upsert(
        "Account",
        pl.DataFrame(
            {
                "Id": [r[1] for r in rows],
                "SystemModstamp": [T0 + timedelta(minutes=r[0]) for r in rows],
                "IsDeleted": [deleted] * len(rows),
                "Name": [r[2] for r in rows],
                "Website": [r[3] for r in rows],
                "_sf_org_id": [org] * len(rows),
            },
            schema_overrides={"Website": pl.Utf8},
        ),
    )


def table(path) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(
            "SELECT organization_key, org_id, account_id, Name, Website, active "
            "FROM organizations ORDER BY organization_key"
        ).fetchall()


def test_the_same_company_in_two_orgs_stays_two_organizations(tmp_path):
    config = OrganizationsMerge.model_validate({"fields": ["Name", "Website"]})
    production = Warehouse(tmp_path / "warehouse.duckdb", "salesforce")
    europe = Warehouse(tmp_path / "warehouse.duckdb", "salesforce_eu")
    # the same name, and even the same Account Id (a sandbox copied from production)
    accounts(production, "00DA0000000001A", [(1, "001A", "Acme", "acme.com")])
    accounts(europe, "00DB0000000002B", [(1, "001A", "Acme", "acme.eu")])
    merge = Organizations(config, production)
    merge.merge(Source("Account", "salesforce", "account"), 0)
    merge.merge(Source("Account", "salesforce_eu", "account"), 0)
    assert table(tmp_path / "warehouse.duckdb") == [
        ("00DA0000000001A:001A", "00DA0000000001A", "001A", "Acme", "acme.com", True),
        ("00DB0000000002B:001A", "00DB0000000002B", "001A", "Acme", "acme.eu", True),
    ]


@pytest.mark.parametrize(
    ("strategy", "name", "website"),
    [
        ("append_only", "Acme", "acme.com"),
        ("overwrite", "Acme Corp", "acme.com"),
        ("ignore", "Acme", None),
    ],
)
def test_an_accounts_changes_follow_the_strategy(tmp_path, strategy, name, website):
    config = OrganizationsMerge.model_validate(
        {"fields": ["Name", "Website"], "strategy": strategy}
    )
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", "salesforce")
    source = Source("Account", "salesforce", "account")
    accounts(warehouse, "00DA0000000001A", [(1, "001A", "Acme", None)])
    report = Organizations(config, warehouse).merge(source, 0)
    accounts(warehouse, "00DA0000000001A", [(2, "001A", "Acme Corp", "acme.com")])
    Organizations(config, warehouse).merge(source, report.seen["Account"])
    assert table(tmp_path / "warehouse.duckdb") == [
        ("00DA0000000001A:001A", "00DA0000000001A", "001A", name, website, True)
    ]


def test_a_deleted_account_is_kept_inactive(tmp_path):
    config = OrganizationsMerge.model_validate({"fields": ["Name", "Website"]})
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", "salesforce")
    source = Source("Account", "salesforce", "account")
    accounts(warehouse, "00DA0000000001A", [(1, "001A", "Acme", None), (1, "001B", "Beta", None)])
    report = Organizations(config, warehouse).merge(source, 0)
    accounts(warehouse, "00DA0000000001A", [(3, "001B", "Beta", None)], deleted=True)
    second = Organizations(config, warehouse).merge(source, report.seen["Account"])
    assert (second.records, second.unlinked) == (1, 1)
    assert [row[5] for row in table(tmp_path / "warehouse.duckdb")] == [True, False]
