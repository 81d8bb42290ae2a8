"""A strategy module whose import never ends: a worker that is up but still starting (imports),
not yet in its backtest. The import marks the moment with ``import.started`` in the worker's
working directory, then waits in short sleeps, so SIGTERM is answered as during any import.
Not for real use; only the worker imports it (``meta.strategy = "tests.strategies.stuck_import:Never"``).
"""

from __future__ import annotations

import time
from pathlib import Path

Path("import.started").touch()
while True:
    time.sleep(0.05)
