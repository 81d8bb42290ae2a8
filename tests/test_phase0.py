"""Phase 0 decides Phase 1: the rule on fixed numbers, and each mode run for real."""

from __future__ import annotations

import pytest

from supervisor.phase0 import DecisionRule, decide, phase1_mode
from supervisor.plan import PlanError
from tests.conftest import load, short_run, supervise

RULE = DecisionRule(min_delta_seconds=1.0, min_delta_percent=5.0, material_action="preload")


@pytest.mark.parametrize(
    ("cold", "warm", "expected"),
    [
        (20.0, 19.0, "preload"),  # exactly 1 s and 5 %: both bars met
        (20.0, 19.01, "single"),  # just under 1 s
        (40.0, 38.01, "single"),  # 1.99 s but 4.975 %: just under 5 %
        (10.0, 9.0, "preload"),  # 1 s, 10 %
        (10.0, 9.5, "single"),  # 5 % but only 0.5 s
        (100.0, 96.0, "single"),  # 4 s but only 4 %
        (10.0, 11.0, "single"),  # warm slower: no saving at all
    ],
)
def test_decision_rule_at_and_around_the_thresholds(cold: float, warm: float, expected: str) -> None:
    mode, reason = decide(cold, warm, RULE)
    assert mode == expected
    assert f"{cold:.2f}" in reason and f"{warm:.2f}" in reason and f"'{mode}'" in reason


def test_material_action_two_pass_and_bad_action() -> None:
    assert decide(30.0, 20.0, DecisionRule(material_action="two_pass"))[0] == "two_pass"
    with pytest.raises(PlanError, match="material_action"):
        DecisionRule.from_meta({"decision_rule": {"material_action": "twice"}})


def test_phase1_mode_precedence() -> None:
    plan = {"meta": {"phase1_mode": "auto"}, "runs": [], "phase0": {"decision": "two_pass"}}
    assert phase1_mode(plan, None) == "two_pass"
    assert phase1_mode(plan, "single") == "single"
    assert phase1_mode({"meta": {"phase1_mode": "preload"}, "runs": []}, None) == "preload"
    assert phase1_mode({"meta": {}, "runs": []}, None) == "single"  # no probe in the plan
    probe = {"label": "cache_probe_cold", "status": "error"}
    with pytest.raises(PlanError, match="Phase 0 has no result yet"):
        phase1_mode({"meta": {}, "runs": [probe]}, None)


@pytest.mark.slow
def test_phase1_before_phase0_says_so_clearly(make_plan):
    plan = make_plan(
        [short_run("p0c", label="cache_probe_cold"), short_run("p0w", label="cache_probe_warm"), short_run("wk")]
    )
    before = plan.read_bytes()
    proc = supervise(plan, "--only", "phase1")
    assert proc.returncode == 2
    assert "Phase 0 has no result yet" in proc.stderr and "make phase0" in proc.stderr
    assert plan.read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["preload", "two_pass"])
def test_modes_run_for_real_and_fill_their_fields(make_plan, mode: str):
    plan = make_plan([short_run(f"m-{mode}")], meta={"strategy_parameters": {"sleeptime": "60M"}})
    proc = supervise(plan, "--mode", mode)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = load(plan)["results"][f"m-{mode}"]
    assert result["phase1_mode"] == mode and result["status"] == "done"
    warmup = result["warmup"]
    assert warmup["status"] == "done" and warmup["wall_seconds_total"] > 0
    if mode == "preload":
        assert warmup["profiled"] is False and result["preload_seconds"] == warmup["wall_seconds_total"]
        assert result["wall_seconds_no_download"] == pytest.approx(result["wall_seconds_total"] - result["preload_seconds"])
        assert "preloaded" in result["notes"]
    else:
        assert warmup["profiled"] is True and (plan.parent / warmup["files"]["top_functions_csv"]).exists()
        assert result["wall_seconds_no_download"] is None
        assert "cache-warm pass" in result["notes"]
    assert result["top_functions_csv"].endswith(f"m-{mode}.funcs.wall.csv")


def test_cache_state_from_gateway_counts_or_from_cache_files() -> None:
    from supervisor.provider import Usage
    from supervisor.session import cache_state

    gateway = Usage(requests=3, bytes=1, by_schema={"ohlcv-1m": 2, "definition": 1})
    assert cache_state(gateway, 0, 2) == "cold"
    assert cache_state(gateway, 2, 4) == "mixed"
    assert cache_state(Usage(requests=1, bytes=1, by_schema={"definition": 1}), 2, 2) == "warm"
    unknown = Usage()  # the real DataBento: no gateway log, the cache folder tells
    assert cache_state(unknown, 0, 2) == "cold" and cache_state(unknown, 2, 2) == "warm"
    assert cache_state(unknown, 2, 3) == "mixed" and cache_state(unknown, 0, 0) == "n/a"
