"""One run at a time per (sync, batch): the lease a write holds from before anything is sent
until its final ledger commit.

A run that finds the lease held waits (up to the store's `lease_wait_seconds`) and then fails
with a message naming the holder; it never sends. A holder counts as gone, and its lease is
taken over (only then are its open jobs resumed), when

1. the Dagster instance says its run has finished (succeeded, failed or was canceled);
2. it ran on this machine and its process no longer exists (or is a zombie, or the pid now
   belongs to a process started at another time); or
3. neither can tell (a run this instance does not know, a process on another machine) and its
   heartbeat is older than the store's `lease_ttl_seconds`.

A run the instance reports as still running is never judged by the instance alone: a
`kill -9` leaves its run STARTED for ever, so the process check and the heartbeat decide. The
holder renews its heartbeat from a background thread. Taking over is a compare-and-swap on the
previous holder's token, so of two runs that both find a holder gone only one gets the lease;
and every write made under a lease checks the token in its own transaction, so a holder that
was taken for gone can neither record nor open anything more.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType

import psutil

from sf_assets.state.model import Claim, Lease, StateError
from sf_assets.state.store import StateStore

# What the Dagster instance knows of a run: "finished", "active", or None (unknown to it).
RunStatus = Callable[[str], str | None]
HOST = socket.gethostname()
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 2.0
PID_START_TOLERANCE_SECONDS = 1.0


class BatchBusy(StateError):
    """Another run holds the batch's lease and is alive; this run sent nothing."""

    def __init__(self, message: str, holder: Lease) -> None:
        super().__init__(message)
        self.holder = holder


def this_claim(run_id: str) -> Claim:
    process = psutil.Process()
    return Claim(run_id, uuid.uuid4().hex, HOST, process.pid, process.create_time())


def gone_because(holder: Lease, run_status: RunStatus | None, ttl_seconds: float) -> str | None:
    """Why the holder is gone, or None while it may still be writing."""
    status = run_status(holder.run_id) if run_status else None
    if status == "finished":
        return f"its run {holder.run_id} has finished"
    if holder.host == HOST:
        return process_gone(holder)
    if holder.heartbeat_age_seconds > ttl_seconds:
        return (
            f"its heartbeat stopped {holder.heartbeat_age_seconds:.0f} s ago "
            f"(on {holder.host}, more than the {ttl_seconds:.0f} s allowed)"
        )
    return None


def process_gone(holder: Lease) -> str | None:
    """On this machine the process table is the truth: the holder is gone once its process is."""
    try:
        process = psutil.Process(holder.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return f"its process {holder.pid} has exited"
        started = process.create_time()
    except psutil.NoSuchProcess:
        return f"its process {holder.pid} is gone"
    if (
        holder.process_started is not None
        and abs(started - holder.process_started) > PID_START_TOLERANCE_SECONDS
    ):
        return f"its process {holder.pid} is gone (the pid now belongs to another process)"
    return None


class BatchLease:
    """The lease of one (sync, batch) for the duration of a `with` block.

    On entry the lease is taken (waiting, or taking over a gone holder) and a heartbeat thread
    starts; `settle` ends the heartbeat before the final commit, which releases the lease
    itself; leaving the block without settling (an error) releases it so that the next run
    can start at once, leaving any open jobs for that run to resume.
    """

    def __init__(
        self,
        store: StateStore,
        sync: str,
        batch: str,
        run_id: str,
        *,
        run_status: RunStatus | None,
        log: logging.Logger,
    ) -> None:
        self.store = store
        self.sync = sync
        self.batch = batch
        self.claim = this_claim(run_id)
        self.run_status = run_status
        self.log = log
        self.taken_over: tuple[Lease, str] | None = None  # the gone holder and why
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._released = False

    @property
    def token(self) -> str:
        return self.claim.token

    def __enter__(self) -> BatchLease:
        self.acquire()
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"lease-{self.sync}-{self.batch}", daemon=True
        )
        self._heartbeat.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop_heartbeat()
        if self._released:
            return
        try:
            self.store.release_lease(self.sync, self.batch, self.token)
        except StateError as failure:  # the original error matters more; the lease expires
            self.log.warning("could not release the lease of batch %s: %s", self.batch, failure)

    def settle(self, commit: Callable[[str], None]) -> None:
        """Run the final commit (which releases the lease with this token) after the
        heartbeat has stopped, so the two never meet."""
        self._stop_heartbeat()
        commit(self.token)
        self._released = True

    # -- taking the lease ------------------------------------------------------------------

    def acquire(self) -> None:
        wait = self.store.lease_wait_seconds
        deadline = time.monotonic() + wait
        pause = FIRST_POLL_SECONDS
        announced = False
        while True:
            holder = self.store.claim_lease(self.sync, self.batch, self.claim)
            if holder.token == self.token:
                return
            reason = gone_because(holder, self.run_status, self.store.lease_ttl_seconds)
            if reason is not None:
                if self.store.take_over_lease(self.sync, self.batch, self.claim, holder.token):
                    self.taken_over = (holder, reason)
                    self.log.warning(
                        "%s batch %s: took over the lease of run %s because %s; its open "
                        "writes are resumed before anything new is sent",
                        self.sync,
                        self.batch,
                        holder.run_id,
                        reason,
                    )
                    return
                continue  # someone else took it over first: look again
            if time.monotonic() >= deadline:
                raise BatchBusy(self._busy_message(holder, wait), holder)
            if not announced:
                self.log.info(
                    "%s batch %s is being written by run %s; waiting up to %.0f s for it",
                    self.sync,
                    self.batch,
                    holder.run_id,
                    wait,
                )
                announced = True
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, MAX_POLL_SECONDS)

    def _busy_message(self, holder: Lease, waited: float) -> str:
        return (
            f"{self.sync} batch {self.batch} is being written by Dagster run {holder.run_id} "
            f"(process {holder.pid} on {holder.host}, last heartbeat "
            f"{holder.heartbeat_age_seconds:.0f} s ago); this run waited {waited:.0f} s and "
            "sent nothing. That run finishes the batch by itself: look at it first. If it "
            f"is stuck, stop it (its lease is free once its run has ended or its process is "
            f"gone) and re-materialize the batch; a longer wait is the state store's "
            "lease_wait_seconds."
        )

    # -- heartbeat ---------------------------------------------------------------------------

    def _beat(self) -> None:
        interval = max(0.2, self.store.lease_ttl_seconds / 4)
        while not self._stop.wait(interval):
            try:
                held = self.store.renew_lease(self.sync, self.batch, self.token)
            except StateError as failure:
                self.log.warning("lease heartbeat of batch %s failed: %s", self.batch, failure)
                continue
            if not held:
                self.lost.set()
                self.log.error(
                    "%s batch %s: another run took over this run's lease; nothing more is "
                    "recorded or sent by this run",
                    self.sync,
                    self.batch,
                )
                return

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join()
