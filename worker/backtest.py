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

from common.sourcetree import OWN_PACKAGES
from worker import options
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
    options: dict[str, Any]
    crashes: CrashWatch
    #: The strategy's own ``on_trading_iteration`` as imported, before anything wraps it
    #: (the progress counter does): its calls are the run's iterations.
    iteration_method: Any


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
        module = _import_file(module_name, search_path) if module_name.endswith(".py") else importlib.import_module(module_name)
    except Exception as exc:
        raise WorkerFailure("import", f"strategy {target!r} does not import: {import_problem(exc)}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise WorkerFailure("import", f"strategy {target!r}: module has no class {class_name!r}")
    return cls


def import_problem(exc: BaseException) -> str:
    """``ModuleNotFoundError: No module named 'common.indicators'``, or the reason behind it.

    Our packages are imported before the strategy, so a ``common`` (or ``report``...) package of
    its own is shadowed by ours, and the bare error would send the user looking for a file that
    is right there.
    """
    name = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    top = name.split(".", 1)[0] if isinstance(name, str) else ""
    if top in OWN_PACKAGES:
        return (f"its package {top!r} has the name of one of the profiler's own packages "
                f"({', '.join(OWN_PACKAGES)}), which shadows it: rename it (e.g. 'my_{top}') to profile this strategy")
    return f"{type(exc).__name__}: {exc}"


def _import_file(name: str, search_path: list[str]) -> Any:
    """Import a strategy file the way ``python file.py`` sees it.

    Its folder goes first on ``sys.path`` (so a helper module beside it imports), and the module
    is registered in ``sys.modules`` before it runs (``@dataclass`` and pickling look it up there).
    """
    path = Path(name)
    if not path.is_absolute():
        path = next((Path(p) / path for p in search_path if (Path(p) / path).exists()), path)
    if not path.is_file():
        raise ImportError(f"no such file: {path}")
    path = path.resolve()
    sys.path.insert(0, str(path.parent))
    module_name = path.stem if path.stem not in sys.modules else f"_lumiprof_strategy_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


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


class CrashWatch:
    """Every exception LumiBot hands to ``on_bot_crash``, wherever in the strategy's lifecycle.

    LumiBot re-raises a crash in ``on_trading_iteration``, but one in ``on_strategy_end`` (and
    other places) is logged, passed to ``on_bot_crash`` and the backtest "finishes". Wrapping the
    executor's crash event is the one place that sees them all; it costs nothing until a crash.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def install(self) -> None:
        from lumibot.strategies.strategy_executor import StrategyExecutor

        original = StrategyExecutor._on_bot_crash
        errors = self.errors

        def _on_bot_crash(executor: Any, error: BaseException) -> Any:
            errors.append(error)
            return original(executor, error)

        StrategyExecutor._on_bot_crash = _on_bot_crash

    def failure(self, strategy_class: type[Any]) -> WorkerFailure | None:
        """The first crash as a one-line ``backtest`` failure, naming the strategy method it came from."""
        if not self.errors:
            return None
        error = self.errors[0]
        where = ""
        source = getattr(sys.modules.get(strategy_class.__module__), "__file__", None)
        tb = error.__traceback__
        while tb is not None:
            if source and tb.tb_frame.f_code.co_filename == source:
                where = f" in {tb.tb_frame.f_code.co_name}"
            tb = tb.tb_next
        first_line = f"{type(error).__name__}: {error}".splitlines()[0]
        return WorkerFailure("backtest", f"strategy crashed{where} (LumiBot called on_bot_crash): {first_line}")


def prepare(spec: RunSpec) -> Prepared:
    """Import and resolve everything the backtest needs, outside the profiled section."""
    try:
        # Passed exactly as a LumiBot script passes them, datetime(start) and datetime(end), so a
        # profiled run behaves like the user's own (LumiBot stops at midnight starting `end`).
        start = datetime.combine(date.fromisoformat(spec.start), datetime.min.time())
        end = datetime.combine(date.fromisoformat(spec.end), datetime.min.time())
    except ValueError as exc:
        raise WorkerFailure("config", f"run {spec.id}: bad date: {exc}") from exc
    try:
        chosen = options.check(spec.backtest_options, local=spec.data_source.get("mode", "local") == "local")
    except options.OptionsError as exc:
        raise WorkerFailure("config", str(exc)) from exc
    strategy_class = load_strategy(spec.strategy, spec.search_path)
    parameters = apply_invariants(spec.parameters, spec.invariants)
    counter = DataCounter()
    try:
        datasource_class, extra = resolve(spec.data_source, start, end, spec.seed)
    except ValueError as exc:
        raise WorkerFailure("config", str(exc)) from exc
    crashes = CrashWatch()
    crashes.install()
    observed_class = observed(datasource_class, counter, strategy_class)
    return Prepared(strategy_class, parameters, observed_class, extra, counter, start, end, options.effective(chosen), crashes,
                    strategy_class.on_trading_iteration)


def backtest_kwargs(prepared: Prepared, spec: RunSpec) -> dict[str, Any]:
    """What the worker passes to ``run_backtest`` besides the data and the parameters, as recorded.

    Anything not named is LumiBot's default, as in a plain user script (analysis, plots,
    tearsheet and its metrics, progress bar); see :mod:`worker.options`.
    """
    return {
        **prepared.options,
        "budget": spec.budget,
        "save_logfile": bool(spec.invariants.get("file_logging", True)),
        "quiet_logs": False,
    }


def run(prepared: Prepared, spec: RunSpec) -> Any:
    """The LumiBot call itself, as the user's script makes it; a crash LumiBot swallowed is a failure."""
    _results, strategy = prepared.strategy_class.run_backtest(
        prepared.datasource_class,
        prepared.start,
        prepared.end,
        parameters=dict(prepared.parameters),
        **backtest_kwargs(prepared, spec),
        **prepared.extra_kwargs,
    )
    failure = prepared.crashes.failure(prepared.strategy_class)
    if failure is not None:
        raise failure
    return strategy


def sleeptime_seconds(strategy: Any) -> tuple[Any, float | None]:
    """The strategy's sleeptime as it ended the run, and in seconds by LumiBot's own conversion."""
    from lumibot.strategies.strategy_executor import StrategyExecutor

    value = getattr(strategy, "sleeptime", None)
    try:
        return value, float(StrategyExecutor._sleeptime_to_seconds(value))
    except Exception:
        return value, None


def lumibot_outputs(work_dir: Path) -> list[str]:
    """The files LumiBot wrote into the run's work folder (its ``logs/``), sorted."""
    logs = work_dir / "logs"
    return sorted(str(p) for p in logs.rglob("*") if p.is_file()) if logs.is_dir() else []


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
