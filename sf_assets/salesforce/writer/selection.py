"""Which rows of a batch a write sends, chosen from the ledger before anything is sent.

- "unsent": rows without a successful outcome. A batch is immutable, so a key written in it is
  never sent again; this is what makes a re-run of a batch send nothing.
- "changed": rows that are new or whose content hash (`_hash`, the mapped values) differs from
  the hash of the key's latest successful write. This is change detection for a dataset without
  a batch column, read whole each run: an unchanged dataset sends nothing and calls nothing.
  Rows deleted from the source are not noticed (nothing is deleted in Salesforce).
- "all": every row, ignoring the ledger (a forced full resend); outcomes are still recorded.

Only upserts and updates can carry a changed row to an existing record. Any other operation
(an insert would create a second record) never sends a key that already succeeded, whatever the
mode: the ledger is what keeps those writes exactly once. (An insert also skips keys that an
earlier batch created: writer.batch records those as `skipped` before this selection.)
"""

from __future__ import annotations

import polars as pl

from sf_assets.rows import CONTENT_HASHES, HASH_VERSION, hash_version
from sf_assets.salesforce.writer.model import WriteJob
from sf_assets.salesforce.writer.wire import SYSTEM_COLUMNS

RESEND_MODES = ("unsent", "changed", "all")
REPLAYABLE = ("upsert", "update")


def skipped_keys(job: WriteJob) -> pl.Series:
    """Keys of the mapped frame that this write does not send."""
    if job.resend not in RESEND_MODES:
        raise ValueError(f"resend must be one of {', '.join(RESEND_MODES)}, not {job.resend!r}")
    keys = job.mapped["_key"]
    if job.resend == "unsent" or job.spec.target.operation not in REPLAYABLE:
        settled = job.staging.successful_keys(job.spec.name, job.batch)
        return keys.filter(keys.is_in(settled.implode()))
    if job.resend == "all":
        return keys.clear()
    return unchanged_keys(job)


def unchanged_keys(job: WriteJob) -> pl.Series:
    """Keys whose current hash equals the hash of their latest successful write. A ledger hash
    of an earlier hash version is compared with that version's hash of the row, so changing
    the algorithm resends nothing that did not change."""
    written = job.staging.written_hashes(job.spec.name, job.batch)
    if written.is_empty():
        return job.mapped["_key"].clear()
    pairs = job.mapped.select("_key", "_hash").join(
        written.select(
            pl.col("source_key").cast(pl.Utf8).alias("_key"),
            pl.col("content_hash").cast(pl.Utf8).alias("_written"),
        ),
        on="_key",
    )
    same = [pairs.filter(pl.col("_hash") == pl.col("_written"))["_key"]]
    earlier = [version for version in CONTENT_HASHES if version != HASH_VERSION]
    older = pairs.with_columns(hash_version(pl.col("_written")).alias("_version")).filter(
        pl.col("_version").is_in(earlier)
    )
    for (version,), group in older.group_by("_version"):
        same.append(same_as_before(job, group, str(version)))
    return pl.concat(same)


def same_as_before(job: WriteJob, older: pl.DataFrame, version: str) -> pl.Series:
    """Keys among `older` (`_key`, `_written`: hashes of `version`) whose row still hashes to
    its `_written` under that version's algorithm."""
    rows = job.mapped.join(older.select("_key"), on="_key", how="semi")
    fields = [c for c in rows.columns if c not in SYSTEM_COLUMNS]
    rehashed = rows.select("_key").with_columns(CONTENT_HASHES[version](rows, fields))
    same = rehashed.join(older, on="_key").filter(pl.col("_hash") == pl.col("_written"))
    return same["_key"]
