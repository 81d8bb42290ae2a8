"""Several claim loops of one supervisor side by side, one per slot the executor offers.

The local executor has one slot and its loop runs in the main thread exactly as before (Ctrl-C
reaches the worker's runner directly). A cluster offers one slot per node (or more): then
each loop runs in a thread, the main thread only waits, and Ctrl-C there stops every pass in
flight through the executor before the loops give their entries back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

JOIN_SECONDS = 0.2


def run_lanes(lane: Callable[[threading.Event], int], count: int, interrupt: Callable[[bool], None]) -> int:
    """Run ``count`` lanes to the end; returns their summed failures.

    A lane that stops with an exception stops the others (and the exception is re-raised);
    KeyboardInterrupt in the main thread interrupts every pass, waits for the lanes, and is
    re-raised. A second Ctrl-C while waiting interrupts with force.
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
                interrupt(False)
        finally:
            done.set()

    for i, done in enumerate(ended):
        threading.Thread(target=body, args=(done,), name=f"lumiprof-lane-{i}", daemon=True).start()
    try:
        _join(ended)
    except KeyboardInterrupt:
        stop.set()
        force = False
        while True:  # the lanes must give their entries back before the executor closes
            try:
                interrupt(force)
                _join(ended)
                break
            except KeyboardInterrupt:  # Ray's driver may see one Ctrl-C more than once
                force = True
        raise KeyboardInterrupt from None
    first = next((e for e in errors if not isinstance(e, KeyboardInterrupt)), None) or (errors[0] if errors else None)
    if first is not None:
        raise first
    return sum(failures)


def _join(ended: list[threading.Event]) -> None:
    """Wait until every lane has ended, in short sleeps, so Ctrl-C reaches the main thread.

    Not ``Thread.join``: a KeyboardInterrupt raised by a signal handler inside ``join`` makes
    CPython (3.11) release the running thread's state lock and mark it stopped, so the next
    ``is_alive()`` says False while the lane still runs, and the supervisor would exit before the
    lane gave its entry back (bpo-45274's fix).
    """
    while not all(done.is_set() for done in ended):
        time.sleep(JOIN_SECONDS)
