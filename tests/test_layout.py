"""The house has three jobs and the imports respect them: checked with ``python -X importtime``.

The queue (``supervisor``) must not load the report, the report must not load the queue's
runtime, and ``common`` sits below everything. A fresh interpreter per case, since a module
imported by an earlier test would hide an arrow.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

QUEUE_RUNTIME = {"supervisor.session", "supervisor.claims", "supervisor.runner"}


def modules_of(package: str, skip: tuple[str, ...] = ()) -> list[str]:
    found = [package]
    for info in pkgutil.walk_packages([str(REPO / package.replace(".", "/"))], prefix=f"{package}."):
        if not info.name.endswith(skip):
            found.append(info.name)
    return found


def loaded_by(modules: list[str]) -> set[str]:
    """Every module a fresh interpreter loads to import ``modules``, read from ``-X importtime``."""
    code = "".join(f"import {m}\n" for m in modules)  # import statements: importlib.import_module is not timed
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    loaded = {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # the first line is the header
    assert loaded, proc.stderr[-2000:]
    return loaded


def test_report_never_loads_the_queue_runtime() -> None:
    report_modules = modules_of("report")
    assert {"report.write", "report.sections.summary", "report.sections.scaling"} <= set(report_modules)
    loaded = loaded_by(report_modules)
    assert "report.write" in loaded
    assert not QUEUE_RUNTIME & loaded, sorted(QUEUE_RUNTIME & loaded)


def test_queue_never_loads_the_report() -> None:
    """Everything but the CLI, which is where ``report`` is dispatched (lazily)."""
    loaded = loaded_by(modules_of("supervisor", skip=(".cli", ".__main__")))
    assert loaded >= QUEUE_RUNTIME
    assert not {m for m in loaded if m == "report" or m.startswith("report.")}


@pytest.mark.parametrize(("package", "forbidden"), [("common", ("supervisor", "worker", "report", "gateway")),
                                                    ("gateway", ("supervisor", "worker", "report"))])
def test_lower_packages_import_downward_only(package: str, forbidden: tuple[str, ...]) -> None:
    loaded = loaded_by(modules_of(package, skip=(".__main__",)) + ([f"{package}.__main__"] if package == "gateway" else []))
    sideways = {m for m in loaded if m.split(".")[0] in forbidden}
    assert not sideways, sorted(sideways)
