"""The state of the machine while one worker ran, so a wall time taken under load is recognisable.

Wall times on a loaded machine are inflated (measured here: about 2x at load 3-4 on 2 cores),
so each result records what else was running. ``other_cpu_share`` is the share of the machine's
whole CPU capacity (all cores, over the worker's lifetime) used by processes other than this
supervisor and its reaped worker tree:

    (system busy CPU seconds - our CPU seconds) / (wall seconds x CPU count)

System busy time comes from ``psutil.cpu_times()`` (all but idle and iowait); ours from
``getrusage`` of this process and of its reaped children, which includes the worker exactly
once it has been waited for. The local gateway, when used, counts as "other" (it is a child
that is still running); it serves a handful of requests per run.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import psutil

#: Above this share of the machine used by others, the run's wall time is flagged as inflated.
BUSY_SHARE = 0.25


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    guest = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)  # already counted in user
    return sum(times) - idle - guest


def _our_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class MachineWatch:
    """Started just before a worker is spawned, finished once it has been reaped."""

    def __init__(self) -> None:
        self._load_before = _load()
        self._t0 = time.perf_counter()
        self._busy0 = _busy_seconds()
        self._ours0 = _our_seconds()

    def finish(self) -> dict[str, Any]:
        wall = time.perf_counter() - self._t0
        cpus = psutil.cpu_count() or 1
        others = max(0.0, (_busy_seconds() - self._busy0) - (_our_seconds() - self._ours0))
        share = others / (wall * cpus) if wall > 0 else None
        return {
            "cpu_count": cpus,
            "cpu_model": cpu_model(),
            "load_before": self._load_before,
            "load_after": _load(),
            "other_cpu_share": None if share is None else round(min(share, 1.0), 3),
            "busy": share is not None and share >= BUSY_SHARE,
            "busy_threshold": BUSY_SHARE,
            "seconds_observed": round(wall, 3),
            "how": "psutil.cpu_times busy time minus getrusage of the supervisor and its reaped worker, "
                   "over the worker's lifetime, divided by wall x CPU count",
        }
