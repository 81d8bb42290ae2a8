"""The one schema of ``profiling_plan.json``, checked before anything is claimed.

Every value the supervisor, the worker, ``status``, ``reset`` or ``report`` reads later is
checked here first, with its type, range and format: a value that slipped through used to
crash *after* its entry was claimed, and the restart then claimed and crashed on it again,
blocking the queue. Hand-written combinators rather than a schema library: the checks are
few, the messages name the entry by its id (``runs[3] ('wk-1').start``), and importing
``jsonschema`` would cost more than the whole of ``python -m supervisor status`` may take.

The parser rejects duplicate keys (the JSON parser would keep the last one silently: a
second, empty ``"runs"`` made ``reset`` write back a plan with no entries) and the
non-standard ``NaN``/``Infinity`` tokens.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import date
from functools import lru_cache
from typing import Any

STATUSES = ("pending", "running", "done", "error")
MODES = ("single", "preload", "two_pass")
PHASE1_MODES = ("auto", *MODES)
MATERIAL_ACTIONS = ("preload", "two_pass")
DATA_SOURCE_KINDS = ("databento", "pandas_synthetic")
DATABENTO_MODES = ("local", "live")
ASSET_TYPES = ("stock", "future", "cont_future", "forex", "crypto", "index", "option")
INVARIANTS = ("plot_price", "show_live_equity_curve", "file_logging", "lookbacks_unchanged")
DECISION_RULE_KEYS = ("min_delta_seconds", "min_delta_percent", "material_action", "why")
#: Longest run id: ``<id>.preload.stderr.log`` and friends must fit a 255-byte file name.
MAX_ID_LENGTH = 100
MAX_SECONDS = 7 * 24 * 3600.0
MAX_ATTEMPTS = 100
MAX_REPEATS = 100

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SchemaError(ValueError):
    """One problem: where it is (``meta.budget``, ``runs[2] ("wk-1").start``) and what is wrong.

    Checks raise it with the bare problem; each container on the way up prepends its step, so
    a path is only ever built for the one value that failed (a 10,000-run plan is checked on
    every claim: building a path string per value cost more than the checks themselves).
    """

    def __init__(self, problem: str, steps: tuple[str, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.steps = steps

    def within(self, step: str) -> SchemaError:
        return SchemaError(self.problem, (step, *self.steps))

    def __str__(self) -> str:
        where = "".join(step if step.startswith("[") or not index else f".{step}"
                        for index, step in enumerate(self.steps))
        return f"{where}: {self.problem}" if where else self.problem


Check = Callable[[Any], None]


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _got(value: Any) -> str:
    """``null``, ``true``, or the value's JSON type and (shortened) value."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        kind = "a number"
    elif isinstance(value, str):
        kind = "a string"
    else:
        kind = "an array" if isinstance(value, list) else "an object"
    return f"{kind} {_describe(value)}"


# -- leaf checks ------------------------------------------------------------------------------
def number(low: float, high: float, *, low_inclusive: bool = False, integer: bool = False) -> Check:
    """A finite JSON number (never a boolean) in ``(low, high]`` or ``[low, high]``."""
    word = "an integer" if integer else "a number"
    interval = f"{'[' if low_inclusive else '('}{low:g}, {high:g}]"
    kinds = int if integer else int | float

    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise SchemaError(f"must be {word} in {interval}, got {_got(value)}")
        if not math.isfinite(value) or value > high or value < low or (value == low and not low_inclusive):
            raise SchemaError(f"must be {word} in {interval}, got {value!r}")

    return check


