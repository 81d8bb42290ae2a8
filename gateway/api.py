"""The DataBento historical endpoints LumiBot uses, as pure request -> response logic.

Kept apart from the socket plumbing (:mod:`gateway.server`) so the rules of the API -- which
fields, which values, which errors -- read in one place. Errors have DataBento's shape, a JSON
``{"detail": "..."}`` body with a 4xx status, because the databento client turns exactly that
into ``BentoClientError`` and LumiBot matches on its text (e.g. ``symbology_invalid_request``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import databento_dbn as dbn
import orjson

from gateway import DATASET
from gateway.bars import MINUTE_NS, merge_by_time, ohlcv_bars
from gateway.contracts import Contract, parse_raw_symbol
from gateway.dbn import MappingInterval, SymbolMapping, encode_stream
from gateway.definitions import definition_record
from gateway.timestamps import NS, format_timestamp, parse_timestamp
from gateway.tokens import ANONYMOUS, basic_user, token_for_key

DATASET_START_NS = int(datetime(2010, 6, 6, tzinfo=UTC).timestamp()) * NS
"""GLBX.MDP3's real first day."""

SERVED_SCHEMAS = {name: dbn.Schema.from_str(name) for name in ("ohlcv-1m", "definition")}
KNOWN_SCHEMAS = {
    "mbo", "mbp-1", "mbp-10", "tbbo", "trades", "bbo-1s", "bbo-1m", "cbbo-1s", "cbbo-1m",
    "tcbbo", "cmbp-1", "ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d", "ohlcv-eod",
    "definition", "statistics", "status", "imbalance",
}
"""DataBento's schema names, to tell "not served here" from "no such schema" in errors."""
MAX_SYMBOLS = 2000
MAX_SYMBOL_DAYS = 3 * 366
"""Cap on (days requested x symbols), so one request cannot make the gateway build gigabytes."""

DAY_NS = 86_400 * NS


@dataclass
class ApiRequest:
    """An HTTP request reduced to what the API looks at."""

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    authorization: str | None = None


@dataclass
class ApiResponse:
    """The answer plus what accounting records about it."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    token: str = ANONYMOUS
    schema: str | None = None
    symbols: list[str] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    records: int | None = None
    detail: str | None = None


class ApiError(Exception):
    """A client error to be answered as ``{"detail": ...}`` with ``status``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def token_from_authorization(header: str | None) -> str | None:
    """The token of an HTTP Basic header whose user name is the API key; ``None`` if absent or
    malformed (the password is ignored: the databento client sends an empty one)."""
    key = basic_user(header)
    return None if key is None else token_for_key(key)


def _json(status: int, payload: object) -> ApiResponse:
    return ApiResponse(status=status, body=orjson.dumps(payload))


