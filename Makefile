# meanfield — every target creates .venv and installs the package first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := dev,cuda,dask
# quiet installs: build-backend deprecation notices and the editable-install
# notice are not errors (-qq still prints errors)
PIP    := PYTHONWARNINGS=ignore $(BIN)/python -m pip install -qq

.PHONY: venv demo test test-slow test-gpu bench lint clean test-torch bench-torch mutations bench-brian2

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m meanfield.figures demo

# two workers (one per core): most of the suite is single-threaded compilation
test: $(STAMP)
	NUMBA_NUM_THREADS=1 $(BIN)/python -m pytest -m "not gpu and not slow" -q -n 2 --dist loadfile

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow" -q

test-gpu: $(STAMP)
	$(BIN)/python -m pytest -m "gpu" -q

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check meanfield sims figures bench tests

clean:
	rm -rf $(VENV) figures/out .pytest_cache .hypothesis

# the [torch] extra in its own virtualenv (never the core install): LDFALinear, LDFAConv2d.
# TORCH_SPEC is installed FIRST: this machine keeps a CPU build of torch 2.13.0 (Python 3.11)
# on disk that `pip install torch==2.13.0` takes; the extra's range (torch>=2.2) with no torch
# installed would pull a multi-GB CUDA build. Elsewhere: make test-torch TORCH_SPEC=torch
TORCH_SPEC  ?= torch==2.13.0
VENV_TORCH  := .venv-torch
TORCH_STAMP := $(VENV_TORCH)/.installed
PIP_TORCH   := PYTHONWARNINGS=ignore $(VENV_TORCH)/bin/python -m pip install -qq

$(TORCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV_TORCH)
	$(PIP_TORCH) "$(TORCH_SPEC)"
	$(PIP_TORCH) -e ".[torch,dev]"
	touch $(TORCH_STAMP)

test-torch: $(TORCH_STAMP)
	NUMBA_NUM_THREADS=1 $(VENV_TORCH)/bin/python -m pytest -q -p no:cacheprovider tests/feedback_alignment/test_torch_layers.py tests/feedback_alignment/test_fa_bench.py

# bench/fa.py with the torch rows (one epoch against torch autograd, the LDFA layer in torch)
bench-torch: $(TORCH_STAMP)
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(VENV_TORCH)/bin/python -m bench --only fa

# issue 8: each deliberate breakage of tests/mutations/_mutants.py must fail its tests
mutations: $(STAMP)
	NUMBA_NUM_THREADS=2 $(BIN)/python -m pytest tests/mutations -m "slow or not slow" -q

# issue 10: predictive-coding networks against Brian2 in its own environment (Brian2 2.9
# needs numpy < 2.4; the package's numpy stays unpinned)
.venv-brian2/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-brian2
	PYTHONWARNINGS=ignore .venv-brian2/bin/python -m pip install -qq -e . brian2 "numpy<2.4"
	touch .venv-brian2/.installed

bench-brian2: .venv-brian2/.installed
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv-brian2/bin/python bench/brian2_network.py
