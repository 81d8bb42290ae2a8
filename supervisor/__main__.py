"""``python -m supervisor``. A Ctrl-C before the session takes over the stop signals (while
Python imports, before anything is claimed or written) exits 130 like one later, without a
traceback."""

try:
    from supervisor.cli import main

    code = main()
except KeyboardInterrupt:
    code = 130
raise SystemExit(code)
