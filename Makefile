# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# The web port of `make run` (the sandbox's ports are FAKE_PLATFORMS_URL, GOOGLE_ADS_ENDPOINT and
# GOOGLE_DATAMANAGER_ENDPOINT, see README).
WEB_PORT ?= 8000
export WEB_PORT

.PHONY: run admin test install lint bench-normalize clean-var

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(INSTALLED)

install: $(INSTALLED)

.env: | $(INSTALLED)
	$(PY) scripts/write_local_env.py

# Web on :8000, Celery worker, celery-beat and (in demo mode) the fake platforms, together; Ctrl-C stops
# them cleanly (scripts/run_dev.py).
run: $(INSTALLED) .env
	@mkdir -p var/broker/queue var/broker/control var/broker/processed var/uploads
	@chmod 0700 var/uploads  # customer files: the owner only (audiences/uploads.py keeps it so)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py first_run --url http://127.0.0.1:$(WEB_PORT)/
	exec $(PY) scripts/run_dev.py Procfile.dev

# An operator account of your own for the Django admin at /admin/ (in demo mode `make run` creates one).
admin: $(INSTALLED) .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createsuperuser

test: $(INSTALLED)
	@scripts/ensure_chromium.sh
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
