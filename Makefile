# robust-ssl: `make test` runs the tests; `make install` builds .venv/ (run by both as needed).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Pinned: these builds are on the CI machines' disk (setup.cfg states the ranges we support).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install test clean-venv

install: $(VENV)/.installed

# The stamp depends on setup.cfg, so a new dependency reinstalls on the next make.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
