# Two entry points: `make demo` (fit the embedded default series) and `make test`.
# Torch is installed first and pinned, so the package install never pulls another build.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rnnkit-installed
TORCH := torch==2.13.0

.PHONY: demo test lint bench bench-scaling bench-panel bench-packing bench-coverage bench-accuracy bench-covariates setup clean chromium

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,tune,export,serve]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rnnkit demo sunspots --out runs/sunspots

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# The HTML report is checked in headless Chromium (Debian's package): installed here when it is
# missing and apt can install it (CI runs as root); elsewhere that one browser check skips.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq >/dev/null 2>&1 \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } \
	  || echo "note: chromium is not installed; the report's browser check will skip"

# Two workers: the tests train small models on one thread each (tests/conftest.py), so a
# 2-core machine runs two at once. Work stealing balances their uneven lengths best: 8 min 20 s
# against 9 min 19 s keeping each module on one worker (958 tests, this 2-core machine).
TEST_WORKERS ?= 2

test: lint chromium
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# Benchmarks are not part of `make test` (a smoke version of them is): they take minutes and
# want a quiet machine. Results land in benchmarks/RESULTS.md and benchmarks/SCALING.md.
bench: $(STAMP)
	$(PY) benchmarks/run.py --repeats 7
	$(PY) benchmarks/serve_latency.py
	$(PY) benchmarks/period.py
	$(PY) benchmarks/startup.py

bench-scaling: $(STAMP)
	$(PY) benchmarks/scaling.py

# Peak memory of panel fits of 1k, 10k and 100k series of length 500 (a few minutes, ~3 GB).
bench-panel: $(STAMP)
	$(PY) benchmarks/panel_memory.py

# Variable-length batches: rnnkit's masking against pack_padded_sequence.
bench-packing: $(STAMP)
	$(PY) benchmarks/packing.py

# Coverage of the default fit's prediction intervals on real and simulated series (~minutes).
bench-coverage: $(STAMP)
	$(PY) benchmarks/coverage.py --seeds 3

# default fit vs the best simple model on every real series (benchmarks/ACCURACY.md)
bench-accuracy: $(STAMP)
	$(PY) benchmarks/accuracy.py --seeds 3

# what calendar features add on daily Seattle temperatures, 1 and 30 days ahead (COVARIATES.md)
bench-covariates: $(STAMP)
	$(PY) benchmarks/covariates.py --seeds 3

clean:
	rm -rf runs .pytest_cache .ruff_cache
