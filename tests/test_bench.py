"""Every benchmark still builds what it measures: ``make bench`` must not break silently again.

A refactor of the session broke five of the ten scripts at once (they built worker specs through
the session's private methods) and nothing in ``make test`` noticed. ``run_all.py --smoke`` runs
every script in its smallest mode: the same imports, plans and worker specs as a real run (and
plan_cost's smallest case for real), stopping before anything slow is timed. ~5 s in all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"


def test_run_all_lists_every_benchmark_script() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCH))
    scripts = {p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all"}
    assert set(run_all.SCRIPTS) == scripts


def test_every_benchmark_builds_its_plans_and_specs() -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--smoke"], capture_output=True, text=True,
                          timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    smoked = [line for line in proc.stdout.splitlines() if line.startswith("SMOKE ok: ")]
    scripts = [p for p in BENCH.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all"]
    assert len(smoked) == len(scripts) and "FAILED" not in proc.stdout, proc.stdout[-4000:]
