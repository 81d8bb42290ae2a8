"""LumiBot's real DataBento path through the local gateway: cold vs warm, guard, gateway down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import load, short_run, supervise
from tests.test_faults import start_supervisor, wait_for_worker

pytestmark = pytest.mark.slow
LOCAL = {"kind": "databento", "mode": "local", "dataset": "GLBX.MDP3"}
FAST = {"sleeptime": "60M"}


def test_phase0_through_the_gateway_cold_downloads_warm_does_not(make_plan):
    plan = make_plan(
        [
            short_run("p0-cold", "2024-09-03", "2024-09-04", "cache_probe_cold"),
            short_run("p0-warm", "2024-09-03", "2024-09-04", "cache_probe_warm"),
        ],
        meta={"data_source": LOCAL, "strategy_parameters": FAST, "phase0_repeats": 1},  # repeats: test_repeats.py
    )
    proc = supervise(plan)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    final = load(plan)
    cold, warm = final["results"]["p0-cold"], final["results"]["p0-warm"]
    assert cold["data_source"]["mode"] == "local" and cold["cache_state"] == "cold"
    assert cold["gateway_requests_by_schema"]["ohlcv-1m"] >= 1 and cold["gateway_bytes"] > 10_000
    assert cold["cache_files_before"] == 0 and cold["cache_files_after"] >= 1
    assert warm["cache_state"] == "warm"
    assert warm["gateway_requests_by_schema"].get("ohlcv-1m", 0) == 0
    assert set(warm["gateway_requests_by_schema"]) <= {"definition"}
    assert warm["cache_files_after"] == warm["cache_files_before"] == cold["cache_files_after"]
    assert cold["bars_served"] > 0 and warm["bars_served"] == cold["bars_served"]  # same data both times
    summary = final["phase0"]
    assert summary["delta_wall_seconds"] == pytest.approx(warm["wall_seconds_total"] - cold["wall_seconds_total"], abs=1e-3)
    assert summary["decision"] in ("single", "preload") and "cold" in summary["reason"]
    assert summary["noise_band_seconds"] is None and "no noise band" in summary["reason"]
    assert summary["function_diff"] and summary["top_cold"] and summary["top_warm"]
    assert "phase0 decision:" in proc.stdout
    assert not any((plan.parent / "profiling" / "gateway").glob("*/gateway.json"))  # gateway stopped


def test_network_guard_refuses_and_names_the_host(make_plan):
    plan = make_plan(
        [short_run("guard", "2024-09-03", "2024-09-04")],
        meta={"data_source": LOCAL, "strategy_parameters": FAST, "strategy": "tests.strategies.reaches_out:ReachesOut"},
    )
    proc = supervise(plan)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = load(plan)["results"]["guard"]
    assert "network guard refused: query1.finance.yahoo.com" in result["notes"]


def test_gateway_down_is_an_error_not_a_silent_done(make_plan):
    plan = make_plan(
        [short_run("before", "2024-09-03", "2024-09-06"), short_run("after", "2024-09-09", "2024-09-10")],
        meta={"data_source": LOCAL, "strategy_parameters": {"sleeptime": "5M"}},
    )
    sup = start_supervisor(plan)
    wait_for_worker(plan, "before")
    state = next((plan.parent / "profiling" / "gateway").glob("*/gateway.json"))
    os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)
    out, err = sup.communicate(timeout=300)
    assert sup.returncode == 1, out + err
    after = load(plan)["results"]["after"]
    assert after["status"] == "error" and "gateway is down" in after["notes"]


def test_worker_with_unreachable_provider_reports_no_data(make_plan, tmp_path: Path):
    """What LumiBot does with a dead gateway (exit 0, no bars) must come back as an error."""
    from supervisor.plan import PlanStore
    from supervisor.specs import run_spec

    plan = make_plan([short_run("dead")], meta={"data_source": LOCAL, "strategy_parameters": FAST})
    spec = run_spec(PlanStore(plan), load(plan), load(plan)["runs"][0], LOCAL, tmp_path / "cache", profile=True, stem="dead")
    env = {
        **os.environ,
        "HTTPS_PROXY": "http://dead:x@127.0.0.1:9",  # discard port: nothing listens
        "DATABENTO_API_KEY": "db-dead",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "worker"], input=json.dumps(spec.to_json()), capture_output=True, text=True,
        env=env, cwd=tmp_path, timeout=300,
    )
    answer = json.loads(proc.stdout)
    assert proc.returncode == 1 and answer["ok"] is False, answer
    assert answer["error_kind"] == "no_data" and "no bars reached the strategy" in answer["error"]
    assert time.monotonic() - t0 < 200


def test_live_mode_without_a_key_is_refused(make_plan):
    plan = make_plan([short_run("live")], meta={"data_source": {**LOCAL, "mode": "live"}})
    env_key = os.environ.pop("DATABENTO_API_KEY", None)
    try:
        proc = supervise(plan)
    finally:
        if env_key is not None:
            os.environ["DATABENTO_API_KEY"] = env_key
    assert proc.returncode == 2 and "DATABENTO_API_KEY" in proc.stderr
    assert load(plan)["runs"][0]["status"] == "pending"
