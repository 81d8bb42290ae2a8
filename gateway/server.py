"""The HTTPS listener: stdlib ``ThreadingHTTPServer`` with TLS done per connection.

Why the TLS handshake happens in the connection's thread (``finish_request``) and not on the
listening socket: a wrapped listening socket handshakes inside ``accept()``, so one slow or
broken client would stall every other client. HTTP/1.1 keep-alive is on because the databento
client pools connections through ``requests``; every answer therefore carries a length.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from gateway.api import Api, ApiRequest, ApiResponse
from gateway.usage import UsageEntry, UsageLog

MAX_BODY = 1 << 20
"""Largest request body read (a form of 2,000 symbols is far below it)."""

CHUNK = 1 << 20
HANDSHAKE_TIMEOUT = 30.0


class ApiServer(ThreadingHTTPServer):
    """Threading HTTP server that wraps each accepted socket in TLS in its own thread."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        api: Api,
        usage: UsageLog,
    ) -> None:
        super().__init__(address, ApiHandler)
        self.context = context
        self.api = api
        self.usage = usage

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Handshake, then serve the connection; a failed handshake only ends that client."""
        request.settimeout(HANDSHAKE_TIMEOUT)
        # Headers and body go out as separate writes; without NODELAY, Nagle plus the peer's
        # delayed ACK can hold the body back ~40 ms on every keep-alive request.
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            ApiHandler(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()


class ApiHandler(BaseHTTPRequestHandler):
    """Turns HTTP into :class:`ApiRequest`, writes the :class:`ApiResponse`, records usage."""

    protocol_version = "HTTP/1.1"
    server_version = "databento-gateway/1"
    sys_version = ""
    timeout = 120
    server: ApiServer

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes | None:
        """The request body, or ``None`` (after answering) if it cannot be read."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send(ApiResponse(411, b'{"detail":"Length Required"}'))
            self.close_connection = True
            return None
        length_text = self.headers.get("Content-Length", "0") or "0"
        if not length_text.isdigit():
            self._send(ApiResponse(400, b'{"detail":"Bad Content-Length"}'))
            self.close_connection = True
            return None
        length = int(length_text)
        if length > MAX_BODY:
            self._send(ApiResponse(413, b'{"detail":"Request body too large"}'))
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        started = time.perf_counter()
        url = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        request = ApiRequest(
            method=self.command,
            path=url.path,
            query=url.query,
            body=body,
            authorization=self.headers.get("Authorization"),
        )
        try:
            response = self.server.api.handle(request)
        except Exception as exc:  # a bug must answer 500 in DataBento's shape, not hang
            print(f"gateway: internal error on {url.path}: {exc!r}", file=sys.stderr)
            response = ApiResponse(500, b'{"detail":"Internal Server Error"}', detail=repr(exc))
        if url.path != "/_health":
            self.server.usage.record(
                UsageEntry(
                    token=response.token,
                    kind="api",
                    path=url.path,
                    status=response.status,
                    bytes_sent=len(response.body),
                    seconds=time.perf_counter() - started,
                    schema=response.schema,
                    symbols=response.symbols,
                    start=response.start,
                    end=response.end,
                    records=response.records,
                    detail=response.detail,
                )
            )
        # Recorded before the bytes go out: once a client has its answer, a reader of the usage
        # log (the supervisor, right after the worker exits) must already see the request.
        self._send(response)

    def _send(self, response: ApiResponse) -> int:
        """Write ``response``; return how many body bytes reached the socket."""
        sent = 0
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            view = memoryview(response.body)
            while sent < len(view):
                self.wfile.write(view[sent : sent + CHUNK])
                sent = min(len(view), sent + CHUNK)
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        return sent

    def log_message(self, format: str, *args: Any) -> None:
        """One line per request on stderr (the gateway's log file)."""
        sys.stderr.write(f"api {self.address_string()} {format % args}\n")
