# The two commands of a fresh machine: `make run` (the main job) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
OUT ?= out
# The study's data when it is on this machine ($HARMRANK_PAPER_DATA, or shared/ beside the
# checkout or at /work/shared); otherwise `reproduce` downloads it at the pinned commit.
DATA ?= $(or $(HARMRANK_PAPER_DATA),$(firstword $(wildcard \
	../shared/paper-data/llm-harm-psunlpgroup /work/shared/paper-data/llm-harm-psunlpgroup)))

.PHONY: run demo test lint typecheck check bench setup postgres serve-metrics

$(UV):
	$(PYTHON) -m pip install --user --quiet uv || $(PYTHON) -m pip install --user --quiet --break-system-packages uv

# --inexact keeps what the lock does not pin (torch for the generator's local backend, which
# each machine installs for its own hardware: see scripts/install-torch.sh).
setup: $(UV)
	$(UV) sync --frozen --all-packages --all-extras --inexact

run: setup
	$(UV) run harmrank reproduce $(if $(DATA),--data $(DATA)) --out $(OUT)

# The platform's first minute: every service on this machine against demonstration backends.
demo: setup
	$(UV) run harmrank demo

postgres:
	@bash scripts/ensure-postgres.sh

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck: setup
	$(UV) run mypy

test: setup postgres lint typecheck
	$(UV) run pytest

# Each benchmark prints its figures; bench/README.md keeps the latest. The slow ones
# (judge at 600 requests/min, the 5,000-prompt run) take minutes: see their --help for quick runs.
bench: setup
	$(UV) run python bench/metrics.py
	$(UV) run python bench/reproduce.py
	$(UV) run python bench/generator.py
	$(UV) run python bench/task_queue.py
	$(UV) run python bench/claim_readiness.py
	$(UV) run python bench/gateway_load.py
	$(UV) run python bench/judge.py
	$(UV) run python bench/scale_run.py
	$(UV) run python bench/platform_overhead.py
	$(UV) run python bench/service_cost.py
	$(UV) run python bench/http_client_cost.py
	$(UV) run python bench/score_hop.py
	$(UV) run python bench/report_request.py
	$(UV) run python bench/demo.py
	$(UV) run python bench/hostile_load.py
	$(UV) run python bench/explore.py
	$(UV) run python bench/telemetry_reading.py

serve-metrics: setup
	$(UV) run harmrank serve metrics
