"""SIGINT, SIGTERM and SIGHUP: stop the session between steps, interrupt only a running worker.

A signal used to raise ``KeyboardInterrupt`` wherever the supervisor happened to be,
including inside the write of a finished result: the result was lost and the entry left
``running`` while the console said otherwise. Now a signal only *requests* a stop; it
interrupts immediately only inside :func:`interruptible` (while a worker runs, so its tree
is stopped at once), and everywhere else the session finishes the step it is in (a claim,
a result write) and then stops, saying what it did. SIGHUP (a closed terminal) is a stop
request like the others instead of killing the supervisor outright.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequest:
    """Records stop signals; raises ``KeyboardInterrupt`` only where an interruption is safe."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        # One item per open interruptible section. A list, not a counter: Ray's lanes open and
        # close sections from several threads, and append/pop are atomic where ``+= 1`` is not
        # (a lock could be left held by the very KeyboardInterrupt this class raises).
        self._sections: list[None] = []
        self._unanswered = False  # a signal came outside an interruptible section and was not acted on yet

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum)
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
