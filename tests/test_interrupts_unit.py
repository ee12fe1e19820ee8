"""The pieces of signal handling alone (tests/test_interrupts.py drives real runs): a signal becomes the
cancel event and the exit code, the work runs in a worker thread, cancel points and reconcile stop."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from walletchaos.interrupts import Interrupted, SignalCancel, check, run_interruptibly
from walletchaos.reconcile import collect_final_state


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_sets_cancel_and_the_exit_code_once(sig: signal.Signals, code: int) -> None:
    cancel, seen = threading.Event(), []
    before = signal.getsignal(sig)
    with SignalCancel(cancel, seen.append) as guard:

        def work() -> str:
            os.kill(os.getpid(), sig)
            assert cancel.wait(10), "the main thread's handler never set the event"
            os.kill(os.getpid(), sig)  # a second signal changes nothing
            with pytest.raises(Interrupted):
                check(cancel)
            return "torn down"

        assert run_interruptibly(work, guard) == "torn down"
    assert guard.exit_code == code and seen == [sig]
    assert signal.getsignal(sig) == before


def test_run_interruptibly_hands_back_the_workers_exception() -> None:
    def work() -> None:
        raise ValueError("boom")

    with SignalCancel(threading.Event()) as guard, pytest.raises(ValueError, match="boom"):
        run_interruptibly(work, guard)
    assert guard.exit_code is None
    check(None)  # no event: never cancelled


def test_reconcile_stops_polling_an_unreachable_wallet_once_cancelled() -> None:
    cancel = threading.Event()

    def unreachable(request: httpx.Request) -> httpx.Response:
        cancel.set()  # the signal arrives while the harness waits for the wallet
        raise httpx.ConnectError("connection refused", request=request)

    t0 = time.monotonic()
    with pytest.raises(httpx.ConnectError):
        collect_final_state("http://wallet", "http://gateway", "tok", [], timeout=30, poll_s=0.05,
                            transport=httpx.MockTransport(unreachable), cancel=cancel)
    assert time.monotonic() - t0 < 5  # not the 30 s reconcile timeout
