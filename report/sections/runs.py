"""The runs themselves: every run with its cost, the ones missing from the totals, and the Phase 0 probe."""

from __future__ import annotations

from typing import Any

from report import markdown as md
from report.analysis import Analysis
from report.resultset import RunRecord
from report.sections.parts import chart_link, probes, signed


class RunsTable:
    """Every run in plan order with its size, cost and how it was run."""

    def render(self, analysis: Analysis) -> str:
        rows = []
        for r in analysis.results.records:
            rows.append(
                [
                    r.id,
                    r.label,
                    r.run["start"],
                    r.run["end"],
                    str(r.days),
                    md.plain(r.value("iterations")),
                    md.wall_spread(r.pass_walls, r.wall),
                    md.wall(r.value("cpu_seconds")),
                    r.status + (" (partial)" if r.value("partial") else ""),
                    md.plain(r.value("cache_state")),
                    r.mode,
                ]
            )
        headers = ["id", "label", "start", "end", "trading days", "iterations", "wall s", "cpu s", "status", "cache", "mode"]
        return "\n\n".join(
            [
                "## Runs",
                "Trading days count the Monday–Friday dates the backtest covers: from start up to the day before end, "
                "since LumiBot stops at the midnight that starts the end date (exchange holidays are not removed). "
                "Wall and CPU seconds cover the backtest call only, as timed inside the worker; a run with repeats "
                "shows the median of its passes, then (min–max, n=passes), and its profile is the median pass's; "
                "cache is what the data "
                "gateway saw (cold: everything downloaded, warm: nothing downloaded); mode is how Phase 1 ran "
                "the window (single, preload or two_pass).",
                md.table(headers, rows, right=[4, 5, 6, 7]),
                chart_link(analysis, "wall_per_run", "wall time per run", "no run has finished yet"),
            ]
        )



class MissingRuns:
    """Runs that are not in the totals, and why, so a reader does not mistake a hole for a result."""

    def render(self, analysis: Analysis) -> str:
        missing = analysis.results.not_done
        if not missing:
            return "## Missing or failed runs\n\nNone: every planned run finished and was profiled."
        rows = [[r.id, r.label, r.status, self._why(r)] for r in missing]
        return "\n\n".join(
            [
                "## Missing or failed runs",
                f"{md.plural(len(missing), 'run')} {'is' if len(missing) == 1 else 'are'} not in the totals, fits or charts:",
                md.table(["id", "label", "status", "notes"], rows),
            ]
        )

    @staticmethod
    def _why(record: RunRecord) -> str:
        reasons = [str(record.value("notes") or ""), *record.problems]
        if record.value("partial"):
            reasons.append("stopped before the end; what did run is profiled under Top offenders per run")
        if record.status == "pending":
            reasons.append(str(record.run.get("note") or "not run yet"))
        elif record.status == "running":
            reasons.append(f"running since {record.run.get('started_utc', '?')}")
        elif record.result is None:
            reasons.append("no result recorded")
        return "; ".join(r for r in reasons if r) or "–"



class Phase0Section:
    """The cache probe: cold against warm, and what the supervisor decided for Phase 1."""

    def render(self, analysis: Analysis) -> str:
        summary = analysis.results.plan.get("phase0")
        head = "## Phase 0: cache probe"
        if not isinstance(summary, dict):
            cold, warm = probes(analysis)
            if cold and warm and cold.wall is not None and warm.wall is not None:
                return (
                    f"{head}\n\nBoth probes ran (cold {md.wall(cold.wall)} s, warm {md.wall(warm.wall)} s, "
                    f"warm − cold {warm.wall - cold.wall:+.2f} s) but the supervisor has not written its Phase 0 summary, "
                    "so there is no decision on record."
                )
            return f"{head}\n\nPhase 0 has not run: there is no cold/warm comparison and no Phase 1 decision yet."
        band = summary.get("noise_band_seconds")
        numbers = md.table(
            ["", "run", "wall s (median of passes)", "passes s"],
            [
                ["cold", md.plain(summary.get("cold_id")), md.wall(summary.get("cold_wall_seconds")),
                 _walls(summary.get("cold_passes"))],
                ["warm", md.plain(summary.get("warm_id")), md.wall(summary.get("warm_wall_seconds")),
                 _walls(summary.get("warm_passes"))],
                [
                    "warm − cold (median of the rounds)",
                    "",
                    f"{signed(summary.get('delta_wall_seconds'))} ({signed(summary.get('delta_percent'), 1)} %)",
                    " / ".join(signed(d) for d in summary.get("round_deltas_seconds") or []),
                ],
                [
                    "noise band",
                    "",
                    f"{md.wall(band)} ({md.wall(summary.get('noise_band_percent'))} %)" if band is not None else "not measured",
                    md.plain(summary.get("noise_band_note")),
                ],
            ],
            right=[2],
        )
        parts = [
            head,
            "Rounds ran interleaved: cold pass k from an empty cache, then warm pass k on the cache it had just filled.",
            numbers,
            f"**Verdict: {summary.get('verdict', '?')}; Phase 1 runs {summary.get('decision', '?')}.** "
            f"{str(summary.get('reason') or '').rstrip('.')}.",
        ]
        for key, text in (
            ("code_path_changes", "Functions whose **call counts differ** between the compared cold and warm passes "
             "(round {round}): a different code path with a warm cache, not noise:"),
            ("same_calls_slower", "Functions with the **same call counts** whose own time grew in the warm pass: "
             "the same work done slower, i.e. the machine, not the code:"),
        ):
            rows = summary.get(key) or []
            if rows:
                parts.append(text.format(round=summary.get("compared_round", 1)))
                parts.append(_path_table(rows))
        diffs = summary.get("function_diff") or []
        if diffs:
            parts.append("Functions whose cumulative time changed most from cold to warm (negative: the warm cache saved it):")
            parts.append(
                md.table(
                    ["function", "cold s", "warm s", "warm − cold s"],
                    [
                        [
                            md.code(str(d.get("function"))),
                            md.func_seconds(d.get("cold_seconds")),
                            md.func_seconds(d.get("warm_seconds")),
                            signed(d.get("delta_seconds"), 3),
                        ]
                        for d in diffs[:10]
                    ],
                    right=[1, 2, 3],
                )
            )
        return "\n\n".join(parts)


def _walls(passes: Any) -> str:
    return " / ".join(md.wall(p.get("wall_seconds_total")) for p in passes or [])


def _path_table(rows: list[dict[str, Any]]) -> str:
    return md.table(
        ["function", "cold calls", "warm calls", "cold s", "warm s", "cold self s", "warm self s"],
        [
            [md.code(str(r["function"])), f"{r['cold_calls']:,}", f"{r['warm_calls']:,}", md.func_seconds(r["cold_seconds"]),
             md.func_seconds(r["warm_seconds"]), md.func_seconds(r["cold_self_seconds"]), md.func_seconds(r["warm_self_seconds"])]
            for r in rows[:10]
        ],
        right=[1, 2, 3, 4, 5, 6],
    )
