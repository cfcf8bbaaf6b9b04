"""The PostgreSQL backend of the state store: one database that every machine of a deployment
shares (runs, steps, the daemon's sensors and the commands)."""

from sf_assets.state.postgres_backend.store import PostgresStateStore

__all__ = ["PostgresStateStore"]
