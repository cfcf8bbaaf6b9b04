"""The embedded DuckDB backend of the state store (one file, one machine)."""

from sf_assets.state.duckdb_backend.store import DuckDBStateStore

__all__ = ["DuckDBStateStore"]
