"""Supervisor-side control of the gateway: start, attach, health-check, stop, read usage.

This is the only module a supervisor imports, so it (and what it imports: ``gateway``,
``gateway.tokens``, ``gateway.usage``) uses the stdlib, tenacity and orjson only -- never numpy,
pandas, databento or trustme. The gateway runs as its own process (own session, so a signal
to the supervisor's process group does not hit it) and is only ever talked to over its sockets
and its state folder.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from common.sourcetree import child_env
from gateway import STATE_FILE, UPSTREAM_HOST
from gateway.tokens import key_for_token, make_token, sanitize
from gateway.usage import usage_path

__all__ = [
    "GatewayError",
    "GatewayHandle",
    "Usage",
    "attach",
    "make_token",
    "read_usage",
    "start_gateway",
]

HEALTH_TOKEN = "gateway-health"


class GatewayError(RuntimeError):
    """The gateway is not usable; the message is one line naming the reason."""


def _pid_alive(pid: int, process: subprocess.Popen[bytes] | None = None) -> bool:
    """True if ``pid`` runs and is not a zombie (a zombie answers ``kill(pid, 0)``)."""
    if process is not None:
        return process.poll() is None
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_gateway_process(pid: int) -> bool:
    """Guard against pid reuse: the process's command line must be ``-m gateway serve``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: cannot tell, trust the pid
    return b"gateway" in argv and b"serve" in argv


