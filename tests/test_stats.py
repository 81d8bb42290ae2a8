"""The pure parts of "change or noise": verdicts at their thresholds, combining passes, fingerprints, code paths."""

from __future__ import annotations

from typing import Any

import pytest

from common.fingerprints import differences
from common.pathdiff import path_split
from common.profiles import FuncRow
from common.stats import band, judge_repeats, judge_single
from supervisor.repeats import combine, median_pass

BEFORE = [10.0, 10.1, 9.9]


@pytest.mark.parametrize(
    ("after", "word"),
    [
        (BEFORE, "within noise"),  # the same numbers: p = 1
        ([11.5, 11.6, 11.4], "slower"),  # 1.15x, tight spreads
        ([11.0, 11.1, 10.9], "slower"),  # exactly asv's factor 1.1
        ([10.9, 11.0, 10.8], "within noise"),  # significant, but only 1.09x: below the factor
        ([9.0, 9.1, 8.9], "faster"),  # 0.9x = 1 / 1.11
        ([9.2, 9.3, 9.1], "within noise"),  # 0.92x
    ],
)
def test_repeats_verdict_at_and_around_the_factor(after: list[float], word: str) -> None:
    verdict = judge_repeats(BEFORE, after)
    assert verdict.word == word, verdict.test
    assert "Welch t-test" in verdict.test and "n=3 vs 3" in verdict.test


def test_many_verdicts_at_once_need_a_stricter_level() -> None:
    before, after = [5.08, 3.54, 4.72], [2.97, 1.83, 2.29]  # one polars function, two sittings (p = 0.026)
    assert judge_repeats(before, after).word == "faster"
    verdict = judge_repeats(before, after, tests=15)
    assert verdict.word == "within noise" and "p<0.00333" in verdict.test


def test_a_big_ratio_inside_a_wide_spread_is_noise() -> None:
    verdict = judge_repeats([10.0, 20.0, 5.0], [15.0, 25.0, 8.0])  # 1.5x medians, p far above 0.05
    assert verdict.word == "within noise" and verdict.ratio == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("after", "noise", "word"),
    [
        (11.0, 0.05, "slower"),  # band below the factor: the factor 1.1 rules
        (10.9, 0.05, "within noise"),
        (10.0 / 1.1, 0.05, "faster"),
        (12.5, 0.30, "within noise"),  # 1.25x inside a 30 % band
        (13.0, 0.30, "slower"),  # exactly the band
        (13.0, None, "not judged"),  # single runs and no Phase 0 band
        (10.9, None, "within noise"),  # ... but below the factor 1.1 nothing is ever a change
    ],
)
def test_single_runs_are_judged_by_the_phase0_band(after: float, noise: float | None, word: str) -> None:
    verdict = judge_single(10.0, after, noise, "Phase 0 of plan.json, 3 repeats")
    assert verdict.word == word, verdict.test
    if noise is not None:
        assert "Phase 0 noise band" in verdict.test and "plan.json" in verdict.test
    else:
        assert "no Phase 0 noise band" in verdict.test


def test_band_is_the_widest_spread_and_needs_two_values() -> None:
    assert band([1.0, 2.0, 1.5], [3.0, 3.2]) == pytest.approx(1.0)
    assert band([1.0], [2.0]) is None


FP = {"portfolio_value": 100.0, "orders": 2, "fills": 2, "iterations": 10, "trade_events_sha256": "a" * 64, "missing": []}


def _pass(wall: float | None, status: str = "done", **extra: Any) -> dict[str, Any]:
    return {"status": status, "wall_seconds_total": wall, "cpu_seconds": wall, "fingerprint": dict(FP),
            "top_functions_csv": f"p{wall}.csv", "notes": "", **extra}


def test_combine_takes_the_median_pass_and_keeps_every_pass() -> None:
    result = combine([_pass(3.0), _pass(1.0), _pass(2.0)])
    assert result["wall_seconds_total"] == 2.0 and result["top_functions_csv"] == "p2.0.csv"
    assert result["repeats"]["median_pass"] == 3 and result["repeats"]["wall_seconds_total"] == {
        "n": 3, "median": 2.0, "min": 1.0, "max": 3.0}
    assert [p["pass"] for p in result["passes"]] == [1, 2, 3]
    assert result["status"] == "done" and result["fingerprints_match"] and "median of 3 of 3 passes" in result["notes"]
    assert median_pass([4.0, 1.0, 3.0, 2.0]) == 3  # even count: the lower middle, 2.0, at index 3


def test_combine_flags_differing_results_and_failed_passes() -> None:
    other = _pass(2.0, fingerprint={**FP, "orders": 3})
    result = combine([_pass(1.0), other, _pass(1.5, status="error", notes="timeout after 5 s")])
    assert result["status"] == "error" and result["fingerprints_match"] is False
    assert "pass 3: timeout after 5 s" in result["notes"]
    assert "backtest results differ between passes" in result["notes"] and "orders 2 → 3" in result["notes"]
    single = combine([_pass(1.0, notes="preloaded")])
    assert single["notes"] == "preloaded" and single["repeats"]["n"] == 1


def test_fingerprint_differences() -> None:
    assert differences(FP, dict(FP)) == []
    assert differences(FP, {**FP, "trade_events_sha256": "b" * 64}) == [f"trade_events_sha256 {'a' * 12} → {'b' * 12}"]
    assert differences(FP, None) == ["fingerprint missing on one side"]


def test_trade_events_compare_by_their_canonical_hash_and_old_records_by_their_raw_one() -> None:
    new = {**FP, "trade_events_canonical_sha256": "c" * 64}
    # LumiBot's random child-order ids change the raw bytes of identical backtests: not a difference.
    assert differences(new, {**new, "trade_events_sha256": "b" * 64}) == []
    assert differences(new, {**new, "trade_events_canonical_sha256": "d" * 64}) == [
        f"trade_events_canonical_sha256 {'c' * 12} → {'d' * 12}"]
    # A result recorded before the canonical hash existed compares as it did then, by the raw hash.
    assert differences(FP, new) == []
    assert differences(FP, {**new, "trade_events_sha256": "b" * 64}) == [f"trade_events_sha256 {'a' * 12} → {'b' * 12}"]


def _row(name: str, ncall: int, cum: float, self_time: float) -> FuncRow:
    return FuncRow(f"m.py:1:{name}", name, "m.py", 1, ncall, cum, self_time)


def test_path_split_tells_a_new_code_path_from_the_same_path_run_slower() -> None:
    cold = [_row("record", 972, 1.2, 1.06), _row("DataFrame.__init__", 264, 0.1, 0.05), _row("gone", 5, 0.2, 0.2)]
    warm = [_row("record", 972, 1.7, 1.50), _row("DataFrame.__init__", 15938, 3.0, 1.0), _row("Index._engine", 6307, 0.5, 0.4)]
    split = path_split(cold, warm)
    assert [r["function"] for r in split.changed_calls] == ["m.py:1 DataFrame.__init__", "m.py:1 Index._engine", "m.py:1 gone"]
    assert [r["function"] for r in split.same_calls] == ["m.py:1 record"]
    assert split.same_calls[0]["cold_calls"] == split.same_calls[0]["warm_calls"] == 972
