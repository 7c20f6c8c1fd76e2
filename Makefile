# The two commands of the README: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install system-deps dss chart-tools chart-tools-started image stack-up stack-down lint test test-large test-cluster test-replicas demo bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# What the tests use besides Python: the independent verifiers (xmlsec1, xmllint), the
# browser (Debian's Chromium), the software HSM (SoftHSM2) and Prometheus with promtool
# (the alert rules' tests, `coc stack up --monitoring`) from Debian, installed only when
# missing; axe-core from npm.
system-deps: node_modules/axe-core/axe.min.js
	@if ! command -v xmlsec1 >/dev/null || ! command -v xmllint >/dev/null || ! command -v chromium >/dev/null || ! command -v softhsm2-util >/dev/null || ! command -v promtool >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing xmlsec1, libxml2-utils, chromium, softhsm2 and prometheus from Debian"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1 libxml2-utils chromium softhsm2 prometheus >/dev/null; \
	  else \
	    echo "please install xmlsec1, libxml2-utils, chromium, softhsm2 and prometheus (sudo apt-get install xmlsec1 libxml2-utils chromium softhsm2 prometheus)"; exit 1; \
	  fi; \
	fi

# The EU DSS reference validator the tests hold the seals to: its jars from Maven Central
# (tests/dss/pom.xml) and the small checker (tests/dss/DssCheck.java), built once into
# .cache/dss; Maven and a JDK from Debian when missing. Run offline afterwards.
DSS := .cache/dss
dss: $(DSS)/classes/DssCheck.class

$(DSS)/classes/DssCheck.class: tests/dss/pom.xml tests/dss/DssCheck.java
	@if ! command -v mvn >/dev/null || ! command -v javac >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing maven and a JDK from Debian"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven default-jdk-headless >/dev/null; \
	  else \
	    echo "please install maven and a JDK (sudo apt-get install maven default-jdk-headless)"; exit 1; \
	  fi; \
	fi
	rm -rf $(DSS) && mkdir -p $(DSS)/classes
	mvn -q -B -f tests/dss/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(DSS)/lib -DincludeScope=runtime
	javac -nowarn -cp '$(DSS)/lib/*' -d $(DSS)/classes tests/dss/DssCheck.java

# helm and kubeconform for the Helm chart's offline checks (tests/unit/deploy/test_chart.py), built from their
# Go modules into .cache/tools once (helm about 4-7 minutes on two cores the first time, then nothing).
chart-tools:
	deploy/helm/build-tools.sh .cache

# `make test` starts that build in the background at its start, at low priority, so it overlaps with the
# linters and the other tests; the chart test, which runs last, waits for it (the script holds a lock).
chart-tools-started:
	@mkdir -p .cache/tools
	@nohup nice -n 10 deploy/helm/build-tools.sh .cache > .cache/tools/build.log 2>&1 &

# The one image of every service (Containerfile), built without pulling a base image: a Debian root made with
# mmdebstrap, then buildah on vfs storage (deploy/image/build.sh; as root, about 4 minutes here); not part of `make test`.
image:
	deploy/image/build.sh

node_modules/axe-core/axe.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

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
#   make test E2E_PIPELINE_BUILDS=100 E2E_SIGNING_KILL_BUILDS=300 E2E_FAULT_BUILDS=300
export E2E_PIPELINE_BUILDS ?= 500
export E2E_SIGNING_KILL_BUILDS ?= 2000
export E2E_FAULT_BUILDS ?= 2000

# Tests that use the shared stack (COC_ defaults, .state/); the other e2e tests start a private
# stack of their own on other ports and run after the shared one is stopped, so only one stack
# runs at a time.
# The chart's checks run last, so the build of helm started with `make test` is done by then.
CHART_TESTS := tests/unit/deploy/test_chart.py
SHARED_STACK_TESTS := tests/unit tests/integration tests/e2e/test_stack.py --ignore=$(CHART_TESTS)
PRIVATE_STACK_TESTS := tests/e2e --ignore=tests/e2e/test_stack.py $(CHART_TESTS)

# Lint; the unit, integration and stack tests with the shared stack up; stop it; the e2e tests
# on their private stacks. The shared stack is stopped at the end even when tests fail, and the
# exit status is that of the first part that failed.
test: chart-tools-started $(STAMP) system-deps dss lint
	@status=0; \
	  { $(BIN)/coc stack up && $(BIN)/pytest $(PYTEST_ARGS) --durations=10 $(SHARED_STACK_TESTS); } || status=$$?; \
	  $(BIN)/coc stack down || true; \
	  $(BIN)/pytest $(PYTEST_ARGS) --durations=15 $(PRIVATE_STACK_TESTS) || { [ $$status != 0 ] || status=$$?; }; \
	  exit $$status

# Issue 11's kill of signing and archive in the middle of a 20,000-build run, on a private stack
# (4-10 minutes here, by the day of the machine); not part of `make test`.
test-large: $(STAMP)
	E2E_LARGE_KILL_BUILDS=20000 $(BIN)/pytest $(PYTEST_ARGS) tests/e2e/test_pipeline_faults.py -k large_run

# The three-broker cluster mode (coc stack up --brokers 3: replication 3, SASL_SSL with SCRAM, ACLs
# per service) on a private stack, about 3 minutes; then issue 29's faults on a cluster stack with
# two of each service (brokers, the controller and one instance of each service killed, a broker
# paused) in a run of E2E_CLUSTER_FAULT_BUILDS builds (default 20,000); not part of `make test`.
test-cluster: $(STAMP)
	E2E_CLUSTER=1 $(BIN)/pytest $(PYTEST_ARGS) tests/e2e/test_kafka_cluster.py tests/e2e/test_cluster_faults.py

# Every service twice (coc stack up --replicas 2) on a private stack: the work shared, one instance
# of each killed in a 600-build run, nothing lost or sent twice; 4.7 minutes here; not part of `make test`.
test-replicas: $(STAMP)
	E2E_REPLICAS=1 $(BIN)/pytest $(PYTEST_ARGS) tests/e2e/test_replicas.py

demo: $(STAMP)
	$(BIN)/coc demo

bench: $(STAMP)
	$(BIN)/python -m bench

# Stops the stack and removes the environment and the stack's state (data, logs, tokens, dev seal).
# Kept: .cache/ (Kafka jars, the FerretDB build; remove it to rebuild), out/, ~/.m2 and Go's caches.
clean:
	-$(BIN)/coc stack down
	rm -rf $(VENV) .state node_modules
