# The two commands of a fresh machine: `make run` (the main job) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
OUT ?= out

.PHONY: run test lint typecheck check bench setup postgres serve-metrics

$(UV):
	$(PYTHON) -m pip install --user --quiet uv

setup: $(UV)
	$(UV) sync --frozen

run: setup
	$(UV) run harmrank reproduce --out $(OUT)

postgres:
	@bash scripts/ensure-postgres.sh

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck: setup
	$(UV) run mypy

test: setup postgres lint typecheck
	$(UV) run pytest

bench: setup
	$(UV) run python bench/metrics.py

serve-metrics: setup
	$(UV) run harmrank serve metrics
