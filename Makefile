# The two commands of the README: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install system-deps stack-up stack-down lint test demo bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Independent verifiers the tests call (xmlsec1, xmllint); installed only when missing.
system-deps:
	@if ! command -v xmlsec1 >/dev/null || ! command -v xmllint >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing xmlsec1 and libxml2-utils from Debian"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1 libxml2-utils >/dev/null; \
	  else \
	    echo "please install xmlsec1 and libxml2-utils (sudo apt-get install xmlsec1 libxml2-utils)"; exit 1; \
	  fi; \
	fi

stack-up: $(STAMP)
	$(BIN)/coc stack up

stack-down: $(STAMP)
	$(BIN)/coc stack down

lint: $(STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Sizes of the e2e pipeline runs in `make test`: the acceptance sizes of issue 4 (500 builds
# with defects; 2,000 for each kill and for two signing instances). Smaller ones for a quick run:
#   make test E2E_SIGNING_KILL_BUILDS=300 E2E_FAULT_BUILDS=300
export E2E_PIPELINE_BUILDS ?= 500
export E2E_SIGNING_KILL_BUILDS ?= 2000
export E2E_FAULT_BUILDS ?= 2000

# Lint, then start the stack, run every test, and stop the stack even when tests fail.
test: $(STAMP) system-deps lint
	$(BIN)/coc stack up
	@status=0; $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	  $(BIN)/coc stack down || true; exit $$status

demo: $(STAMP)
	$(BIN)/coc demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	-$(BIN)/coc stack down
	rm -rf $(VENV) .state
