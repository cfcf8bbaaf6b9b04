"""Staging a source batch only when its rows changed since they were last staged.

Re-running a batch re-reads it from the warehouse (rows may have landed in it since), but
storing the same 1,000,000 rows again took most of an unchanged re-run's source step. A
fingerprint of the rows is staged next to them, after them, so a fingerprint always describes
a whole staged batch; the mapping step keeps it with what it mapped, so a batch whose rows
changed is mapped again.
"""

from __future__ import annotations

import hashlib
import io

import polars as pl

from sf_assets.state import StateStore

KIND = "source_content"  # the staged kind holding the fingerprint of the staged source rows


def fingerprint(frame: pl.DataFrame) -> str:
    """The same rows, columns and types in the same order give the same text.

    polars' row hash is only stable within one polars version; after an upgrade a batch is
    staged and mapped once more, which sends nothing the ledger already holds.
    """
    digest = hashlib.blake2b(str(frame.schema).encode(), digest_size=16)
    digest.update(frame.height.to_bytes(8, "little"))
    if frame.width:
        hashes = io.BytesIO()  # the row hashes' bytes, without a round trip through Python
        frame.hash_rows(seed=0).to_frame().write_ipc(hashes, compression="uncompressed")
        digest.update(hashes.getvalue())
    return digest.hexdigest()


def staged_fingerprint(staging: StateStore, sync: str, batch: str) -> str | None:
    """The fingerprint of the batch's staged source rows; None when they are not whole."""
    kept = staging.load_batch(sync, KIND, batch)
    return str(kept["fingerprint"][0]) if kept.height == 1 else None


def stage_source(staging: StateStore, sync: str, batch: str, frame: pl.DataFrame) -> bool:
    """Stage the batch's rows unless the very same rows are staged; whether they were."""
    content = fingerprint(frame)
    before = staged_fingerprint(staging, sync, batch)
    if before == content:
        return False
    if before is not None:  # a crash while restaging must not leave the old fingerprint
        staging.replace_batch(sync, KIND, batch, pl.DataFrame(schema={"fingerprint": pl.Utf8}))
    staging.replace_batch(sync, "source", batch, frame)
    staging.replace_batch(sync, KIND, batch, pl.DataFrame({"fingerprint": [content]}))
    return True
