"""When a written batch need not be mapped, or written, again.

Re-running a written batch must cost nothing when nothing changed, and must map and send the
rows that did change: rows that landed in the batch since, or a changed spec. Two records,
each staged after what it describes, so a crash in between leaves the batch mapped again
rather than kept:

- the mapping's: a fingerprint of the spec (and of the mapping rules' version) and the
  fingerprint of the staged source rows it mapped, with the counts. The mapping step keeps the
  staged mapping when the batch is written, the spec is the same and the source rows are the
  ones it mapped: mapping them again could only reproduce the staged rows.
- the write's: the mapping record of the rows the written step last wrote to the end. The
  written step sends nothing and calls nothing when the staged mapping is the one it wrote.

Inserts always map again: their blocking check asks the ledger about the batch's match values,
which need the describe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from sf_assets.specs import SyncSpec
from sf_assets.state import WRITTEN, StateStore

MAPPING_KIND = "mapping_spec"  # the staged kind holding the mapping record
WRITTEN_KIND = "written_mapping"  # the mapping record of the rows last written to the end
# Bump when a change to the mapping rules changes what a spec maps a row to.
RULES_VERSION = 1
SCHEMA = {
    "fingerprint": pl.Utf8,
    "source": pl.Utf8,
    "rows_in": pl.Int64,
    "mapped": pl.Int64,
    "rejected": pl.Int64,
}


@dataclass(frozen=True)
class Mapped:
    """The counts of the batch's staged mapping."""

    rows_in: int
    mapped: int
    rejected: int  # rejected rows (a row with several problems counts once)


def fingerprint(spec: SyncSpec) -> str:
    text = f"{RULES_VERSION}|{spec.model_dump_json()}"
    return hashlib.sha256(text.encode()).hexdigest()


def remember(
    staging: StateStore, spec: SyncSpec, batch: str, source: str | None, counts: Mapped
) -> None:
    """Call after the mapped rows and rejects are staged: the record says they are whole."""
    frame = pl.DataFrame(
        [[fingerprint(spec), source, counts.rows_in, counts.mapped, counts.rejected]],
        schema=SCHEMA,
        orient="row",
    )
    staging.replace_batch(spec.name, MAPPING_KIND, batch, frame)


def reusable(staging: StateStore, spec: SyncSpec, batch: str, source: str | None) -> Mapped | None:
    """The staged mapping's counts when the batch is written and this spec mapped these rows."""
    kept = _kept_mapping(staging, spec, batch)
    if kept is None or source is None or kept["source"][0] != source:
        return None
    return _counts(kept)


def remember_written(staging: StateStore, spec: SyncSpec, batch: str) -> None:
    """Call when the batch is written: the staged mapping is the one that was written."""
    kept = staging.load_batch(spec.name, MAPPING_KIND, batch)
    staging.replace_batch(spec.name, WRITTEN_KIND, batch, kept)


def settled(staging: StateStore, spec: SyncSpec, batch: str) -> Mapped | None:
    """The staged mapping's counts when it is the mapping last written to the end."""
    kept = _kept_mapping(staging, spec, batch)
    if kept is None:
        return None
    wrote = staging.load_batch(spec.name, WRITTEN_KIND, batch)
    if not wrote.equals(kept):  # compares the column names too
        return None
    return _counts(kept)


def _kept_mapping(staging: StateStore, spec: SyncSpec, batch: str) -> pl.DataFrame | None:
    """The batch's mapping record when the batch is written and this spec made it."""
    if not spec.batched or spec.target.operation == "insert":
        return None
    statuses = staging.batch_statuses(spec.name)
    status = statuses.filter(pl.col("batch") == batch)["status"].to_list()
    if status != [WRITTEN]:
        return None
    kept = staging.load_batch(spec.name, MAPPING_KIND, batch)
    if kept.height != 1 or "source" not in kept.columns:  # none, or from before the source
        return None
    return kept if kept["fingerprint"][0] == fingerprint(spec) else None


def _counts(kept: pl.DataFrame) -> Mapped:
    return Mapped(int(kept["rows_in"][0]), int(kept["mapped"][0]), int(kept["rejected"][0]))