@dataclass(frozen=True)
class GatewayHandle:
    """A running gateway, as described by its ``gateway.json``."""

    state_dir: Path
    pid: int
    api_port: int
    proxy_port: int
    ca_pem: Path
    seed: int
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

    def worker_env(self, token: str) -> dict[str, str]:
        """Environment variables that route a worker's HTTP(S) through the proxy, make it trust
        the gateway's CA and give it a DataBento key attributed to ``token``.

        ``NO_PROXY`` is set empty on purpose: nothing, not even localhost, bypasses the guard.
        """
        safe = sanitize(token)
        if safe != token:
            raise ValueError(f"token {token!r} is not filename/URL safe; use make_token()")
        proxy = f"http://{token}:x@{self.host}:{self.proxy_port}"
        ca = str(self.ca_pem)
        return {
            "HTTPS_PROXY": proxy,
            "https_proxy": proxy,
            "HTTP_PROXY": proxy,
            "http_proxy": proxy,
            "NO_PROXY": "",
            "no_proxy": "",
            "REQUESTS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            "CURL_CA_BUNDLE": ca,
            "DATABENTO_API_KEY": key_for_token(token),
        }

    def health(self, timeout: float = 5.0) -> None:
        """Check the whole path a worker uses: CONNECT through the proxy, TLS as
        ``hist.databento.com`` verified against the CA, then ``GET /_health``.

        Raises :class:`GatewayError` with a one-line reason.
        """
        if not _pid_alive(self.pid, self.process):
            raise GatewayError(f"gateway process {self.pid} is not running")
        try:
            context = ssl.create_default_context(cafile=str(self.ca_pem))
        except (OSError, ssl.SSLError) as exc:
            raise GatewayError(f"cannot load the gateway CA {self.ca_pem}: {exc}") from None
        credentials = base64.b64encode(f"{HEALTH_TOKEN}:x".encode()).decode()
        conn = http.client.HTTPSConnection(self.host, self.proxy_port, timeout=timeout, context=context)
        conn.set_tunnel(UPSTREAM_HOST, 443, headers={"Proxy-Authorization": f"Basic {credentials}"})
        try:
            conn.request("GET", "/_health")
            response = conn.getresponse()
            body = response.read()
        except ssl.SSLError as exc:
            raise GatewayError(f"TLS to {UPSTREAM_HOST} through the proxy failed: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise GatewayError(
                f"proxy {self.host}:{self.proxy_port} or tunnel unreachable: {reason}"
            ) from None
        finally:
            conn.close()
        if response.status != 200:
            raise GatewayError(f"health check answered HTTP {response.status}")
        try:
            pid = orjson.loads(body).get("pid")
        except (orjson.JSONDecodeError, AttributeError):
            raise GatewayError("health check answered something that is not JSON") from None
        if pid != self.pid:
            raise GatewayError(f"health check answered by pid {pid}, expected {self.pid}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; returns once the process is
        gone. Removes a ``gateway.json`` left behind by a killed gateway."""
        try:
            if _pid_alive(self.pid, self.process):
                os.kill(self.pid, signal.SIGTERM)
                if not self._wait_gone(grace):
                    os.kill(self.pid, signal.SIGKILL)
                    self._wait_gone(5.0)
        except ProcessLookupError:
            pass
        state = self.state_dir / STATE_FILE
        try:
            if orjson.loads(state.read_bytes()).get("pid") == self.pid:
                state.unlink()
        except (OSError, ValueError, AttributeError):
            pass

    def _wait_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not _pid_alive(self.pid, self.process):
                return True
            time.sleep(0.05)
        return not _pid_alive(self.pid, self.process)


def _read_state(state_dir: Path) -> dict[str, object] | None:
    try:
        data = orjson.loads((state_dir / STATE_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _handle_from_state(
    state_dir: Path, data: dict[str, object], process: subprocess.Popen[bytes] | None = None
) -> GatewayHandle:
    try:
        return GatewayHandle(
            state_dir=state_dir,
            pid=int(str(data["pid"])),
            api_port=int(str(data["api_port"])),
            proxy_port=int(str(data["proxy_port"])),
            ca_pem=Path(str(data["ca_pem"])),
            seed=int(str(data["seed"])),
            host=str(data.get("host") or "127.0.0.1"),
            process=process,
        )
    except (KeyError, ValueError) as exc:
        raise GatewayError(f"{state_dir / STATE_FILE} is malformed: {exc!r}") from None


def attach(state_dir: Path) -> GatewayHandle | None:
    """The gateway already running for ``state_dir``, or ``None`` if there is none (no state
    file, or its process is gone)."""
    state_dir = Path(state_dir).resolve()
    data = _read_state(state_dir)
    if data is None:
        return None
    try:
        handle = _handle_from_state(state_dir, data)
    except GatewayError:
        return None
    if not _pid_alive(handle.pid) or not _is_gateway_process(handle.pid):
        return None
    return handle


def _last_log_line(state_dir: Path) -> str:
    try:
        lines = (state_dir / "gateway.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1][:300] if lines else "(empty log)"


def start_gateway(state_dir: Path, seed: int, timeout: float = 30.0) -> GatewayHandle:
    """Start ``python -m gateway serve`` for ``state_dir`` and return it once it is healthy.

    Waits for ``gateway.json`` (written only when both listeners are up), then health-checks
    through the proxy and real TLS, retrying within ``timeout``. Raises :class:`GatewayError`
    (and leaves no process behind) if any step fails.
    """
    state_dir = Path(state_dir).resolve()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "gateway.log").touch()
    except OSError as exc:  # a file where the folder should be, no permission, full disk: one line, no traceback
        raise GatewayError(f"cannot use the gateway folder {state_dir}: {exc.strerror or exc}") from None
    running = attach(state_dir)
    if running is not None:
        raise GatewayError(
            f"a gateway already runs for {state_dir} (pid {running.pid}); attach() or stop() it"
        )
    (state_dir / STATE_FILE).unlink(missing_ok=True)

    env = child_env(base={k: v for k, v in os.environ.items() if k.lower() not in {"https_proxy", "http_proxy", "all_proxy"}})
    command = [
        sys.executable, "-m", "gateway", "serve", "--state-dir", str(state_dir), "--seed", str(seed),
        "--parent-pid", str(os.getpid()),
    ]
    with open(state_dir / "gateway.log", "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=state_dir,
            env=env,
            start_new_session=True,
        )

    deadline = time.monotonic() + timeout
    data: dict[str, object] | None = None
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise GatewayError(
                f"gateway exited with code {code} before it was ready: {_last_log_line(state_dir)}"
            )
        candidate = _read_state(state_dir)
        if candidate is not None and candidate.get("pid") == process.pid:
            data = candidate
            break
        time.sleep(0.05)
    if data is None:
        _kill(process)
        raise GatewayError(
            f"gateway wrote no {STATE_FILE} within {timeout:.0f}s: {_last_log_line(state_dir)}"
        )

    handle = _handle_from_state(state_dir, data, process)
    remaining = max(0.5, deadline - time.monotonic())
    try:
        for attempt in Retrying(
            stop=stop_after_delay(remaining),
            wait=wait_fixed(0.1),
            retry=retry_if_exception_type(GatewayError),
            reraise=True,
        ):
            with attempt:
                handle.health(timeout=min(5.0, remaining))
    except GatewayError as exc:
        handle.stop(grace=2.0)
        raise GatewayError(f"gateway started but is not healthy: {exc}") from None
    return handle


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@dataclass
class Usage:
    """What a token did, summed from its usage file."""

    requests: int = 0
    """API requests answered (any status)."""
    bytes: int = 0
    """Body bytes the API sent (compressed DBN as sent on the wire, plus JSON)."""
    by_schema: dict[str, int] = field(default_factory=dict)
    """Requests per schema (``ohlcv-1m``, ``definition``) or, for metadata calls, endpoint."""
    refused: list[str] = field(default_factory=list)
    """Hosts the proxy refused, in first-seen order, each once."""
    refusals: int = 0
    """Refused connections, counting repeats."""
    errors: int = 0
    """API requests answered with a 4xx or 5xx status."""
    seconds: float = 0.0
    """Time the API spent answering, summed."""


def read_usage(state_dir: Path, token: str) -> Usage:
    """Sum ``<state_dir>/usage/<token>.jsonl``; a missing file is zero usage. A torn last line
    (read while the gateway appends) is skipped."""
    usage = Usage()
    counts: Counter[str] = Counter()
    try:
        raw = usage_path(Path(state_dir), token).read_bytes()
    except FileNotFoundError:
        return usage
    for line in raw.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("kind") == "refused":
            usage.refusals += 1
            host = str(entry.get("host") or entry.get("path") or "?")
            if host not in usage.refused:
                usage.refused.append(host)
            continue
        usage.requests += 1
        usage.bytes += int(entry.get("bytes") or 0)
        usage.seconds += float(entry.get("seconds") or 0.0)
        counts[str(entry.get("schema") or str(entry.get("path", "?")).rpartition("/")[2])] += 1
        if int(entry.get("status") or 0) >= 400:
            usage.errors += 1
    usage.by_schema = dict(counts)
    return usage
