"""Where this project's own packages live: a source checkout, or an installed copy.

The children we spawn (``python -m worker``, ``python -m gateway``, ``python -m worker.describe``)
start in other working directories. From a checkout (``python -m supervisor`` in the
repository, or an editable install of it) they find our packages only if the checkout is on
their ``PYTHONPATH``, so it goes first there. An installed copy (a wheel in site-packages) is
importable from anywhere already, and putting site-packages on ``PYTHONPATH`` would move it
ahead of the standard library, so the variable is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

#: The folder that holds ``supervisor/``, ``worker/``, ``common/``...: the checkout, or site-packages.
PACKAGES_ROOT = Path(__file__).resolve().parent.parent
#: Our top-level packages: a user's own package of the same name cannot be imported beside them.
OWN_PACKAGES = ("common", "gateway", "report", "supervisor", "worker")
#: ``[project] name`` in pyproject.toml, which only a checkout has beside the packages.
DISTRIBUTION = "lumibot-yappi-profiler"


@cache
def checkout() -> Path | None:
    """The repository root when running from a source checkout; None for an installed copy."""
    try:
        pyproject = (PACKAGES_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return PACKAGES_ROOT if f'name = "{DISTRIBUTION}"' in pyproject else None


def child_env(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (our environment by default) with the checkout first on ``PYTHONPATH`` (if any), plus ``extra``."""
    env = dict(os.environ if base is None else base)
    root = checkout()
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env
