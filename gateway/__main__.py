"""Command line: ``python -m gateway serve --state-dir DIR`` and ``python -m gateway stop``.

``serve`` announces itself only by writing ``<DIR>/gateway.json`` -- atomically, and only once
both listeners accept connections -- so a supervisor that sees the file can connect at once and
never reads half a file. It removes the file when it shuts down on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import orjson

from common.atomicio import atomic_write_bytes
from common.lifetime import tie_to_parent
from gateway import STATE_FILE


def write_state(state_dir: Path, payload: dict[str, object]) -> Path:
    """Write ``gateway.json`` atomically: a reader never sees half a file."""
    target = state_dir / STATE_FILE
    atomic_write_bytes(target, orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return target


def remove_state_if_mine(state_dir: Path, pid: int) -> None:
    """Remove ``gateway.json`` only if it still describes process ``pid`` (a newer gateway may
    have replaced it)."""
    target = state_dir / STATE_FILE
    try:
        if orjson.loads(target.read_bytes()).get("pid") == pid:
            target.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def serve(state_dir: Path, seed: int, host: str, parent_pid: int = 0) -> int:
    """Run both listeners until SIGTERM/SIGINT or the death of ``parent_pid``; return the exit code."""
    # Heavy imports here, not at module level: ``stop`` must not need numpy or trustme.
    from gateway.api import Api
    from gateway.proxy import ProxyServer
    from gateway.server import ApiServer
    from gateway.tls import make_server_context
    from gateway.usage import UsageLog

    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "usage").mkdir(exist_ok=True)
    usage = UsageLog(state_dir)
    context, ca_path = make_server_context(state_dir)
    pid = os.getpid()
    api_server = ApiServer((host, 0), context, Api(seed, pid), usage)
    api_port = int(api_server.server_address[1])
    upstream_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    proxy_server = ProxyServer((host, 0), (upstream_host, api_port), usage)
    proxy_port = int(proxy_server.server_address[1])

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tie_to_parent(parent_pid)  # a supervisor killed with -9 must not leave its gateway behind

    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, name=n, daemon=True)
        for s, n in ((api_server, "gateway-api"), (proxy_server, "gateway-proxy"))
    ]
    for thread in threads:
        thread.start()
    try:
        write_state(
            state_dir,
            {
                "pid": pid,
                "host": upstream_host,
                "api_port": api_port,
                "proxy_port": proxy_port,
                "ca_pem": str(ca_path.resolve()),
                "seed": seed,
                "started_utc": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            },
        )
        print(
            f"gateway: pid {pid} api {upstream_host}:{api_port} "
            f"proxy {upstream_host}:{proxy_port} seed {seed}",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        remove_state_if_mine(state_dir, pid)
        for server in (proxy_server, api_server):
            server.shutdown()
            server.server_close()
        print(f"gateway: pid {pid} stopped", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run ``serve`` or ``stop``."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the gateway in the foreground")
    serve_cmd.add_argument("--state-dir", type=Path, required=True)
    serve_cmd.add_argument("--seed", type=int, default=0)
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--parent-pid", type=int, default=0, help="exit when this process dies")
    stop_cmd = commands.add_parser("stop", help="stop the gateway of a state folder")
    stop_cmd.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "serve":
        return serve(args.state_dir, args.seed, args.host, args.parent_pid)
    from gateway.control import attach

    handle = attach(args.state_dir)
    if handle is None:
        print("gateway: none running", file=sys.stderr)
        return 1
    handle.stop()
    print(f"gateway: stopped pid {handle.pid}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
