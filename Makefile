# Every target installs what it needs first; `make install` is idempotent (a stamp file
# remembers the pyproject.toml it installed).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PLAN   ?= profiling_plan.json
ARGS   ?=

.PHONY: install profile phase0 status report test bench gateway ray-head clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,cluster]'
	@touch $(STAMP)

profile: install
	$(PY) -m supervisor --plan $(PLAN) $(ARGS); rc=$$?; $(PY) -m supervisor report --plan $(PLAN); exit $$rc

phase0: install
	$(PY) -m supervisor --plan $(PLAN) --only phase0 $(ARGS)

status: install
	$(PY) -m supervisor status --plan $(PLAN)

report: install
	$(PY) -m supervisor report --plan $(PLAN)

gateway: install
	$(PY) -m supervisor gateway --plan $(PLAN)

# A one-machine Ray head to try `--executor ray --address 127.0.0.1:6390` (loopback only, no
# dashboard, no usage stats, one profiling slot); stop it with `$(VENV)/bin/ray stop`.
ray-head: install
	RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 $(VENV)/bin/ray start --head \
	    --node-ip-address=127.0.0.1 --port=6390 --include-dashboard=false --disable-usage-stats \
	    --resources='{"profiling_slot": 1}'

test: install
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest $(ARGS)

bench: install
	$(PY) bench/run_all.py $(ARGS)

clean:
	rm -rf profiling/work profiling/cache profiling/gateway profiling/*.csv profiling/*.pstat \
	       profiling/*.callgrind profiling/*.log profiling/REPORT.md profiling/*.png \
	       profiling/*.sampled.svg profiling/*.sampled.collapsed.txt profiling/*.sampled.lines.collapsed.txt \
	       profiling/*.sampled.sites.json
