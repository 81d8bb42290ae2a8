"""``python -m worker.describe TARGET [SEARCH_PATH...]``: what ``lumiprof init`` needs to know of a strategy.

Run by ``lumiprof init`` in a fresh interpreter with a time-out, never imported by it: the
user's file runs arbitrary code at import (and imports LumiBot, seconds of it), which must
not be able to crash, hang or pollute the CLI. The environment is neutralised as for a worker
(no ``.env`` loading, LumiBot's cache in a throw-away folder, stdout kept for our answer), and
the strategy is imported by the worker's own loader, so what imports here imports in a run.

Prints one JSON object on stdout: ``{"ok": true, "class", "file", "parameters", "skipped",
"sleeptime", "scan"}`` or ``{"ok": false, "kind", "error"}`` with a one-line ``error``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from common.lifetime import tie_to_parent
from worker.isolation import StdoutGuard, prepare_environment


def last_line(exc: BaseException) -> str:
    """The last line of the exception's traceback, as Python prints it."""
    return traceback.format_exception_only(type(exc), exc)[-1].strip().splitlines()[-1]


def json_parameters(parameters: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The parameters a JSON plan can carry unchanged, and the others' type names.

    A value must survive JSON and come back equal (a tuple comes back a list, a datetime does
    not come back at all): the plan passes its parameters to ``run_backtest``, which merges
    them over the class's own, so a value left out keeps the class's default.
    """
    if not isinstance(parameters, dict):
        return {}, {}
    kept: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for key, value in parameters.items():
        try:
            same = isinstance(key, str) and json.loads(json.dumps(value, allow_nan=False)) == value
            same = same and _same_types(value, json.loads(json.dumps(value)))
        except (TypeError, ValueError):
            same = False
        if same:
            kept[key] = value
        else:
            skipped[str(key)] = type(value).__name__
    return kept, skipped


def _same_types(original: Any, copy: Any) -> bool:
    """``(1, 2) == [1, 2]`` is False already, but ``1 == 1.0`` and ``True == 1`` are not: compare types too."""
    if type(original) is not type(copy):
        return False
    if isinstance(original, dict):
        return all(_same_types(original[k], copy[k]) for k in original)
    if isinstance(original, list):
        return all(_same_types(a, b) for a, b in zip(original, copy, strict=True))
    return True


def own_sleeptime(cls: type[Any], strategy_base: type[Any]) -> Any:
    """``sleeptime`` set in the user's class body (not LumiBot's default); None if not."""
    for klass in cls.__mro__:
        if klass is strategy_base:
            return None
        if "sleeptime" in vars(klass):
            value = vars(klass)["sleeptime"]
            return value if isinstance(value, str | int | float) else None
    return None


def describe(target: str, search_path: list[str]) -> dict[str, Any]:
    from worker.backtest import WorkerFailure, import_problem, load_strategy

    try:
        cls = load_strategy(target, search_path)
    except WorkerFailure as exc:
        cause = exc.__cause__
        if cause is not None:
            return {"ok": False, "kind": "import", "error": import_problem(cause)}
        return {"ok": False, "kind": "class", "error": str(exc)}  # imported, but no such class
    from lumibot.strategies import Strategy

    if not issubclass(cls, Strategy):
        bases = ", ".join(base.__name__ for base in cls.__bases__)
        return {"ok": False, "kind": "not_strategy", "error": f"not a LumiBot Strategy subclass (its bases: {bases})"}
    parameters, skipped = json_parameters(getattr(cls, "parameters", {}))
    file = inspect.getsourcefile(cls)
    from worker.symbols import scan

    found: dict[str, Any] = {"assets": [], "types_without_symbol": [], "sleeptime": None, "from": ""}
    if file:
        with contextlib.suppress(OSError, SyntaxError, ValueError, RecursionError):  # no scan: the caller falls back
            found = scan(Path(file).read_text(encoding="utf-8"), parameters)
    sleeptime = own_sleeptime(cls, Strategy)
    return {
        "ok": True,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "file": file,
        "parameters": parameters,
        "skipped": skipped,
        "sleeptime": found["sleeptime"] if found["sleeptime"] is not None else sleeptime,
        "scan": found,
    }


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m worker.describe TARGET [SEARCH_PATH...]", file=sys.stderr)
        return 2
    tie_to_parent(os.getppid())  # a CLI killed with -9 must not leave a slow import behind
    with tempfile.TemporaryDirectory(prefix="lumiprof-describe-") as scratch:
        prepare_environment(Path(scratch) / "cache")
        guard = StdoutGuard()  # LumiBot's and the user's prints go to stderr
        try:
            answer = describe(argv[0], argv[1:])
        except Exception as exc:  # anything else the user's class does when looked at
            answer = {"ok": False, "kind": "import", "error": last_line(exc)}
        guard.emit(json.dumps(answer, default=str).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
