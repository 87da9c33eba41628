# One lock file (constraints.txt) drives every install: here, in CI and in docker/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WORK   ?= work
VARIANTS := medium-res high-res air-pollution ocean-waves
# Variants that `make run` sweeps, evaluates and benchmarks (the tests narrow it to one).
SWEEP_VARIANTS ?= $(VARIANTS)
# Budget of the final fit of each sweep's best parameters (the sweeps' own trials are short).
FINAL_FIT ?= --epochs=16 --steps_per_epoch=50 --patience=16

.PHONY: help install lint test testdata run clean

help:
	@echo "make run       create .venv, install, run the main job on the embedded default"
	@echo "make test      create .venv if missing, install, lint and run the whole test suite"
	@echo "make lint      ruff + mypy"
	@echo "make testdata  fetch the real sample data that ships inside packages"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=24'
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

testdata: install
	bash tests/data/fetch_testdata.sh .testdata

test: install lint testdata
	$(BIN)/python -m pytest

run: install
	@set -e; for v in $(VARIANTS); do \
	  $(BIN)/aurora-mlops data synth --variant $$v --out $(WORK)/data/$$v.nc; \
	  $(BIN)/aurora-mlops data validate $(WORK)/data/$$v.nc --variant $$v --report $(WORK)/reports/$$v; \
	done
	@set -e; for v in $(SWEEP_VARIANTS); do \
	  $(BIN)/aurora-mlops tune katib/smoke/$$v-random.yaml --backend local \
	    --work-dir $(WORK)/sweeps/$$v --data-dir $(WORK)/data; \
	  $(BIN)/aurora-mlops train-trial --variant $$v --data $(WORK)/data/$$v.nc --profile smoke \
	    --output $(WORK)/final/$$v --from-sweep $(WORK)/sweeps/$$v $(FINAL_FIT); \
	  $(BIN)/aurora-mlops evaluate --model $(WORK)/final/$$v --data $(WORK)/data/$$v.nc \
	    --variant $$v --out $(WORK)/eval/$$v; \
	  $(BIN)/aurora-mlops benchmark --model $(WORK)/final/$$v --variant $$v \
	    --out $(WORK)/bench/$$v --repeats 3 --train-steps 2; \
	done
	$(BIN)/aurora-mlops report --from-dir $(WORK) --out $(WORK)/report
	@echo "done: open $(WORK)/report/report.html"

clean:
	rm -rf $(VENV) $(WORK) .testdata .pytest_cache .mypy_cache .ruff_cache
