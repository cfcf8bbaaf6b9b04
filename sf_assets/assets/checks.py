"""Asset checks of the mapped batch, per target: they run before anything leaves, and the
blocking ones stop the run."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import polars as pl

from sf_assets.emarsys.ledger import SalesLedger
from sf_assets.salesforce.describe import ObjectInfo
from sf_assets.specs import EmarsysSyncSpec, SyncSpec

REQUIRED_CHECK = "required_fields_present"
UNIQUE_CHECK = "match_keys_unique"
COLUMN_ORDER_CHECK = "column_order"
CUSTOMER_XOR_EMAIL_CHECK = "customer_xor_email"
UNIQUE_LINES_CHECK = "order_lines_unique"
NOT_SENT_CHECK = "lines_not_sent_before"
REFUSED_CHECK = "rows_refused"


def writeback_checks(
    spec: SyncSpec, obj: ObjectInfo, rows: pl.DataFrame
) -> Iterator[dg.AssetCheckResult]:
    required = [
        f.name
        for f in obj.fields.values()
        if f.required_on_create and spec.target.operation in ("insert", "upsert")
    ]
    missing = {
        field: int(rows[field].null_count()) if field in rows.columns else rows.height
        for field in required
    }
    missing = {k: v for k, v in missing.items() if v}
    yield dg.AssetCheckResult(
        check_name=REQUIRED_CHECK,
        passed=not missing,
        metadata={"required fields": ", ".join(required) or "none", "rows missing": missing},
    )
    duplicated = rows.filter(pl.col("_key").is_duplicated()) if rows.height else rows
    yield dg.AssetCheckResult(
        check_name=UNIQUE_CHECK,
        passed=duplicated.is_empty(),
        metadata={
            "duplicate keys": duplicated["_key"].unique().to_list()[:20]
            if duplicated.height
            else []
        },
    )


def line_checks(
    spec: EmarsysSyncSpec, rows: pl.DataFrame, ledger: SalesLedger, batch: str
) -> Iterator[dg.AssetCheckResult]:
    header = [c for c in rows.columns if not c.startswith("_")]
    yield dg.AssetCheckResult(
        check_name=COLUMN_ORDER_CHECK,
        passed=header == list(spec.target.columns),
        metadata={"expected": ", ".join(spec.target.columns), "file": ", ".join(header)},
    )
    present = [
        pl.col(c).fill_null("").str.len_chars() > 0
        for c in ("customer", "email")
        if c in rows.columns
    ]
    both_or_neither = (
        rows.filter(pl.sum_horizontal(present) != 1).height if present and rows.height else 0
    )
    yield dg.AssetCheckResult(
        check_name=CUSTOMER_XOR_EMAIL_CHECK,
        passed=bool(present) and both_or_neither == 0,
        metadata={"lines without exactly one": both_or_neither},
    )
    repeated = rows.filter(pl.col("_key").is_duplicated()).height if rows.height else 0
    yield dg.AssetCheckResult(
        check_name=UNIQUE_LINES_CHECK, passed=repeated == 0, metadata={"repeated lines": repeated}
    )
    sent_elsewhere = (
        ledger.already_sent(rows["_key"]).filter(pl.col("batch") != batch).height
        if rows.height
        else 0
    )
    yield dg.AssetCheckResult(
        check_name=NOT_SENT_CHECK,
        passed=sent_elsewhere == 0,
        metadata={"lines sent in earlier batches": sent_elsewhere},
    )


def refused_check(sync: str, batch: str, latest: pl.DataFrame) -> dg.AssetCheckResult:
    """WARN when Salesforce refused rows of the batch (latest attempt per key), with the next
    step: the rows wait in the rejects until the data or the org is fixed and retried."""
    refused = latest.filter(pl.col("status") == "failed") if latest.height else latest
    metadata: dict[str, object] = {"rows refused": refused.height}
    if refused.height:
        metadata["by code"] = {
            str(code): int(n)
            for code, n in refused.group_by("error_code")
            .len()
            .sort("len", descending=True)
            .iter_rows()
        }
        metadata["next step"] = (
            f"see {sync}/rejects for each row's reason and hint; fix the data or the org, then "
            f"launch the job {sync}_retry_rejects for batch {batch} (only these rows are sent)"
        )
    return dg.AssetCheckResult(
        check_name=REFUSED_CHECK,
        passed=refused.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )
