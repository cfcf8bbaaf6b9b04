"""What a write is given and what it hands back."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import polars as pl

from resources.salesforce import SalesforceResource
from sf_assets.salesforce.options import ApiOptions
from sf_assets.specs import SyncSpec
from sf_assets.state import RunStatus, StateStore

FAILURE_SCHEMA = {
    "_key": pl.Utf8,
    "_row": pl.Int64,
    "error_code": pl.Utf8,
    "error_message": pl.Utf8,
    "hint": pl.Utf8,
}


@dataclass(frozen=True)
class WriteOptions(ApiOptions):
    """A write's knobs on top of the API's; production defaults, tests shorten the waits."""

    lock_retries: int = 3  # extra rounds for rows that failed with UNABLE_TO_LOCK_ROW
    # Rows sent between two ledger commits (25 collections calls): a commit costs about as much
    # as three calls, and a crash costs one lookup per few hundred rows of the open window.
    rest_window_rows: int = 5000
    # CSV bytes per Bulk job (Salesforce takes up to 100 MB). Smaller jobs keep a job's upload,
    # result file and outcomes small enough for a 1,000,000-row batch to stay under 1 GiB, and
    # Salesforce starts processing the first while the next uploads; each costs ~5 calls more.
    bulk_max_bytes: int = 32 * 1024 * 1024


@dataclass
class WriteJob:
    spec: SyncSpec
    batch: str
    mapped: pl.DataFrame
    salesforce: SalesforceResource
    staging: StateStore
    run_id: str
    log: logging.Logger  # Dagster's context.log in assets
    object_fields: dict[str, str]  # target field API name -> describe type (for formatting)
    options: WriteOptions = field(default_factory=WriteOptions)
    # Fields of the object that are external ids (from describe). Upserts match natively only
    # on these; None means unknown, and an upsert then trusts match_on to be one.
    external_ids: frozenset[str] | None = None
    # Which rows are sent (writer/selection.py): "unsent" (rows without a success: batches),
    # "changed" (rows whose content differs from their last success), "all" (forced resend).
    resend: str = "unsent"
    # What the Dagster instance says of a run (sf_assets.state.lease): lets a second run of the
    # batch tell a crashed holder of the batch's lease from a live one. None outside Dagster.
    run_status: RunStatus | None = None
    # Every key of the batch, when `mapped` holds only some of them (a retry of rejects): the
    # batch counts as written only once all of them are.
    batch_keys: pl.Series | None = None


@dataclass
class WriteReport:
    rows_in: int
    already_written: int
    sent: int
    created: int
    updated: int
    failed: int
    api: str  # "rest" | "bulk": what this write used (what auto chose)
    api_calls: int  # HTTP calls to Salesforce made by this write
    bulk_job_ids: list[str]
    duration_seconds: float
    failures: pl.DataFrame  # _key, _row, error_code, error_message, hint (latest failed attempts)
    not_found: int = 0  # keys with no record that an update-only or delete write left alone
    deleted: int = 0
    skipped: int = 0  # inserts whose key an earlier batch of the sync already created
    status: str = ""  # the batch afterwards: "written", or "incomplete" while rows are refused
    refused: int = 0  # keys of the batch still not written (refused, or never sent)
    # The batch's latest outcome per key, counted by status, whatever this run did.
    batch_outcomes: dict[str, int] = field(default_factory=dict)
