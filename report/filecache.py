"""Parsed per-run files kept between report rewrites of one process, keyed by path and modification time.

The live rewrite after every run (:mod:`report.live`) re-reads the whole result set; without this
each rewrite would parse every earlier run's CSVs, pstat and sites again, and its cost would grow
with the plan. A file that changed (a rerun) is parsed again; one that cannot be read raises as
before, so callers keep reporting the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_CACHE: dict[tuple[str, str], tuple[int, int, object]] = {}
LIMIT = 512


def cached(kind: str, path: Path, reader: Callable[[Path], T]) -> T:
    """``reader(path)``, or the value it gave for the same file at the same modification time and size."""
    stat = path.stat()
    key = (kind, str(path))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == stat.st_mtime_ns and hit[1] == stat.st_size:
        return hit[2]  # type: ignore[return-value]
    value = reader(path)
    if len(_CACHE) >= LIMIT:
        _CACHE.clear()
    _CACHE[key] = (stat.st_mtime_ns, stat.st_size, value)
    return value
