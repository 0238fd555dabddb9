# spectrovision: two commands on a fresh machine with Python 3.11.
#   make demo   -> .venv, pinned deps, demo data, the whole workflow on the CPU
#   make test   -> the test suite (unit, lint, workflow dry-runs, tiny end-to-end runs)
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= 2
# concurrent train/predict jobs: on a CPU-only machine the "gpu" slots just bound how many
# run side by side (each job leases a real GPU when there is one)
DEMO_GPU_SLOTS ?= 2
DEMO_DIR ?= data/demo
SNAKEMAKE := $(BIN)/snakemake
STAMP  := $(VENV)/.installed

.PHONY: demo test install demo-data lint bench clean-results

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel setuptools
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

$(DEMO_DIR)/metadata.csv: | $(STAMP)
	$(BIN)/spectrovision demo-data --out $(DEMO_DIR)

demo-data: $(DEMO_DIR)/metadata.csv

demo: $(STAMP) $(DEMO_DIR)/metadata.csv
	PATH=$(abspath $(BIN)):$$PATH $(SNAKEMAKE) --cores $(CORES) --resources gpu=$(DEMO_GPU_SLOTS) --configfile config/config.yaml
	@echo "demo done: results/submission.csv, results/ensemble/scores.csv, results/report/"

test: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(SNAKEMAKE) --lint --configfile config/config.yaml
	$(BIN)/snakefmt --check Snakefile workflow/

# the speed benchmarks (each prints its numbers; docs/benchmarks.md records them with commands)
BENCHES ?= bench_render bench_train bench_ensemble bench_tabular bench_dag
bench: $(STAMP)
	set -e; for b in $(BENCHES); do echo "== $$b"; PATH=$(abspath $(BIN)):$$PATH $(BIN)/python bench/$$b.py; done

clean-results:
	rm -rf results .snakemake/metadata
