"""The tie of a child process to the process that started it (worker -> supervisor, gateway -> supervisor).

A child must never outlive the supervisor that owns it: a supervisor killed with ``-9`` runs
no clean-up, so the child has to notice on its own.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1

OWN_THREAD_PREFIX = "lumiprof-"
"""Every thread this project starts inside a process it measures is named ``lumiprof-...``, so
the profile can leave it out: it is the profiler's, not the user's or LumiBot's."""


def is_own_thread(name: str | None) -> bool:
    """Whether a thread (by its ``threading`` name) belongs to the profiler rather than the user."""
    return bool(name) and str(name).startswith(OWN_THREAD_PREFIX)


def tie_to_parent(expected_parent: int) -> None:
    """Make sure this process ends when the supervisor that started it dies.

    The Linux parent-death signal covers the common case at no cost; a watcher thread covers
    other platforms and the race where the parent died before the signal was armed.
    """
    if expected_parent <= 0:
        return
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != expected_parent:
        os.kill(os.getpid(), signal.SIGTERM)
        return

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != expected_parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name=f"{OWN_THREAD_PREFIX}parent-watch", daemon=True).start()
