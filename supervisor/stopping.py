"""SIGINT, SIGTERM and SIGHUP: stop the session between steps, interrupt only a running worker.

A signal used to raise ``KeyboardInterrupt`` wherever the supervisor happened to be,
including inside the write of a finished result: the result was lost and the entry left
``running`` while the console said otherwise. Now a signal only *requests* a stop; it
interrupts immediately only inside :func:`interruptible` (while a worker runs, so its tree
is stopped at once), and everywhere else the session finishes the step it is in (a claim,
a result write) and then stops, saying what it did. SIGHUP (a closed terminal) is a stop
request like the others instead of killing the supervisor outright.

The signals are counted, as pip, pytest and Ray's own CLI do: the first stops the pass in
flight gracefully (its worker gets the grace period to save a partial profile), a second one
while the first is being handled stops it at once. The local executor sees the second one as
a ``KeyboardInterrupt`` inside the graceful stop (:func:`supervisor.runner.run_worker`); the
Ray lanes never block the main thread, so they read :attr:`StopRequest.count` between short
waits and pass each new stop on to the node, where ``ray.cancel`` arrives as a SIGINT in the
task and meets the same :class:`StopRequest` and the same ``run_worker`` (``node_task``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequest:
    """Records stop signals; raises ``KeyboardInterrupt`` only where an interruption is safe."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self.count = 0
        """Stop signals received so far: 1 asks for a graceful stop, 2 or more for an immediate one.
        Written only by the handler (always the main thread), read by any lane."""
        # One item per open interruptible section. A list, not a counter: sections may open and
        # close from several threads, and append/pop are atomic where ``+= 1`` is not (a lock
        # could be left held by the very KeyboardInterrupt this class raises).
        self._sections: list[None] = []
        self._unanswered = False  # a signal came outside an interruptible section and was not acted on yet

    def install(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        for signum in signals:
            signal.signal(signum, self._on_signal)

    @contextmanager
    def installed(self, signals: tuple[signal.Signals, ...]) -> Iterator[None]:
        """This request handles ``signals`` inside the block; the previous handlers come back after.

        Outside the main thread Python cannot set handlers: then nothing changes (the signal
        keeps its default effect there).
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous: dict[signal.Signals, Any] = {s: signal.getsignal(s) for s in signals}
        self.install(signals)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum)
        self.count += 1
        if self._sections:
            raise KeyboardInterrupt
        self._unanswered = True

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Inside: a stop signal raises ``KeyboardInterrupt`` at once; so does entering it with a
        signal that arrived just before (between the caller's last check and here)."""
        if self._unanswered:
            self._unanswered = False
            raise KeyboardInterrupt
        self._sections.append(None)
        try:
            yield
        finally:
            self._sections.pop()
