"""Phase 0: how much does a first-time download cost, and how should Phase 1 run because of it.

The rule lives in ``meta.decision_rule`` so it is part of the reproducible plan. The cost is
material only when it clears both an absolute and a relative bar (seconds alone would call
every long window material, a percentage alone would act on noise in a short one) and the
noise band the probe's own repeats measured: one cold and one warm run on a shared machine
differ by tens of percent either way, so a decision from them follows the noise.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from common.fingerprints import differences
from common.offenders import is_wrapper, offenders
from common.pathdiff import path_split, transfer_seconds
from common.profiles import diff, read_funcs
from common.stats import band
from supervisor.claims import utc_now
from supervisor.plan import PHASE0_LABELS, Plan, PlanError, PlanStore
from supervisor.repeats import median_pass

MODES = ("single", "preload", "two_pass")


@dataclass(frozen=True)
class DecisionRule:
    """Defaults: 1 s and 5 %. Both must be cleared: a percentage alone acts on noise in a
    short probe, seconds alone call every long window material."""

    min_delta_seconds: float = 1.0
    min_delta_percent: float = 5.0
    material_action: str = "preload"

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> DecisionRule:
        raw = dict(meta.get("decision_rule") or {})
        raw.pop("why", None)
        rule = cls(**raw)
        if rule.material_action not in ("preload", "two_pass"):
            raise PlanError(f"meta.decision_rule.material_action must be 'preload' or 'two_pass', got {rule.material_action!r}")
        return rule


@dataclass(frozen=True)
class Decision:
    """What Phase 0 concluded: ``verdict`` (material, minor, inconclusive, cache-path regression),
    the Phase 1 ``mode`` it implies, and the sentence with the numbers that drove it."""

    verdict: str
    mode: str
    reason: str
    median_delta_seconds: float
    delta_percent: float
    band_seconds: float | None


MATERIAL, MINOR, INCONCLUSIVE, REGRESSION = "material", "minor", "inconclusive", "cache-path regression"


def decide(cold: list[float], warm: list[float], rule: DecisionRule) -> Decision:
    """Decide from interleaved passes: round k is cold pass k then warm pass k on its cache.

    The delta is the median of the rounds' warm - cold (paired, so a load burst that hits one
    round moves both of its passes); the noise band is the widest spread among the cold passes
    and among the warm ones. A saving is ``material`` only if it clears the rule **and** the
    band, ``minor`` only if even the saving plus the band would not be material, a warm pass
    slower beyond the band is a ``cache-path regression``, and anything else is
    ``inconclusive``: noise could flip it. With one pass each there is no band, and the rule
    alone decides (the reason says so).
    """
    deltas = [w - c for c, w in zip(cold, warm, strict=False)]
    delta = statistics.median(deltas)
    base = statistics.median(cold)
    percent = 100.0 * delta / base if base > 0 else 0.0
    saved = -delta
    noise = band(cold, warm)
    rounds = len(deltas)
    numbers = (
        f"warm - cold = {delta:+.2f} s ({percent:+.1f} %), the median of {rounds} interleaved round{'s' * (rounds != 1)} "
        f"(cold median {base:.2f} s, warm median {statistics.median(warm):.2f} s)"
    )
    bar = f"the rule calls a saving material at >= {rule.min_delta_seconds:g} s and >= {rule.min_delta_percent:g} %"

    def clears(seconds: float) -> bool:
        return seconds >= rule.min_delta_seconds and (100.0 * seconds / base if base > 0 else 0.0) >= rule.min_delta_percent

    if noise is None:
        verdict = MATERIAL if clears(saved) else MINOR
        where = f"no noise band (one pass each: set meta.phase0_repeats >= 2 to measure it); {bar}"
    else:
        where = f"noise band {noise:.2f} s (widest max - min among the cold passes and among the warm passes); {bar}"
        if delta > noise:
            verdict = REGRESSION
            where += (
                "; the warm passes were slower beyond the noise: LumiBot takes a heavier path with a warm cache "
                "(see code_path_changes)"
            )
        elif clears(saved) and saved > noise:
            verdict = MATERIAL
        elif not clears(saved + noise):
            verdict = MINOR
        else:
            verdict = INCONCLUSIVE
            where += (
                "; the band swallows the difference: run more repeats (meta.phase0_repeats), on a quieter machine, "
                "or pin meta.phase1_mode"
            )
    mode = rule.material_action if verdict == MATERIAL else "single"
    reason = f"{numbers}; {where}; so the cache effect is {verdict} and Phase 1 runs '{mode}'"
    return Decision(verdict, mode, reason, delta, percent, noise)


def _function_rows(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {"function": r.short, "cumulative_seconds": round(r.cumulative, 4), "self_seconds": round(r.self_time, 4)}
        for r in rows
    ]


def _done_passes(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A probe's done passes in order (a result written before repeats existed is its own one pass)."""
    passes = result.get("passes") or [result]
    return [p for p in passes if p.get("status") == "done" and isinstance(p.get("wall_seconds_total"), int | float)]