def text(*, max_length: int = 4096, pattern: re.Pattern[str] | None = None, choices: Iterable[str] = (),
         what: str = "") -> Check:
    """A non-empty string without control characters, matching ``pattern`` as a whole if given."""
    allowed = tuple(choices)

    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise SchemaError(f"must be a string, got {_got(value)}")
        if allowed:
            if value in allowed:
                return
            raise SchemaError(f"must be one of {', '.join(allowed)}, got {_describe(value)}")
        if not value or len(value) > max_length or _CONTROL.search(value):
            raise SchemaError(f"must be 1-{max_length} printable characters, got {_describe(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            raise SchemaError(f"must be {what or pattern.pattern}, got {_describe(value)}")

    return check


def free_text(value: Any) -> None:
    """Any string (notes, reasons, time stamps): only its type matters."""
    if not isinstance(value, str):
        raise SchemaError(f"must be a string, got {_got(value)}")


def boolean(value: Any) -> None:
    if not isinstance(value, bool):
        raise SchemaError(f"must be true or false, got {_describe(value)}")


def anything(value: Any) -> None:
    """Kept as it is (a field the supervisor writes and reads back only as a whole)."""


def nullable(check: Check) -> Check:
    def nullable_check(value: Any) -> None:
        if value is not None:
            check(value)

    return nullable_check


_DATE_TEXT = text(max_length=10, pattern=_DATE, what="a date YYYY-MM-DD")


@lru_cache(maxsize=4096)
def _calendar_date(value: str) -> None:
    _DATE_TEXT(value)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise SchemaError(f"must be a real date YYYY-MM-DD, got {_describe(value)}") from None
    if not 1970 <= parsed.year <= 2100:
        raise SchemaError(f"must be a date between 1970 and 2100, got {value}")


def calendar_date(value: Any) -> None:
    """Strictly ``YYYY-MM-DD``: ``date.fromisoformat`` alone also takes ``20240903`` and week dates."""
    if not isinstance(value, str):
        raise SchemaError(f"must be a date YYYY-MM-DD, got {_got(value)}")
    _calendar_date(value)  # plans repeat the same few dates thousands of times


# -- containers -------------------------------------------------------------------------------
Fields = dict[str, tuple[Check, bool]]


def obj(fields: Fields, *, closed: bool = False) -> Check:
    """An object with these fields (``(check, required)``); ``closed`` refuses unknown keys."""
    known = frozenset(fields)
    items = tuple((key, inner, required) for key, (inner, required) in fields.items())

    def check(value: Any) -> None:
        if not isinstance(value, dict):
            raise SchemaError(f"must be an object, got {_got(value)}")
        for key, inner, required in items:
            if key in value:
                try:
                    inner(value[key])
                except SchemaError as exc:
                    raise exc.within(key) from None
            elif required:
                raise SchemaError("is missing", (key,))
        if closed and not known.issuperset(value):
            unknown = sorted(set(value) - known)
            raise SchemaError(f"unknown key {_describe(unknown[0])} (known: {', '.join(fields)})")

    return check


def array(item: Check, *, name: Callable[[Any], str] = lambda _item: "") -> Check:
    """A list whose every element passes ``item``; ``name`` labels a failing element (its run id)."""

    def check(value: Any) -> None:
        if not isinstance(value, list):
            raise SchemaError(f"must be an array, got {_got(value)}")
        for index, element in enumerate(value):
            try:
                item(element)
            except SchemaError as exc:
                raise exc.within(f"[{index}]{name(element)}") from None

    return check


def mapping(item: Check) -> Check:
    """An object whose every value passes ``item`` (``results``: one record per run id)."""

    def check(value: Any) -> None:
        if not isinstance(value, dict):
            raise SchemaError(f"must be an object, got {_got(value)}")
        for key, element in value.items():
            try:
                item(element)
            except SchemaError as exc:
                raise exc.within(f"[{_describe(key)}]") from None

    return check


# -- the plan ---------------------------------------------------------------------------------
SECONDS = number(0, MAX_SECONDS)
GRACE = number(0, 3600, low_inclusive=True)
RUN_ID = text(max_length=MAX_ID_LENGTH, pattern=_ID, what=f"letters, digits, '.', '_' or '-' (at most {MAX_ID_LENGTH})")
PID = number(1, 2**22, low_inclusive=True, integer=True)
CREATE_TIME = number(0, 4_102_444_800)  # a Unix time before 2100

OWNER = obj({
    "token": (text(max_length=64), True),
    "supervisor_pid": (nullable(PID), False),
    "supervisor_create_time": (nullable(CREATE_TIME), False),
    "host": (nullable(text(max_length=255)), False),
    "worker_pid": (nullable(PID), False),
    "worker_create_time": (nullable(CREATE_TIME), False),
})

RUN = obj({
    "id": (RUN_ID, True),
    "start": (calendar_date, True),
    "end": (calendar_date, True),
    "label": (text(max_length=64), True),
    "status": (text(choices=STATUSES), True),
    "timeout_seconds": (SECONDS, False),
    "attempts": (number(0, 10_000, low_inclusive=True, integer=True), False),
    "crashes": (number(0, 10_000, low_inclusive=True, integer=True), False),
    "owner": (nullable(OWNER), False),
    "note": (free_text, False),
    "started_utc": (free_text, False),
    "finished_utc": (free_text, False),
})

ASSET = obj({
    "symbol": (text(max_length=32, pattern=re.compile(r"[A-Za-z0-9._/^-]+"), what="a ticker symbol"), True),
    "type": (text(choices=ASSET_TYPES), False),
    "timestep": (text(choices=("minute", "day")), False),
})

DATA_SOURCE = obj({
    "kind": (text(choices=DATA_SOURCE_KINDS), True),
    "mode": (text(choices=DATABENTO_MODES), False),
    "dataset": (text(max_length=64), False),
    "assets": (array(ASSET), False),
    "lookback_days": (number(0, 366, low_inclusive=True, integer=True), False),
})

DECISION_RULE = obj({
    "min_delta_seconds": (number(0, MAX_SECONDS, low_inclusive=True), False),
    "min_delta_percent": (number(0, 1000, low_inclusive=True), False),
    "material_action": (text(choices=MATERIAL_ACTIONS), False),
    "why": (free_text, False),
}, closed=True)

CROSS_CHECK_MODES = ("sampled", "off")
_CROSS_CHECK_OPTIONS = obj({
    "mode": (text(choices=CROSS_CHECK_MODES), False),
    "py_spy": (text(), False),
    "rate_hz": (number(1, 1000, low_inclusive=True, integer=True), False),
}, closed=True)


MEMORY_WINDOWS = ("short", "scaling", "all", "off")


def cross_check(value: Any) -> None:
    """``"sampled"``, ``"off"``, or ``{"mode", "py_spy", "rate_hz"}`` (see supervisor/crosscheck.py)."""
    (text(choices=CROSS_CHECK_MODES) if isinstance(value, str) else _CROSS_CHECK_OPTIONS)(value)


META = obj({
    "profiler": (text(choices=("yappi",)), True),
    "clock_type": (text(choices=("WALL",)), True),
    "output_dir": (text(), True),
    "random_seed_for_selection": (number(0, 2**32 - 1, low_inclusive=True, integer=True), True),
    "strategy": (text(max_length=1024, pattern=re.compile(r"[^:]+:[A-Za-z_][A-Za-z0-9_]*"),
                      what="'package.module:ClassName' or 'path/file.py:ClassName'"), True),
    "strategy_parameters": (obj({}), False),
    "budget": (number(0, 1e12), False),
    "data_source": (DATA_SOURCE, True),
    "cache": (obj({"folder": (text(), False), "policy": (free_text, False)}), False),
    "timeout_seconds": (SECONDS, False),
    "max_attempts": (number(1, MAX_ATTEMPTS, low_inclusive=True, integer=True), False),
    "phase1_mode": (text(choices=PHASE1_MODES), False),
    "decision_rule": (DECISION_RULE, False),
    "cross_check": (cross_check, False),
    "memory": (text(choices=MEMORY_WINDOWS), False),
    "repeats": (number(1, MAX_REPEATS, low_inclusive=True, integer=True), False),
    "phase0_repeats": (number(1, MAX_REPEATS, low_inclusive=True, integer=True), False),
    "backtest_options": (obj({}), False),  # keys and types: worker.options.check, called by plan.validate
})

INVARIANTS_SECTION = obj({key: (boolean, False) for key in INVARIANTS}, closed=True)

_OPTIONAL_NUMBER = nullable(number(-1e15, 1e15, low_inclusive=True))
_OPTIONAL_TEXT = nullable(free_text)
RESULT = obj({
    **{key: (_OPTIONAL_NUMBER, False) for key in (
        "wall_seconds_total", "wall_seconds_no_download", "cpu_seconds", "preload_seconds", "worker_process_seconds",
        "peak_rss_mb", "iterations", "bars_served", "history_calls", "attempt", "transient_retries",
        "internal_bars_served", "internal_history_calls", "iterations_expected_at_most")},
    **{key: (_OPTIONAL_TEXT, False) for key in (
        "top_functions_csv", "top_threads_csv", "pstat", "callgrind", "stderr_log", "notes", "git_rev",
        "timestamp_utc", "label", "start", "end", "status", "cache_state", "error_kind", "phase1_mode",
        "host", "cpu_model", "executor", "node_id")},
    **{key: (nullable(boolean), False) for key in ("partial", "invariants_hold", "git_dirty")},
    **{key: (nullable(obj({})), False) for key in (
        "invariants", "invariants_in_effect", "versions", "warmup", "phases", "machine", "backtest_options", "browser",
        "time_by_owner", "memory")},
    "lumibot_outputs": (nullable(array(free_text)), False),
    "node_failures": (nullable(array(free_text)), False),
})

HISTORY_ITEM = obj({
    "id": (free_text, True),
    "archived_utc": (free_text, False),
    "status": (free_text, False),
    "result": (RESULT, False),
})

PHASE0 = obj({
    "decision": (text(choices=MODES), True),
    "reason": (free_text, False),
    **{key: (_OPTIONAL_NUMBER, False) for key in (
        "cold_wall_seconds", "warm_wall_seconds", "delta_wall_seconds", "delta_percent")},
    **{key: (_OPTIONAL_TEXT, False) for key in ("cold_id", "warm_id", "computed_utc")},
    **{key: (nullable(array(obj({}))), False) for key in ("top_cold", "top_warm", "function_diff")},
})


#: The worker's answer is untrusted input too: every field that flows into ``results[id]`` is
#: checked, or a garbage value would be written and make the plan itself invalid.
WORKER_ANSWER = obj({
    **{key: (_OPTIONAL_NUMBER, False) for key in (
        "wall_seconds_total", "cpu_seconds", "worker_seconds", "peak_rss_mb")},
    **{key: (nullable(number(0, 1e15, low_inclusive=True, integer=True)), False) for key in (
        "iterations", "bars_served", "history_calls", "cache_files_before", "cache_files_after",
        "internal_bars_served", "internal_history_calls")},
    "sleeptime_seconds": (_OPTIONAL_NUMBER, False),
    **{key: (nullable(obj({})), False) for key in ("phases", "backtest_options", "browser", "time_by_owner", "memory")},
    "lumibot_outputs": (array(free_text), False),
    "ok": (boolean, True),
    "partial": (boolean, True),
    "files": (mapping(text()), True),
    "invariants_in_effect": (obj({}), True),
    "versions": (obj({}), False),
    "parameters_hash": (_OPTIONAL_TEXT, False),
    "error": (_OPTIONAL_TEXT, False),
    "network_refused": (array(free_text), False),
})


def _run_name(run: Any) -> str:
    run_id = run.get("id") if isinstance(run, dict) else None
    return f" ({_describe(run_id)})" if isinstance(run_id, str) else ""


_RECORDS = mapping(RESULT)
_SCHEMA_DESCRIPTION = mapping(free_text)


def _results(value: Any) -> None:
    """One record per run id, plus the spec's ``_schema`` (field name -> type description)."""
    _RECORDS({k: v for k, v in value.items() if k != "_schema"} if isinstance(value, dict) else value)
    if "_schema" in value:
        try:
            _SCHEMA_DESCRIPTION(value["_schema"])
        except SchemaError as exc:
            raise exc.within("_schema") from None


def _plan(results: Check, history: Check) -> Check:
    return obj({
        "meta": (META, True),
        "invariants": (INVARIANTS_SECTION, True),
        "runs": (array(RUN, name=_run_name), True),
        "results": (results, True),
        "history": (history, False),
        "phase0": (nullable(PHASE0), False),
    })


PLAN = _plan(_results, array(HISTORY_ITEM))
#: After the supervisor's own change: the records in ``results`` and ``history`` were checked
#: when read or built by this code, and re-checking 10,000 of them on every claim would cost
#: more than the write itself. Everything a claim or a state change touches is still checked.
PLAN_AFTER_CHANGE = _plan(obj({}), array(anything))


def check_plan(plan: Any, *, records: bool = True) -> None:
    """Raise :class:`SchemaError` naming the first problem; every valid plan passes unchanged.

    ``records=False`` skips the per-record checks of ``results`` and ``history`` (see
    :data:`PLAN_AFTER_CHANGE`).
    """
    if not isinstance(plan, dict):
        raise SchemaError("top level must be a JSON object", ("plan",))
    (PLAN if records else PLAN_AFTER_CHANGE)(plan)
    seen: set[str] = set()
    for index, run in enumerate(plan["runs"]):
        problem = ""
        if run["id"] in seen:
            problem = "duplicate id"
        elif run["end"] <= run["start"]:
            problem = f"end {run['end']} must be after start {run['start']} (LumiBot stops at midnight starting the end date)"
        if problem:
            raise SchemaError(problem, (f"runs[{index}] ({_describe(run['id'])})",))
        seen.add(run["id"])


# -- parsing ----------------------------------------------------------------------------------
def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise SchemaError(f"duplicate key {_describe(duplicate)} (a JSON parser would silently keep the last one)", ("plan",))
    return result


def _no_constant(token: str) -> Any:
    raise SchemaError(f"{token} is not a JSON number", ("plan",))


def parse(raw: bytes) -> Any:
    """Decode strict JSON: UTF-8, no duplicate keys, no NaN/Infinity; ValueError with one line if not."""
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
