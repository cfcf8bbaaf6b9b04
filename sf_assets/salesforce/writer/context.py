"""The state one write carries between its steps, and the one way outcomes reach the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import polars as pl

from sf_assets.progress import RowProgress
from sf_assets.salesforce.api import MASK, Api
from sf_assets.salesforce.hints import hint
from sf_assets.salesforce.writer import outcomes, wire
from sf_assets.salesforce.writer.model import WriteJob
from sf_assets.state import BatchLease, JobStart, Settlement

LIMIT = "REQUEST_LIMIT_EXCEEDED"
# The columns of a ledger row the report needs.
OUTCOME_VIEW = ("source_key", "status", "error_code", "error_message", "hint")


@dataclass(frozen=True)
class WriteTarget:
    """Where rows go, derived from the spec and checked once."""

    object: str
    operation: str
    match_on: str  # as spelled in the mapped frame
    send_nulls: bool  # an explicit null for a null value (update/upsert that clear fields)
    looks_up: bool = False  # ids are found by a query on match_on first (see writer.matched)
    creates_missing: bool = True  # keys with no record are inserted (else: not found)

    @classmethod
    def of(cls, job: WriteJob) -> WriteTarget:
        spec = job.spec.target
        operation = spec.operation
        match_on = next((c for c in job.mapped.columns if c.lower() == spec.match_on.lower()), None)
        if match_on is None:
            raise ValueError(
                f"sync {job.spec.name}: the mapped frame has no column for target.match_on "
                f"{spec.match_on!r}, so written rows could not be matched to their results"
            )
        clears = job.spec.null_values == "clear" and operation not in ("insert", "delete")
        return cls(spec.object, operation, match_on, clears, _looks_up(job), spec.creates_missing)

    def sending(self, operation: str, match_on: str) -> WriteTarget:
        """This target as one of the plain writes a looked-up write is made of."""
        return replace(self, operation=operation, match_on=match_on, looks_up=False)


def _looks_up(job: WriteJob) -> bool:
    """Salesforce upserts natively only on an external id (or Id) and only with create
    semantics; every other combination needs the existing ids looked up first."""
    spec = job.spec.target
    by_id = spec.match_on.lower() == "id"
    if spec.operation == "delete":
        return True
    if spec.operation == "update":
        return not by_id
    if spec.operation != "upsert" or by_id:
        return False
    native = job.external_ids is None or spec.match_on.lower() in {
        name.lower() for name in job.external_ids
    }
    return not (native and spec.creates_missing)


class WriteContext:
    """What the REST and Bulk paths share: the job, the API, the lease, the row keys and the
    counters. `target` and `keys` describe the write being sent (a looked-up write points them
    at the plain write it is made of, see writer.matched); the ledger always gets the sync's
    own match field."""

    def __init__(self, job: WriteJob, api: Api, lease: BatchLease | None = None) -> None:
        """Without a lease the context only reads (a plan): anything that records raises."""
        self.job = job
        self.api = api
        self.lease = lease
        self.log = job.log
        self.options = job.options
        self.target = WriteTarget.of(job)
        self.keys = wire.match_text(job.mapped, self.target.match_on, job.object_fields)
        # What a ledger row takes from the mapped frame, by key (with the sync's own match
        # field, whatever write is being sent): one join per record call.
        self._ledger_keys = job.mapped.select("_key", "_hash").with_columns(self.keys["_match"])
        # Every outcome this run recorded, in order: the report is made from these and the
        # ledger as it stood before the run, never by reading the ledger back.
        self.recorded: list[pl.DataFrame] = []
        self.before = pl.DataFrame(schema=dict.fromkeys(OUTCOME_VIEW, pl.Utf8))
        self.api_name = "rest"  # the API this write sends through: "rest" or "bulk"
        self.sent = 0
        self.first_round = True  # lock retries resend rows already counted as sent
        self.bulk_job_ids: list[str] = []
        self.progress = RowProgress(self.log, f"{job.spec.name} batch {job.batch}")

    def held(self) -> BatchLease:
        """The batch's lease, which every write to the state store goes through."""
        if self.lease is None:
            raise RuntimeError(
                f"{self.sync} batch {self.batch}: no lease held; nothing may be recorded"
            )
        return self.lease

    def count_sent(self, rows: int) -> None:
        if self.first_round:
            self.sent += rows
            self.progress.advance(rows)

    @property
    def sync(self) -> str:
        return self.job.spec.name

    @property
    def batch(self) -> str:
        return self.job.batch

    def start_job(self, job_id: str, api: str, keys: pl.Series, state: str) -> None:
        """Record the write, with the match value sent for every key, before its data leaves."""
        sent = self.key_map(keys)
        same = sent["_match"].equals(sent["_key"])  # matching on the key column: kept once
        self.job.staging.start_job(
            self.sync,
            self.batch,
            JobStart(
                job_id=job_id,
                api=api,
                operation=self.target.operation,
                match_field=self.target.match_on,
                keys=sent["_key"],
                matches=None if same else sent["_match"],
                state=state,
                run_id=self.job.run_id,
            ),
            lease=self.held().token,
        )

    def record(
        self,
        answered: pl.DataFrame,
        *,
        api: str,
        close_jobs: Sequence[tuple[str, str]] = (),
        operation: str | None = None,
    ) -> None:
        """Write outcomes and close their jobs: one transaction, after Salesforce answered.
        `operation` is the one the rows were sent with, when not the current target's (a
        resumed job)."""
        rows = self._ledger_rows(answered, api, operation or self.target.operation)
        self.job.staging.record_outcomes(
            self.sync,
            self.batch,
            rows,
            run_id=self.job.run_id,
            lease=self.held().token,
            close_jobs=close_jobs,
        )
        if rows.height:
            self.recorded.append(rows.select(OUTCOME_VIEW))

    def settle(self, settlement: Settlement) -> None:
        """The final commit: the batch's status and the lease's release, together."""
        self.held().settle(
            lambda token: self.job.staging.record_outcomes(
                self.sync,
                self.batch,
                self._ledger_rows(outcomes.empty(), "none", self.target.operation),
                run_id=self.job.run_id,
                lease=token,
                settle=settlement,
            )
        )

    def _ledger_rows(self, answered: pl.DataFrame, api: str, operation: str) -> pl.DataFrame:
        codes = answered["error_code"].drop_nulls().unique().to_list()
        hints = {code: hint(code) for code in codes}
        limit = pl.col("error_code") == LIMIT
        return answered.join(self._ledger_keys, on="_key", how="left").select(
            pl.col("_key").alias("source_key"),
            "target_id",
            pl.lit(operation).alias("operation"),
            pl.lit(api).alias("api"),
            "status",
            "error_code",
            self._scrubbed(pl.col("error_message")).alias("error_message"),
            pl.when(limit & pl.col("error_message").str.contains("Concurrent"))
            .then(pl.lit(hint(LIMIT, "Concurrent")))
            .otherwise(
                pl.col("error_code").replace_strict(hints, default=None, return_dtype=pl.Utf8)
            )
            .alias("hint"),
            pl.col("_hash").alias("content_hash"),
            "job_id",
            pl.lit(self.target.object).alias("object"),
            pl.col("_match").alias("match_value"),
        )

    def _scrubbed(self, text: pl.Expr) -> pl.Expr:
        """Salesforce's messages never echo a secret, but the ledger must not trust that."""
        for secret in self.api.secrets():
            text = text.str.replace_all(secret, MASK, literal=True)
        return text

    def key_map(self, keys: pl.Series | list[str]) -> pl.DataFrame:
        """`_key` and `_match` (the match_on text as sent) of the given row keys, in their
        order."""
        wanted = pl.DataFrame({"_key": pl.Series(keys, dtype=pl.Utf8)})
        return wanted.join(self.keys, on="_key", how="left", maintain_order="left")
