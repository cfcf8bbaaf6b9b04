"""Per-row outcomes, built from whatever Salesforce answered: collections results (in request
order), Bulk result files (matched by key, since their order is not guaranteed), lookups that
resolved a lost answer, or rows that never got an answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

SCHEMA = {
    "_key": pl.Utf8,
    "status": pl.Utf8,  # created | updated | deleted | not_found | failed | not_sent
    "target_id": pl.Utf8,
    "error_code": pl.Utf8,
    "error_message": pl.Utf8,
    "job_id": pl.Utf8,
}
LOCKED = "UNABLE_TO_LOCK_ROW"
# `CODE:message:FIELDS --` or `CODE:message:--`; the message itself may hold colons.
BULK_ERROR_CODE = r"^([^:]*):"
BULK_ERROR_MESSAGE = r"^[^:]*:(.*?)(?::[^:]*--\s*)?$"


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def rows(
    keys: Sequence[str] | pl.Series,
    status: str,
    *,
    job_id: str | None,
    target_ids: Sequence[str | None] | pl.Series | None = None,
    code: str | None = None,
    message: str | None = None,
) -> pl.DataFrame:
    """The same outcome for every key (ids may differ)."""
    keys = pl.Series("_key", keys, dtype=pl.Utf8)
    ids = pl.Series(
        "target_id", target_ids if target_ids is not None else [None] * keys.len(), dtype=pl.Utf8
    )
    return pl.DataFrame({"_key": keys, "target_id": ids}).select(
        "_key",
        pl.lit(status, pl.Utf8).alias("status"),
        "target_id",
        pl.lit(code, pl.Utf8).alias("error_code"),
        pl.lit(message, pl.Utf8).alias("error_message"),
        pl.lit(job_id, pl.Utf8).alias("job_id"),
    )


def from_collection(
    keys: Sequence[str], items: list[dict[str, Any]], *, operation: str, job_id: str
) -> pl.DataFrame:
    """sObject Collections results, one per record in request order."""
    if len(items) != len(keys):
        raise ValueError(f"Salesforce answered {len(items)} results for {len(keys)} records")
    records = []
    for key, item in zip(keys, items, strict=True):
        if item.get("success"):
            records.append((key, _succeeded(item, operation), item.get("id"), None, None))
        else:
            error = (item.get("errors") or [{}])[0]
            code = error.get("statusCode") or error.get("errorCode") or "UNKNOWN_ERROR"
            records.append((key, "failed", item.get("id"), code, error.get("message", "")))
    columns = dict(list(SCHEMA.items())[:5])
    frame = pl.DataFrame(records, schema=columns, orient="row")
    return frame.with_columns(pl.lit(job_id, pl.Utf8).alias("job_id"))


def _succeeded(item: dict[str, Any], operation: str) -> str:
    if operation == "delete":
        return "deleted"
    return "created" if item.get("created", operation == "insert") else "updated"


def from_bulk(
    successful: pl.DataFrame,
    failed: pl.DataFrame,
    keys: pl.DataFrame,
    *,
    match_column: str,
    job_id: str,
    operation: str = "upsert",
) -> pl.DataFrame:
    """Bulk result files matched to rows through the echoed match_on column.

    `keys` maps the match_on text as sent (`_match`) to the row key (`_key`).
    """
    done = successful.select(
        pl.col(match_column).alias("_match"),
        pl.when(pl.lit(operation == "delete"))
        .then(pl.lit("deleted"))
        .when(pl.col("sf__Created") == "true")
        .then(pl.lit("created"))
        .otherwise(pl.lit("updated"))
        .alias("status"),
        pl.col("sf__Id").alias("target_id"),
        pl.lit(None, pl.Utf8).alias("error_code"),
        pl.lit(None, pl.Utf8).alias("error_message"),
    )
    rejected = failed.select(
        pl.col(match_column).alias("_match"),
        pl.lit("failed").alias("status"),
        pl.when(pl.col("sf__Id") != "").then(pl.col("sf__Id")).alias("target_id"),
        pl.col("sf__Error").str.extract(BULK_ERROR_CODE, 1).alias("error_code"),
        pl.col("sf__Error").str.extract(BULK_ERROR_MESSAGE, 1).alias("error_message"),
    )
    answered = pl.concat([done, rejected]).join(keys, on="_match", how="inner")
    return answered.select(
        "_key", "status", "target_id", "error_code", "error_message", pl.lit(job_id).alias("job_id")
    ).cast(SCHEMA)


def locked_keys(outcomes: pl.DataFrame) -> pl.Series:
    return outcomes.filter((pl.col("status") == "failed") & (pl.col("error_code") == LOCKED))[
        "_key"
    ]
