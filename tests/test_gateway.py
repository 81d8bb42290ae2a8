"""End-to-end tests of the local DataBento gateway: real processes, real sockets (127.0.0.1 only).

The unmodified ``databento.Historical`` client is pointed at the gateway only through the
environment that ``GatewayHandle.worker_env`` returns, exactly as a worker would be.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import databento as db
import databento_dbn as dbn
import numpy as np
import pandas as pd
import pytest
import requests

from gateway.bars import OHLCV_DTYPE, ohlcv_bars
from gateway.contracts import parse_raw_symbol
from gateway.control import GatewayError, GatewayHandle, attach, make_token, read_usage, start_gateway

REPO = Path(__file__).resolve().parent.parent
API = "https://hist.databento.com/v0"
RANGE_URL = f"{API}/timeseries.get_range"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    handle = start_gateway(tmp_path_factory.mktemp("gateway"), seed=11, timeout=20.0)
    yield handle
    handle.stop()


@pytest.fixture()
def token(gateway: GatewayHandle, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh token whose worker environment is applied to this test's process."""
    tok = make_token("pytest")
    for name, value in gateway.worker_env(tok).items():
        monkeypatch.setenv(name, value)
    return tok


def _auth(tok: str) -> tuple[str, str]:
    return (os.environ["DATABENTO_API_KEY"] if tok else "", "")


def _form(**overrides: str) -> dict[str, str]:
    form = {
        "dataset": "GLBX.MDP3",
        "symbols": "MESZ4",
        "schema": "ohlcv-1m",
        "start": "2024-11-04T00:00:00",
        "end": "2024-11-05T00:00:00",
        "stype_in": "raw_symbol",
        "stype_out": "instrument_id",
        "encoding": "dbn",
        "compression": "zstd",
    }
    form.update(overrides)
    return form


def _bars(start: str, end: str, symbol: str = "MESZ4") -> pd.DataFrame:
    store = db.Historical().timeseries.get_range(
        dataset="GLBX.MDP3", symbols=symbol, schema="ohlcv-1m", start=start, end=end
    )
    return store.to_df()


def test_control_imports_stay_light() -> None:
    code = (
        "import sys, gateway.control; "
        "print(','.join(m for m in ('numpy','pandas','databento','trustme') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == ""


def test_state_file(gateway: GatewayHandle) -> None:
    assert attach(gateway.state_dir) == gateway
    assert gateway.ca_pem.is_file()
    gateway.health(timeout=5)


def test_client_gets_minute_bars(token: str) -> None:
    # Friday to Wednesday across the end of US daylight saving time (3 Nov 2024).
    df = _bars("2024-11-01", "2024-11-06")
    assert len(df) > 3000
    assert set(df["symbol"]) == {"MESZ4"}
    assert df["close"].between(3000, 9000).all()
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df["volume"] > 0).all()
    assert ((df["close"] * 4) % 1 == 0).all()  # MES ticks are 0.25
    ny = df.index.tz_convert("America/New_York")
    assert not (ny.hour == 17).any(), "bar inside the daily 17:00-18:00 break"
    assert not (ny.dayofweek == 5).any(), "bar on a Saturday"
    assert not ((ny.dayofweek == 6) & (ny.hour < 18)).any(), "bar before Sunday 18:00"
    assert not ((ny.dayofweek == 4) & (ny.hour >= 17)).any(), "bar after Friday 17:00"
    assert ((ny.dayofweek == 6) & (ny.hour == 18)).any(), "Sunday evening session missing"


def test_definition_gives_multiplier(token: str) -> None:
    store = db.Historical().timeseries.get_range(
        dataset="GLBX.MDP3", symbols=["MESZ4"], schema="definition", start="2024-11-04", end="2024-11-05"
    )
    row = store.to_df().iloc[0]
    assert row["unit_of_measure_qty"] == 5
    assert row["raw_symbol"] == "MESZ4"
    assert row["asset"] == "MES"
    assert row["security_type"] == "FUT"
    assert row["instrument_class"] == "F"
    assert row["min_price_increment"] == 0.25
    assert row["currency"] == "USD"
    assert pd.Timestamp(row["expiration"]).date().isoformat() == "2024-12-20"


def test_overlapping_ranges_agree(token: str) -> None:
    a = _bars("2024-11-04T00:00:00", "2024-11-06T12:00:00")
    b = _bars("2024-11-05T07:13:00", "2024-11-07T00:00:00")
    shared = a.index.intersection(b.index)
    assert len(shared) > 1000
    cols = ["open", "high", "low", "close", "volume", "instrument_id"]
    pd.testing.assert_frame_equal(a.loc[shared, cols], b.loc[shared, cols])
    # A one-digit and a two-digit year name the same contract and the same prices.
    c = _bars("2024-11-05T08:00:00", "2024-11-05T09:00:00", symbol="MESZ24")
    assert (c["close"].to_numpy() == a.loc[c.index, "close"].to_numpy()).all()


def test_same_request_same_bytes(token: str) -> None:
    bodies = [
        requests.post(RANGE_URL, data=_form(compression="none"), auth=_auth(token), timeout=30)
        for _ in range(2)
    ]
    assert all(r.status_code == 200 for r in bodies)
    assert bodies[0].headers["Content-Type"] == "application/octet-stream"
    assert bodies[0].content == bodies[1].content
    assert bodies[0].content[:3] == b"DBN"


