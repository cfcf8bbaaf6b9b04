"""Asset keys of warehouse tables, one rule for every factory: a table's key is its name,
schema first (`salesforce.contact` -> salesforce/contact), with DuckDB's default schema left
out (`people` or `main.people` -> people), in lower case as DuckDB compares names.

Ingest assets are keyed by the tables they write, and a writeback sync reading a DuckDB table
depends on that table's key, so a round trip (read Contacts, merge people, write a field back)
is one graph in the UI. A table no ingest spec writes shows as an external asset upstream of
its sync: the source data is part of the lineage too. Since a key names a table but not its
file, a sync that reads an ingest spec's table from another file is set aside when the specs
load (`misread_tables` in the spec loader) rather than drawn downstream of what it does not
read.
"""

from __future__ import annotations

import dagster as dg

from sf_assets.specs.sources import DuckDBSource, table_parts


def table_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(list(table_parts(table)))


def source_deps(source: object) -> list[dg.AssetKey]:
    """The warehouse table a sync's source reads, as an upstream asset (none for SQL and
    files, whose tables are not named)."""
    if isinstance(source, DuckDBSource) and source.table:
        return [table_key(source.table)]
    return []
