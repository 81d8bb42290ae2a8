"""A user's first session, from a built wheel: install it into their own LumiBot environment, then
``lumiprof init x.py:X --windows short && lumiprof run && lumiprof report`` in a folder holding
only their strategy file.

The user's environment is a fresh venv outside the repository that sees this test's
site-packages (LumiBot and every dependency, 2.5 GB we must not download again) through a
folder of symlinks added with ``site.addsitedir``, MINUS this project's own install (the
editable finder, its dist-info, any copy of its packages). pip installs the wheel with
``--no-index``: its dependencies must be satisfied by that environment as declared. Nothing of
the repository is reachable: PYTHONPATH is dropped, the working folder is a temporary one,
and the test checks where every package of ours is imported from.

One slow test (a wheel build, an install and two real profiled windows with the cross-check):
about 1.5-3.5 minutes on the 2-core development machine depending on its load.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
import tomllib
from pathlib import Path

import orjson
import pytest

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
OUR_PACKAGES = sorted({name.split(".")[0] for name in PYPROJECT["tool"]["setuptools"]["packages"]})
DISTRIBUTION = PYPROJECT["project"]["name"]

STRATEGY = '''
    from lumibot.entities import Asset
    from lumibot.strategies import Strategy


    class X(Strategy):
        """Buys SPY once it has a few bars of history."""

        parameters = {"symbol": "SPY", "window": 5}

        def initialize(self):
            self.sleeptime = "1D"

        def on_trading_iteration(self):
            asset = Asset(self.parameters["symbol"])
            bars = self.get_historical_prices(asset, self.parameters["window"], "day")
            if bars is not None and self.get_position(asset) is None:
                self.submit_order(self.create_order(asset, 1, "buy"))
    '''


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{command} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def build_wheel(tmp: Path, env: dict[str, str]) -> Path:
    """The wheel of this working tree, built from a copy (a build writes build/ and *.egg-info/ beside its sources)."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in OUR_PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    # No build isolation and no index: setuptools comes from this environment, nothing is downloaded.
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp / "dist"), str(source)], tmp, env)
    (wheel,) = (tmp / "dist").glob("*.whl")
    return wheel


def lumibot_environment(tmp: Path, env: dict[str, str]) -> Path:
    """A fresh venv that sees LumiBot and its dependencies but not this project; returns its python."""
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    view = tmp / "lumibot-env"
    view.mkdir()
    ours = {*OUR_PACKAGES, "strategies"}
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name
        if name.startswith("__editable__") or name.startswith(DISTRIBUTION.replace("-", "_")) or name in ours:
            continue
        (view / name).symlink_to(entry)
    python = venv / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).stdout.strip()
    Path(purelib, "_lumibot_env.pth").write_text(f"import site; site.addsitedir({str(view)!r})\n")
    # pip puts py-spy's binary beside the interpreter when it installs the dependency.
    (venv / "bin" / "py-spy").symlink_to(Path(sys.executable).parent / "py-spy")
    return python


@pytest.mark.slow
def test_a_built_wheel_profiles_a_strategy_from_an_empty_folder(tmp_path: Path) -> None:
    assert not tmp_path.resolve().is_relative_to(REPO)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    started = time.monotonic()
    wheel = build_wheel(tmp_path, env)
    names = set(run([sys.executable, "-m", "zipfile", "-l", str(wheel)], tmp_path, env).stdout.split())
    assert not {n for n in names if n.startswith(("strategies/", "tests/", "bench/"))}  # the repo's example stays out
    python = lumibot_environment(tmp_path, env)
    run([str(python), "-m", "pip", "install", "--no-index", "-q", str(wheel)], tmp_path, env)
    setup_seconds = time.monotonic() - started

    bin_dir = python.parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    where = run([str(python), "-c", textwrap.dedent("""
        import importlib, json
        from common.sourcetree import checkout
        print(json.dumps({"files": {name: importlib.import_module(name).__file__
                                    for name in ("supervisor", "worker", "report", "common", "gateway", "lumibot")},
                          "checkout": str(checkout())}))
        """)], tmp_path, env)
    imported = orjson.loads(where.stdout.strip().splitlines()[-1])
    site_packages = python.parent.parent / "lib"
    for name in OUR_PACKAGES:
        assert Path(imported["files"][name]).is_relative_to(site_packages), imported  # the wheel's copy, not the repo's
    assert Path(imported["files"]["lumibot"]).is_relative_to(tmp_path / "lumibot-env")
    assert imported["checkout"] == "None"  # so no child gets the repository (or site-packages) on PYTHONPATH

    folder = tmp_path / "my project"  # a space, as user folders have
    folder.mkdir()
    (folder / "x.py").write_text(textwrap.dedent(STRATEGY))
    lumiprof = str(bin_dir / "lumiprof")
    version = run([lumiprof, "--version"], folder, env).stdout
    assert version.startswith(f"lumiprof {PYPROJECT['project']['version']} (LumiBot ")
    session = time.monotonic()
    init = run([lumiprof, "init", "x.py:X", "--windows", "short"], folder, env)
    assert init.stdout.splitlines()[-1] == "next: lumiprof run && lumiprof report"
    profiled = run([lumiprof, "run", "--quiet"], folder, env)
    reported = run([lumiprof, "report"], folder, env)
    session_seconds = time.monotonic() - session
    print(f"wheel build + venv + install: {setup_seconds:.1f} s; init + run + report: {session_seconds:.1f} s")

    plan = orjson.loads((folder / "profiling_plan.json").read_bytes())
    windows = [run_["id"] for run_ in plan["runs"]]
    assert all(plan["results"][w]["status"] == "done" for w in windows), profiled.stdout
    report = (folder / "profiling" / "REPORT.md").read_text()
    assert "report: " in reported.stdout
    assert report.startswith("# Where the wall time goes: yappi profile of `x.py:X`")
    for window in windows:
        row = re.search(rf"^\| {re.escape(window)} \| short \| .*$", report, re.MULTILINE)
        assert row, f"{window} missing from the report's runs table"
        wall = float(row.group(0).split("|")[7])
        assert wall == pytest.approx(plan["results"][window]["wall_seconds_total"], abs=0.01) and wall > 0
        assert plan["results"][window]["bars_served"] > 0
    assert "yappi slowed them" in report  # the cross-check ran: py-spy from the environment
    left = sorted(p.name for p in folder.iterdir() if p.name != "__pycache__")  # the import's bytecode, as `python x.py`
    assert left == ["profiling", "profiling_plan.json", "profiling_plan.json.lock", "x.py"]
