"""The worker adopts every orphan of its tree and ends them all with the run.

A child that starts its own session leaves the worker's process group, and a grandchild
whose parent died is re-parented to init: both escaped the supervisor's group kill. As a
Linux child subreaper the worker becomes the parent of every orphan below it, so at the
end of the run (normal exit, time-out, SIGTERM from the supervisor or from the parent-death
signal) one walk of its children finds the whole tree.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans below this process are re-parented here instead of to init (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def end_descendants() -> None:
    """SIGKILL everything below this process; called right before the worker exits."""
    import psutil

    with contextlib.suppress(psutil.Error):
        tree = psutil.Process().children(recursive=True)
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(tree, timeout=2)
