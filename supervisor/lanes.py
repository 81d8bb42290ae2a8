"""Several claim loops of one supervisor side by side, one per slot the executor offers.

The local executor has one slot and its loop runs in the main thread exactly as before (Ctrl-C
reaches the worker's runner directly). A cluster offers one slot per node (or more): then
each loop runs in a thread, the main thread only waits, and Ctrl-C there stops every pass in
flight through the executor before the loops give their entries back.
"""

from __future__ import annotations

import threading
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

    def body() -> None:
        try:
            failures.append(lane(stop))
        except BaseException as exc:  # handed to the main thread, which re-raises it
            errors.append(exc)
            if not stop.is_set():
                stop.set()
                interrupt(False)

    threads = [threading.Thread(target=body, name=f"lumiprof-lane-{i}", daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        _join(threads)
    except KeyboardInterrupt:
        stop.set()
        force = False
        while True:  # the lanes must give their entries back before the executor closes
            try:
                interrupt(force)
                _join(threads)
                break
            except KeyboardInterrupt:  # Ray's driver may see one Ctrl-C more than once
                force = True
        raise KeyboardInterrupt from None
    first = next((e for e in errors if not isinstance(e, KeyboardInterrupt)), None) or (errors[0] if errors else None)
    if first is not None:
        raise first
    return sum(failures)


def _join(threads: list[threading.Thread]) -> None:
    """Join with a time-out, so Ctrl-C reaches the main thread while it waits."""
    for thread in threads:
        while thread.is_alive():
            thread.join(JOIN_SECONDS)
