# omzoo: `make` lists the targets. Two commands on a fresh machine: `make setup`, then `make repro`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

#################################################################################
# GLOBALS                                                                       #
#################################################################################

PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
BS         ?=
MODEL      ?= *
BASE       ?= main
HEAD       ?=
FAIL_ON    ?=
BACKEND    ?=
# Values given on the command line never reach a shell as code: each is taken as its literal text ($(value):
# `HEAD='$(shell ...)'` is not expanded), exported, and recipes read it as "$$NAME", one quoted word, whatever it
# holds (`HEAD='x;{touch,pwned};echo'` is a branch name that does not exist, not a command).
# FIND_LINKS: where pip finds the CPU build of torch (pip reads it from its config; uv needs it spelled out).
USER_VARS  := PYTHON VENV BS MODEL BASE HEAD FAIL_ON BACKEND FORCE IMAGENET CIFAR FIND_LINKS
$(foreach v,$(USER_VARS),$(eval override $(v) := $$(value $(v))))
export $(USER_VARS)
UV         := "$$VENV/bin/uv" pip install --python "$$VENV/bin/python" \
              --find-links "$${FIND_LINKS:-$$(pip config get global.find-links 2>/dev/null || echo /opt/wheels)}"
DVC        := "$$VENV/bin/dvc"
OMZOO      := "$$VENV/bin/omzoo"
# $(call q,TEXT): TEXT as one single-quoted shell word, for the few places make itself must paste a value
q          = '$(subst ','\'',$(1))'

#################################################################################
# COMMANDS                                                                      #
#################################################################################

.PHONY: help
## Show this help
help:
	@awk '/^## /{h=substr($$0,4)} /^[a-zA-Z_-]+:/{if(h){split($$1,t,":");printf "  \033[36m%-16s\033[0m %s\n",t[1],h;h=""}}' $(MAKEFILE_LIST)

.PHONY: setup
## Create .venv: torch 2.13.0 (CPU) first, then omzoo and its pinned deps (constraints.txt); reinstalls on drift
setup: $(VENV)/.installed
	@echo "environment ready: $$VENV (activate with: source $$VENV/bin/activate)"

# The installed packages whose version is not their pin in constraints.txt (a `pip install onnxruntime==X` by hand,
# a branch's other pin), one "name version (pinned V)" each: `make setup` installs again then, not only when
# constraints.txt changed. A local version label (torch's +cpu) is not a difference; pip and setuptools come with
# the venv, not from constraints.txt. The venv's path reaches the shell single-quoted (q), as data.
DRIFT = $(shell test ! -x $(call q,$(BIN)/uv) || $(call q,$(BIN)/uv) pip freeze --python $(call q,$(BIN)/python) \
  2>/dev/null | awk -F'==' \
  'function n(s) { s = tolower(s); gsub(/[-_.]+/, "-", s); return s } \
   NR == FNR { if (NF == 2) pin[n($$1)] = $$2; next } \
   { v = $$2; sub(/\+.*/, "", v); k = n($$1) } \
   NF == 2 && (k in pin) && pin[k] != v && k != "pip" && k != "setuptools" { \
     printf "%s%s %s (pinned %s)", sep, k, v, pin[k]; sep = ", " }' \
  constraints.txt -)

.PHONY: reinstall-drifted
reinstall-drifted:
	@echo $(call q,setup: $(VENV) differs from constraints.txt ($(DRIFT)): installing the pins again)

$(VENV)/.installed: pyproject.toml constraints.txt $(if $(DRIFT),reinstall-drifted)
	test -x "$$VENV/bin/python" || "$$PYTHON" -m venv "$$VENV"
	test -x "$$VENV/bin/uv" || "$$VENV/bin/python" -m pip install -q "uv==0.13.9"
	$(UV) -q -c constraints.txt torch==2.13.0
	$(UV) -q -c constraints.txt -e '.[dev]'
	"$$VENV/bin/python" -c "import torch, onnx, onnxruntime, onnxsim, dvc, pydantic, ruamel.yaml; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch "$$VENV/.installed"

.PHONY: doctor
## Check that this host can run the configured backend, one line per check with the fix: make doctor [BACKEND=acl]
doctor: setup
	$(OMZOO) doctor $${BACKEND:+--backend "$$BACKEND"}

.PHONY: repro
## Run the whole pipeline (unchanged stages are skipped; benchmarks are always measured, never restored)
repro: setup
	$(DVC) repro --no-run-cache
	@$(DVC) status >/dev/null && echo "pipeline up to date: metrics/ and reports/summary.md"

.PHONY: bench
## Benchmark batch sizes and print the table: make bench [BS=32 | BS=1,8,32] [MODEL=glob] [FORCE=1]
bench: setup
	@$(OMZOO) sweep --bs "$$BS" --model "$$MODEL" $${FORCE:+--force}

