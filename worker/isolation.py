"""Process-level isolation of a worker: its environment and its stdout.

All of this must happen before LumiBot is imported: LumiBot reads its cache folder and `.env`
files at import time, and anything it or its libraries print would corrupt the one JSON
document the supervisor reads from our stdout.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Any

#: Variables that would change what a backtest does or wipe our profile; removed and recorded.
#: ``PYTEST_CURRENT_TEST`` (inherited when tests spawn us) makes LumiBot skip work a user's run does.
_NEUTRALISED = ("BACKTESTING_PROFILE", "BACKTESTING_DATA_SOURCE", "BACKTESTING_START", "BACKTESTING_END",
                "PYTEST_CURRENT_TEST")


def prepare_environment(cache_folder: Path) -> dict[str, Any]:
    """Point LumiBot at the supervisor's cache and away from anything outside the run.

    Returns what was changed, so the result records the environment actually in effect.
    """
    removed = {name: os.environ.pop(name) for name in _NEUTRALISED if name in os.environ}
    cache_folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "LUMIBOT_CACHE_FOLDER": str(cache_folder),
        "LUMIBOT_TRADING_DAYS_CACHE_DIR": str(cache_folder / "trading_days"),
        "LUMIBOT_DISABLE_DOTENV": "1",
        "LUMIBOT_HIDE_BOTSPOT_TIP": "1",
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"),
    }
    os.environ.update(settings)
    return {"set": settings, "removed": removed}


class StdoutGuard:
    """Route fd 1 to stderr while the backtest runs; keep the real stdout for our JSON.

    Working at the file-descriptor level catches C extensions and subprocesses too, which a
    swap of ``sys.stdout`` alone would miss.
    """

    def __init__(self) -> None:
        sys.stdout.flush()
        self._saved = os.dup(1)
        os.dup2(2, 1)
        self._lock = threading.Lock()
        self._sent = False

    def emit(self, payload: bytes) -> bool:
        """Write the answer to the saved stdout exactly once; later calls are ignored."""
        with self._lock:
            if self._sent:
                return False
            self._sent = True
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()
            view = memoryview(payload + b"\n")
            while view:
                written = os.write(self._saved, view)
                view = view[written:]
            return True
