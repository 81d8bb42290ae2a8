"""Where a run's market data comes from, as seen by the supervisor.

The supervisor owns the data provider's lifetime: for DataBento in ``local`` mode it starts
the embedded gateway once for the whole plan, gives each worker an environment that points
the unmodified databento client at it, and afterwards reads what the gateway served for
that run. ``live`` mode needs the user's key and is refused without it, never silently
swapped for ``local``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.plan import PlanError

LIVE_KEY = "DATABENTO_API_KEY"
#: Folder (under ``<output_dir>/gateway``) of a gateway started on its own for the plan.
SHARED_GATEWAY = "shared"


@dataclass
class Usage:
    """What the provider served one run, from the provider's side of the wire."""

    requests: int | None = None
    bytes: int | None = None
    by_schema: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


class DataProvider:
    """Base: no environment, no accounting (pandas synthetic data lives in the worker)."""

    name = "pandas_synthetic"
    mode = "local"

    def env_for(self, token: str) -> dict[str, str]:
        return {}

    def usage(self, token: str) -> Usage:
        return Usage()

    def check(self) -> None:
        """Raise :class:`ProviderError` if runs cannot get data right now."""

    def close(self) -> None:
        """Release whatever :func:`open_provider` started."""


class LocalDataBento(DataProvider):
    """The embedded DataBento-compatible gateway, one per supervisor, for the plan's duration."""

    name = "databento"
    mode = "local"

    def __init__(self, gateway_root: Path, seed: int, owner_token: str) -> None:
        """Attach to a gateway started with ``python -m supervisor gateway``, else start our own.

        Each supervisor's own gateway lives in its own folder, so supervisors racing on one
        plan do not trip over each other's gateway.
        """
        from gateway.control import GatewayError, attach, start_gateway

        shared = attach(gateway_root / SHARED_GATEWAY)
        self.owned = shared is None
        self.state_dir = gateway_root / (SHARED_GATEWAY if shared else owner_token)
        try:
            self.handle = shared or start_gateway(self.state_dir, seed)
        except GatewayError as exc:
            raise ProviderError(f"local DataBento gateway did not start: {exc}") from None

    def env_for(self, token: str) -> dict[str, str]:
        return self.handle.worker_env(token)

    def usage(self, token: str) -> Usage:
        from gateway.control import read_usage

        got = read_usage(self.state_dir, token)
        return Usage(requests=got.requests, bytes=got.bytes, by_schema=dict(got.by_schema), refused=list(got.refused))

    def check(self) -> None:
        from gateway.control import GatewayError

        try:
            self.handle.health(timeout=5.0)
        except GatewayError as exc:
            raise ProviderError(f"local DataBento gateway is down: {exc}") from None

    def close(self) -> None:
        if self.owned:
            self.handle.stop()
            shutil.rmtree(self.state_dir, ignore_errors=True)


class LiveDataBento(DataProvider):
    """The real DataBento; the worker inherits the user's key from the environment."""

    name = "databento"
    mode = "live"

    def __init__(self) -> None:
        if not os.environ.get(LIVE_KEY):
            raise PlanError(f"data mode 'live' needs {LIVE_KEY} in the environment (or use --data-mode local)")


class ProviderError(Exception):
    """The data provider cannot serve runs (gateway down); runs fail with this reason."""


def open_provider(settings: dict[str, Any], gateway_root: Path, seed: int, owner_token: str) -> DataProvider:
    kind = settings.get("kind")
    if kind == "pandas_synthetic":
        return DataProvider()
    if kind == "databento":
        mode = settings.get("mode", "local")
        if mode == "local":
            return LocalDataBento(gateway_root, seed, owner_token)
        if mode == "live":
            return LiveDataBento()
        raise PlanError(f"meta.data_source.mode must be 'local' or 'live', got {mode!r}")
    raise PlanError(f"meta.data_source.kind must be 'databento' or 'pandas_synthetic', got {kind!r}")
