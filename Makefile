# pla-tvm: `make demo` and `make test` set everything up themselves (idempotently).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pla-tvm-installed
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc libc6-dev bubblewrap
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: setup apt venv test test-slow demo bench lint clean

setup: apt venv

# Debian packages: the Arm bare-metal toolchain, newlib and QEMU, a host C compiler for the
# QEMU instruction-counting plugin micro builds, bubblewrap (the sandbox firmware runs in);
# python3-venv where the interpreter cannot create virtual environments (Debian's python3
# without it).
apt:
	@missing=""; \
	for package in $(APT_PACKAGES); do \
	  dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "== installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else echo "== Debian packages present: $(APT_PACKAGES)"; fi

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@echo "== creating $(VENV) and installing pla-tvm with pinned dependencies (first time: ~3 GB, a few minutes)"
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip check
	touch $(STAMP)

test: setup
	$(PY) -m pytest -m "not slow" tests

test-slow: setup
	$(PY) -m pytest -m slow tests

demo: setup
	$(PY) -m pla_tvm.demo

bench: setup
	$(PY) -m pla_tvm.bench

lint: setup
	$(PY) -m ruff check pla_tvm relay_passes micro tests

clean:
	rm -rf build *.egg-info .pytest_cache
