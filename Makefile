# The two commands a user needs: `make run` and `make test`. Both set everything up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
LINT_PATHS := src tests bench migrations

.PHONY: run test lint fmt bench install dev clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Forgeyard needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	# uv installs in about a second what pip takes half a minute for; pip is the fallback.
	$(BIN)/python -m pip install -q --disable-pip-version-check uv || true

# Installs the package and records the pyproject.toml it was installed from.
define install_with
	if [ -x $(BIN)/uv ]; then \
		$(BIN)/uv pip install -q --python $(BIN)/python -e '.[$(1)]'; \
	else \
		$(BIN)/python -m pip install -q -e '.[$(1)]'; \
	fi
endef

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(call install_with,postgres,redis)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(call install_with,dev)
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	$(BIN)/forgeyard serve --runner

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

bench: $(VENV)/.installed-dev
	bash bench/ensure-tools.sh
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
