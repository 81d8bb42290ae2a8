"""Phase 0: how much does a first-time download cost, and how should Phase 1 run because of it.

The rule lives in ``meta.decision_rule`` so it is part of the reproducible plan. The cost is
material only when it clears both an absolute and a relative bar: seconds alone would call
every long window material, a percentage alone would act on noise in a short one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from common.offenders import is_wrapper, offenders
from common.profiles import diff, read_funcs
from supervisor.claims import utc_now
from supervisor.plan import PHASE0_LABELS, Plan, PlanError, PlanStore

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


def decide(cold_seconds: float, warm_seconds: float, rule: DecisionRule) -> tuple[str, str]:
    """The Phase 1 mode and the sentence that explains it with the numbers that drove it."""
    saved = cold_seconds - warm_seconds
    percent = 100.0 * saved / cold_seconds if cold_seconds > 0 else 0.0
    material = saved >= rule.min_delta_seconds and percent >= rule.min_delta_percent
    verdict = "material" if material else "minor"
    mode = rule.material_action if material else "single"
    reason = (
        f"warm run took {warm_seconds:.2f} s vs cold {cold_seconds:.2f} s: {saved:+.2f} s saved ({percent:+.1f} %); "
        f"the rule calls a saving material at >= {rule.min_delta_seconds:g} s and >= {rule.min_delta_percent:g} %, "
        f"so the cache effect is {verdict} and Phase 1 runs '{mode}'"
    )
    return mode, reason


def _function_rows(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {"function": r.short, "cumulative_seconds": round(r.cumulative, 4), "self_seconds": round(r.self_time, 4)}
        for r in rows
    ]


def summarize(store: PlanStore) -> dict[str, Any] | None:
    """Write ``plan["phase0"]`` once both probes are done; returns it, or None if not ready."""
    with store.update() as plan:
        probes = {r["label"]: r for r in plan["runs"] if r["label"] in PHASE0_LABELS}
        cold, warm = probes.get(PHASE0_LABELS[0]), probes.get(PHASE0_LABELS[1])
        if not cold or not warm or cold["status"] != "done" or warm["status"] != "done":
            return None
        cold_result, warm_result = plan["results"][cold["id"]], plan["results"][warm["id"]]
        cold_s, warm_s = float(cold_result["wall_seconds_total"]), float(warm_result["wall_seconds_total"])
        rule = DecisionRule.from_meta(plan["meta"])
        mode, reason = decide(cold_s, warm_s, rule)
        # Entry points and thread waits mirror the whole run; the diff is about real work.
        cold_rows = [r for r in read_funcs(store.resolve(cold_result["top_functions_csv"])) if not is_wrapper(r)]
        warm_rows = [r for r in read_funcs(store.resolve(warm_result["top_functions_csv"])) if not is_wrapper(r)]
        summary = {
            "cold_id": cold["id"],
            "warm_id": warm["id"],
            "cold_wall_seconds": round(cold_s, 4),
            "warm_wall_seconds": round(warm_s, 4),
            "delta_wall_seconds": round(warm_s - cold_s, 4),
            "delta_percent": round(100.0 * (warm_s - cold_s) / cold_s, 2) if cold_s else None,
            "cold_cache_state": cold_result.get("cache_state"),
            "warm_cache_state": warm_result.get("cache_state"),
            "cold_gateway_requests": cold_result.get("gateway_requests_by_schema"),
            "warm_gateway_requests": warm_result.get("gateway_requests_by_schema"),
            "top_cold": _function_rows(offenders(cold_rows, "cumulative", 10)),
            "top_warm": _function_rows(offenders(warm_rows, "cumulative", 10)),
            "function_diff": [
                {
                    "function": d.short,
                    "cold_seconds": round(d.before, 4),
                    "warm_seconds": round(d.after, 4),
                    "delta_seconds": round(d.delta, 4),
                }
                for d in diff(cold_rows, warm_rows, 15)
            ],
            "rule": asdict(rule),
            "decision": mode,
            "reason": reason,
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
