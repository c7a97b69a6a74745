# pocketcloud: `make up` starts the cloud, `make test` runs every test against real engines.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PC := $(VENV)/bin/pocketcloud
PYTEST_ARGS ?=

.PHONY: up test compat venv engines images unit bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "[venv] installing pocketcloud and its test tools into $(VENV)"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test,vm,labs]'
	@touch $@

venv: $(VENV)/.installed

engines:
	@bash scripts/engines.sh

images: engines venv
	@$(PC) images build tiny

up: engines venv images
	@$(PC) serve

test: engines venv
	@$(PY) -m pytest -ra $(PYTEST_ARGS)

# Outside tools driving pocketcloud unmodified (Terraform's AWS provider, ...): needs terraform
# and the provider mirror, which the tests name when missing.
compat: engines venv
	@$(PY) -m pytest -ra tests/compat $(PYTEST_ARGS)

unit: venv
	@$(PY) -m pytest -ra tests/unit $(PYTEST_ARGS)

bench: engines venv images
	@$(PY) bench/container_start.py

clean:
	rm -rf $(VENV) .pytest_cache
