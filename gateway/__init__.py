"""A local stand-in for the part of DataBento's historical API that LumiBot uses.

The package serves deterministic synthetic CME futures minute bars as real DBN bytes over
HTTPS, plus an HTTP CONNECT proxy that tunnels the unmodified ``databento`` client to it and
refuses (and records) every other outbound host. A supervisor only ever imports
:mod:`gateway.control`, so this ``__init__`` must stay free of heavy imports: importing the
package must not pull numpy, databento or trustme into the supervisor.
"""

from __future__ import annotations

DATASET = "GLBX.MDP3"
"""The only dataset served: CME Globex, which is where LumiBot sends every CME future."""

UPSTREAM_HOST = "hist.databento.com"
"""The host the databento client always talks to; the proxy tunnels only this one."""

STATE_FILE = "gateway.json"
"""Name of the file a running gateway announces itself with, inside its state folder."""
