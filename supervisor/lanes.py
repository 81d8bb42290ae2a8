"""Several claim loops of one supervisor side by side, one per slot the executor offers.

The local executor has one slot and its loop runs in the main thread exactly as before (Ctrl-C
reaches the worker's runner directly). A cluster offers one slot per node (or more): then
each loop runs in a thread and the main thread only waits. A stop signal never interrupts
that wait: the lanes read the session's stop request between short waits (the Ray executor
passes it on to the nodes, see :mod:`supervisor.stopping`) and give their entries back, and
the main thread returns once every lane has ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

JOIN_SECONDS = 0.2


def run_lanes(lane: Callable[[threading.Event], int], count: int, interrupt: Callable[[], None]) -> int:
    """Run ``count`` lanes to the end; returns their summed failures.

    A lane that stops with an exception stops the others (``interrupt`` stops their passes in
    flight) and the exception is re-raised once all have ended; a lane interrupted by a stop
    signal ends with ``KeyboardInterrupt``, re-raised here the same way.
    """
    stop = threading.Event()
    if count <= 1:
        return lane(stop)
    failures: list[int] = []
    errors: list[BaseException] = []
    ended = [threading.Event() for _ in range(count)]

    def body(done: threading.Event) -> None:
        try:
            failures.append(lane(stop))
        except BaseException as exc:  # handed to the main thread, which re-raises it
            errors.append(exc)
            if not stop.is_set():
                stop.set()
                interrupt()
        finally:
            done.set()

    for i, done in enumerate(ended):
        threading.Thread(target=body, args=(done,), name=f"lumiprof-lane-{i}", daemon=True).start()
    _join(ended)
    first = next((e for e in errors if not isinstance(e, KeyboardInterrupt)), None) or (errors[0] if errors else None)
    if first is not None:
        raise first
    return sum(failures)


def _join(ended: list[threading.Event]) -> None:
    """Wait until every lane has ended, in short sleeps, so the signal handler (main thread
    only) runs at once and the lanes see the stop within their next short wait."""
    while not all(done.is_set() for done in ended):
        time.sleep(JOIN_SECONDS)
