"""Find and end what a worker started, by proof of identity only.

A worker's tree can escape every handle the supervisor holds: a child in its own session
leaves the process group, and after the worker dies its orphans are re-parented away from
``children()``. So every worker is started with a marker in its environment (the owning
supervisor's random token), which every descendant inherits; a process carrying that token
was started by that supervisor's worker, and only such processes (or a pid whose recorded
create time still matches) are ever killed.
"""

from __future__ import annotations

import contextlib

import psutil

#: Environment variable every worker (and so each of its descendants) carries.
MARKER = "LUMIPROF_OWNER_TOKEN"


def marked(token: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``MARKER=token`` (ours: no one else knows the token)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == token and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_all(procs: list[psutil.Process]) -> list[int]:
    """SIGKILL each process (``psutil`` checks it is still the same process first); the pids killed."""
    killed = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
            killed.append(proc.pid)
    with contextlib.suppress(psutil.Error):
        psutil.wait_procs(procs, timeout=5)
    return killed


def kill_pid(pid: int) -> bool:
    """SIGKILL one process whose identity the caller has proven (pid and create time); False if already gone."""
    try:
        return bool(kill_all([psutil.Process(pid)]))
    except psutil.Error:
        return False


def kill_marked(token: str) -> list[int]:
    """End every leftover of the worker(s) started under ``token``."""
    return kill_all(marked(token))
