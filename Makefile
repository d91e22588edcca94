# eenet-pipeline. `make demo` and `make test` each set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
FMNIST := /usr/share/datasets/fashion-mnist
export HF_HUB_OFFLINE := 1
# no usage reports or update checks from DVC (no internet here)
export DVC_NO_ANALYTICS := 1

.PHONY: demo test lint bench data clean help dvc-yaml record push pull checkout lineage report seeds browser
TARGETS ?= results/fashion_mnist/curve.pdf
FILE ?= results/fashion_mnist/curve.pdf

help:
	@echo "make demo   - install, then run the default benchmark -> results/fashion_mnist/curve.pdf"
	@echo "make test   - install, then run the test suite"
	@echo "make report - the demo's figures, tables and examples, then results/report.html (snakemake --report)"
	@echo "make seeds  - the 3-seed study -> results/fashion_mnist_3seeds/curve.pdf, stats.csv, summary.csv"
	@echo "make lint   - snakemake --lint, snakefmt --check, ruff check, generated files up to date"
	@echo "make bench  - time the demo pipeline and a dry run -> benchmarks/out/"
	@echo "make record - after a run, code committed: dvc.yaml from the job graph, dvc commit, re-sync Snakemake (TARGETS=results/fashion_mnist/curve.pdf)"
	@echo "make push / make pull - move artifacts to / from the DVC remote (pull: nothing re-runs afterwards)"
	@echo "make checkout - restore tracked artifacts from the DVC cache"
	@echo "make lineage FILE=results/fashion_mnist/curve.pdf - the artifacts behind a file, stale ones flagged"

# pip byte-compiles what it installs (its default; keep it): where PYTHONDONTWRITEBYTECODE is set, as on these machines,
# nothing is compiled later, and with `pip install --no-compile` every process compiled torch anew (import torch,
# torchvision, matplotlib: 6.5 s instead of 3.0 s; make test 15:49 instead of 11:13).
$(BIN)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# The packaged Fashion-MNIST (Debian's dataset-fashion-mnist) when it is missing and apt-get can be used;
# otherwise the pipeline falls back to torchvision's download.
data:
	@if [ ! -d $(FMNIST) ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	      || echo "apt-get could not install dataset-fashion-mnist; torchvision will download it"; \
	  else echo "$(FMNIST) missing and apt-get unusable; torchvision will download Fashion-MNIST"; fi; \
	fi

# Debian's headless Chromium, in which the tests open the Snakemake report (tests/test_report.py).
browser:
	@if ! command -v chromium-headless-shell >/dev/null && ! command -v chromium >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq chromium-headless-shell >/dev/null) \
	      || echo "apt-get could not install chromium-headless-shell: the report tests will fail"; \
	  else echo "chromium-headless-shell missing and apt-get unusable: the report tests will fail"; fi; \
	fi

demo: $(BIN)/.installed data
	$(BIN)/snakemake --cores $(CORES) results/fashion_mnist/curve.pdf
	@echo "-> results/fashion_mnist/curve.pdf, curve.png, summary.csv"

# The Snakemake report of REPORT (every figure with its caption, the tables, the config, each rule's provenance).
REPORT ?= results/fashion_mnist/curve.pdf results/fashion_mnist/examples.pdf results/fashion_mnist/tables.html results/fashion_mnist/reliability.pdf
report: $(BIN)/.installed data
	$(BIN)/snakemake --cores $(CORES) $(REPORT)
	$(BIN)/snakemake --report results/report.html $(REPORT)
	@echo "-> results/report.html"

seeds: $(BIN)/.installed data
	$(BIN)/snakemake --cores $(CORES) results/fashion_mnist_3seeds/curve.pdf results/fashion_mnist_3seeds/tables.html
	@echo "-> results/fashion_mnist_3seeds/curve.pdf, stats.csv, summary.csv, tables.html; each seed in seed<s>/"

# Two pytest workers; a test file stays on one worker (--dist loadfile), so that a module's shared run is made once.
TEST_WORKERS ?= 2
test: $(BIN)/.installed data browser
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(BIN)/.installed
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/python -m eenet.pipeline.generated check
	$(BIN)/python -m eenet.analysis.results_doc check
	$(BIN)/ruff check .

bench: $(BIN)/.installed data
	$(BIN)/python benchmarks/time_pipeline.py --cores $(CORES)

# DVC: Snakemake runs the jobs, DVC records content hashes, lineage and moves artifacts between machines.
dvc-yaml: $(BIN)/.installed
	$(BIN)/python -m eenet.pipeline.dvc write $(TARGETS)

record: $(BIN)/.installed
	$(BIN)/python -m eenet.pipeline.dvc record $(TARGETS) $(if $(ALLOW_DIRTY),--allow-dirty)

push: $(BIN)/.installed
	$(BIN)/python -m eenet.pipeline.dvc push

pull: $(BIN)/.installed
	$(BIN)/python -m eenet.pipeline.dvc pull $(TARGETS)

checkout: $(BIN)/.installed
	$(BIN)/python -m eenet.pipeline.dvc checkout $(TARGETS)

lineage: $(BIN)/.installed
	$(BIN)/python -m eenet.pipeline.lineage $(FILE)

clean:
	rm -rf results logs .snakemake
