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

LIMIT = "REQUEST_LIMIT_EXCEEDED"


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
    """What the REST and Bulk paths share: the job, the API, the row keys and the counters."""

    def __init__(self, job: WriteJob, api: Api) -> None:
        self.job = job
        self.api = api
        self.log = job.log
        self.options = job.options
        self.target = WriteTarget.of(job)
        self.keys = wire.match_text(job.mapped, self.target.match_on, job.object_fields)
        self.api_name = "rest"  # the API this write sends through: "rest" or "bulk"
        self.remaining: int | None = None  # rows still to settle; known once pending is known
        self.sent = 0
        self.first_round = True  # lock retries resend rows already counted as sent
        self.bulk_job_ids: list[str] = []
        self.progress = RowProgress(self.log, f"{job.spec.name} batch {job.batch}")

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
        self.job.staging.start_job(
            self.sync,
            self.batch,
            job_id=job_id,
            api=api,
            operation=self.target.operation,
            keys=keys,
            run_id=self.job.run_id,
            state=state,
        )

    def record(
        self,
        answered: pl.DataFrame,
        *,
        api: str,
        close_jobs: Sequence[tuple[str, str]] = (),
        last_round: bool = True,
    ) -> None:
        """Write outcomes, close their jobs and, when this settles the last row, move the
        watermark: one transaction, after Salesforce has answered."""
        if self.remaining is not None:
            self.remaining -= outcomes.final(answered, last_round=last_round).height
        done = self.remaining is not None and self.remaining <= 0
        self.job.staging.record_outcomes(
            self.sync,
            self.batch,
            self._ledger_rows(answered, api),
            run_id=self.job.run_id,
            close_jobs=close_jobs,
            watermark=done,
        )
        if done:
            self.log.info(
                "batch %s of %s: every row answered; watermark moved", self.batch, self.sync
            )

    def _ledger_rows(self, answered: pl.DataFrame, api: str) -> pl.DataFrame:
        mapped = self.job.mapped
        hashes = mapped.filter(pl.col("_key").is_in(answered["_key"].implode())).select(
            "_key", "_hash"
        )
        codes = answered["error_code"].drop_nulls().unique().to_list()
        hints = {code: hint(code) for code in codes}
        limit = pl.col("error_code") == LIMIT
        return answered.join(hashes, on="_key", how="left").select(
            pl.col("_key").alias("source_key"),
            "target_id",
            pl.lit(self.target.operation).alias("operation"),
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
        )

    def _scrubbed(self, text: pl.Expr) -> pl.Expr:
        """Salesforce's messages never echo a secret, but the ledger must not trust that."""
        for secret in self.api.secrets():
            text = text.str.replace_all(secret, MASK, literal=True)
        return text

    def key_map(self, keys: pl.Series | list[str]) -> pl.DataFrame:
        """`_match` (the match_on text as sent) to `_key`, for the given row keys."""
        return self.keys.filter(pl.col("_key").is_in(pl.Series(keys, dtype=pl.Utf8).implode()))
