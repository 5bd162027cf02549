# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test install lint bench-normalize clean-var

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(INSTALLED)

install: $(INSTALLED)

.env: | $(INSTALLED)
	$(PY) scripts/write_local_env.py

# Web on :8000, Celery worker, celery-beat and (in demo mode) the fake platforms, together.
run: $(INSTALLED) .env
	@mkdir -p var/broker/queue var/broker/control var/broker/processed var/uploads
	$(PY) manage.py migrate --noinput
	$(PY) manage.py first_run
	$(VENV)/bin/honcho -f Procfile.dev start

test: $(INSTALLED)
	@scripts/ensure_chromium.sh
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
