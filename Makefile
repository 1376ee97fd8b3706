# Two entry points: `make demo` (fit the embedded default series) and `make test`.
# Torch is installed first and pinned, so the package install never pulls another build.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rnnkit-installed
TORCH := torch==2.13.0

.PHONY: demo test lint bench setup clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rnnkit demo sunspots --out runs/sunspots

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

test: lint
	$(PY) -m pytest -q

clean:
	rm -rf runs .pytest_cache .ruff_cache
