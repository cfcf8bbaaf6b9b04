"""Finding records that left the org or the filter, when the changes alone cannot tell.

Salesforce keeps deleted records in its recycle bin for about 15 days, visible to queryAll
and getDeleted; after that, or once someone empties the bin or hard-deletes, a deletion leaves
no trace. The only way to notice it then is to compare every key of the copy with the org's.
A key the org no longer returns is either deleted or outside the spec's filter now; a lookup by
Id (without the filter) tells which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import polars as pl

from sf_assets.salesforce.api import Api
from sf_assets.salesforce.errors import SalesforceApiError
from sf_assets.salesforce.reader.fields import Selection
from sf_assets.salesforce.reader.scan import Scan
from sf_assets.salesforce.reader.statements import Statement
from sf_assets.salesforce.soql import quote_string

IDS_PER_LOOKUP = 300  # 18-character ids: about 7,000 characters of URL per call
WINDOW_PASSED = "INVALID_REPLICATION_DATE"


@dataclass(frozen=True)
class Gone:
    """Keys the copy holds as current that the org does not return (any more)."""

    deleted: pl.Series
    archived: pl.Series


def key_selection(sobject: str) -> Selection:
    return Selection(sobject, {"Id": "id", "SystemModstamp": "datetime"})


def org_keys(scan: Scan, statement: Statement) -> pl.Series:
    """Every Id `statement` selects in the org (its fields replaced by the key)."""
    keys = statement.selecting(("Id", "SystemModstamp"))
    found = [page.rows["Id"] for page in scan.pages(keys, None) if page.rows.height]
    return pl.concat(found) if found else pl.Series("Id", [], dtype=pl.Utf8)


def gone(api: Api, sobject: str, missing: pl.Series, *, filtered: bool) -> Gone:
    """Which of the `missing` keys are deleted and which only left the filter."""
    if missing.is_empty() or not filtered:
        return Gone(missing, pl.Series("Id", [], dtype=pl.Utf8))
    present: list[str] = []
    ids = missing.to_list()
    for start in range(0, len(ids), IDS_PER_LOOKUP):
        chunk = ", ".join(quote_string(i) for i in ids[start : start + IDS_PER_LOOKUP])
        soql = f"SELECT Id FROM {sobject} WHERE Id IN ({chunk})"
        present += [record["Id"] for record in api.query_records(soql)]
    found = pl.Series("Id", present, dtype=pl.Utf8)
    return Gone(
        missing.filter(~missing.is_in(found.implode())),
        missing.filter(missing.is_in(found.implode())),
    )


def deleted_since(api: Api, sobject: str, start: datetime, log: logging.Logger) -> pl.Series | None:
    """Ids deleted since `start` by getDeleted, or None when the org no longer covers `start`
    (its window has passed, so only a key comparison can tell). The end is a minute ahead:
    getDeleted counts in whole seconds and covers up to its own present anyway."""
    end = datetime.now(UTC) + timedelta(minutes=1)
    span = f"start={_stamp(start)}&end={_stamp(end)}"
    try:
        answer = api.call("GET", f"sobjects/{sobject}/deleted/?{span}", idempotent=True).json()
    except SalesforceApiError as error:
        if error.code == WINDOW_PASSED:
            log.info("%s: getDeleted no longer covers %s; comparing every key", sobject, start)
            return None
        raise
    earliest = answer.get("earliestDateAvailable")
    if earliest and _parse(earliest) > start:
        log.info(
            "%s: deleted records are kept from %s only; comparing every key", sobject, earliest
        )
        return None
    return pl.Series("Id", [r["id"] for r in answer.get("deletedRecords") or []], dtype=pl.Utf8)


def _stamp(moment: datetime) -> str:
    return quote(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"), safe="")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
