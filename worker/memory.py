"""The memory pass's capture around one backtest: memray, or tracemalloc where memray cannot run.

The worker only records; the supervisor reads the capture afterwards (``supervisor/memory.py``),
so the reading's own memory never lands in this process's peak RSS.

* **memray** (pinned in pyproject.toml): a ``memray.Tracker`` around ``run_backtest`` exactly
  where yappi runs in the profiled pass, every thread included, Python frames only (no native
  traces: they cost more and the findings name Python code). It writes ``<stem>.memray.bin``.
* **tracemalloc** (the standard library) when memray does not import or will not start (a
  platform without it): ``tracemalloc.start(FRAMES)`` over the same section; its own peak
  counter, and a snapshot of what is still allocated when the backtest returns, dumped to
  ``<stem>.tracemalloc.snapshot``. tracemalloc has no record of the sites at the peak, so the
  supervisor records those as unmeasured, with the reason.

Arrow's memory pool: pyarrow allocates through jemalloc or mimalloc by default, which reserve
large regions ahead of use and keep them; memray sees the reservations as allocations (a 1 GB
"peak" in LumiBot's stats writer that is not live data). The memory pass sets
``ARROW_DEFAULT_MEMORY_POOL=system`` before pyarrow is imported, so Arrow's buffers are plain
mallocs of what is really held; the result records it (``arrow_memory_pool``).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

#: Frames kept per tracemalloc trace: enough to reach a strategy line from inside pandas (tracemalloc slows a
#: backtest about 15x at 10 frames and 25x at 40 on a loaded machine; memray about 1.1x).
FRAMES = 25
ARROW_POOL = "system"
TOOLS = ("memray", "tracemalloc")


class MemoryCapture:
    """One capture, started and stopped once; ``stop`` is safe from the SIGTERM handler."""

    def __init__(self, tool: str, output_dir: Path, stem: str) -> None:
        self.tool = tool
        self.enabled = tool in TOOLS
        self.output_dir = output_dir
        self.stem = stem
        self.fallback_reason: str | None = None
        self.arrow_pool: str | None = None
        self.capture: Path | None = None
        self.peak_bytes: int | None = None
        self._tracker: Any = None
        self._lock = threading.Lock()
        self._stopped = False

    def prepare(self) -> None:
        """Before LumiBot (and so pyarrow) is imported: Arrow allocates through malloc, see the module docstring."""
        if self.enabled:
            os.environ["ARROW_DEFAULT_MEMORY_POOL"] = ARROW_POOL
            self.arrow_pool = "default (pyarrow was imported before the pass chose)" if "pyarrow" in sys.modules else ARROW_POOL

    def start(self) -> None:
        if not self.enabled:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.tool == "memray":
            try:
                import memray

                path = self.output_dir / f"{self.stem}.memray.bin"
                path.unlink(missing_ok=True)  # memray refuses to overwrite an earlier attempt's file
                tracker = memray.Tracker(str(path), native_traces=False, follow_fork=False)
                tracker.__enter__()
            except Exception as exc:  # ImportError on a platform without memray, or a tracker that will not start
                self.fallback_reason = f"memray could not run ({type(exc).__name__}: {exc})".splitlines()[0]
                self.tool = "tracemalloc"
            else:
                self._tracker, self.capture = tracker, path
                return
        import tracemalloc

        tracemalloc.start(FRAMES)

    def stop(self) -> None:
        with self._lock:
            if not self.enabled or self._stopped:
                return
            self._stopped = True
            if self._tracker is not None:
                self._tracker.__exit__(None, None, None)
                return
            import tracemalloc

            if not tracemalloc.is_tracing():
                return
            self.peak_bytes = tracemalloc.get_traced_memory()[1]
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            self.capture = self.output_dir / f"{self.stem}.tracemalloc.snapshot"
            snapshot.dump(str(self.capture))

    def record(self) -> dict[str, Any] | None:
        """What the answer says about the capture (``answer.memory``); None outside a memory pass."""
        if not self.enabled:
            return None
        from importlib import metadata

        try:
            version = metadata.version("memray") if self.tool == "memray" else "stdlib"
        except metadata.PackageNotFoundError:
            version = "not installed"
        return {
            "tool": self.tool,
            "tool_version": version,
            "capture": None if self.capture is None else str(self.capture),
            "fallback_reason": self.fallback_reason,
            "arrow_memory_pool": self.arrow_pool,
            "peak_heap_bytes": self.peak_bytes,
        }
