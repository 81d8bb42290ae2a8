"""Move a result's files aside when the result moves to ``history``, so its paths stay valid.

A rerun writes the same file names (``profiling/<id>.funcs.wall.csv``, ``profiling/work/<id>/``),
so without this a history entry would point at the rerun's files and the old profile would be
lost. Every file a result names below the output folder moves to
``<output>/history/<id>.<n>/`` with its relative layout kept, and the result's paths follow.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from supervisor.plan import PlanStore


def _rewrite(value: Any, move: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rewrite(v, move) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, move) for v in value]
    if isinstance(value, str):
        return move(value)
    return value


def archive_result(store: PlanStore, output_dir: Path, run_id: str, number: int, result: dict[str, Any]) -> dict[str, Any]:
    """The result with every file it names moved to ``history/<id>.<number>/`` (paths rewritten).

    Strings that are not files below ``output_dir`` (notes, ids, other folders) are left as they are.
    """
    output_dir = output_dir.resolve()
    target_root = output_dir / "history" / f"{run_id}.{number}"
    moved: dict[Path, Path] = {}  # one file may be named twice (relative and absolute)

    def move(text: str) -> str:
        if not text or "\n" in text or len(text) > 4096:
            return text
        absolute = Path(text).is_absolute()
        source = store.resolve(text).resolve()
        target = moved.get(source)
        if target is None:
            if not source.is_file() or not source.is_relative_to(output_dir) or source.is_relative_to(output_dir / "history"):
                return text
            target = moved[source] = target_root / source.relative_to(output_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), target)
        return str(target) if absolute else store.relative(target)

    rewritten: dict[str, Any] = _rewrite(result, move)
    return rewritten
