"""sf-assets' own state: staged batches, the write ledger, open write jobs, leases, batch status
and Emarsys uploads, behind one interface (`store.StateStore`) that every step, retry, sensor
and command uses. `duckdb_backend` keeps it in one DuckDB file; `lease` is how one run at a time
writes a batch; `postgres_backend` keeps it in a PostgreSQL database that every machine of a
deployment shares."""

from sf_assets.state.duckdb_backend import DuckDBStateStore
from sf_assets.state.lease import BatchBusy, BatchLease, RunStatus
from sf_assets.state.model import (
    INCOMPLETE,
    SUCCESS_STATUSES,
    UNWRITTEN_STATUSES,
    WRITTEN,
    JobStart,
    Lease,
    LeaseLost,
    OpenJob,
    Settlement,
    StateError,
    StateLocked,
    UploadConflict,
)
from sf_assets.state.store import StateStore

__all__ = [
    "INCOMPLETE",
    "SUCCESS_STATUSES",
    "UNWRITTEN_STATUSES",
    "WRITTEN",
    "BatchBusy",
    "BatchLease",
    "DuckDBStateStore",
    "JobStart",
    "Lease",
    "LeaseLost",
    "OpenJob",
    "PostgresStateStore",
    "RunStatus",
    "Settlement",
    "StateError",
    "StateLocked",
    "StateStore",
    "UploadConflict",
]


def __getattr__(name: str) -> object:
    """`PostgresStateStore` on first use: psycopg takes a fifth of a second to import, which
    every process of a deployment on the DuckDB state (each run, sensor and code server) would
    otherwise pay."""
    if name == "PostgresStateStore":
        from sf_assets.state.postgres_backend import PostgresStateStore

        return PostgresStateStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
