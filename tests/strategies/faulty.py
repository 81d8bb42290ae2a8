"""Strategies that misbehave on purpose, for the fault tests. Not for real use."""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from lumibot.strategies import Strategy


class Hang(Strategy):
    """Blocks inside an iteration, like a backtest stuck on a slow call."""

    parameters: ClassVar[dict[str, Any]] = {"plot_price": True, "show_live_equity_curve": True}

    def initialize(self) -> None:
        self.sleeptime = "60M"

    def on_trading_iteration(self) -> None:
        from pathlib import Path

        Path("hang.started").touch()  # in the worker's own working directory; tests wait for it
        while True:
            time.sleep(0.05)


class Crash(Strategy):
    """Raises in its first iteration."""

    parameters: ClassVar[dict[str, Any]] = {"plot_price": True, "show_live_equity_curve": True}

    def initialize(self) -> None:
        self.sleeptime = "60M"

    def on_trading_iteration(self) -> None:
        raise RuntimeError("strategy bug on purpose")


class SelfKill(Strategy):
    """Dies by SIGKILL mid-backtest, as the OOM killer would do it."""

    parameters: ClassVar[dict[str, Any]] = {"plot_price": True, "show_live_equity_curve": True}

    def initialize(self) -> None:
        self.sleeptime = "60M"

    def on_trading_iteration(self) -> None:
        os.kill(os.getpid(), 9)


class Flaky(Strategy):
    """Fails the way a dropped provider connection does, every time."""

    parameters: ClassVar[dict[str, Any]] = {"plot_price": True, "show_live_equity_curve": True}

    def initialize(self) -> None:
        self.sleeptime = "60M"
        raise ConnectionResetError("provider connection reset on purpose")


class GilHog(Strategy):
    """Spins in C code holding the GIL (catastrophic regex backtracking): no Python signal
    handler can run, so a polite SIGTERM is never answered."""

    parameters: ClassVar[dict[str, Any]] = {"plot_price": True, "show_live_equity_curve": True}

    def initialize(self) -> None:
        self.sleeptime = "60M"

    def on_trading_iteration(self) -> None:
        import re
        from pathlib import Path

        Path("hog.started").touch()  # in the worker's own working directory; tests wait for it
        re.match(r"(a+)+$", "a" * 64 + "b")


class WaitForGo(Strategy):
    """Finishes normally, but only once the test creates ``go`` in the worker's directory:
    the test decides the moment a finished result reaches the supervisor."""

    parameters: ClassVar[dict[str, Any]] = {"plot_price": True, "show_live_equity_curve": True}

    def initialize(self) -> None:
        self.sleeptime = "60M"

    def on_trading_iteration(self) -> None:
        from pathlib import Path

        Path("wait.started").touch()
        while not Path("go").exists():
            time.sleep(0.05)


class Spawner(Strategy):
    """Starts a child in its own session and a double-forked grandchild, records their pids,
    then hangs if the ``hang`` parameter is set (else finishes)."""

    parameters: ClassVar[dict[str, Any]] = {"plot_price": True, "show_live_equity_curve": True, "hang": False}

    def initialize(self) -> None:
        self.sleeptime = "60M"

    def on_trading_iteration(self) -> None:
        import subprocess
        import sys
        from pathlib import Path

        if not Path("children.pids").exists():
            own_session = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
            launcher = subprocess.run(
                [sys.executable, "-c",
                 "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
                 " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"],
                capture_output=True, text=True, check=True,
            )
            Path("children.pids").write_text(f"{own_session.pid} {launcher.stdout.strip()}\n")
        while self.parameters.get("hang"):
            time.sleep(0.05)