def _pass_record(store: PlanStore, p: dict[str, Any]) -> dict[str, Any]:
    return {
        "pass": p.get("pass", 1),
        "wall_seconds_total": round(float(p["wall_seconds_total"]), 4),
        "cache_state": p.get("cache_state"),
        "gateway_requests_by_schema": p.get("gateway_requests_by_schema"),
        "transfer": transfer_seconds(read_funcs(store.resolve(p["top_functions_csv"]))),
        "top_functions_csv": p.get("top_functions_csv"),
    }


def transfer_evidence(cold: list[dict[str, Any]], warm: list[dict[str, Any]]) -> str:
    """The part of the decision no busy machine can move: download and decode seconds in the
    profiles, and the bars requests the gateway counted (absent with the real DataBento)."""

    def median_of(passes: list[dict[str, Any]], part: str) -> float:
        return statistics.median(p["transfer"][part]["seconds"] for p in passes)

    def bars_requests(passes: list[dict[str, Any]]) -> str:
        by_schema = [p.get("gateway_requests_by_schema") for p in passes]  # None: no gateway counted (live)
        counts = [c.get("ohlcv-1m", 0) if isinstance(c, dict) else None for c in by_schema]
        return "/".join("?" if c is None else str(c) for c in counts)

    return (
        f"the cold passes spent a median {median_of(cold, 'download'):.2f} s in databento downloads and "
        f"{median_of(cold, 'decode'):.2f} s decoding (bars requests per pass {bars_requests(cold)}), the warm passes "
        f"{median_of(warm, 'download'):.2f} s and {median_of(warm, 'decode'):.2f} s ({bars_requests(warm)})"
    )


