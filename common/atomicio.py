"""Crash-safe file replacement, after pip's ``adjacent_tmp_file`` + ``os.replace``.

The temporary file lives in the target's folder (``os.replace`` is only atomic within one
file system), is fsynced before the swap, and the folder is fsynced after it so the new
directory entry survives a power cut, not just a process crash.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _land(path: Path, data: bytes, mode: int, move: Callable[[str, Path], None]) -> None:
    """Write ``data`` to a fsynced temporary beside ``path``, ``move`` it there, fsync the folder."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, mode)
        move(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers see the old file or the new one, never a mix."""
    _land(path, data, path.stat().st_mode & 0o777 if path.exists() else 0o644, os.replace)


def atomic_create_bytes(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data``, whole or not at all; ``FileExistsError`` if it exists, never replaced.

    Hard-linking the finished temporary to ``path`` fails if ``path`` appeared meanwhile, so
    two writers cannot overwrite each other (a check-then-replace could).
    """
    _land(path, data, 0o644, os.link)
