"""Runs that were not run like the others: invariants, parameters, code or library versions."""

from __future__ import annotations

from typing import Any

from report import markdown as md
from report.analysis import Analysis
from report.resultset import RunRecord


class Invariants:
    """Runs that were not run like the others: invariants, parameters, code or library versions."""

    def render(self, analysis: Analysis) -> str:
        head = "## Invariants and reproducibility"
        records = [r for r in analysis.results.records if r.result is not None]
        if not records:
            return f"{head}\n\nNo run has a result yet, so there is nothing to check."
        asked = analysis.results.plan["invariants"]
        rev = analysis.reference("git_rev")
        dirty = analysis.reference("git_dirty")
        params = analysis.reference("parameters_hash")
        versions = dict(analysis.reference("versions") or ())
        revision = (md.code(str(rev)[:12]) if rev else "–") + (" (uncommitted changes)" if dirty else "")
        reference = (
            f"The plan's invariants are {', '.join(f'{k} = {_json(v)}' for k, v in asked.items())}. The reference "
            f"values (the most common across runs) are git revision {revision}, "
            f"parameters hash {md.code(str(params)) if params else '–'} and "
            f"{', '.join(f'{k} {v}' for k, v in versions.items()) or 'no recorded versions'}."
        )
        rows = []
        for record in records:
            flags = self._flags(record, asked, rev, dirty, params, versions)
            if flags:
                rows.append([record.id, record.status, "; ".join(flags)])
        if not rows:
            return f"{head}\n\n{reference} Every run with a result matches: invariants held, nothing differs from the majority."
        return "\n\n".join(
            [head, reference, f"{md.plural(len(rows), 'run')} differ:", md.table(["run", "status", "what differs"], rows)]
        )

    @staticmethod
    def _flags(
        record: RunRecord,
        asked: dict[str, Any],
        rev: Any,
        dirty: Any,
        params: Any,
        versions: dict[str, Any],
    ) -> list[str]:
        flags: list[str] = []
        in_effect = record.value("invariants_in_effect") or {}
        off = [f"{k} = {_json(in_effect.get(k))} (plan: {_json(v)})" for k, v in asked.items() if in_effect.get(k) != v]
        # A worker that died before the backtest finished observed nothing; it is listed as failed already.
        observed = bool(in_effect) or record.status == "done"
        if observed and (record.value("invariants_hold") is False or off):
            flags.append("invariants not in effect: " + (", ".join(off) if off else "not observed"))
        if record.value("parameters_hash") not in (None, params):
            flags.append(f"parameters hash {record.value('parameters_hash')}")
        run_rev, run_dirty = record.value("git_rev"), record.value("git_dirty")
        if (run_rev is not None and run_rev != rev) or (run_dirty is not None and run_dirty != dirty):
            flags.append(f"git {str(run_rev)[:12]}{' dirty' if run_dirty else ''}")
        if record.value("fingerprints_match") is False:
            flags.append("its passes did different backtests (a finding: see the run's notes)")
        own = record.value("versions") or {}
        changed = [f"{k} {own.get(k, '–')}" for k in sorted(set(versions) | set(own)) if own and own.get(k) != versions.get(k)]
        if changed:
            flags.append("versions: " + ", ".join(changed))
        return flags



def _json(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)