def summarize(store: PlanStore) -> dict[str, Any] | None:
    """Write ``plan["phase0"]`` once both probes are done; returns it, or None if not ready."""
    with store.update() as plan:
        probes = {r["label"]: r for r in plan["runs"] if r["label"] in PHASE0_LABELS}
        cold, warm = probes.get(PHASE0_LABELS[0]), probes.get(PHASE0_LABELS[1])
        if not cold or not warm or cold["status"] != "done" or warm["status"] != "done":
            return None
        cold_result, warm_result = plan["results"][cold["id"]], plan["results"][warm["id"]]
        cold_passes, warm_passes = _done_passes(cold_result), _done_passes(warm_result)
        rounds = min(len(cold_passes), len(warm_passes))
        cold_s = [float(p["wall_seconds_total"]) for p in cold_passes[:rounds]]
        warm_s = [float(p["wall_seconds_total"]) for p in warm_passes[:rounds]]
        rule = DecisionRule.from_meta(plan["meta"])
        decision = decide(cold_s, warm_s, rule)
        # The profiles compared are those of the round whose delta is the median one.
        pair = median_pass([w - c for c, w in zip(cold_s, warm_s, strict=True)])
        cold_rows = read_funcs(store.resolve(cold_passes[pair]["top_functions_csv"]))
        warm_rows = read_funcs(store.resolve(warm_passes[pair]["top_functions_csv"]))
        work_cold = [r for r in cold_rows if not is_wrapper(r)]  # entry points and thread waits mirror the whole run
        work_warm = [r for r in warm_rows if not is_wrapper(r)]
        paths = path_split(work_cold, work_warm)
        cold_records = [_pass_record(store, p) for p in cold_passes]
        warm_records = [_pass_record(store, p) for p in warm_passes]
        evidence = transfer_evidence(cold_records, warm_records)
        changed = differences(cold_result.get("fingerprint"), warm_result.get("fingerprint"))
        if changed:  # a warm cache that changes what the backtest does is a finding in itself
            evidence += f"; THE WARM CACHE CHANGED THE BACKTEST'S RESULTS: {', '.join(changed)}"
        summary = {
            "cold_id": cold["id"],
            "warm_id": warm["id"],
            "repeats": rounds,
            "cold_passes": cold_records,
            "warm_passes": warm_records,
            "transfer_evidence": evidence,
            "fingerprint_cold_vs_warm": changed,
            "cold_wall_seconds": round(statistics.median(cold_s), 4),
            "warm_wall_seconds": round(statistics.median(warm_s), 4),
            "round_deltas_seconds": [round(w - c, 4) for c, w in zip(cold_s, warm_s, strict=True)],
            "delta_wall_seconds": round(decision.median_delta_seconds, 4),
            "delta_percent": round(decision.delta_percent, 2),
            "noise_band_seconds": None if decision.band_seconds is None else round(decision.band_seconds, 4),
            "noise_band_percent": (
                None if decision.band_seconds is None else round(100.0 * decision.band_seconds / statistics.median(cold_s), 2)
            ),
            "noise_band_note": "widest max - min among the cold passes and among the warm passes"
            if decision.band_seconds is not None
            else "not measured: one pass each (meta.phase0_repeats = 1)",
            "compared_round": pair + 1,
            "cold_cache_state": cold_result.get("cache_state"),
            "warm_cache_state": warm_result.get("cache_state"),
            "cold_gateway_requests": cold_result.get("gateway_requests_by_schema"),
            "warm_gateway_requests": warm_result.get("gateway_requests_by_schema"),
            "top_cold": _function_rows(offenders(work_cold, "cumulative", 10)),
            "top_warm": _function_rows(offenders(work_warm, "cumulative", 10)),
            "function_diff": [
                {
                    "function": d.short,
                    "cold_seconds": round(d.before, 4),
                    "warm_seconds": round(d.after, 4),
                    "delta_seconds": round(d.delta, 4),
                }
                for d in diff(work_cold, work_warm, 15)
            ],
            "code_path_changes": paths.changed_calls,
            "same_calls_slower": paths.same_calls,
            "rule": asdict(rule),
            "verdict": decision.verdict,
            "decision": decision.mode,
            "reason": f"{decision.reason}; {evidence}",
            "computed_utc": utc_now(),
        }
        plan["phase0"] = summary
        return summary


def phase1_mode(plan: Plan, override: str | None) -> str:
    """How Phase 1 runs: the flag, else ``meta.phase1_mode``, else ("auto") Phase 0's decision."""
    if override:
        return override
    configured = plan["meta"].get("phase1_mode", "auto")
    if configured in MODES:
        return str(configured)
    if configured != "auto":
        raise PlanError(f"meta.phase1_mode must be 'auto' or one of {', '.join(MODES)}, got {configured!r}")
    decided = (plan.get("phase0") or {}).get("decision")
    if decided in MODES:
        return str(decided)
    states = sorted({r["status"] for r in plan["runs"] if r["label"] in PHASE0_LABELS})
    if not states:
        return "single"  # a plan without a cache probe has nothing to decide on
    raise PlanError(
        f"Phase 1 follows Phase 0's decision, but Phase 0 has no result yet (its entries are {', '.join(states)}): "
        "run `make phase0` first, or pass --mode single|preload|two_pass"
    )
