# Two commands do everything on a fresh machine:
#   make demo   set up .venv, then run the whole journey on the built-in demo corpus
#   make test   set up .venv, then lint (ruff check + ruff format --check) and the test suite
#   make gpu-check   on a CUDA machine: the GPU check (make gpu-check-cpu: its toy run on the CPU)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint setup clean gpu-check gpu-check-cpu chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/audioclr demo --out demo_out

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the GPU check (benchmarks/gpu_check.py): CUDA paths, throughput, a 4-minute pretrain + probe
# in <= 8 min, report in benchmarks/results/gpu.md; gpu-check-cpu: the same steps at toy size.
# Offline, with the dependencies already installed: make gpu-check STAMP= PY=python3
gpu-check: $(STAMP)
	PYTHONPATH=. $(PY) benchmarks/gpu_check.py $(ARGS)

gpu-check-cpu: $(STAMP)
	PYTHONPATH=. $(PY) benchmarks/gpu_check.py --cpu $(ARGS)

test: lint
	$(PY) -m pytest

# headless Chromium + its driver for the browser tests (tests/test_search_page.py skips without
# them): Debian's packages, installed only when missing and only where apt-get exists
chromium:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -q && $$sudo apt-get install -y -q chromium chromium-driver; \
	else echo "no apt-get: install chromium and chromedriver, or the browser tests skip"; fi

clean:
	rm -rf demo_out .pytest_cache
