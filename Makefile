# Every target makes its own virtualenv; nothing beyond Python 3.10+ and make is needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# The extras the virtualenv gets (.ci/matrix's oldest run leaves out `frameworks`).
EXTRAS ?= test,lint,frameworks

.PHONY: venv test lint format demo docs bench bench-quick clean browser

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "rediscron needs Python 3.10 or newer; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# setuptools warns at length about every editable install; the warning is not ours to fix.
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

venv: $(STAMP)

# Then .ci/matrix: the oldest Python with the oldest dependencies, and the newest Python, where
# this machine has them (MATRIX=0 skips it).
MATRIX ?= 1
# LINT=0 skips `make lint` (the matrix does: it lints once, here); COVERAGE= drops the coverage summary.
LINT ?= 1
COVERAGE ?= --cov=rediscron --cov-report=term:skip-covered
test: $(if $(filter 0,$(LINT)),$(STAMP),lint) browser
	$(BIN)/python -m pytest $(COVERAGE) $(PYTEST_ARGS)
ifneq ($(MATRIX),0)
	@bash .ci/matrix
endif

# Debian's Chromium for the web page's browser tests: installed when missing and possible, else a loud warning.
browser:
	@bash tests/browser_setup.sh

# The same checks as .pre-commit-config.yaml: lint, formatting (`make format` fixes it), types.
LINTED := rediscron tests benchmarks examples
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

# REDIS_URL=redis://... uses an existing Redis instead of a throwaway one.
demo: $(STAMP)
	@REDIS_URL=$(REDIS_URL) $(BIN)/python -m examples.demo

# The docs site (mkdocs, material theme, API pages from the docstrings) in site/; warnings fail it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The benchmark suite (benchmarks/README.md): a throwaway Redis unless BENCH_ARGS="--url redis://...".
# Measured with the optional hiredis extra, as a deployment that cares about speed runs.
bench: $(STAMP)
	@$(BIN)/python -c 'import hiredis' 2>/dev/null || PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[hiredis]'
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

bench-quick: $(STAMP)
	@$(BIN)/python -c 'import hiredis' 2>/dev/null || PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[hiredis]'
	$(BIN)/python -m benchmarks --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-oldest .venv-newest .redis7 .pytest_cache .mypy_cache .ruff_cache build dist site *.egg-info
