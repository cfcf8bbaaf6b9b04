"""Writing a batch of mapped rows into Salesforce exactly once.

`write_batch` takes the batch's lease in the state store (one run at a time per batch), sends
the rows Salesforce has not confirmed yet through sObject Collections or Bulk API 2.0, records
every row's outcome in the ledger, settles the batch (written, or incomplete while rows are
refused) and reports what happened. Modules: `batch` (the sequence), `rest` and `bulk` (the two APIs), `resume` (what an
earlier run left open), `lookup` and `matched` (finding records by a match field), `selection`
(which rows a run sends), `wire` (value formatting), `outcomes`, `context`, `model`, `errors`.
HTTP calls go through sf_assets.salesforce.api, shared with everything that talks to the org.
"""

from sf_assets.salesforce.errors import SalesforceApiError
from sf_assets.salesforce.writer.batch import AUTO_BULK_THRESHOLD, choose_api, write_batch
from sf_assets.salesforce.writer.errors import BulkJobFailed, DailyApiLimitExceeded, WriteError
from sf_assets.salesforce.writer.model import WriteJob, WriteOptions, WriteReport

__all__ = [
    "AUTO_BULK_THRESHOLD",
    "BulkJobFailed",
    "DailyApiLimitExceeded",
    "SalesforceApiError",
    "WriteError",
    "WriteJob",
    "WriteOptions",
    "WriteReport",
    "choose_api",
    "write_batch",
]
