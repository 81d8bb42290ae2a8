"""Which assets a strategy trades, read from its source with the ``ast`` module (stdlib only).

For ``lumiprof init``: the plan's data source must serve the symbols the strategy asks for,
and LumiBot has no way to list them before a backtest runs. A simple static scan finds the
common spellings:

* ``Asset("SPY")``, ``Asset(symbol="MES", asset_type=Asset.AssetType.CONT_FUTURE)``,
  ``Asset("ES", asset_type="future")``;
* a symbol string passed straight to LumiBot (``self.get_last_price("SPY")``,
  ``self.create_order("AAPL", 10, "buy")``, ``self.get_last_prices(["SPY", "QQQ"])``), which
  LumiBot turns into a stock;
* a value the scan can follow one step: a string constant assigned to a name or to
  ``self.<attr>``, a strategy parameter (``self.parameters["symbol"]``,
  ``self.parameters.get("symbol")``) whose default the class declares, or the loop variable of
  ``for symbol in <one of those>``;
* parameters named like symbols (``symbol``, ``symbols``, ``tickers``...), as stocks.

What it cannot follow (symbols from a file, a network call, a loop over computed names) it
does not guess: the caller falls back and says so.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

#: LumiBot methods whose first argument may be a symbol string (LumiBot makes it a stock Asset).
SYMBOL_METHODS = frozenset({
    "get_last_price", "get_last_prices", "get_historical_prices", "get_historical_prices_for_assets",
    "create_order", "get_position", "get_quote", "get_asset_potential_total", "get_bars", "get_chains",
})
#: Parameter names whose string (or list of strings) values are symbols, when nothing else was found.
SYMBOL_PARAMETERS = frozenset({"symbol", "symbols", "ticker", "tickers", "asset", "assets", "underlying"})
ASSET_TYPES = ("stock", "future", "cont_future", "forex", "crypto", "index", "option")
_SYMBOL = re.compile(r"[A-Za-z0-9._/^-]{1,32}")
_DAILY = re.compile(r"\s*\d*\s*D(AY|AYS)?\s*", re.IGNORECASE)


def is_daily(sleeptime: Any) -> bool:
    """LumiBot's ``"1D"`` (one iteration a day): such a strategy wants daily bars."""
    return isinstance(sleeptime, str) and bool(_DAILY.fullmatch(sleeptime))


class _Scan(ast.NodeVisitor):
    def __init__(self, parameters: dict[str, Any]) -> None:
        self.parameters = parameters
        self.constants: dict[str, Any] = {}  # NAME = "SPY" and self.name = "SPY", wherever assigned
        self.found: dict[str, str | None] = {}  # symbol -> type (None: LumiBot's default, a stock)
        self.types_without_symbol: set[str] = set()
        self.sleeptimes: list[Any] = []

    # -- values the scan can follow ---------------------------------------------------------
    def collect_constants(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant | ast.List | ast.Tuple):
                for target in node.targets:
                    key = _target_key(target)
                    if key:
                        self.constants.setdefault(key, _literal(node.value))
                        if key in ("sleeptime", "self.sleeptime"):
                            self.sleeptimes.append(_literal(node.value))
            elif isinstance(node, ast.Assign) and any(_target_key(t) in ("sleeptime", "self.sleeptime") for t in node.targets):
                self.sleeptimes.append(self.value(node.value))
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                # `for symbol in self.parameters["symbols"]:` -> the name stands for every item
                items = self.value(node.iter)
                if isinstance(items, list | tuple):
                    self.constants.setdefault(node.target.id, list(items))

    def value(self, node: ast.AST) -> Any:
        """A constant, a name or attribute assigned a constant, or a declared parameter; else None."""
        if isinstance(node, ast.Constant | ast.List | ast.Tuple):
            return _literal(node)
        key = _target_key(node)
        if key and key in self.constants:
            return self.constants[key]
        name = _parameter_name(node)
        if name is not None:
            return self.parameters.get(name)
        return None

    # -- what the strategy asks for ---------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if callee == "Asset":
            self.asset_call(node)
        elif callee in SYMBOL_METHODS and node.args:
            for symbol in _strings(self.value(node.args[0])):
                self.add(symbol, None)
        self.generic_visit(node)

    def asset_call(self, node: ast.Call) -> None:
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        symbol_node = node.args[0] if node.args else keywords.get("symbol")
        type_node = node.args[1] if len(node.args) > 1 else keywords.get("asset_type")
        asset_type = _asset_type(type_node, self) if type_node is not None else "stock"
        symbols = list(_strings(self.value(symbol_node))) if symbol_node is not None else []
        if not symbols and asset_type:
            self.types_without_symbol.add(asset_type)
        for symbol in symbols:
            self.add(symbol, asset_type)

    def add(self, symbol: str, asset_type: str | None) -> None:
        if not _SYMBOL.fullmatch(symbol) or symbol.upper() == "USD":  # the quote asset, not a traded one
            return
        if self.found.get(symbol) is None:
            self.found[symbol] = asset_type


def _target_key(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
        return f"self.{node.attr}"
    return None


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _parameter_name(node: ast.AST) -> str | None:
    """``self.parameters["x"]`` or ``self.parameters.get("x"...)`` -> ``"x"``."""
    def is_parameters(target: ast.AST) -> bool:
        return isinstance(target, ast.Attribute) and target.attr == "parameters"

    if isinstance(node, ast.Subscript) and is_parameters(node.value) and isinstance(node.slice, ast.Constant):
        return node.slice.value if isinstance(node.slice.value, str) else None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and is_parameters(node.func.value) and node.args and isinstance(node.args[0], ast.Constant)):
        return node.args[0].value if isinstance(node.args[0].value, str) else None
    return None


def _asset_type(node: ast.AST, scan: _Scan) -> str | None:
    """``Asset.AssetType.FUTURE``, ``AssetType.FUTURE`` or ``"future"`` -> ``"future"``."""
    if isinstance(node, ast.Attribute) and node.attr.lower() in ASSET_TYPES:
        return node.attr.lower()
    value = scan.value(node)
    return value.lower() if isinstance(value, str) and value.lower() in ASSET_TYPES else None


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        yield from (item for item in value if isinstance(item, str))


def scan(source: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """``{"assets": [{"symbol", "type"}], "types_without_symbol": [...], "sleeptime": ..., "from": ...}``.

    ``type`` is None where LumiBot would make the string a stock; ``from`` says where the symbols
    were found (``source``, ``parameters``, both, or nothing).
    """
    tree = ast.parse(source)
    visitor = _Scan(parameters)
    visitor.collect_constants(tree)
    visitor.visit(tree)
    origin = "source" if visitor.found else ""
    before = len(visitor.found)
    for name, value in parameters.items():
        if name.lower() in SYMBOL_PARAMETERS:
            for symbol in _strings(value):
                visitor.add(symbol, None)
    if len(visitor.found) > before:
        origin = "source and parameters" if origin else "parameters"
    sleeptime = parameters.get("sleeptime", next((s for s in visitor.sleeptimes if s is not None), None))
    return {
        "assets": [{"symbol": symbol, "type": kind} for symbol, kind in visitor.found.items()],
        "types_without_symbol": sorted(visitor.types_without_symbol),
        "sleeptime": sleeptime if isinstance(sleeptime, str | int | float) else None,
        "from": origin,
    }
