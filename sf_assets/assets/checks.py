"""Asset checks of a batch that guard what mapping does not decide by itself.

Mapping already drops every row it can tell is wrong (missing required values, repeated keys,
lines Emarsys would refuse or counted before), so checks on the rows it keeps would pass by
construction. These look at what is left to judge:

- blocking, on `S/mapped`, before anything is sent: the share of the batch that was rejected
  (a renamed column or a changed date format rejects most rows, and writing the rest would
  hide it), and for inserts, keys another sync already created in the same object (writing
  them would make a second record of each);
- WARN, on `S/written`: rows Salesforce refused, with the count and the top error codes, so
  the lineage shows a batch that is not fully written; on `S/uploaded`: lines held back.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from sf_assets.assets.metadata import table
from sf_assets.specs import AnySyncSpec, SyncSpec
from sf_assets.state import StateStore
from sf_assets.state.model import UNWRITTEN_STATUSES

REJECT_SHARE_CHECK = "reject_share_within_limit"
OTHER_SYNC_CHECK = "keys_not_created_by_another_sync"
REFUSED_CHECK = "salesforce_refused_no_rows"
LINES_CHECK = "every_line_uploaded"
TOP_CODES = 5


def top_codes(frame: pl.DataFrame, column: str) -> dict[str, int]:
    if frame.is_empty():
        return {}
    counts = frame.group_by(column).len().sort("len", descending=True).head(TOP_CODES)
    return {str(code): int(n) for code, n in counts.iter_rows()}


def reject_share(spec: AnySyncSpec, rows_in: int, rejects: pl.DataFrame) -> dg.AssetCheckResult:
    """Blocking: at most `max_reject_share` of the batch's rows were rejected while mapping."""
    rejected = rejects["row"].n_unique() if rejects.height else 0
    share = rejected / rows_in if rows_in else 0.0
    return dg.AssetCheckResult(
        check_name=REJECT_SHARE_CHECK,
        passed=share <= spec.max_reject_share,
        description=None
        if share <= spec.max_reject_share
        else f"{rejected} of {rows_in} rows ({share:.0%}) were rejected, more than "
        f"max_reject_share ({spec.max_reject_share:.0%}); nothing of the batch is sent. Fix "
        "the source (or the mapping) and re-materialize, or raise max_reject_share.",
        metadata={
            "rows": rows_in,
            "rejected rows": rejected,
            "share": round(share, 4),
            "max_reject_share": spec.max_reject_share,
            "top reasons": top_codes(rejects, "code"),
        },
    )


def keys_of_other_syncs(
    spec: SyncSpec, store: StateStore, match_values: pl.Series
) -> dg.AssetCheckResult:
    """Blocking, for inserts: no key of the batch was created by another sync in the object."""
    taken = store.created_by_other_syncs(spec.name, spec.target.object, match_values)
    by_sync = top_codes(taken, "sync")
    return dg.AssetCheckResult(
        check_name=OTHER_SYNC_CHECK,
        passed=taken.is_empty(),
        description=None
        if taken.is_empty()
        else f"{taken.height} {spec.target.match_on} values of the batch were created in "
        f"{spec.target.object} by other syncs ({', '.join(by_sync)}); inserting them would "
        "make a second record of each. Let one sync own these records (the other one can "
        "update by lookup), then re-materialize.",
        metadata={
            "keys created by other syncs": taken.height,
            "by sync": by_sync,
            "sample": table(taken),
        },
    )


def lines_held_back(rejects: pl.DataFrame) -> dg.AssetCheckResult:
    """WARN: every line of the batch went to Emarsys (none rejected or sent elsewhere before)."""
    held = rejects["row"].n_unique() if rejects.height else 0
    return dg.AssetCheckResult(
        check_name=LINES_CHECK,
        passed=held == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if held == 0
        else f"{held} lines of the batch were held back (see the rejects of S/mapped)",
        metadata={"lines held back": held, "top reasons": top_codes(rejects, "code")},
    )


def refused_check(staging: StateStore, sync: str, batch: str) -> dg.AssetCheckResult:
    """WARN when rows of the batch are not written (latest attempt per key refused by
    Salesforce, or never sent), with the top codes and the next step."""
    unwritten = staging.latest_outcomes(sync, batch, UNWRITTEN_STATUSES)
    refused = unwritten.filter(pl.col("status") == "failed")
    metadata: dict[str, object] = {
        "rows not written": unwritten.height,
        "refused by Salesforce": refused.height,
        "top error codes": top_codes(refused, "error_code"),
    }
    if unwritten.height:
        metadata["next step"] = (
            f"see {sync}/rejects for each row's reason and hint; fix the data or the org, then "
            f"launch the job {sync}_retry_rejects for batch {batch} (only these rows are sent). "
            "The sensor also asks for the batch again after its back-off."
        )
    return dg.AssetCheckResult(
        check_name=REFUSED_CHECK,
        passed=unwritten.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if unwritten.is_empty()
        else f"{unwritten.height} rows of batch {batch} are not written ({refused.height} "
        "refused by Salesforce)",
        metadata=metadata,
    )
