"""``python -m supervisor gateway``: run the local DataBento gateway on its own, in the foreground.

Useful to poke at it with the databento client, or to share one gateway between several
supervisors: a supervisor attaches to this gateway instead of starting its own.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from supervisor.plan import PlanStore
from supervisor.provider import SHARED_GATEWAY


def serve_foreground(store: PlanStore) -> int:
    from gateway.control import GatewayError, make_token, start_gateway

    plan = store.read()
    state_dir = store.resolve(plan["meta"]["output_dir"]) / "gateway" / SHARED_GATEWAY
    try:
        handle = start_gateway(Path(state_dir), int(plan["meta"]["random_seed_for_selection"]))
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"local DataBento gateway pid {handle.pid}: API on 127.0.0.1:{handle.api_port}, proxy on 127.0.0.1:{handle.proxy_port}")
    print("point the databento client at it with:")
    for name, value in handle.worker_env(make_token("manual")).items():
        print(f"  export {name}={value!r}")
    print("Ctrl-C stops it.")
    stop.wait()
    handle.stop()
    print("gateway stopped")
    return 0
