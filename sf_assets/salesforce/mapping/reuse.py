"""When a batch need not be mapped again: it is written, and was mapped by the same spec.

A batch is immutable, so once every row of it is settled in the ledger, mapping it again can
only reproduce the staged rows (and nothing would be sent). Skipping it makes an unchanged
re-run cost no describe, no login and no pass over the rows. What proves "the same spec" is a
fingerprint of the spec (and of the mapping rules' version), staged next to the mapped rows
with their counts after they are stored: a changed mapping, match field or key maps again, and
so does a batch whose mapped rows were never staged completely. Inserts always map again: their
blocking check asks the ledger about the batch's match values, which need the describe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from sf_assets.specs import SyncSpec
from sf_assets.state import WRITTEN, StateStore

KIND = "mapping_spec"  # the staged kind holding the fingerprint and counts
# Bump when a change to the mapping rules changes what a spec maps a row to.
RULES_VERSION = 1
SCHEMA = {"fingerprint": pl.Utf8, "rows_in": pl.Int64, "mapped": pl.Int64, "rejected": pl.Int64}


@dataclass(frozen=True)
class Mapped:
    """The counts of the batch's staged mapping."""

    rows_in: int
    mapped: int
    rejected: int  # rejected rows (a row with several problems counts once)


def fingerprint(spec: SyncSpec) -> str:
    text = f"{RULES_VERSION}|{spec.model_dump_json()}"
    return hashlib.sha256(text.encode()).hexdigest()


def remember(staging: StateStore, spec: SyncSpec, batch: str, counts: Mapped) -> None:
    """Call after the mapped rows and rejects are staged: the fingerprint says they are whole."""
    frame = pl.DataFrame(
        [[fingerprint(spec), counts.rows_in, counts.mapped, counts.rejected]],
        schema=SCHEMA,
        orient="row",
    )
    staging.replace_batch(spec.name, KIND, batch, frame)


def reusable(staging: StateStore, spec: SyncSpec, batch: str) -> Mapped | None:
    """The staged mapping's counts when the batch is written and was mapped by this spec."""
    if not spec.batched or spec.target.operation == "insert":
        return None
    statuses = staging.batch_statuses(spec.name)
    status = statuses.filter(pl.col("batch") == batch)["status"].to_list()
    if status != [WRITTEN]:
        return None
    kept = staging.load_batch(spec.name, KIND, batch)
    if kept.height != 1 or kept["fingerprint"][0] != fingerprint(spec):
        return None
    return Mapped(int(kept["rows_in"][0]), int(kept["mapped"][0]), int(kept["rejected"][0]))
