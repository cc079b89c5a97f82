# alive — `make run` installs everything and serves the web page; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS := web,telegram,discord,redis,ml,gpu,dev
# Debian packages the tests need: a redis-server the tests start themselves, Chromium for the
# browser test.
SYSTEM_PACKAGES := redis-server chromium

.PHONY: install run test lint typecheck unit system-deps check-env bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: pip takes the CPU build; unpinned, it would pull a multi-GB CUDA one.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/pip install --quiet --no-deps mediapipe==0.10.14
	@touch $@

install: $(STAMP)

run: install
	$(BIN)/alive keys init
	$(BIN)/alive serve

system-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	ALIVE_CONFIG=config/test.toml $(BIN)/pytest

check-env: install
	$(BIN)/python scripts/check_env.py

test: install system-deps check-env
	$(MAKE) --no-print-directory lint typecheck unit

bench: install
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
