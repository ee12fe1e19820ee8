"""SIGINT and SIGTERM to the harness: stop the run, tear everything down, exit 130 or 143.

Every process a run starts lives in its own session (so that a Ctrl-C in the terminal does not hit
PostgreSQL or Locust before the harness decides what to do), so a signal reaches the harness alone,
whether it was sent to the foreground group (Ctrl-C) or to the harness pid (`kill`, `timeout(1)`, CI
runners). The harness turns it into a cancel event:

- the run itself works in a worker thread (`run_interruptibly`); the main thread only waits and
  receives signals, so a signal can never land in the middle of a teardown;
- every long step of a run watches the event (`check`): stack start, the load loop, reconcile,
  judging; `Interrupted` then unwinds through the `finally` blocks that stop what was started;
- the exit code is 128 + the signal number (`EXIT_CODES`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

HANDLED = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # the shell's 128 + signal number


class Interrupted(KeyboardInterrupt):
    """The run was cancelled (a signal to the harness); raised at a cancel point, unwinds the teardowns."""


def check(cancel: threading.Event | None) -> None:
    """A cancel point: raise Interrupted if the run was cancelled."""
    if cancel is not None and cancel.is_set():
        raise Interrupted("cancelled")


class SignalCancel:
    """While active, SIGINT/SIGTERM set `cancel` (and are remembered) instead of killing the harness.

    Use in the main thread only (Python runs signal handlers there). A second signal changes nothing:
    the teardown already under way is what stops the stack, and it must not be cut short.
    """

    def __init__(self, cancel: threading.Event, on_signal: Callable[[int], None] | None = None) -> None:
        self.cancel = cancel
        self.signum: int | None = None
        self._on_signal = on_signal
        self._previous: dict[int, Any] = {}

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else EXIT_CODES.get(self.signum, 128 + self.signum)

    def _handle(self, signum: int, _frame: Any) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        self.cancel.set()
        if first and self._on_signal is not None:
            self._on_signal(signum)

    def __enter__(self) -> SignalCancel:
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_interruptibly(fn: Callable[[], T], guard: SignalCancel, poll_s: float = 0.2) -> T:
    """Run `fn` in a worker thread while the main thread waits for it and takes the signals.

    Returns fn's result or re-raises its exception (an `Interrupted` when a signal cancelled it).
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="walletchaos-run", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(poll_s)  # short joins: the main thread must get back to Python to run signal handlers
    if "error" in box:
        raise box["error"]
    return box["result"]
