"""The supervisor: runs the plan's queue, one fresh worker process per run, and records results.

It never imports LumiBot, pandas or polars: it must start fast and survive whatever a
backtest does.
"""
