"""Reading the results: ``profiling/REPORT.md`` with its charts, and ``COMPARE.md`` for two plans.

Only reads what the queue wrote (the plan file through :mod:`supervisor.plan`, the profile
CSVs through :mod:`common.profiles`); it never imports the queue's runtime (claims, runner,
session), so a report can be written while a supervisor runs, or on another machine.
Entry point: :func:`report.write.write_report`, reached by ``python -m supervisor report``.
"""
