"""The lease of a batch: a live holder in another process keeps it (the second run waits, then
fails naming it), a holder that is gone is taken over: its process was killed, its Dagster run
has finished, or, on another machine, its heartbeat stopped."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest

from sf_assets.assets.partitions import run_status
from sf_assets.state import BatchBusy, BatchLease, StateStore
from sf_assets.state.lease import this_claim
from sf_assets.state.model import Claim
from tests.state.backends import store_spec

LOG = logging.getLogger("test.lease")
HOLDER = textwrap.dedent(
    """
    import logging, sys, time
    from sf_assets.state import BatchLease
    from tests.state.backends import store_from_spec
    store = store_from_spec(sys.argv[1]).model_copy(update={"lease_ttl_seconds": 1.0})
    with BatchLease(store, "s", "b1", "holder-run", run_status=None, log=logging.getLogger()):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    print("released", flush=True)
    """
)


@contextmanager
def holder_process(store: StateStore, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lease of s/b1 for `seconds`."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store_spec(store), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def lease(store: StateStore, run_id: str = "second-run", **kwargs) -> BatchLease:
    return BatchLease(store, "s", "b1", run_id, run_status=kwargs.get("run_status"), log=LOG)


def test_a_live_holder_keeps_the_batch_and_the_second_run_names_it(state_store) -> None:
    store = state_store.model_copy(update={"lease_wait_seconds": 1.0})
    with holder_process(store, 30) as holder:
        started = time.monotonic()
        with pytest.raises(BatchBusy) as busy, lease(store):
            pass
        waited = time.monotonic() - started
    message = str(busy.value)
    assert "being written by Dagster run holder-run" in message
    assert f"process {holder.pid}" in message and "sent nothing" in message
    assert 1.0 <= waited < 10
    assert busy.value.holder.run_id == "holder-run"


def test_a_second_run_waits_for_the_holder_to_finish(state_store) -> None:
    store = state_store.model_copy(update={"lease_wait_seconds": 30.0})
    with holder_process(store, 1.5) as holder:
        started = time.monotonic()
        with lease(store) as second:
            waited = time.monotonic() - started
            assert holder.stdout is not None and holder.stdout.readline().strip() == "released"
            assert second.taken_over is None  # it was handed over, not taken
        assert 1.0 < waited < 20
    assert store.current_lease("s", "b1") is None


def test_a_killed_holder_is_taken_over_at_once(state_store) -> None:
    with holder_process(state_store, 60) as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        started = time.monotonic()
        with lease(state_store) as second:
            assert time.monotonic() - started < 5  # no heartbeat to wait out
            previous, reason = second.taken_over
        assert previous.run_id == "holder-run" and f"process {holder.pid} is gone" in reason


def test_a_holder_whose_run_has_finished_is_taken_over_though_its_process_lives(
    state_store,
) -> None:
    @dg.asset
    def finished() -> None:
        return None

    with dg.instance_for_test() as instance:
        run = dg.materialize([finished], instance=instance)
        claim = this_claim(run.run_id)  # this very process: alive
        state_store.claim_lease("s", "b1", claim)
        with lease(state_store, run_status=run_status(instance)) as second:
            previous, reason = second.taken_over
        assert previous.token == claim.token
        assert reason == f"its run {run.run_id} has finished"


def test_a_holder_elsewhere_is_judged_by_its_heartbeat(state_store) -> None:
    store = state_store.model_copy(update={"lease_ttl_seconds": 1.0, "lease_wait_seconds": 0.0})
    elsewhere = Claim("remote-run", "remote-token", "another-machine", 4242, 0.0)
    store.claim_lease("s", "b1", elsewhere)
    with pytest.raises(BatchBusy, match="remote-run"), lease(store):
        pass  # its heartbeat is fresh: it may be writing
    time.sleep(1.5)
    with lease(store) as second:
        previous, reason = second.taken_over
    assert previous.run_id == "remote-run" and "heartbeat stopped" in reason


def test_the_holder_keeps_its_heartbeat_fresh(state_store) -> None:
    store = state_store.model_copy(update={"lease_ttl_seconds": 0.8})
    with lease(store, run_id="long-run"):
        time.sleep(2.5)
        held = store.current_lease("s", "b1")
        assert held is not None and held.run_id == "long-run"
        assert held.heartbeat_age_seconds < 0.8
    assert store.current_lease("s", "b1") is None
