"""Folders the supervisor may empty: only those it created itself, proven by a marker file inside.

Per-run folders (``<cache>/<id>``, ``<output_dir>/work/<stem>``) are emptied before each run
so nothing warm or stale leaks in. Their paths come from plan values, though: with
``meta.cache.folder: "."`` and a run id equal to a user's folder name, a plain ``rmtree``
deleted the user's folder. A folder is emptied only if it carries our marker (or is empty);
anything else is refused and the run ends in ``error`` saying which path and why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

MARKER = ".lumiprof-owned"


class NotOurs(Exception):
    """A per-run folder exists and was not created by this tool: it is never deleted."""


def fresh_dir(path: Path) -> Path:
    """An empty folder at ``path`` carrying our marker; refuses to empty a folder we did not create."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise NotOurs(f"{path} exists and is not a folder this tool created; not touching it")
    if path.exists():
        if not (path / MARKER).is_file() and any(path.iterdir()):
            raise NotOurs(f"{path} exists and was not created by this tool (no {MARKER} inside); move it or change the plan")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).touch()
    return path


def remove_owned(path: Path) -> None:
    """Delete ``path`` if this tool created it (marker inside); anything else stays where it is."""
    if path.is_dir() and not path.is_symlink() and (path / MARKER).is_file():
        shutil.rmtree(path)
