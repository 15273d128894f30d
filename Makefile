# Developer commands; the Python is the venv the README's commands make.
PY ?= .venv/bin/python

.PHONY: test test-fast lint rerecord bench

test:  ## what .ci/run runs after lint: the harness's tests, then the whole loop on the default model
	$(PY) -m pytest tests evals

test-fast:  ## the harness's tests without those that load the real model or train
	$(PY) -m pytest tests -m "not slow"

lint:
	$(PY) -m ruff check .

rerecord:  ## re-record golden/<base model>@<this runtime>/ (review and commit it with the change that moved it)
	$(PY) -m pytest evals --update-expectations

bench:  ## GPU: every speed target in one run
	$(PY) -m training.benchmark
