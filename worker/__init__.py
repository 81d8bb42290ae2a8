"""The worker: one real LumiBot backtest under yappi wall-clock profiling, in its own process."""
