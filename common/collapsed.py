"""Reading py-spy's collapsed stacks (``--format raw``) into threads, frames and sample counts.

One line per distinct stack: ``frame;frame;...;frame COUNT``, outermost frame first. With
``--threads`` the first frame names the thread (``thread (TID)`` or ``thread (TID): NAME``;
py-spy learns the name once ``threading`` has it, so one thread can appear under both forms and
is keyed by its id). A frame is ``name (file:line)``: the line it was executing, as py-spy records
it by default (the *lines* file), or, with ``--function`` or after :func:`write_function_level`,
the function's first line, which is what yappi records as ``lineno``, so the two profiles join on
it. This is the format flamegraph.pl, inferno and speedscope read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from common.deflines import Hints, first_line

_THREAD = re.compile(r"^thread \((?P<tid>[^)]*)\)(?:: (?P<name>.*))?$")
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>.*):(?P<line>\d+)\)$")


@dataclass(frozen=True)
class Frame:
    """One Python function as py-spy names it: qualified name, file, first line."""

    name: str
    file: str
    line: int

    @property
    def short_name(self) -> str:
        """The last dotted part: py-spy says ``JSONEncoder.iterencode`` where yappi may say ``iterencode``."""
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Stack:
    """``count`` samples of one thread with these frames, outermost first."""

    thread: str
    frames: tuple[Frame, ...]
    count: int


@lru_cache(maxsize=65536)
def parse_frame(text: str) -> Frame:
    """Cached: a run's few thousand distinct frames repeat across its stacks."""
    found = _FRAME.match(text)
    if found is None:
        return Frame(text, "", 0)  # e.g. a frame py-spy could not name; kept so the stack stays whole
    return Frame(found["name"], found["file"], int(found["line"]))


def parse_line(line: str) -> Stack | None:
    """One collapsed line, or None for a blank or malformed one."""
    body, _, count = line.rstrip("\n").rpartition(" ")
    if not body or not count.isdigit():
        return None
    parts = body.split(";")
    thread = ""
    found = _THREAD.match(parts[0])
    if found is not None:
        thread, parts = found["tid"], parts[1:]
    return Stack(thread, tuple(parse_frame(p) for p in parts if p), int(count))


def read_stacks(path: Path) -> list[Stack]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        return [stack for stack in map(parse_line, fh) if stack is not None]



def _function_frame(text: str, hints: Hints | None) -> tuple[str, bool]:
    """One line-level frame as its function-level text, and whether yappi's rows or the source said where it starts."""
    found = _FRAME.match(text)
    if found is None:
        return text, True
    start = first_line(found["file"], found["name"], int(found["line"]), hints)
    if start is None:
        return text, False
    return f"{found['name']} ({found['file']}:{start})", True


def write_function_level(lines_path: Path, out_path: Path, hints: Hints | None = None) -> tuple[int, int]:
    """Rewrite py-spy's line-level collapsed stacks keyed by each frame's function first line
    (what ``py-spy --function`` would have recorded), merging the stacks that become equal.
    ``hints`` are yappi's first lines of the same window (:func:`common.deflines.hints_from`).

    Returns (samples, samples with at least one frame whose first line could not be read from its
    source: those frames keep their own line and may not join yappi's row).
    """
    merged: dict[str, int] = {}
    samples = unresolved = 0
    cache: dict[str, tuple[str, bool]] = {}
    with lines_path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            body, _, count = line.rstrip("\n").rpartition(" ")
            if not body or not count.isdigit():
                continue
            parts = body.split(";")
            out: list[str] = []
            whole = True
            for index, part in enumerate(parts):
                if index == 0 and _THREAD.match(part):
                    out.append(part)
                    continue
                found = cache.get(part)
                if found is None:
                    found = cache[part] = _function_frame(part, hints)
                out.append(found[0])
                whole = whole and found[1]
            key = ";".join(out)
            merged[key] = merged.get(key, 0) + int(count)
            samples += int(count)
            unresolved += 0 if whole else int(count)
    out_path.write_text("".join(f"{k} {v}\n" for k, v in merged.items()), encoding="utf-8")
    return samples, unresolved
