"""Load the plan's strategy, apply the invariants, and run one real LumiBot backtest.

The invariants are applied here and then read back from the strategy object LumiBot built,
so the result records what was in effect, not what we hoped for.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from worker.datasources import DataCounter, observed, resolve
from worker.protocol import RunSpec

#: Invariants that are strategy parameters; the others are backtest settings.
PARAMETER_INVARIANTS = ("plot_price", "show_live_equity_curve")


class WorkerFailure(Exception):
    """A failure with a kind the supervisor understands (see ``protocol.ERROR_KINDS``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Prepared:
    """Everything resolved before the clock starts, so the profile covers the backtest only."""

    strategy_class: type[Any]
    parameters: dict[str, Any]
    datasource_class: type[Any]
    extra_kwargs: dict[str, Any]
    counter: DataCounter
    start: datetime
    end: datetime


def parameters_hash(parameters: dict[str, Any]) -> str:
    """A stable digest of strategy parameters, to flag runs whose parameters differ."""
    blob = orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(blob).hexdigest()[:16]


def load_strategy(target: str, search_path: list[str]) -> type[Any]:
    """Import ``module:Class`` or ``path/to/file.py:Class``; a one-line reason on failure."""
    module_name, sep, class_name = target.rpartition(":")
    if not sep or not module_name or not class_name:
        raise WorkerFailure("config", f"strategy {target!r} must look like 'package.module:ClassName'")
    for entry in reversed(search_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_absolute():
                path = next((Path(p) / path for p in search_path if (Path(p) / path).exists()), path)
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"no such file: {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except Exception as exc:
        raise WorkerFailure("import", f"strategy {target!r} does not import: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise WorkerFailure("import", f"strategy {target!r}: module has no class {class_name!r}")
    return cls


def apply_invariants(parameters: dict[str, Any], invariants: dict[str, Any]) -> dict[str, Any]:
    """The plan's parameters with the parameter invariants set; a contradiction is an error."""
    applied = dict(parameters)
    for key in PARAMETER_INVARIANTS:
        if key not in invariants:
            continue
        wanted = invariants[key]
        if key in applied and applied[key] != wanted:
            raise WorkerFailure(
                "config", f"strategy parameter {key}={applied[key]!r} contradicts invariant {key}={wanted!r}"
            )
        applied[key] = wanted
    return applied


def prepare(spec: RunSpec) -> Prepared:
    """Import and resolve everything the backtest needs, outside the profiled section."""
    try:
        # Passed exactly as a LumiBot script passes them, datetime(start) and datetime(end), so a
        # profiled run behaves like the user's own (LumiBot stops at midnight starting `end`).
        start = datetime.combine(date.fromisoformat(spec.start), datetime.min.time())
        end = datetime.combine(date.fromisoformat(spec.end), datetime.min.time())
    except ValueError as exc:
        raise WorkerFailure("config", f"run {spec.id}: bad date: {exc}") from exc
    strategy_class = load_strategy(spec.strategy, spec.search_path)
    parameters = apply_invariants(spec.parameters, spec.invariants)
    counter = DataCounter()
    try:
        datasource_class, extra = resolve(spec.data_source, start, end, spec.seed)
    except ValueError as exc:
        raise WorkerFailure("config", str(exc)) from exc
    return Prepared(strategy_class, parameters, observed(datasource_class, counter), extra, counter, start, end)


def run(prepared: Prepared, spec: RunSpec) -> Any:
    """The LumiBot call itself: everything that could reach outside is switched off."""
    _results, strategy = prepared.strategy_class.run_backtest(
        prepared.datasource_class,
        prepared.start,
        prepared.end,
        parameters=dict(prepared.parameters),
        budget=spec.budget,
        benchmark_asset=None,
        risk_free_rate=0.0,
        show_plot=False,
        show_tearsheet=False,
        save_tearsheet=False,
        show_indicators=False,
        show_progress_bar=False,
        save_logfile=bool(spec.invariants.get("file_logging", True)),
        quiet_logs=False,
        **prepared.extra_kwargs,
    )
    return strategy


def invariants_in_effect(strategy: Any, prepared: Prepared, work_dir: Path) -> dict[str, Any]:
    """Read back from the finished strategy and the files it wrote what really held."""
    actual = dict(getattr(strategy, "parameters", {}) or {})
    logs = [p for p in (work_dir / "logs").glob("*_logs.csv") if p.stat().st_size > 0]
    unchanged = all(actual.get(k) == v for k, v in prepared.parameters.items())
    return {
        "plot_price": actual.get("plot_price"),
        "show_live_equity_curve": actual.get("show_live_equity_curve"),
        "file_logging": bool(logs),
        "lookbacks_unchanged": unchanged,
        "log_file": str(logs[0]) if logs else None,
    }
