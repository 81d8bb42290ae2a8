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
def test_one_pass_each_the_rule_alone_decides_and_says_no_band(cold: float, warm: float, expected: str) -> None:
    decision = decide([cold], [warm], RULE)
    assert decision.mode == expected and decision.band_seconds is None
    assert decision.verdict == ("material" if expected == "preload" else "minor")
    assert "no noise band" in decision.reason and f"'{expected}'" in decision.reason


@pytest.mark.parametrize(
    ("cold", "warm", "verdict"),
    [
        # band 0: exactly 1 s and 5 % saved in every round clears rule and band
        ([20.0, 20.0, 20.0], [19.0, 19.0, 19.0], "material"),
        # 0.99 s saved: even saving + band (0) is not material
        ([20.0, 20.0, 20.0], [19.01, 19.01, 19.01], "minor"),
        # 1.1 s (5.5 %) saved, band 0.2 s: clears both
        ([20.0, 20.2, 20.1], [18.9, 19.1, 19.0], "material"),
        # 1.5 s saved but the band is 1.5 s: noise could explain all of it
        ([20.0, 21.5], [18.5, 20.0], "inconclusive"),
        # 1.5 s saved, band 2 s: inconclusive, not material
        ([20.0, 21.0, 22.0], [18.5, 19.5, 20.5], "inconclusive"),
        # 0.5 s saved, band 0.6 s: saving + band = 1.1 s and 5.5 % could be material
        ([20.0, 20.6, 20.3], [19.5, 20.1, 19.8], "inconclusive"),
        # no saving, band 1 s on 100 s: even 1 s is only 1 %, never material
        ([100.0, 100.5, 101.0], [100.0, 100.5, 101.0], "minor"),
        # warm slower by 1 s but the band is 2 s: not a regression, and never material
        ([20.0, 22.0, 21.0], [21.0, 23.0, 22.0], "minor"),
        # warm slower by exactly the band (1 s): within the noise, not a regression; no saving either
        ([20.0, 21.0, 20.5], [21.0, 22.0, 21.5], "minor"),
        # warm slower by 5 s, band 0.2 s: a cache-path regression, never minor
        ([20.0, 20.2, 20.1], [25.0, 25.2, 25.1], "cache-path regression"),
        # warm slower by 1.01 s, band 1 s: just beyond the noise
        ([20.0, 21.0, 20.5], [21.01, 22.01, 21.51], "cache-path regression"),
    ],
)
def test_repeats_decision_at_and_around_rule_and_band(cold: list[float], warm: list[float], verdict: str) -> None:
    decision = decide(cold, warm, RULE)
    assert decision.verdict == verdict, decision.reason
    assert decision.mode == ("preload" if verdict == "material" else "single")
    assert decision.band_seconds == pytest.approx(max(max(cold) - min(cold), max(warm) - min(warm)))
    assert f"noise band {decision.band_seconds:.2f} s" in decision.reason and verdict in decision.reason
    if verdict == "inconclusive":
        assert "more repeats" in decision.reason and "quieter machine" in decision.reason and "phase1_mode" in decision.reason


def test_delta_is_the_median_of_paired_rounds() -> None:
    # round 2 hit a load burst on both of its passes: pairing keeps it from faking a saving
    decision = decide([20.0, 30.0, 20.2], [19.8, 29.9, 20.1], RULE)
    assert decision.median_delta_seconds == pytest.approx(-0.1)
    assert decision.verdict == "inconclusive"  # the 10 s band swallows everything


def test_material_action_two_pass_and_bad_action() -> None:
    assert decide([30.0], [20.0], DecisionRule(material_action="two_pass")).mode == "two_pass"
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
    from supervisor.passes import cache_state
    from supervisor.provider import Usage

    gateway = Usage(requests=3, bytes=1, by_schema={"ohlcv-1m": 2, "definition": 1})
    assert cache_state(gateway, 0, 2) == "cold"
    assert cache_state(gateway, 2, 4) == "mixed"
    assert cache_state(Usage(requests=1, bytes=1, by_schema={"definition": 1}), 2, 2) == "warm"
    unknown = Usage()  # the real DataBento: no gateway log, the cache folder tells
    assert cache_state(unknown, 0, 2) == "cold" and cache_state(unknown, 2, 2) == "warm"
    assert cache_state(unknown, 2, 3) == "mixed" and cache_state(unknown, 0, 0) == "n/a"
