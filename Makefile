# Quick start: `make play` (install + open the instrument on the demo track), `make test`.
PYTHON ?= python3
VENV ?= .venv
# On Linux, PyPI's torch wheel is the CUDA build; on a machine with a local CPU wheel, that is used.
TORCH_SPEC ?= torch==2.13.0
TRACK ?= demo/energetic_electronic.opus
PLAY_ARGS ?=
BIN := $(VENV)/bin
export NUMBA_CACHE_DIR ?= $(CURDIR)/$(VENV)/numba-cache

.PHONY: install play test test-all clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[test]"
	# Pitch models that ship their weights: installed without their pinned deps (pesto-pitch wants
	# torchaudio, which breaks beside CPU torch; basic-pitch wants tensorflow). Their real runtime
	# deps are in pyproject.toml.
	$(BIN)/pip install -q --no-deps "pesto-pitch==2.0.1" "basic-pitch==0.4.0"
	# clip-anytorch ships CLIP's BPE vocabulary for the engine's tokenizer test fixtures; --no-deps: no torchvision
	$(BIN)/pip install -q --no-deps "clip-anytorch==2.6.0"
	touch $@

install: $(BIN)/.installed

play: install
	$(BIN)/sonosteer play $(TRACK) $(PLAY_ARGS)

test: install
	$(BIN)/python -m pytest

test-all: install
	$(BIN)/python -m pytest -m "not gpu"

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