.PHONY: report
## Rebuild reports/summary.md and the throughput plot from the current metrics
report: setup
	$(DVC) repro --no-run-cache report
	@cat reports/summary.md

.PHONY: plots
## Render the DVC throughput plot to reports/plots/index.html (offline, no CDN)
plots: setup
	$(OMZOO) compare --plots-only --out reports/plots

.PHONY: compare
## What a toolkit changed: make compare BASE=main HEAD=ort-1.31 [FAIL_ON=regression] (no HEAD: the workspace)
compare: setup
	$(OMZOO) compare "$$BASE" $${HEAD:+"$$HEAD"} $${FAIL_ON:+--fail-on "$$FAIL_ON"}

.PHONY: abtest
## A/B test two toolkits on this host in paired rounds: make abtest BASE=main HEAD=ort-1.31 [MODEL=glob] [BS=1,8] [FAIL_ON=regression]
abtest: setup
	$(OMZOO) abtest "$$BASE" $${HEAD:+"$$HEAD"} --model "$$MODEL" $${BS:+--bs "$$BS"} $${FAIL_ON:+--fail-on "$$FAIL_ON"}

.PHONY: link-data
## Link real data: make link-data IMAGENET=/data/imagenet (holds val/ + val_label.txt) CIFAR=/data/cifar-10-batches-py
link-data:
	@test -n "$$IMAGENET$$CIFAR" || { echo "usage: make link-data IMAGENET=<dir> CIFAR=<dir> (either or both)" >&2; exit 2; }
	@for d in "$$IMAGENET" "$$CIFAR"; do test -z "$$d" || test -d "$$d" || { echo "link-data: $$d is not a folder (nothing linked; a link to it would dangle)" >&2; exit 2; }; done
	@# only a link is replaced: a folder or file of yours at data/raw/<name> is never written into or over
	@for l in $${IMAGENET:+imagenet} $${CIFAR:+cifar-10-batches-py}; do ! test -e "data/raw/$$l" || test -L "data/raw/$$l" || { echo "link-data: data/raw/$$l exists and is not a link (your data?); nothing linked: move it away, or point datasets: in params.yaml at it" >&2; exit 2; }; done
	@mkdir -p data/raw
	@if test -n "$$IMAGENET"; then ln -sfn -- "$$(realpath -s -- "$$IMAGENET")" data/raw/imagenet; fi
	@if test -n "$$CIFAR"; then ln -sfn -- "$$(realpath -s -- "$$CIFAR")" data/raw/cifar-10-batches-py; fi
	@ls -l data/raw

.PHONY: test
## Run the test suite (the default run: unit tests, all five models' parity, one end-to-end dvc repro)
test: setup
	"$$VENV/bin/python" -m pytest -q -m "not slow"

.PHONY: test-all
## Run every test, slow ones included
test-all: setup
	"$$VENV/bin/python" -m pytest -q

.PHONY: bench-preprocess
## Preprocessing speed: the guides' one-.bin-per-image baseline vs omzoo shards, side by side
bench-preprocess: setup
	"$$VENV/bin/python" benchmarks/bench_preprocess.py

.PHONY: bench-stability
## Benchmarks on a busy machine: quiet vs competing load vs threads=1, medians with intervals, side by side
bench-stability: setup
	"$$VENV/bin/python" benchmarks/bench_stability.py --compare

.PHONY: bench-infer
## Runner overhead: infer-stage throughput vs pure bench throughput, same backend and batch size
bench-infer: setup
	"$$VENV/bin/python" benchmarks/bench_infer.py

.PHONY: bench-abtest
## Verdict resolution: A/A and A/B under a competing load, two runs (compare) vs paired rounds (abtest), side by side
bench-abtest: setup
	"$$VENV/bin/python" benchmarks/bench_abtest.py

.PHONY: bench-precision
## int8 vs fp32 on this CPU: paired int8/fp32 throughput ratio beside top-1 agreement, every model at bs 1 and 8 (~10 min quiet)
bench-precision: setup
	"$$VENV/bin/python" benchmarks/bench_precision.py

.PHONY: bench-faults
## Reliability: every case of the faults issue through the real commands, each in a temp dir: case | expected | got
bench-faults: setup
	"$$VENV/bin/python" benchmarks/bench_faults.py

.PHONY: lint
## Lint with ruff
lint: setup
	"$$VENV/bin/ruff" check src tests benchmarks

.PHONY: clean
## Remove pipeline outputs and caches (keeps .venv, the DVC cache and committed metrics)
clean:
	rm -rf models data/processed data/sample reports/plots .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
