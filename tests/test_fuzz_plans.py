"""Fuzz: many malformed plans, every one rejected before any change, on every command.

Each variant breaks exactly one thing of a valid plan that has every optional part filled
in (a running entry with its owner, a result, history, Phase 0): a wrong type, an edge
value, an odd string, a missing key, a duplicate key, broken JSON. Every variant goes
through the real command-line entry point in-process (``run``, ``status``, ``reset``,
``report``: exit 2, one line on stderr naming the field, nothing on stdout, the file byte
for byte as it was); a spread sample also runs as real ``python -m supervisor`` processes.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from supervisor import cli
from supervisor.plan import PlanError, PlanStore, validate
from tests.conftest import REPO_PLAN, short_run

COMMANDS = ("run", "status", "reset", "report")

STR_BAD: list[Any] = [None, 0, 1.5, True, [], {}, ""]
NUM_BAD: list[Any] = [None, True, "1", "100k", [], {}, -1, 0, 1e300]
INT_BAD: list[Any] = [None, True, "1", [], {}, -1, 1.5, 2**63]
OBJ_BAD: list[Any] = [None, [], "x", 1, True]
LIST_BAD: list[Any] = [None, {}, "x", 1]
BOOL_BAD: list[Any] = [None, 0, 1, "true", []]
DATE_BAD: list[Any] = [
    "20240903", "2024-W36-2", "2024-09-03\n", "2024-02-30", "2024-9-3", " 2024-09-03", "2024-09-03T00:00",
    "2024-249", "1800-01-01", "９９９９-01-01", 20240903, None, [],
]
ID_BAD: list[Any] = ["x" * 245, "a\n", "-a", ".a", "a/b", "a b", "../x", "é", "", None, 1, ["a"]]
PID_BAD: list[Any] = [True, "1", 0, -5, 1.5, 2**40, []]
TIME_BAD: list[Any] = [True, "yesterday", -1, [], {}, 1e300]


def base_plan() -> dict[str, Any]:
    """A valid plan with every optional part present, so each part can be broken."""
    plan = orjson.loads(REPO_PLAN.read_bytes())
    plan["runs"] = [
        short_run("r0") | {
            "status": "running", "attempts": 1, "started_utc": "2026-01-01T00:00:00Z",
            "owner": {"token": "abc", "supervisor_pid": 1, "supervisor_create_time": 1.0, "host": "elsewhere",
                      "worker_pid": 2, "worker_create_time": 2.0},
        },
        short_run("r1") | {"status": "done", "attempts": 1, "timeout_seconds": 60, "note": "n"},
        short_run("r2", label="cache_probe_cold"),
    ]
    plan["meta"]["data_source"] = {"kind": "pandas_synthetic", "assets": [{"symbol": "SPY", "type": "stock"}],
                                   "lookback_days": 5}
    plan["meta"].update(max_attempts=3, timeout_seconds=300, budget=100000)
    plan["results"]["r1"] = {"wall_seconds_total": 1.5, "notes": "", "status": "done", "partial": False,
                             "invariants": {}, "top_functions_csv": "profiling/r1.funcs.wall.csv"}
    plan["history"] = [{"id": "r1", "archived_utc": "2026-01-01T00:00:00Z", "status": "done", "result": {"notes": ""}}]
    plan["phase0"] = {"decision": "single", "reason": "r", "cold_wall_seconds": 1.0, "top_cold": [], "function_diff": []}
    return plan


Path_ = tuple[str | int, ...]
Mutation = Callable[[dict[str, Any]], None]


def _setter(path: Path_, value: Any) -> Mutation:
    def change(plan: dict[str, Any]) -> None:
        target: Any = plan
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(value)

    return change


def _deleter(path: Path_) -> Mutation:
    def change(plan: dict[str, Any]) -> None:
        target: Any = plan
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


FIELDS: list[tuple[Path_, list[Any]]] = [
    (("meta",), OBJ_BAD),
    (("meta", "profiler"), [*STR_BAD, "cProfile", "yappi\n"]),
    (("meta", "clock_type"), [*STR_BAD, "CPU", "wall"]),
    (("meta", "output_dir"), [*STR_BAD, "a\x00b", "x" * 5000]),
    (("meta", "random_seed_for_selection"), [*INT_BAD, "seed", 2**40]),
    (("meta", "strategy"), [*STR_BAD, "nocolon", ":Cls", "mod:", "mod:1Cls", "mod:Cls\n"]),
    (("meta", "strategy_parameters"), OBJ_BAD),
    (("meta", "budget"), [*NUM_BAD, 1e13]),
    (("meta", "data_source"), OBJ_BAD),
    (("meta", "data_source", "kind"), [*STR_BAD, "yahoo"]),
    (("meta", "data_source", "mode"), [*STR_BAD, "remote"]),
    (("meta", "data_source", "dataset"), STR_BAD),
    (("meta", "data_source", "assets"), [*LIST_BAD, [1], [{}], [{"symbol": ""}], [{"symbol": "SPY", "type": "bond"}]]),
    (("meta", "data_source", "lookback_days"), [*INT_BAD, 1000]),
    (("meta", "cache"), ["x", 1, [], True]),
    (("meta", "cache", "folder"), [*STR_BAD, 5]),
    (("meta", "timeout_seconds"), [*NUM_BAD, 1e12]),
    (("meta", "max_attempts"), [*INT_BAD, 0, 1000]),
    (("meta", "phase1_mode"), [*STR_BAD, "singel", "AUTO"]),
    (("meta", "decision_rule"), OBJ_BAD),
    (("meta", "decision_rule", "min_delta_secs"), [1.0]),
    (("meta", "decision_rule", "min_delta_seconds"), [None, True, "1", [], -1, 1e12]),
    (("meta", "decision_rule", "min_delta_percent"), [None, "5%", -1, 1e6]),
    (("meta", "decision_rule", "material_action"), [*STR_BAD, "single"]),
    (("invariants",), OBJ_BAD),
    (("invariants", "plot_price"), BOOL_BAD),
    (("invariants", "file_logging"), BOOL_BAD),
    (("invariants", "typo_invariant"), [True]),
    (("runs",), LIST_BAD),
    (("runs", 1), [None, [], "x", 1]),
    (("runs", 1, "id"), [*ID_BAD, "r0"]),
    (("runs", 1, "start"), [*DATE_BAD, "2024-09-06"]),
    (("runs", 1, "end"), [*DATE_BAD, "2024-09-03"]),
    (("runs", 1, "label"), [*STR_BAD, "\n"]),
    (("runs", 1, "status"), [*STR_BAD, "finished", "Done"]),
    (("runs", 1, "timeout_seconds"), [*NUM_BAD, 1e12]),
    (("runs", 1, "attempts"), [None, True, "1", -1, 1.5, []]),
    (("runs", 1, "note"), [1, [], {}, True]),
    (("runs", 0, "owner"), [[], "me", 1, True]),
    (("runs", 0, "owner", "token"), STR_BAD),
    (("runs", 0, "owner", "supervisor_pid"), PID_BAD),
    (("runs", 0, "owner", "supervisor_create_time"), TIME_BAD),
    (("runs", 0, "owner", "worker_pid"), PID_BAD),
    (("runs", 0, "owner", "worker_create_time"), TIME_BAD),
    (("runs", 0, "owner", "host"), [1, [], ""]),
    (("results",), [None, [], "x", 1]),
    (("results", "r1"), [None, [], "x", 1]),
    (("results", "r1", "wall_seconds_total"), ["fast", True, [], {}]),
    (("results", "r1", "notes"), [1, [], {}, True]),
    (("results", "r1", "partial"), ["no", 0]),
    (("results", "r1", "top_functions_csv"), [1, []]),
    (("results", "_schema"), ["x", [], 1]),
    (("history",), [None, {}, "x", 1]),
    (("history", 0), [None, "x", 1, []]),
    (("history", 0, "result"), ["x", 1, []]),
    (("phase0",), [[], "x", 1, True]),
    (("phase0", "decision"), ["maybe", None, 1]),
]

REQUIRED: list[Path_] = [
    ("meta",), ("invariants",), ("runs",), ("results",),
    *[("meta", key) for key in ("profiler", "clock_type", "output_dir", "random_seed_for_selection", "strategy",
                                "data_source")],
    ("meta", "data_source", "kind"),
    *[("runs", 1, key) for key in ("id", "start", "end", "label", "status")],
    ("runs", 0, "owner", "token"),
    ("phase0", "decision"),
]


def _where(path: Path_) -> str:
    """The field name the one-line message must mention."""
    last = path[-1]
    return f"[{last}]" if isinstance(last, int) else str(last)


def variants() -> list[tuple[str, bytes, str]]:
    """(name, file content, text the message must contain), every one malformed."""
    base = base_plan()
    validate(base)
    found: list[tuple[str, bytes, str]] = []

    def add(name: str, change: Mutation, expected: str) -> None:
        plan = copy.deepcopy(base)
        change(plan)
        found.append((name, orjson.dumps(plan, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS), expected))

    for path, values in FIELDS:
        for value in values:
            expected = "duplicate id" if path[-1] == "id" and value == "r0" else _where(path)
            if path[-1] in ("start", "end") and value in ("2024-09-06", "2024-09-03"):
                expected = "must be after start"
            add(f"{'.'.join(map(str, path))}={value!r:.40}", _setter(path, value), expected)
    for path in REQUIRED:
        add(f"missing {'.'.join(map(str, path))}", _deleter(path), _where(path))
    text = orjson.dumps(base, option=orjson.OPT_INDENT_2)
    raw: dict[str, tuple[bytes, str]] = {
        "duplicate runs key (empty last)": (b'{"runs": [],' + text[1:], "duplicate key"),
        "duplicate runs key (empty first)": (text[:-1] + b', "runs": []}', "duplicate key"),
        "duplicate meta key": (text.replace(b'"profiler"', b'"budget": 1, "profiler"', 1), "duplicate key"),
        "NaN": (text.replace(b'"timeout_seconds": 300', b'"timeout_seconds": NaN', 1), "NaN"),
        "Infinity": (text.replace(b'"budget": 100000', b'"budget": Infinity', 1), "Infinity"),
        "not UTF-8": (text.replace(b'"label": "week"', b'"label": "\xff\xfe"', 1), "not valid JSON"),
        "UTF-8 BOM": (b"\xef\xbb\xbf" + text, "not valid JSON"),
        "empty file": (b"", "not valid JSON"),
        "only whitespace": (b"  \n", "not valid JSON"),
        "top-level array": (b"[]", "top level"),
        "top-level null": (b"null", "top level"),
        "top-level string": (b'"plan"', "top level"),
        "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        "trailing comma": (text[:-2] + b",\n}", "not valid JSON"),
        "trailing garbage": (text + b"x", "not valid JSON"),
    }
    for cut in (1, 10, len(text) // 3, len(text) // 2, len(text) - 2):
        raw[f"truncated at {cut}"] = (text[:cut], "not valid JSON")
    for name, (content, expected) in raw.items():
        found.append((name, content, expected))
    return found


VARIANTS = variants()


def test_the_fuzz_tries_many_variants() -> None:
    assert len(VARIANTS) >= 400, len(VARIANTS)


def test_every_malformed_plan_is_rejected_by_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "profiling_plan.json"
    for name, content, expected in VARIANTS:
        plan.write_bytes(content)
        with pytest.raises(PlanError) as caught:  # checked first: a wrongly accepted variant must not start a run
            PlanStore(plan).read()
        message = str(caught.value)
        assert "\n" not in message and expected in message, (name, message)
        for command in COMMANDS:
            code = cli.main([command, "--plan", str(plan)])
            out, err = capsys.readouterr()
            assert code == 2, (name, command, code, out, err)
            assert out == "" and err.count("\n") == 1 and err.startswith("error: "), (name, command, err)
            assert plan.read_bytes() == content, (name, command)
        assert not (tmp_path / "profiling").exists(), name


def test_a_sample_of_malformed_plans_as_real_processes(tmp_path: Path) -> None:
    """Every 12th variant, each through one command in turn, as a user runs it: no traceback, exit 2."""
    sample = [(i, *variant) for i, variant in enumerate(VARIANTS) if i % 12 == 0]

    def check(item: tuple[int, str, bytes, str]) -> None:
        index, name, content, expected = item
        plan = tmp_path / str(index) / "profiling_plan.json"
        plan.parent.mkdir()
        plan.write_bytes(content)
        command = COMMANDS[index // 12 % len(COMMANDS)]
        proc = subprocess.run([sys.executable, "-m", "supervisor", command, "--plan", str(plan)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (name, command, proc.stdout, proc.stderr)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and expected in lines[0] and not proc.stdout, (name, command, proc.stderr)
        assert plan.read_bytes() == content, (name, command)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(check, sample))
    assert len(sample) >= 4 * 8
