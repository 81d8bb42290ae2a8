"""How fast the local DataBento gateway serves minute bars to the real databento client.

A cold run's download sits inside the profiled backtest, so a slow gateway would show up in
the profiles as "data download" cost that the real DataBento might not have. The goal is
that serving one month of one contract stays small next to a month's backtest (tens of
seconds): repeated requests < 1.0 s median, the first request (new client, proxy CONNECT,
TLS handshake) < 2.0 s. These goals are ours; nothing upstream sets them.

The bench process applies ``GatewayHandle.worker_env`` to its own environment, exactly as a
worker gets it, and calls ``databento.Historical().timeseries.get_range`` unmodified.
"""

from __future__ import annotations

import os
import sys
import time

import _common as c

SYMBOL, START, END, SCHEMA = "MESZ4", "2024-10-01", "2024-11-01", "ohlcv-1m"
FIRST_GOAL, REPEAT_GOAL = 2.0, 1.0


def main() -> int:
    p = c.parser(__doc__)
    p.add_argument("--repeats", type=int, help="repeated requests (default 10, --quick 5)")
    args = p.parse_args()
    repeats = args.repeats or (5 if args.quick else 10)
    c.header("gateway_speed", f"{SYMBOL} {SCHEMA} {START}..{END} through proxy + TLS; 1 first request, {repeats} repeated")

    import databento as db

    from gateway.control import make_token, read_usage, start_gateway

    if c.smoke_stop(args, f"imports of databento {db.__version__} and the gateway control"):
        return 0

    with c.temp_dir("gateway") as tmp:
        t0 = time.perf_counter()
        handle = start_gateway(tmp / "gateway", seed=20251101)
        start_seconds = time.perf_counter() - t0
        try:
            token = make_token("bench-speed")
            os.environ.update(handle.worker_env(token))
            first, repeated = c.Series("first request (new client)"), c.Series("repeated request (same client)")
            server = c.Series("gateway-side seconds (usage log)")
            wire = c.Series("wire bytes (zstd DBN)")
            raw_bytes, bars = 0, 0
            client = None
            before = read_usage(handle.state_dir, token)
            for i in range(repeats + 1):
                t0 = time.perf_counter()
                if client is None:
                    client = db.Historical()
                store = client.timeseries.get_range(dataset="GLBX.MDP3", symbols=SYMBOL, schema=SCHEMA, start=START, end=END)
                seconds = time.perf_counter() - t0
                (first if i == 0 else repeated).add(seconds)
                after = read_usage(handle.state_dir, token)
                wire.add(float(after.bytes - before.bytes))
                server.add(after.seconds - before.seconds)
                before = after
                if i == 0:
                    records = store.to_ndarray()
                    raw_bytes, bars = int(records.nbytes), len(records)
        finally:
            handle.stop()
    c.table(
        ["what", "value"],
        [
            ["gateway start (process, TLS CA, health check)", f"{start_seconds:.2f} s"],
            ["bars in the month", f"{bars:,}"],
            ["DBN records, decoded (to_ndarray().nbytes)", f"{raw_bytes / 1e6:.2f} MB"],
            ["DBN bytes on the wire, zstd (median)", f"{wire.median / 1e6:.3f} MB"],
        ],
    )
    c.series_table([first, repeated, server])
    med = repeated.median
    c.table(
        ["throughput (repeated, median)", "value"],
        [
            ["bars/s", f"{bars / med:,.0f}"],
            ["MB/s decoded DBN records", f"{raw_bytes / 1e6 / med:.1f}"],
            ["MB/s on the wire", f"{wire.median / 1e6 / med:.2f}"],
            ["share of client time spent in the gateway's handler", f"{server.median / med:.0%}"],
        ],
    )
    ok = c.goal(
        "gateway first request", f"{first.median:.3f} s for {bars:,} bars", f"< {FIRST_GOAL} s", first.median < FIRST_GOAL
    )
    ok &= c.goal(
        "gateway repeated request",
        f"median {med:.3f} s (min {repeated.min:.3f}, max {repeated.max:.3f}, n={len(repeated.values)}); "
        f"{bars / med:,.0f} bars/s, {raw_bytes / 1e6 / med:.1f} MB/s DBN",
        f"< {REPEAT_GOAL} s",
        med < REPEAT_GOAL,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
