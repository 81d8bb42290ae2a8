"""The LumiBot data source a run uses, chosen by the plan's ``meta.data_source``.

Two kinds:

* ``databento``: LumiBot's canonical ``DataBentoDataBacktesting``. In ``local`` mode the
  supervisor points the unmodified databento client at the embedded gateway through the
  environment; in ``live`` mode it talks to the real DataBento with the user's key.
* ``pandas_synthetic``: ``PandasDataBacktesting`` over deterministic generated minute bars,
  for strategies and tests that need no gateway at all.

Both are wrapped by :func:`observed` so a run can prove that data really arrived: LumiBot
itself finishes "successfully" with no bars when a provider is unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DATA_SOURCE_KINDS = ("databento", "pandas_synthetic")


@dataclass
class DataCounter:
    """Bars handed to the strategy, counted where LumiBot serves history requests."""

    history_calls: int = 0
    bars_served: int = 0


def observed(datasource_class: type[Any], counter: DataCounter) -> type[Any]:
    """A subclass of ``datasource_class`` that counts history calls and rows returned.

    It keeps the original class name because LumiBot dispatches on ``__name__`` in places.
    Rows are counted on the bars' underlying frame to avoid a pandas/polars conversion
    that would itself show up in the profile.
    """

    base_call = datasource_class.get_historical_prices

    def get_historical_prices(self: Any, *args: Any, **kwargs: Any) -> Any:
        bars = base_call(self, *args, **kwargs)
        counter.history_calls += 1
        frame = getattr(bars, "_df", None)
        rows = 0 if frame is None else len(frame)
        counter.bars_served += rows
        return bars

    subclass = type(datasource_class.__name__, (datasource_class,), {"get_historical_prices": get_historical_prices})
    subclass.__module__ = datasource_class.__module__
    return subclass


def resolve(settings: dict[str, Any], start: datetime, end: datetime, seed: int) -> tuple[type[Any], dict[str, Any]]:
    """The data-source class and the extra ``run_backtest`` keywords for these settings."""
    kind = settings.get("kind")
    if kind == "databento":
        from lumibot.backtesting import DataBentoDataBacktesting

        return DataBentoDataBacktesting, {}
    if kind == "pandas_synthetic":
        from lumibot.backtesting import PandasDataBacktesting

        return PandasDataBacktesting, {"pandas_data": _synthetic_pandas_data(settings, start, end, seed)}
    raise ValueError(f"data_source.kind must be one of {', '.join(DATA_SOURCE_KINDS)}, got {kind!r}")


def _synthetic_pandas_data(settings: dict[str, Any], start: datetime, end: datetime, seed: int) -> dict[Any, Any]:
    """Minute bars for each configured asset, from the same generator the gateway serves."""
    import pandas as pd
    from lumibot.entities import Asset, Data

    from gateway.bars import ohlcv_bars
    from gateway.contracts import Contract

    lookback = timedelta(days=int(settings.get("lookback_days", 5)))
    first = pd.Timestamp(start - lookback, tz="America/New_York").value
    last = pd.Timestamp(end + timedelta(days=1), tz="America/New_York").value
    data: dict[Any, Any] = {}
    for item in settings.get("assets", [{"symbol": "MES", "type": "cont_future"}]):
        symbol = item["symbol"]
        # One never-expiring series per root: the same price process the gateway serves.
        records = ohlcv_bars(seed, Contract(raw_symbol=symbol, root=symbol, year=2099, month=12), first, last)
        frame = pd.DataFrame(
            {name: records[name] / 1e9 for name in ("open", "high", "low", "close")}
            | {"volume": records["volume"].astype("float64")},
            index=pd.to_datetime(records["ts_event"].astype("int64"), utc=True).tz_convert("America/New_York"),
        )
        asset = Asset(symbol, asset_type=item.get("type", "stock"))
        data[asset] = Data(asset, frame, timestep="minute", quote=Asset("USD", asset_type="forex"))
    return data
