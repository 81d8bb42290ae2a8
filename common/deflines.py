"""The first line of the function a sampled line belongs to: py-spy's lines joined to yappi's functions.

py-spy without ``--function`` names each frame by the line it is executing (what the findings
need: the hottest lines inside a function, the line a caller called from). yappi names a
function by its code object's first line (``co_firstlineno``: the first decorator's line, else
the ``def``). One py-spy run per window gives both keys when each sampled line is mapped to
the first line of the function it runs in:

1. **yappi's own rows** (the profiled pass of the same window, same files): the function of that
   file and name with the greatest first line at or above the sampled line. Inside the backtest
   every function py-spy samples has run under yappi too, so this is the join itself.
2. Else a **scan of the source** for ``def``/``class`` lines of that name (plain text, no parse:
   parsing every library file a backtest touches took seconds), nearest above the line, moved up
   over the decorators directly above it.
3. Else None: the caller keeps the sampled line and counts the frame as unresolved.
"""

from __future__ import annotations

import re
import sysconfig
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.MULTILINE)
_DECORATOR = re.compile(r"^[ \t]*@")

Hints = Mapping[tuple[str, str], list[int]]


def hints_from(rows: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str], list[int]]:
    """yappi's (module, name, first line) rows as sorted first lines per (file, last part of the name)."""
    found: dict[tuple[str, str], list[int]] = {}
    for module, name, line in rows:
        found.setdefault((module, name.rsplit(".", 1)[-1]), []).append(line)
    return {key: sorted(set(lines)) for key, lines in found.items()}


def _source_path(file: str) -> Path | None:
    """The file to read: the path itself, or the stdlib source of a frozen module (``<frozen os>``)."""
    if file.startswith("<frozen ") and file.endswith(">"):
        path = Path(sysconfig.get_paths()["stdlib"]) / (file[len("<frozen ") : -1].replace(".", "/") + ".py")
        return path if path.is_file() else None
    if file.startswith("<"):
        return None
    path = Path(file)
    return path if path.is_file() else None


@lru_cache(maxsize=2048)
def _defs(file: str) -> tuple[dict[str, list[int]], tuple[str, ...]] | None:
    """Per name, the lines of its ``def``/``class`` statements; and the file's lines."""
    path = _source_path(file)
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    by_name: dict[str, list[int]] = {}
    line, position = 1, 0
    for found in _DEF.finditer(text):
        line += text.count("\n", position, found.start())
        position = found.start()
        by_name.setdefault(found[1], []).append(line)
    return by_name, tuple(text.splitlines())


def _from_source(file: str, short: str, line: int) -> int | None:
    defs = _defs(file)
    if defs is None or short not in defs[0]:
        return None
    lines = defs[0][short]
    index = bisect_right(lines, line)
    if not index:
        return None
    first = lines[index - 1]
    source = defs[1]
    while first > 1 and _DECORATOR.match(source[first - 2]):
        first -= 1
    return first


def first_line(file: str, name: str, line: int, hints: Hints | None = None) -> int | None:
    """The first line of the code object called ``name`` (py-spy's qualified name is fine) that holds
    ``line`` in ``file``; None when neither yappi's rows nor the source can say."""
    short = name.rsplit(".", 1)[-1]
    if short == "<module>":
        return 1
    if hints:
        known = hints.get((file, short))
        if known:
            index = bisect_right(known, line)
            if index:
                return known[index - 1]
    if short.startswith("<"):  # a comprehension or lambda yappi did not see: its first line is (nearly) the line itself
        return None
    return _from_source(file, short, line)
