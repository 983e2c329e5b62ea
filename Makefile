# omzoo: `make` lists the targets. Two commands on a fresh machine: `make setup`, then `make repro`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

#################################################################################
# GLOBALS                                                                       #
#################################################################################

PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
# Where pip finds the CPU build of torch (pip reads it from its config; uv needs it spelled out).
FIND_LINKS ?= $(shell pip config get global.find-links 2>/dev/null || echo /opt/wheels)
UV         := $(BIN)/uv pip install --python $(BIN)/python --find-links $(FIND_LINKS)
DVC        := $(BIN)/dvc
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
BS         ?=
MODEL      ?= *
BASE       ?= main
HEAD       ?=
FAIL_ON    ?=
BACKEND    ?=

#################################################################################
# COMMANDS                                                                      #
#################################################################################

.PHONY: help
## Show this help
help:
	@awk '/^## /{h=substr($$0,4)} /^[a-zA-Z_-]+:/{if(h){split($$1,t,":");printf "  \033[36m%-16s\033[0m %s\n",t[1],h;h=""}}' $(MAKEFILE_LIST)

.PHONY: setup
## Create .venv: torch 2.13.0 (CPU) first, then omzoo and its pinned deps (constraints.txt); reinstalls on drift
setup:
	$(if $(DRIFT),@echo "setup: $(VENV) differs from constraints.txt ($(DRIFT)): installing the pins again" && rm -f $(VENV)/.installed)
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) $(VENV)/.installed
	@echo "environment ready: $(VENV) (activate with: source $(BIN)/activate)"

# The installed packages whose version is not their pin in constraints.txt (a `pip install onnxruntime==X` by hand,
# a branch's other pin), one "name version (pinned V)" each: `make setup` installs again then, not only when
# constraints.txt changed. A local version label (torch's +cpu) is not a difference; pip and setuptools come with
# the venv, not from constraints.txt.
DRIFT = $(shell test ! -x $(BIN)/uv || $(BIN)/uv pip freeze --python $(BIN)/python 2>/dev/null | awk -F'==' \
  'function n(s) { s = tolower(s); gsub(/[-_.]+/, "-", s); return s } \
   NR == FNR { if (NF == 2) pin[n($$1)] = $$2; next } \
   { v = $$2; sub(/\+.*/, "", v); k = n($$1) } \
   NF == 2 && (k in pin) && pin[k] != v && k != "pip" && k != "setuptools" { \
     printf "%s%s %s (pinned %s)", sep, k, v, pin[k]; sep = ", " }' \
  constraints.txt -)

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install -q "uv==0.13.9"
	$(UV) -q -c constraints.txt torch==2.13.0
	$(UV) -q -c constraints.txt -e '.[dev]'
	$(BIN)/python -c "import torch, onnx, onnxruntime, onnxsim, dvc; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

.PHONY: doctor
## Check that this host can run the configured backend, one line per check with the fix: make doctor [BACKEND=acl]
doctor: setup
	$(BIN)/omzoo doctor $(if $(BACKEND),--backend $(BACKEND),)

.PHONY: repro
## Run the whole pipeline (unchanged stages are skipped; benchmarks are always measured, never restored)
repro: setup
	$(DVC) repro --no-run-cache
	@$(DVC) status >/dev/null && echo "pipeline up to date: metrics/ and reports/summary.md"

.PHONY: bench
## Benchmark batch sizes and print the table: make bench [BS=32 | BS=1,8,32] [MODEL=glob] [FORCE=1]
bench: setup
	@$(BIN)/omzoo sweep --bs '$(BS)' --model '$(MODEL)' $(if $(FORCE),--force,)

.PHONY: report
## Rebuild reports/summary.md and the throughput plot from the current metrics
report: setup
	$(DVC) repro --no-run-cache report
	@cat reports/summary.md

.PHONY: plots
## Render the DVC throughput plot to reports/plots/index.html (offline, no CDN)
plots: setup
	$(BIN)/omzoo compare --plots-only --out reports/plots

.PHONY: compare
## What a toolkit changed: make compare BASE=main HEAD=ort-1.31 [FAIL_ON=regression] (no HEAD: the workspace)
compare: setup
	$(BIN)/omzoo compare $(BASE) $(HEAD) $(if $(FAIL_ON),--fail-on $(FAIL_ON),)

.PHONY: link-data
## Link real data: make link-data IMAGENET=/data/imagenet (holds val/ + val_label.txt) CIFAR=/data/cifar-10-batches-py
link-data:
	@test -n "$(IMAGENET)$(CIFAR)" || { echo "usage: make link-data IMAGENET=<dir> CIFAR=<dir> (either or both)" >&2; exit 2; }
	@for d in $(IMAGENET) $(CIFAR); do test -d "$$d" || { echo "link-data: $$d is not a folder (nothing linked; a link to it would dangle)" >&2; exit 2; }; done
	@mkdir -p data/raw
	$(if $(IMAGENET),ln -sfn $(abspath $(IMAGENET)) data/raw/imagenet,)
	$(if $(CIFAR),ln -sfn $(abspath $(CIFAR)) data/raw/cifar-10-batches-py,)
	@ls -l data/raw

.PHONY: test
## Run the test suite (the default run: unit tests, all five models' parity, one end-to-end dvc repro)
test: setup
	$(BIN)/python -m pytest -q -m "not slow"

.PHONY: test-all
## Run every test, slow ones included
test-all: setup
	$(BIN)/python -m pytest -q

.PHONY: bench-preprocess
## Preprocessing speed: the guides' one-.bin-per-image baseline vs omzoo shards, side by side
bench-preprocess: setup
	$(BIN)/python benchmarks/bench_preprocess.py

.PHONY: bench-stability
## Benchmarks on a busy machine: quiet vs competing load vs threads=1, medians with intervals, side by side
bench-stability: setup
	$(BIN)/python benchmarks/bench_stability.py --compare

.PHONY: bench-infer
## Runner overhead: infer-stage throughput vs pure bench throughput, same backend and batch size
bench-infer: setup
	$(BIN)/python benchmarks/bench_infer.py

.PHONY: bench-faults
## Reliability: every case of the faults issue through the real commands, each in a temp dir: case | expected | got
bench-faults: setup
	$(BIN)/python benchmarks/bench_faults.py

.PHONY: lint
## Lint with ruff
lint: setup
	$(BIN)/ruff check src tests benchmarks

.PHONY: clean
## Remove pipeline outputs and caches (keeps .venv, the DVC cache and committed metrics)
clean:
	rm -rf models data/processed data/sample reports/plots .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
