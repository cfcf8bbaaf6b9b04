"""What to do about a Salesforce error code, in words an on-call engineer can act on.

Salesforce's messages say what went wrong with a record; the ledger and the run log add a hint
that says where to fix it (the source data, the org's setup, or nothing: wait and re-run),
because the person reading a failed run is rarely the one who knows the org.
"""

from __future__ import annotations

import re

HINTS: dict[str, str] = {
    "MULTIPLE_MATCHES": (
        "Several records share this match_on value, so sf-assets will not guess which one the "
        "row means: merge or correct the duplicates in Salesforce (or match on a field that is "
        "unique), then re-materialize the batch."
    ),
    "LOGIN_MUST_USE_SECURITY_TOKEN": (
        "The password was accepted but this network is not trusted: append the user's security "
        "token (set security_token; Settings → Reset My Security Token emails a new one), or add "
        "this machine's IP range to the org's trusted IP ranges (Setup → Network Access)."
    ),
    "INVALID_LOGIN": (
        "Check the username, password and security token (resetting the password resets the "
        "token too), and that the integration user is active and not locked out or frozen."
    ),
    "INVALID_SESSION_ID": (
        "The session expired or was revoked. sf-assets logs in again by itself; if this persists, "
        "check the org's session timeout and that the integration user is still active and "
        "allowed API access (profile permission API Enabled)."
    ),
    "INVALID_FIELD": (
        "The field does not exist on the object or the integration user cannot see it: check the "
        "API name in the sync's mapping, then grant field-level security (Read and Edit) on it in "
        "the integration user's profile or permission set."
    ),
    "INVALID_FIELD_FOR_INSERT_UPDATE": (
        "The field cannot be written by this operation (read-only, formula, auto-number, or not "
        "updateable after creation, or an Id sent on insert): remove it from the mapping or "
        "grant Edit access in the integration user's profile or permission set."
    ),
    "REQUIRED_FIELD_MISSING": (
        "A required field has no value in this row: fix the source data or map a source column "
        "to the field; re-materializing the batch then sends only the rows still missing."
    ),
    "STRING_TOO_LONG": (
        "The value is longer than the field allows: shorten or truncate it in the source or the "
        "mapping, or ask the org admin to increase the field length."
    ),
    "DUPLICATE_VALUE": (
        "Another record already holds this value in a unique field (or a duplicate rule blocked "
        "it): deduplicate the source, or upsert on that field instead of inserting."
    ),
    "DUPLICATE_EXTERNAL_ID": (
        "More than one Salesforce record carries this external id, so the upsert cannot tell "
        "which one to update: merge or clean up the duplicates in Salesforce, then re-run."
    ),
    "INVALID_EMAIL_ADDRESS": (
        "The value is not a valid email address: fix it in the source data (or map it to null)."
    ),
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": (
        "The value is not one of the field's picklist values: map the source value to an "
        "allowed value, or ask the org admin to add it to the picklist's value set."
    ),
    "UNABLE_TO_LOCK_ROW": (
        "Another process held a lock on this record (or its parent) while sf-assets wrote it; "
        "sf-assets retried it a few times. Re-materialize the batch later to send what is left, "
        "and avoid running other jobs that update the same records at the same time."
    ),
    "MALFORMED_ID": (
        "The value is not a valid Salesforce id for this field (wrong length, characters or "
        "object prefix): check the source column mapped to the Id or lookup field."
    ),
    "INVALID_CROSS_REFERENCE_KEY": (
        "A lookup points at a record that does not exist or that the integration user cannot "
        "see: write the parent records first, or check the id / external id in the source."
    ),
    "ENTITY_IS_DELETED": (
        "The target record was deleted in Salesforce: restore it from the Recycle Bin, or drop "
        "the row (an upsert on an external id would create a new record instead)."
    ),
    "FIELD_INTEGRITY_EXCEPTION": (
        "The value breaks a rule on the field (e.g. a lookup filter, a value that must reference "
        "a specific record type, or a dependent picklist): check the field's setup in the org."
    ),
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": (
        "A validation rule in the org rejected the row: fix the source data so the rule passes, "
        "or ask the org admin about the rule named in the message."
    ),
    "INVALID_TYPE_ON_FIELD_IN_RECORD": (
        "The value cannot be read as the field's type: check the mapping's type conversion."
    ),
    "SERVER_UNAVAILABLE": (
        "Salesforce was temporarily unavailable; sf-assets retried with backoff. Re-run later."
    ),
    "INVALID_MATCH_KEY": (
        "The row's match_on value is empty or repeated within the batch, so its outcome could "
        "not be tied to the row: fix the source key so each row has its own value."
    ),
    "BULK_JOB_ABORTED": (
        "The Bulk API job was aborted before Salesforce processed these rows, so they were not "
        "written; re-materializing the batch sends them again."
    ),
    "OUTCOME_UNKNOWN": (
        "The connection broke before Salesforce's answer arrived and retries ran out; these rows "
        "are sent again (safely: upserts and updates repeat, inserts are looked up first) by "
        "the next run."
    ),
    "BULK_JOB_FAILED": (
        "Salesforce failed the whole Bulk API job, so none of its rows were written; the message "
        "names the cause (often a column the object does not have). Fix it and re-materialize."
    ),
}

