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

import sys
import sysconfig
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

DATA_SOURCE_KINDS = ("databento", "pandas_synthetic")
TIMESTEPS = ("minute", "day")


@dataclass
class DataCounter:
    """History requests and rows served, split by who asked.

    ``history_calls``/``bars_served`` are the strategy's own requests (a call with the strategy's
    code on the stack); ``internal_*`` are LumiBot's look-ups for itself (order fills, portfolio
    valuation), which a strategy author cannot change.
    """

    history_calls: int = 0
    bars_served: int = 0
    internal_history_calls: int = 0
    internal_bars_served: int = 0

    @property
    def any_calls(self) -> int:
        return self.history_calls + self.internal_history_calls

    @property
    def any_bars(self) -> int:
        return self.bars_served + self.internal_bars_served


class StrategyCode:
    """Tells the strategy's frames from LumiBot's, the worker's and the libraries' ones.

    A frame is the strategy's if it is in the strategy's own file, or in any file outside
    LumiBot, this worker, the standard library and site-packages (a helper module beside it).
    """

    def __init__(self, strategy_class: type[Any]) -> None:
        import lumibot

        own = getattr(sys.modules.get(strategy_class.__module__), "__file__", None)
        self._own = {own} if own else set()
        paths = sysconfig.get_paths()
        self._foreign = tuple(
            str(Path(p).resolve()) + "/"
            for p in {str(Path(str(lumibot.__file__)).parent), str(Path(__file__).parent), paths["stdlib"],
                      paths["platstdlib"], paths["purelib"], paths["platlib"]}
        )
        self._verdicts: dict[str, bool] = {}

    def __call__(self, filename: str) -> bool:
        verdict = self._verdicts.get(filename)
        if verdict is None:
            resolved = str(Path(filename).resolve()) if filename and not filename.startswith("<") else ""
            verdict = filename in self._own or (bool(resolved) and not resolved.startswith(self._foreign))
            self._verdicts[filename] = verdict
        return verdict

    def on_stack(self, frame: Any) -> bool:
        while frame is not None:
            if self(frame.f_code.co_filename):
                return True
            frame = frame.f_back
        return False


def observed(datasource_class: type[Any], counter: DataCounter, strategy_class: type[Any]) -> type[Any]:
    """A subclass of ``datasource_class`` that counts history calls and rows returned, by who asked.

    It keeps the original class name because LumiBot dispatches on ``__name__`` in places.
    Rows are counted on the bars' underlying frame to avoid a pandas/polars conversion
    that would itself show up in the profile.
    """

    base_call = datasource_class.get_historical_prices
    strategy_code = StrategyCode(strategy_class)

    def get_historical_prices(self: Any, *args: Any, **kwargs: Any) -> Any:
        bars = base_call(self, *args, **kwargs)
        frame = getattr(bars, "_df", None)
        rows = 0 if frame is None else len(frame)
        if strategy_code.on_stack(sys._getframe(1)):
            counter.history_calls += 1
            counter.bars_served += rows
        else:
            counter.internal_history_calls += 1
            counter.internal_bars_served += rows
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
    """Bars for each configured asset, from the same generator the gateway serves.

    ``timestep`` per asset is ``minute`` (default) or ``day``: daily bars are the minute bars
    aggregated per New York calendar day, so a daily strategy iterates once a day as it would
    on daily data, not on every minute bar.
    """
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
        timestep = item.get("timestep", "minute")
        if timestep not in TIMESTEPS:
            raise ValueError(f"data_source.assets[{symbol}].timestep must be one of {', '.join(TIMESTEPS)}, got {timestep!r}")
        # One never-expiring series per root: the same price process the gateway serves.
        records = ohlcv_bars(seed, Contract(raw_symbol=symbol, root=symbol, year=2099, month=12), first, last)
        frame = pd.DataFrame(
            {name: records[name] / 1e9 for name in ("open", "high", "low", "close")}
            | {"volume": records["volume"].astype("float64")},
            index=pd.to_datetime(records["ts_event"].astype("int64"), utc=True).tz_convert("America/New_York"),
        )
        if timestep == "day":
            frame = _daily(frame)
        asset = Asset(symbol, asset_type=item.get("type", "stock"))
        data[asset] = Data(asset, frame, timestep=timestep, quote=Asset("USD", asset_type="forex"))
    return data


def _daily(minutes: Any) -> Any:
    """One OHLCV bar per New York calendar day that has minute bars."""
    days = minutes.resample("1D")
    frame = days.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    return frame.dropna(subset=["close"])
