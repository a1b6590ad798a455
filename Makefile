# Two commands do all set-up on a fresh clone:
#   make demo   creates .venv, installs freezedsl, applies rules/resnet.frz to a ResNet-18
#   make test   creates .venv if needed and runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/freezedsl show torchvision.models:resnet18 --depth 1
	$(BIN)/freezedsl plan rules/resnet.frz torchvision.models:resnet18

test: $(STAMP)
	bash tools/run_tests.sh $(BIN)/python

lint: $(STAMP)
	$(BIN)/ruff check freezedsl tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info
