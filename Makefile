# The two commands a new machine needs: `make demo` (the main job, end to end, on generated data)
# and `make test`. Both create .venv and install the three packages editable when needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# A CPU wheel of torch shipped with the machine is preferred over the registry's CUDA build.
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-*+cpu-*.whl))
TORCH_SPEC  := $(if $(TORCH_WHEEL),$(TORCH_WHEEL),torch>=2.4)
DEMO_OUT ?= demo-out

.PHONY: demo test lint typecheck check bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt packages/*/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	# fusion-emotion names its siblings by path, so this brings all three and their deps;
	# then the three are replaced by editable installs (pip refuses both in one command).
	$(BIN)/python -m pip install -q ./packages/fusion-emotion -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -e packages/biosig-prep -e packages/criss-cross \
		-e packages/fusion-emotion
	touch $(STAMP)

demo: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH bash tools/demo.sh $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check packages tools tests

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

bench: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH bash tools/bench/run_all.sh

clean:
	rm -rf $(VENV) $(DEMO_OUT)
