"""Refuse and record any connection a run makes to a host other than this machine.

In ``local`` mode nothing may leave the machine: the databento client goes through the
gateway's proxy on loopback, and a strategy that reaches for Yahoo (a benchmark, say) should
be told, not silently slowed down by DNS time-outs. C-level clients (curl) that bypass this
hook still go through the gateway's proxy, which refuses and logs them as well.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any


class NetworkGuard:
    """A ``sys.addaudithook`` hook; audit hooks cannot be removed, so it is armed once."""

    def __init__(self) -> None:
        self.refused: list[str] = []
        self.armed = False

    def arm(self) -> None:
        if not self.armed:
            sys.addaudithook(self._hook)
            self.armed = True

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "socket.connect" or not self.armed:
            return
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return
        host = str(address[0]) if isinstance(address, tuple) and address else str(address)
        if _is_local(host):
            return
        target = f"{host}:{address[1]}" if isinstance(address, tuple) and len(address) > 1 else host
        if target not in self.refused:
            self.refused.append(target)
        raise PermissionError(f"lumiprof network guard: connection to {target} refused (local mode)")


def _is_local(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
