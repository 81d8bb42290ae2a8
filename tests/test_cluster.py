"""``--executor ray`` on a real Ray cluster of several nodes on this machine (tests/raycluster.py).

Real nodes (separate raylets and temp folders), real tasks, real workers and backtests; a
node is killed with SIGKILL mid-run. After each test no process of the cluster or of its
workers may be left: they all carry the test's ``RAY_TMPDIR`` in their environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, load, short_run, supervise
from tests.test_faults import gone, wait_for_file, wait_for_worker

FILES = ("top_functions_csv", "top_threads_csv", "pstat", "callgrind", "stderr_log")
SHORT = {"strategy_parameters": {"sleeptime": "60M"}}


@dataclass
class RayCluster:
    address: str
    nodes: list[dict]
    env: dict[str, str]
    node_dir: Path

    def supervisor(self, plan: Path, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "supervisor", "--executor", "ray", "--address", self.address, *args, "--plan", str(plan)],
            cwd=plan.parent, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )


def cluster_processes(temp: Path) -> list[psutil.Process]:
    """Live processes of the cluster or its workers (they inherit ``RAY_TMPDIR``)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("RAY_TMPDIR") == str(temp) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[Callable[..., RayCluster]]:
    """Start a cluster with one node per argument (its profiling slots); stop it and check nothing is left."""
    temp = Path(tempfile.mkdtemp(prefix="lp-ray-", dir="/tmp"))  # Ray's socket paths must stay under 108 bytes
    node_dir = tmp_path / "nodes"
    env = {**os.environ, "RAY_TMPDIR": str(temp), "LUMIPROF_NODE_DIR": str(node_dir), "RAY_USAGE_STATS_ENABLED": "0"}
    helpers: list[subprocess.Popen[str]] = []

    def start(*slots: int) -> RayCluster:
        helper = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "raycluster.py"), *map(str, slots)],
            cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        helpers.append(helper)
        assert helper.stdout is not None
        line = helper.stdout.readline()  # the cluster is up when it prints
        assert line, "the Ray test cluster did not start"
        info = json.loads(line)
        return RayCluster(info["address"], info["nodes"], env, node_dir)

    yield start
    for helper in helpers:
        assert helper.stdin is not None
        helper.stdin.close()
        helper.wait(timeout=180)
    left = cluster_processes(temp)
    for proc in left:
        proc.kill()
    shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"left running after the test: {[(p.pid, p.name()) for p in left]}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--address", "127.0.0.1:1"], "only apply to --executor ray"),
        (["--executor", "ray", "--slots", "0"], "at least 1"),
        (["--executor", "ray", "--slots", "2", "--address", "127.0.0.1:1"], "advertise their own"),
    ],
)
def test_contradictory_cluster_options_are_refused_before_any_change(make_plan, args, message):
    plan = make_plan([short_run("opts")])
    before = plan.read_bytes()
    proc = supervise(plan, *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert plan.read_bytes() == before


@pytest.mark.slow
def test_a_plan_runs_once_per_entry_on_two_nodes_and_ctrl_c_leaves_nothing(ray_cluster, make_plan, tmp_path):
    cluster = ray_cluster(1, 1)
    runs = [short_run("ray-a", "2024-09-03", "2024-09-04"), short_run("ray-b", "2024-09-04", "2024-09-05")]
    plan = make_plan(runs, meta={**SHORT, "cross_check": "sampled"})  # py-spy cannot reach a node: said, no crash
    out, err = cluster.supervisor(plan).communicate(timeout=600)
    print(out)  # the two-node run's console output, for the record
    assert "ray-a" in out and "ray-b" in out, out + err
    final = load(plan)
    assert [(r["status"], r["attempts"]) for r in final["runs"]] == [("done", 1), ("done", 1)], out + err
    assert sorted(line.split()[0] for line in out.splitlines() if line.startswith("ray-")) == ["ray-a", "ray-b"]
    node_ids = {n["node_id"] for n in cluster.nodes}
    used = set()
    for run in runs:
        result = final["results"][run["id"]]
        assert result["executor"] == "ray" and result["host"] == socket.gethostname() and result["cpu_model"]
        assert result["node_id"] in node_ids and result["node_failures"] == []
        used.add(result["node_id"])
        for name in FILES:
            assert (plan.parent / result[name]).stat().st_size > 0, name
        assert result["iterations"] > 0 and result["invariants_hold"] is True
        assert result["cross_check"] == "unavailable: not supported with --executor ray (py-spy must run on the worker's node)"
        assert "cross-check unavailable: not supported with --executor ray" in result["notes"]
    assert used == node_ids  # one slot per node: the two entries ran side by side, one on each

    # Ctrl-C cancels the task in flight; its worker stops and the entry goes back to pending.
    hang = make_plan([short_run("ray-hang")], meta={"strategy": "tests.strategies.faulty:Hang"}, folder=tmp_path / "hang")
    sup = cluster.supervisor(hang)
    worker = wait_for_worker(hang, "ray-hang", seconds=300)
    wait_for_file(next(cluster.node_dir.glob("lumiprof-node/*/work/ray-hang")) / "hang.started")
    sup.send_signal(signal.SIGINT)
    out, err = sup.communicate(timeout=120)
    assert sup.returncode == 130, out + err
    run = load(hang)["runs"][0]
    assert run["status"] == "pending" and "interrupted" in run["note"], out + err
    assert gone(worker, 30)


def raylet_of(pid: int) -> psutil.Process:
    """The raylet above a worker process: the node that runs it."""
    for parent in psutil.Process(pid).parents():
        if parent.name() == "raylet":
            return parent
    raise AssertionError(f"worker {pid} runs under no raylet")


@pytest.mark.slow
def test_a_node_killed_mid_run_moves_the_pass_to_another_node_never_leaving_it_running(ray_cluster, make_plan):
    cluster = ray_cluster(0, 1, 1)  # the head (where the supervisor connects) runs no pass
    plan = make_plan([short_run("ray-kill")], meta={"strategy": "tests.strategies.faulty:Hang"})
    sup = cluster.supervisor(plan, "--timeout", "30", "--grace", "3")
    worker = wait_for_worker(plan, "ray-kill", seconds=300)
    wait_for_file(next(cluster.node_dir.glob("lumiprof-node/*/work/ray-kill")) / "hang.started")
    raylet = raylet_of(worker)
    killed = next(n["node_id"] for n in cluster.nodes if n["raylet_pid"] == raylet.pid)
    raylet.kill()
    out, err = sup.communicate(timeout=600)
    assert sup.returncode == 1, out + err
    run = load(plan)["runs"][0]
    result = load(plan)["results"]["ray-kill"]
    assert run["status"] == "error" and run["attempts"] == 1
    # The second node took the pass and ran it into its time-out: one line says both.
    assert result["node_id"] not in (None, killed) and len(result["node_failures"]) == 1
    assert killed[:12] in result["notes"] and "timeout after 30 s" in result["notes"] and "\n" not in result["notes"]
    assert gone(worker, 30)
