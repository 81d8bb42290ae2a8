"""Repeats, Phase 0's noise band and a compare that judges: three real plans, run once for the module.

* ``base``: Phase 0 through the local DataBento gateway with the default repeats (3 rounds of
  cold, warm), then two one-day windows with ``repeats: 3``;
* ``slowed``: the same windows, the same strategy sleeping 0.5 s per iteration (about 15 s more per pass, while
  one pass took 5-11 s under a load average of 8 on 2 cores: beyond the load noise);
* ``retraded``: one window, single run, with moving-average windows that trade differently.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common.stats import band
from supervisor.phase0 import DecisionRule, decide
from tests.conftest import load, short_run, supervise, write_plan

pytestmark = pytest.mark.slow

LOCAL = {"kind": "databento", "mode": "local", "dataset": "GLBX.MDP3"}
STRATEGY = "tests.strategies.slowed:SlowedMes"
WINDOWS = [short_run("wk-a", "2024-09-10", "2024-09-11"), short_run("wk-b", "2024-09-12", "2024-09-13")]
PROBES = [
    short_run("p0-cold", "2024-09-03", "2024-09-04", "cache_probe_cold"),
    short_run("p0-warm", "2024-09-03", "2024-09-04", "cache_probe_warm"),
]


def _meta(sleep: float, **extra: Any) -> dict[str, Any]:
    params = {"sleeptime": "60M", "sleep": sleep, **extra.pop("params", {})}
    return {"data_source": LOCAL, "strategy": STRATEGY, "strategy_parameters": params, "phase1_mode": "single", **extra}


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("repeats")
    paths = {
        "base": write_plan(root / "base", [*PROBES, *WINDOWS], _meta(0.0, repeats=3)),
        "slowed": write_plan(root / "slowed", WINDOWS, _meta(0.5, repeats=3)),
        "retraded": write_plan(root / "retraded", WINDOWS[:1], _meta(0.0, params={"fast_window": 3, "slow_window": 8})),
    }
    # Three supervisors at once: the slowed plan's margin does not depend on a quiet machine.
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "supervisor", "--plan", str(path)], cwd=path.parent, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for name, path in paths.items()
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{name}: {stdout}{stderr}"
        out[name] = stdout
    return {"paths": paths, "stdout": out, "plans": {name: load(path) for name, path in paths.items()}}


def _order(stdout: str) -> list[str]:
    """The pass stems in the order the supervisor ran them (its console lines)."""
    return [m.group(1) for m in re.finditer(r"^(\S+)\s+done\s+[\d.]+ s", stdout, re.M)]


def test_phase0_interleaves_cold_and_warm_passes_and_keeps_every_one(plans: dict[str, Any]) -> None:
    assert _order(plans["stdout"]["base"])[:6] == ["p0-cold", "p0-warm", "p0-cold.r2", "p0-warm.r2", "p0-cold.r3", "p0-warm.r3"]
    results = plans["plans"]["base"]["results"]
    folder = plans["paths"]["base"].parent
    for probe, state in (("p0-cold", "cold"), ("p0-warm", "warm")):
        result = results[probe]
        assert [p["pass"] for p in result["passes"]] == [1, 2, 3] and result["repeats"]["n"] == 3
        for p in result["passes"]:
            assert p["status"] == "done" and p["cache_state"] == state  # each cold pass from empty, each warm on its cache
            assert (folder / p["top_functions_csv"]).exists() and (folder / p["pstat"]).exists()
        walls = [p["wall_seconds_total"] for p in result["passes"]]
        assert result["wall_seconds_total"] == pytest.approx(statistics.median(walls))
        assert result["repeats"]["wall_seconds_total"]["min"] == pytest.approx(min(walls), abs=1e-4)
        assert result["top_functions_csv"] == result["passes"][result["repeats"]["median_pass"] - 1]["top_functions_csv"]
    assert (folder / "profiling" / "p0-cold.funcs.wall.csv").exists()  # the spec's file names stay for pass 1
    assert (folder / "profiling" / "p0-warm.r3.funcs.wall.csv").exists()


def test_phase0_decides_from_median_delta_and_noise_band(plans: dict[str, Any]) -> None:
    plan = plans["plans"]["base"]
    summary, results = plan["phase0"], plan["results"]
    cold = [p["wall_seconds_total"] for p in results["p0-cold"]["passes"]]
    warm = [p["wall_seconds_total"] for p in results["p0-warm"]["passes"]]
    expected = decide(cold, warm, DecisionRule.from_meta(plan["meta"]))
    assert summary["repeats"] == 3 and len(summary["round_deltas_seconds"]) == 3
    paired = statistics.median(w - c for c, w in zip(cold, warm, strict=True))
    assert summary["delta_wall_seconds"] == pytest.approx(paired, abs=1e-3)
    assert summary["noise_band_seconds"] == pytest.approx(band(cold, warm), abs=1e-3)
    assert summary["verdict"] == expected.verdict and summary["decision"] == expected.mode
    assert "noise band" in summary["reason"] and expected.verdict in summary["reason"]
    # the evidence no busy machine can move: the cold passes downloaded and decoded, the warm ones did not download bars
    assert all(p["transfer"]["download"]["seconds"] > 0 and p["transfer"]["decode"]["calls"] >= 1 for p in summary["cold_passes"])
    assert all((p["gateway_requests_by_schema"] or {}).get("ohlcv-1m", 0) == 0 for p in summary["warm_passes"])
    assert "databento downloads" in summary["reason"]
    for row in summary["code_path_changes"]:
        assert row["cold_calls"] != row["warm_calls"]
    for row in summary["same_calls_slower"]:
        assert row["cold_calls"] == row["warm_calls"] and row["warm_self_seconds"] > row["cold_self_seconds"]
    assert f"phase0 decision: {expected.verdict}" in plans["stdout"]["base"]


def test_every_pass_of_a_window_did_the_same_backtest(plans: dict[str, Any]) -> None:
    results = plans["plans"]["base"]["results"]
    for run_id in ("p0-cold", "p0-warm", "wk-a", "wk-b"):
        result = results[run_id]
        fingerprints = [p["fingerprint"] for p in result["passes"]]
        assert result["fingerprints_match"] is True and all(f == fingerprints[0] for f in fingerprints)
        assert fingerprints[0]["iterations"] > 0 and fingerprints[0]["orders"] >= 1 and fingerprints[0]["missing"] == []
        assert len(fingerprints[0]["trade_events_sha256"]) == len(fingerprints[0]["trade_events_canonical_sha256"]) == 64
    # a warm cache must not change what the backtest did either
    assert results["p0-cold"]["fingerprint"] == results["p0-warm"]["fingerprint"]


def test_phase1_repeats_interleave_windows_and_report_median_and_spread(plans: dict[str, Any]) -> None:
    order = _order(plans["stdout"]["slowed"])
    assert order == ["wk-a", "wk-b", "wk-a.r2", "wk-b.r2", "wk-a.r3", "wk-b.r3"]
    result = plans["plans"]["slowed"]["results"]["wk-a"]
    walls = [p["wall_seconds_total"] for p in result["passes"]]
    spread = result["repeats"]["wall_seconds_total"]
    assert spread["n"] == 3 and spread["median"] == pytest.approx(statistics.median(walls), abs=1e-4)
    assert "median of 3 of 3 passes" in result["notes"]
    assert re.search(r"^wk-a\s+done\s+median [\d.]+ s \([\d.]+-[\d.]+\) over 3 of 3 passes", plans["stdout"]["slowed"], re.M)
    proc = supervise(plans["paths"]["slowed"], "report")
    assert proc.returncode == 0, proc.stderr
    report = (plans["paths"]["slowed"].parent / "profiling" / "REPORT.md").read_text()
    assert re.search(r"\| wk-a \|.*\(\d+\.\d+–\d+\.\d+, n=3\)", report)


def _compare(plans: dict[str, Any], after: str, before: str) -> str:
    proc = supervise(plans["paths"][after], "report", "--compare", str(plans["paths"][before]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (plans["paths"][after].parent / "profiling" / "COMPARE.md").read_text()


def _verdicts(text: str) -> dict[str, str]:
    """run id -> verdict cell of the per-run table."""
    section = text.split("## Wall time per run", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith(("| run ", "| ---"))]
    rows = [line.split("|") for line in lines]
    return {cells[1].strip(): cells[6].strip().strip("*") for cells in rows if len(cells) > 7}


def test_compare_of_a_plan_with_itself_is_within_noise_everywhere(plans: dict[str, Any]) -> None:
    text = _compare(plans, "base", "base")
    verdicts = _verdicts(text)
    assert set(verdicts) == {"p0-cold", "p0-warm", "wk-a", "wk-b"}
    assert set(verdicts.values()) == {"within noise"}
    assert "Welch t-test" in text and "faster" not in "".join(verdicts.values())
    functions = text.split("## Top 15 functions", 1)[1].split("\n## ", 1)[0]
    assert "within noise" in functions and "**slower**" not in functions and "**faster**" not in functions


def test_compare_against_a_slowed_strategy_says_slower(plans: dict[str, Any]) -> None:
    text = _compare(plans, "slowed", "base")
    verdicts = _verdicts(text)
    assert verdicts == {"wk-a": "slower", "wk-b": "slower"}
    assert "did the same backtest on both sides" in text  # sleeping changes no trade
    assert "MesMomentum.on_trading_iteration" in text or "SlowedMes.on_trading_iteration" in text


def test_compare_flags_changed_results_and_judges_single_runs_by_phase0_band(plans: dict[str, Any]) -> None:
    text = _compare(plans, "retraded", "base")
    assert _verdicts(text) == {"wk-a": "results changed: the timing comparison is not like for like"}
    findings = text.split("## Backtest results", 1)[1].split("\n## ", 1)[0]
    assert "wk-a" in findings and ("orders" in findings or "trade_events_canonical_sha256" in findings)
    base = plans["paths"]["base"]
    assert "Phase 0 noise band" in text and f"Phase 0 of {base}" in text  # single runs: says which band it used
    assert "no per-function verdict" in text


def test_repeats_on_the_command_line_and_bad_values(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, WINDOWS[:1], {"repeats": 0})
    proc = supervise(plan)
    assert proc.returncode == 2 and "meta.repeats: must be" in proc.stderr
    proc = supervise(plan, "--repeats", "0")
    assert proc.returncode == 2 and "--repeats" in proc.stderr
