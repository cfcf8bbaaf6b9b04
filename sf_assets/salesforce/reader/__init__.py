"""Reading Salesforce objects into raw copies in DuckDB: field selection from the describe,
structured filters compiled to escaped SOQL, keyset scans over REST or one Bulk query job,
cursors that move only after the rows are committed, and deletions (queryAll or getDeleted,
and a full key comparison once those can no longer tell)."""

from sf_assets.salesforce.reader.read import (
    ObjectReader,
    ReadOptions,
    ReadReport,
    read_object,
    stream_name,
)
from sf_assets.salesforce.reader.warehouse import Warehouse

__all__ = [
    "ObjectReader",
    "ReadOptions",
    "ReadReport",
    "Warehouse",
    "read_object",
    "stream_name",
]
