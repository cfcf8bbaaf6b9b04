"""Asset checks of a raw copy, run inside the read that wrote it: the cursor never went back,
no Id is held twice, the copy counts what the org counts, and every deletion the read learnt of
is flagged in the copy."""

from collections.abc import Iterator
from datetime import datetime

import dagster as dg
import polars as pl

from sf_assets.salesforce.reader import ReadReport, Warehouse
from sf_assets.state.cursors import CursorStore

CURSOR_CHECK = "cursor_monotonic"
UNIQUE_CHECK = "ids_unique"
COUNT_CHECK = "count_matches_org"
DELETIONS_CHECK = "deletions_applied"
DESCRIPTIONS = {
    CURSOR_CHECK: "Every commit of the cursor is at or after the one before it.",
    UNIQUE_CHECK: "No Id appears twice in the copy.",
    COUNT_CHECK: "The copy's current records equal the org's SELECT COUNT() of the same "
    "scope, compared after every full read and key comparison (the latest comparison is shown "
    "between them).",
    DELETIONS_CHECK: "Every record this read learnt was deleted is flagged IsDeleted.",
}


def check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset=key, description=text) for name, text in DESCRIPTIONS.items()
    ]


def read_checks(
    report: ReadReport, warehouse: Warehouse, cursors: CursorStore, stream: str
) -> Iterator[dg.AssetCheckResult]:
    yield _monotonic(cursors, stream)
    duplicated = warehouse.duplicate_ids(report.object)
    yield dg.AssetCheckResult(
        check_name=UNIQUE_CHECK,
        passed=not duplicated,
        metadata={"duplicate ids (first 20)": ", ".join(duplicated) or "none"},
    )
    count = report.cursor.count
    yield dg.AssetCheckResult(
        check_name=COUNT_CHECK,
        passed=count is not None and count.passed,
        metadata={
            "compared at": count.at.isoformat() if count else "never",
            "copy": count.copy if count else -1,
            "org (SELECT COUNT())": count.org if count else -1,
            "compared in this run": report.reconciled,
        },
    )
    ids = pl.Series("Id", report.deleted_ids, dtype=pl.Utf8)
    still = warehouse.still_current(report.object, ids)
    yield dg.AssetCheckResult(
        check_name=DELETIONS_CHECK,
        passed=still == 0,
        metadata={"deletions this read": ids.n_unique(), "still current in the copy": still},
    )


def _monotonic(cursors: CursorStore, stream: str) -> dg.AssetCheckResult:
    times: list[datetime] = []
    for commit in cursors.history(stream):
        position = commit.cursor.get("position")
        if position:
            times.append(datetime.fromisoformat(position[0]))
    backwards = [i for i in range(1, len(times)) if times[i] < times[i - 1]]
    return dg.AssetCheckResult(
        check_name=CURSOR_CHECK,
        passed=not backwards,
        metadata={
            "commits checked": len(times),
            "first step back": f"{times[backwards[0] - 1]} -> {times[backwards[0]]}"
            if backwards
            else "none",
        },
    )
