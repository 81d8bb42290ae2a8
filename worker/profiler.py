"""The yappi wall-clock session around one backtest and the files it leaves behind.

yappi has no CSV writer of its own (it saves ystat, pstat and callgrind), so the CSVs the
spec asks for are written here from the stats objects, one row per function or thread.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yappi

FUNC_COLUMNS = (
    "rank",
    "name",
    "module",
    "lineno",
    "ncall",
    "nactualcall",
    "cumulative_seconds",
    "self_seconds",
    "avg_seconds",
    "builtin",
    "ctx_name",
    "full_name",
)
THREAD_COLUMNS = ("name", "id", "tid", "wall_seconds", "sched_count", "top_self_function", "top_self_seconds")


@dataclass(frozen=True)
class ProfileFiles:
    """Where one run's profile was written; keys are the names the result records."""

    funcs_csv: Path
    threads_csv: Path
    pstat: Path
    callgrind: Path

    @classmethod
    def for_stem(cls, output_dir: Path, stem: str) -> ProfileFiles:
        return cls(
            funcs_csv=output_dir / f"{stem}.funcs.wall.csv",
            threads_csv=output_dir / f"{stem}.threads.wall.csv",
            pstat=output_dir / f"{stem}.wall.pstat",
            callgrind=output_dir / f"{stem}.wall.callgrind",
        )


class WallProfile:
    """One yappi wall-clock session covering every thread, started and stopped exactly once.

    ``stop`` is safe to call from a signal handler while the backtest is still running: a
    time-out then still leaves a (partial) profile of where the time went.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._t0 = 0.0
        self._c0 = 0.0
        self.wall_seconds: float | None = None
        self.cpu_seconds: float | None = None
        self.func_stats: yappi.YFuncStats | None = None

    def start(self) -> None:
        if self.enabled:
            yappi.set_clock_type("wall")
            yappi.set_context_name_callback(thread_name)
            yappi.clear_stats()
            yappi.start(builtins=False, profile_threads=True)
        self._c0 = time.process_time()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        with self._lock:
            if self.wall_seconds is not None:
                return
            self.wall_seconds = time.perf_counter() - self._t0
            self.cpu_seconds = time.process_time() - self._c0
            if self.enabled:
                yappi.stop()

    def save(self, files: ProfileFiles) -> dict[str, str]:
        """Write CSVs, pstat and callgrind; returns the paths actually written.

        The profiler's own threads (:func:`common.lifetime.is_own_thread`: the watch on the
        supervisor, started before yappi and so seen by it) are left out of every file here,
        so no table or share counts them.
        """
        if not self.enabled:
            return {}
        files.funcs_csv.parent.mkdir(parents=True, exist_ok=True)
        own = own_contexts()
        func_stats = self.func_stats = yappi.get_func_stats(filter_callback=lambda stat: stat.ctx_id not in own)
        func_stats.sort("ttot", "desc")
        _write_funcs_csv(func_stats, files.funcs_csv)
        _write_threads_csv(files.threads_csv, own)
        written = {"top_functions_csv": str(files.funcs_csv), "top_threads_csv": str(files.threads_csv)}
        if not func_stats.empty():
            func_stats.save(str(files.pstat), type="pstat")
            func_stats.save(str(files.callgrind), type="callgrind")
            written.update(pstat=str(files.pstat), callgrind=str(files.callgrind))
        return written

    def call_count(self, function: Callable[..., Any]) -> int | None:
        """Calls of exactly this function (matched by file and line, as yappi records it), from
        the stats :meth:`save` already fetched (fetching them again costs ~0.25 s).

        For a strategy's ``on_trading_iteration`` this is the number of iterations: LumiBot calls
        the most-derived method once per iteration, whatever else shares its name.
        """
        if self.func_stats is None:
            return None
        from worker.phases import location

        where = location(function)
        return sum(int(stat.ncall) for stat in self.func_stats if (stat.module, int(stat.lineno)) == where)


def thread_name(get_ident: Callable[[], int] = threading.get_ident) -> str | None:
    """The ``threading`` name of the running thread, for yappi's context names.

    yappi's default is the thread's class name (five threads called ``Thread``). Like yappi's
    own callback, this reads ``threading._active`` instead of calling ``current_thread()``,
    which can deadlock inside threading's own locks; None means "ask again later".
    """
    thread = threading._active.get(get_ident())  # type: ignore[attr-defined]
    return None if thread is None else thread.name


def own_contexts() -> frozenset[int]:
    """yappi's context ids of the profiler's own threads (by name, as :func:`thread_name` recorded it)."""
    from common.lifetime import is_own_thread

    return frozenset(int(t.id) for t in yappi.get_thread_stats() if is_own_thread(t.name))


def _write_funcs_csv(stats: yappi.YFuncStats, path: Path) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(FUNC_COLUMNS)
        for rank, stat in enumerate(stats, start=1):
            out.writerow(
                (
                    rank,
                    stat.name,
                    stat.module,
                    stat.lineno,
                    stat.ncall,
                    stat.nactualcall,
                    f"{stat.ttot:.6f}",
                    f"{stat.tsub:.6f}",
                    f"{stat.tavg:.9f}",
                    int(stat.builtin),
                    stat.ctx_name,
                    stat.full_name,
                )
            )


def _write_threads_csv(path: Path, own: frozenset[int] = frozenset()) -> None:
    """One row per thread with its wall time and the function it spent most self time in; the
    threads in ``own`` (the profiler's) are left out.

    A single pass with ``filter_callback`` sees the per-thread entries before yappi merges them,
    about 4x cheaper than one filtered ``get_func_stats`` per thread.
    """
    top_by_thread: dict[int, Any] = {}

    def keep_top(stat: Any) -> bool:
        current = top_by_thread.get(stat.ctx_id)
        if current is None or stat.tsub > current.tsub:
            top_by_thread[stat.ctx_id] = stat
        return False

    yappi.get_func_stats(filter_callback=keep_top)
    threads = yappi.get_thread_stats()
    threads.sort("ttot", "desc")
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(THREAD_COLUMNS)
        for thread in threads:
            if thread.id in own:
                continue
            top = top_by_thread.get(thread.id)
            out.writerow(
                (
                    thread.name,
                    thread.id,
                    thread.tid,
                    f"{thread.ttot:.6f}",
                    thread.sched_count,
                    "" if top is None else f"{top.module}:{top.lineno}:{top.name}",
                    "" if top is None else f"{top.tsub:.6f}",
                )
            )