# Codes the mapper gives rows it sets aside before anything is sent: the fix is always in the
# source data (or the mapping), never in the org.
MAPPING_HINTS: dict[str, str] = {
    "MISSING_KEY": (
        "The row has no value in the key column (or the match_on field): give every row a key "
        "in the source, then re-materialize the batch."
    ),
    "DUPLICATE_KEY": (
        "The key appears more than once in the batch, so sf-assets cannot tell which row wins: "
        "deduplicate the source (every occurrence was set aside), then re-materialize."
    ),
    "INVALID_BOOLEAN": "Use true/false, yes/no or 1/0 in the source column, or map it to null.",
    "INVALID_DATE": (
        "Write the value as an ISO date or datetime (2024-01-31, 2024-01-31T09:30:00Z) in the "
        "source, or make the column a date/timestamp type."
    ),
    "INVALID_NUMBER": "The value is not a number the field can hold: fix it in the source.",
    "NUMBER_OUTSIDE_VALID_RANGE": (
        "The number has more digits than the field allows: fix the value in the source, or ask "
        "the org admin to widen the field's precision."
    ),
    "INVALID_PICKLIST_VALUE": (
        "The value is not one of the restricted picklist's values (`sf-assets describe` lists "
        "them): map the source value to an allowed one, or ask the org admin to add it."
    ),
}

DAILY_LIMIT_HINT = (
    "The org's daily API allocation (a rolling 24-hour window) is used up. sf-assets stopped, "
    "recorded every row Salesforce had confirmed, and will send only the rest: wait for the "
    "window to free calls, or raise the allocation (Setup → Company Information shows it; "
    "Salesforce sells more), then re-materialize the batch."
)
CONCURRENT_LIMIT_HINT = (
    "Too many long-running requests were in flight in the org at once; sf-assets backed off and "
    "retried. If it keeps happening, run fewer writes to this org at the same time (a Dagster "
    "concurrency pool for the org does that)."
)
GENERIC_HINT = (
    "Salesforce rejected the row with this code: look the code up in Salesforce's API error "
    "reference, fix the row or the org's setup, then re-materialize the batch; only rows that "
    "are not written yet are sent again."
)

_CODE_PREFIX = re.compile(r"^[A-Z][A-Z_]+(?=\s*:)")


def hint(code: str, message: str = "") -> str:
    """Actionable advice for a Salesforce error `code` (the message refines a few codes)."""
    code = (code or "").strip()
    if code == "REQUEST_LIMIT_EXCEEDED":
        return CONCURRENT_LIMIT_HINT if "Concurrent" in message else DAILY_LIMIT_HINT
    if code in HINTS:
        return HINTS[code]
    embedded = _CODE_PREFIX.match(message or "")  # e.g. "InvalidBatch : ..." stays generic
    if embedded and embedded.group(0) in HINTS:
        return HINTS[embedded.group(0)]
    return GENERIC_HINT


def reject_hint(stage: str, code: str) -> str:
    """The hint for a reject: mapping codes are about the source data, the rest Salesforce's."""
    if stage == "mapping" and code in MAPPING_HINTS:
        return MAPPING_HINTS[code]
    return hint(code)
