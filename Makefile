# One lock file (constraints.txt) drives every install: here, in CI and in docker/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WORK   ?= work
VARIANTS := medium-res high-res air-pollution ocean-waves
# Variants that `make run` takes through the pipeline (the tests narrow it to one).
RUN_VARIANTS ?= $(VARIANTS)
# More flags of `aurora-mlops pipeline run --local` (budgets: see its --help).
RUN_ARGS ?=
# pytest workers (pytest-xdist). The suite is CPU bound: one per core of the 2-core machines it
# is timed on; tests/_xdist.py groups the tests and gives each worker its share of the cores.
TEST_WORKERS ?= 2

.PHONY: help install lint test testdata run clean

help:
	@echo "make run       create .venv, install, run the main job on the embedded default"
	@echo "make test      create .venv if missing, install, lint and run the whole test suite"
	@echo "make lint      ruff + mypy"
	@echo "make testdata  fetch the real sample data that ships inside packages"

# The stamp holds the install's seconds, which make run's summary prints. tools/install.py
# installs with uv from the package sources pip is configured with (pip if uv fails).
$(STAMP): pyproject.toml constraints.txt tools/install.py
	start=$$(date +%s) && \
	{ test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } && \
	$(BIN)/python tools/install.py && \
	echo $$(( $$(date +%s) - start )) > $@

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests bench tools
	$(BIN)/mypy

testdata: install
	bash tests/data/fetch_testdata.sh .testdata

# Lint (CPU) and testdata (mostly downloads) overlap; then the suite.
test: install
	$(MAKE) --no-print-directory -j2 --output-sync=target lint testdata
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

run: install
	$(BIN)/aurora-mlops pipeline run --local --work-dir $(WORK) --variants $(RUN_VARIANTS) $(RUN_ARGS)

clean:
	rm -rf $(VENV) $(WORK) .testdata .pytest_cache .mypy_cache .ruff_cache