def _field(form: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = form.get(name)
    if not values:
        return default
    return values[-1]


class Api:
    """Answers ``/v0/...`` requests with synthetic data for one ``seed``."""

    def __init__(self, seed: int, pid: int = 0) -> None:
        self.seed = seed
        self.pid = pid

    @staticmethod
    def available_end_ns() -> int:
        """The dataset's end: now, floored to the minute (the data is synthetic, so there is
        always data up to now)."""
        now = time.time_ns()
        return now - now % MINUTE_NS

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Route and answer ``request``; never raises for a client mistake."""
        token = token_from_authorization(request.authorization)
        form: dict[str, list[str]] = {}
        try:
            if request.path == "/_health":
                if request.method != "GET":
                    raise ApiError(405, "Method Not Allowed")
                return _json(200, {"status": "ok", "pid": self.pid, "seed": self.seed})
            routes = {
                "/v0/metadata.get_dataset_range": ("GET", self._dataset_range),
                "/v0/timeseries.get_range": ("POST", self._get_range),
            }
            if request.path not in routes:
                raise ApiError(404, "Not Found")
            method, handler = routes[request.path]
            if request.method != method:
                raise ApiError(405, "Method Not Allowed")
            if token is None:
                raise ApiError(
                    401,
                    "authentication_failed: HTTP Basic authentication with the API key "
                    "as the user name is required",
                )
            form = parse_qs(request.query, keep_blank_values=True)
            if request.body:
                try:
                    body_form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError as exc:
                    raise ApiError(400, "Request body is not UTF-8 form data") from exc
                for name, values in body_form.items():
                    form.setdefault(name, []).extend(values)
            response = handler(form)
        except ApiError as exc:
            response = _json(exc.status, {"detail": exc.detail})
            response.detail = exc.detail
            # Account for what was asked even when it is refused.
            response.schema = _field(form, "schema")
            response.symbols = [s.strip() for s in (_field(form, "symbols") or "").split(",") if s.strip()]
            response.start = _field(form, "start")
            response.end = _field(form, "end")
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="databento"'
        response.token = token or ANONYMOUS
        return response

    def _dataset(self, form: dict[str, list[str]]) -> str:
        dataset = _field(form, "dataset")
        if dataset is None or not dataset.strip():
            raise ApiError(422, "The `dataset` field is required")
        if dataset.strip().upper() != DATASET:
            raise ApiError(
                422,
                f"dataset_unavailable: Dataset '{dataset}' is not available "
                f"(this gateway serves only {DATASET})",
            )
        return DATASET

    def _dataset_range(self, form: dict[str, list[str]]) -> ApiResponse:
        self._dataset(form)
        start = format_timestamp(DATASET_START_NS)
        end = format_timestamp(self.available_end_ns())
        return _json(
            200,
            {
                "start": start,
                "end": end,
                "schema": {name: {"start": start, "end": end} for name in SERVED_SCHEMAS},
            },
        )

    def _get_range(self, form: dict[str, list[str]]) -> ApiResponse:
        self._dataset(form)
        schema_name = (_field(form, "schema") or "").strip().lower()
        if schema_name not in SERVED_SCHEMAS:
            known = "not served by this gateway" if schema_name in KNOWN_SCHEMAS else "unknown"
            raise ApiError(
                422,
                f"Invalid schema '{schema_name}' ({known}); served: {', '.join(SERVED_SCHEMAS)}",
            )
        for name, allowed in (
            ("stype_in", {"raw_symbol"}),
            ("stype_out", {"instrument_id"}),
            ("encoding", {"dbn"}),
            ("compression", {"zstd", "none"}),
        ):
            value = _field(form, name)
            if value is not None and value.strip().lower() not in allowed:
                raise ApiError(422, f"Invalid `{name}` '{value}'; accepted: {', '.join(sorted(allowed))}")
        compression = (_field(form, "compression") or "none").strip().lower()

        raw_symbols = [s.strip() for s in (_field(form, "symbols") or "").split(",") if s.strip()]
        if not raw_symbols:
            raise ApiError(422, "The `symbols` field is required")
        if any(s.upper() == "ALL_SYMBOLS" for s in raw_symbols):
            raise ApiError(422, "ALL_SYMBOLS is not served by this gateway")
        if len(raw_symbols) > MAX_SYMBOLS:
            raise ApiError(422, f"Too many symbols ({len(raw_symbols)} > {MAX_SYMBOLS})")

        start_text = _field(form, "start")
        if start_text is None:
            raise ApiError(422, "The `start` field is required")
        end_text = _field(form, "end")
        try:
            start = parse_timestamp(start_text)
            end_ns = (
                parse_timestamp(end_text).ns
                if end_text
                else start.ns + (DAY_NS if start.date_only else MINUTE_NS)
            )
        except ValueError as exc:
            raise ApiError(422, f"Invalid datetime: {exc}") from exc
        if end_ns <= start.ns:
            raise ApiError(
                422,
                f"Invalid time range: `end` ({end_text}) must be after `start` ({start_text})",
            )
        limit_text = _field(form, "limit")
        limit: int | None = None
        if limit_text:
            if not limit_text.strip().isdigit() or int(limit_text) <= 0:
                raise ApiError(422, f"Invalid `limit` '{limit_text}'")
            limit = int(limit_text)

        start_ns = max(start.ns, DATASET_START_NS)
        end_ns = min(end_ns, self.available_end_ns())
        span_days = max(0, end_ns - start_ns) / DAY_NS
        if span_days * len(raw_symbols) > MAX_SYMBOL_DAYS:
            raise ApiError(
                422,
                f"Request too large: {span_days:.0f} days x {len(raw_symbols)} symbols "
                f"exceeds {MAX_SYMBOL_DAYS} symbol-days",
            )

        reference_year = datetime.fromtimestamp(start_ns // NS, tz=UTC).year
        contracts: list[Contract] = []
        not_found: list[str] = []
        for raw in raw_symbols:
            contract = parse_raw_symbol(raw, reference_year)
            if contract is None:
                not_found.append(raw)
            else:
                contracts.append(contract)
        if not contracts:
            raise ApiError(
                422,
                "symbology_invalid_request: None of the symbols could be resolved: "
                + ", ".join(not_found),
            )

        schema = SERVED_SCHEMAS[schema_name]
        if end_ns <= start_ns:
            records, count = b"", 0
        elif schema_name == "ohlcv-1m":
            bars = merge_by_time([ohlcv_bars(self.seed, c, start_ns, end_ns) for c in contracts])
            if limit is not None:
                bars = bars[:limit]
            records, count = bars.tobytes(), int(bars.size)
        else:
            alive = [c for c in contracts if start_ns < c.expiration_ns]
            alive.sort(key=lambda c: c.instrument_id)
            if limit is not None:
                alive = alive[:limit]
            records, count = b"".join(definition_record(c, start_ns) for c in alive), len(alive)

        body = encode_stream(
            schema=schema,
            start_ns=start_ns,
            end_ns=max(end_ns, start_ns),
            symbols=raw_symbols,
            mappings=self._mappings(contracts, start_ns, end_ns),
            not_found=not_found,
            records=records,
            compression=compression,
            limit=limit,
        )
        headers: dict[str, str] = {}
        if not_found:
            warning = f"BentoWarning: None of the following symbols could be resolved: {', '.join(not_found)}"
            headers["X-Warning"] = orjson.dumps([warning]).decode()
        return ApiResponse(
            status=200,
            body=body,
            content_type="application/octet-stream",
            headers=headers,
            schema=schema_name,
            symbols=raw_symbols,
            start=format_timestamp(start_ns),
            end=format_timestamp(end_ns),
            records=count,
        )

    @staticmethod
    def _mappings(contracts: list[Contract], start_ns: int, end_ns: int) -> list[SymbolMapping]:
        """raw symbol -> instrument id over the request's UTC dates, which is what lets
        ``DBNStore.to_df`` fill the ``symbol`` column."""
        first = datetime.fromtimestamp(start_ns // NS, tz=UTC).date()
        last = datetime.fromtimestamp(max(start_ns, end_ns - 1) // NS, tz=UTC).date()
        stop = last + timedelta(days=1)
        seen: dict[str, SymbolMapping] = {}
        for contract in contracts:
            interval = MappingInterval(first, stop, str(contract.instrument_id))
            seen.setdefault(contract.raw_symbol, SymbolMapping(contract.raw_symbol, [interval]))
        return list(seen.values())

