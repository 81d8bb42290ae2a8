"""Small pieces the jobs share: running the queue (``supervisor``), running one backtest
(``worker``), reading the results (``report``) and the local DataBento ``gateway``.

Imported downward only: nothing here imports those packages, so each of them can use this
one without pulling in another job. Stdlib only, cheap to import.
"""
