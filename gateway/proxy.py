"""The network guard: an HTTP proxy that tunnels only DataBento, to the local server.

Workers get ``HTTPS_PROXY``/``HTTP_PROXY`` pointing here, so every HTTP client that honours the
environment (requests, curl_cffi, urllib) comes through this door. ``CONNECT
hist.databento.com:443`` is tunnelled to the local HTTPS server; anything else -- a CONNECT to
another host or port, or a plain proxied request -- is answered 403 and recorded as "refused"
for the run named by the proxy user name (``Proxy-Authorization: Basic``). That turns a hidden
dependency on the internet into a visible line in the run's usage instead of a silent time-out.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway import UPSTREAM_HOST
from gateway.tokens import ANONYMOUS, basic_user, sanitize
from gateway.usage import UsageEntry, UsageLog

RELAY_IDLE_TIMEOUT = 300.0
"""A tunnel with no traffic either way for this long is closed."""

RELAY_CHUNK = 1 << 16
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class ProxyServer(ThreadingHTTPServer):
    """Plain-HTTP proxy listener; ``api_address`` is where allowed tunnels go."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self, address: tuple[str, int], api_address: tuple[str, int], usage: UsageLog
    ) -> None:
        super().__init__(address, ProxyHandler)
        self.api_address = api_address
        self.usage = usage


def split_host_port(target: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) -> (host, port); a missing/bad port gives the default."""
    host, port = target, default_port
    if target.startswith("["):
        end = target.find("]")
        host = target[1:end] if end > 0 else target
        rest = target[end + 1 :] if end > 0 else ""
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif target.count(":") == 1:
        name, _, port_text = target.partition(":")
        host = name
        if port_text.isdigit():
            port = int(port_text)
    return host.lower().rstrip("."), port


def relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes or the tunnel idles out."""
    peers = {client: upstream, upstream: client}
    for sock in peers:
        sock.settimeout(60.0)
        with contextlib.suppress(OSError):  # relay small TLS records at once (no Nagle delay)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while True:
            events = selector.select(timeout=RELAY_IDLE_TIMEOUT)
            if not events:
                return
            for key, _ in events:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(RELAY_CHUNK)
                    if not data:
                        return
                    if _QUICKACK is not None:
                        # Clients that leave Nagle on (requests through a CONNECT tunnel does)
                        # write a POST's headers and body separately and wait for our ACK in
                        # between; a delayed ACK would add ~40 ms to each keep-alive request.
                        with contextlib.suppress(OSError):
                            source.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                    peers[source].sendall(data)
                except OSError:
                    return


class ProxyHandler(BaseHTTPRequestHandler):
    """Answers CONNECT and proxied requests; ``GET /_health`` (origin form) is the only local
    resource."""

    protocol_version = "HTTP/1.1"
    server_version = "gateway-proxy/1"
    sys_version = ""
    rbufsize = 0  # unbuffered: no tunnel byte may sit in a read buffer when the relay starts
    timeout = 60
    server: ProxyServer

    def _token(self) -> str:
        user = basic_user(self.headers.get("Proxy-Authorization"))
        return sanitize(user) if user else ANONYMOUS

    def do_CONNECT(self) -> None:
        started = time.perf_counter()
        host, port = split_host_port(self.path, 443)
        if host != UPSTREAM_HOST or port != 443:
            self._refuse(host, f"CONNECT {self.path}", started)
            return
        try:
            upstream = socket.create_connection(self.server.api_address, timeout=10)
        except OSError as exc:
            self._reply(502, {"detail": f"local gateway unreachable: {exc}"})
            return
        try:
            self.send_response(200, "Connection established")
            self.end_headers()
            relay(self.connection, upstream)
        finally:
            self.close_connection = True
            upstream.close()

    def _plain(self) -> None:
        started = time.perf_counter()
        if self.command == "GET" and self.path == "/_health":
            self._reply(200, {"status": "ok", "role": "proxy"})
            return
        url = urlsplit(self.path)
        host = url.hostname or split_host_port(self.headers.get("Host", ""), 80)[0] or "?"
        self._refuse(host.lower(), f"{self.command} {self.path}", started)

    do_GET = _plain
    do_POST = _plain
    do_PUT = _plain
    do_DELETE = _plain
    do_PATCH = _plain
    do_HEAD = _plain
    do_OPTIONS = _plain

    def _refuse(self, host: str, target: str, started: float) -> None:
        detail = f"outbound connection to {host} refused by the gateway's network guard"
        payload = {"detail": detail}
        # Recorded before the answer goes out, so a reader never misses a refusal the client saw.
        self.server.usage.record(
            UsageEntry(
                token=self._token(),
                kind="refused",
                path=target,
                status=403,
                bytes_sent=len(orjson.dumps(payload)),
                seconds=time.perf_counter() - started,
                host=host,
            )
        )
        self._reply(403, payload)

    def _reply(self, status: int, payload: dict[str, Any]) -> int:
        """Send a JSON answer and close the connection; return the body bytes sent."""
        body = orjson.dumps(payload)
        self.close_connection = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
                return len(body)
        except OSError:
            pass
        return 0

    def log_message(self, format: str, *args: Any) -> None:
        """One line per request on stderr (the gateway's log file)."""
        sys.stderr.write(f"proxy {self.address_string()} {format % args}\n")
