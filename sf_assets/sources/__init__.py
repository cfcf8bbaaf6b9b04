"""Warehouse datasets a sync reads: DuckDB tables, views and queries, Parquet and CSV files."""

from sf_assets.sources.dataset import Dataset, sort_batch_ids
from sf_assets.sources.schema import DatasetError, Schema

__all__ = ["Dataset", "DatasetError", "Schema", "sort_batch_ids"]
