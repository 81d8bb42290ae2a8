"""A helper module beside a strategy file, imported by name as ``python lifecycle_probe.py`` would."""

from __future__ import annotations

import threading

SIDE_THREAD_NAME = "probe-side-thread"


def start_side_thread(stop: threading.Event) -> threading.Thread:
    """A user thread with its own name, waiting until the strategy ends."""
    thread = threading.Thread(target=lambda: stop.wait(600), name=SIDE_THREAD_NAME, daemon=True)
    thread.start()
    return thread