@pytest.mark.parametrize(
    ("form", "auth", "status"),
    [
        (_form(schema="mbo-42"), True, 422),
        (_form(schema="trades"), True, 422),
        (_form(start="2024-11-05", end="2024-11-04"), True, 422),
        (_form(dataset="XNAS.ITCH"), True, 422),
        (_form(symbols="NOT A FUTURE"), True, 422),
        (_form(compression="gzip"), True, 422),
        (_form(start="yesterday-ish"), True, 422),
        (_form(), False, 401),
    ],
    ids=["unknown-schema", "unserved-schema", "end-before-start", "unknown-dataset",
         "unresolvable-symbol", "bad-compression", "bad-start", "missing-auth"],
)
def test_bad_requests_get_databento_errors(
    token: str, form: dict[str, str], auth: bool, status: int
) -> None:
    response = requests.post(RANGE_URL, data=form, auth=_auth(token) if auth else None, timeout=30)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


def test_other_endpoints(token: str) -> None:
    ok = requests.get(
        f"{API}/metadata.get_dataset_range", params={"dataset": "GLBX.MDP3"}, auth=_auth(token), timeout=30
    )
    assert ok.status_code == 200 and ok.json()["end"].endswith("Z")
    missing = requests.get(f"{API}/symbology.resolve", auth=_auth(token), timeout=30)
    assert missing.status_code == 404 and "detail" in missing.json()
    with pytest.raises(db.BentoClientError) as caught:
        db.Historical().timeseries.get_range(
            dataset="GLBX.MDP3", symbols="ZZZ", schema="ohlcv-1m", start="2024-11-04", end="2024-11-05"
        )
    assert caught.value.http_status == 422
    assert "symbology_invalid_request" in str(caught.value)


def test_concurrent_requests(token: str) -> None:
    def fetch(day: int) -> int:
        return len(_bars(f"2024-10-{day:02d}", f"2024-10-{day + 3:02d}", symbol="MNQZ4"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(fetch, range(1, 9)))
    assert len(counts) == 8 and all(n > 0 for n in counts)


def _proxy_exchange(gateway: GatewayHandle, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", gateway.proxy_port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_proxy_refuses_other_hosts(gateway: GatewayHandle, token: str) -> None:
    user = base64.b64encode(f"{token}:x".encode()).decode()
    answer = _proxy_exchange(
        gateway,
        f"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n"
        f"Proxy-Authorization: Basic {user}\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 403")
    wrong_port = _proxy_exchange(gateway, b"CONNECT hist.databento.com:80 HTTP/1.1\r\n\r\n")
    assert wrong_port.startswith(b"HTTP/1.1 403")
    # A plain proxied request, as requests makes for http:// URLs with HTTP_PROXY set.
    plain = requests.get("http://example.net/data", timeout=10)
    assert plain.status_code == 403
    usage = read_usage(gateway.state_dir, token)
    assert usage.refused == ["example.org", "example.net"]
    assert usage.refusals == 2
    assert "hist.databento.com" in read_usage(gateway.state_dir, "anonymous").refused


def test_usage_accounting(gateway: GatewayHandle, token: str) -> None:
    sizes = []
    forms = (
        _form(),
        _form(symbols="MESZ4,MESH5", start="2024-11-06", end="2024-11-08"),
        _form(schema="definition"),
    )
    for form in forms:
        response = requests.post(RANGE_URL, data=form, auth=_auth(token), timeout=30)
        assert response.status_code == 200
        sizes.append(len(response.content))
    bad = requests.post(RANGE_URL, data=_form(schema="tbbo"), auth=_auth(token), timeout=30)
    usage = read_usage(gateway.state_dir, token)
    assert usage.requests == 4
    assert usage.bytes == sum(sizes) + len(bad.content)
    assert usage.by_schema == {"ohlcv-1m": 2, "definition": 1, "tbbo": 1}
    assert usage.errors == 1
    assert usage.refused == []


def test_numpy_records_match_dbn() -> None:
    contract = parse_raw_symbol("ESH5", 2024)
    assert contract is not None
    start = int(pd.Timestamp("2025-01-06T14:30Z").value)
    bars = ohlcv_bars(3, contract, start, start + 10 * 60 * 10**9)
    assert bars.dtype.itemsize == 56 == OHLCV_DTYPE.itemsize
    assert len(bars) == 10
    for record in bars:
        msg = dbn.OHLCVMsg(
            dbn.RType.OHLCV_1M,
            int(record["publisher_id"]),
            int(record["instrument_id"]),
            int(record["ts_event"]),
            int(record["open"]),
            int(record["high"]),
            int(record["low"]),
            int(record["close"]),
            int(record["volume"]),
        )
        assert bytes(msg) == record.tobytes()
    again = ohlcv_bars(3, contract, start + 4 * 60 * 10**9, start + 6 * 60 * 10**9)
    assert again.tobytes() == bars[4:6].tobytes()
    assert not np.array_equal(ohlcv_bars(4, contract, start, start + 600 * 10**9)["close"], bars["close"])


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "Z"


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    first = start_gateway(tmp_path / "a", seed=1, timeout=20.0)
    with pytest.raises(GatewayError):
        start_gateway(tmp_path / "a", seed=1, timeout=5.0)
    first.stop()
    assert _gone(first.pid)
    assert not (first.state_dir / "gateway.json").exists()
    assert attach(first.state_dir) is None
    with pytest.raises(GatewayError, match="not running"):
        first.health(timeout=2)

    second = start_gateway(tmp_path / "b", seed=1, timeout=20.0)
    subprocess.run(
        [sys.executable, "-m", "gateway", "stop", "--state-dir", str(second.state_dir)],
        cwd=REPO, check=True, timeout=30, capture_output=True,
    )
    assert second.process is not None
    assert second.process.wait(timeout=10) == 0
    assert _gone(second.pid)
    assert not (second.state_dir / "gateway.json").exists()
