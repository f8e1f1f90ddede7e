# cofi: local servers, services and tests. Everything lives under .local/ (ignored by git).
#   make test      installs what is missing (scripts/bootstrap.sh), starts Kafka + MariaDB, runs pytest
#   make up/down   whole pipeline on this machine; make status shows what runs
SHELL := /bin/bash
.DEFAULT_GOAL := help
# bootstrap and the servers share .local/ and apt/Maven: never run recipes in parallel.
.NOTPARALLEL:

PY := .venv/bin/python
PYTEST_ARGS ?=
# Test files run TEST_WORKERS at a time (pytest-xdist; a file's tests stay together, so a module's private
# servers start once): most tests wait on Kafka, MariaDB or a subprocess, not on the CPU. 1 = one at a time.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q $(if $(filter-out 0 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile,)
# make up KAFKA_BROKERS=3: a local 3-broker KRaft cluster (scripts/kafka.sh), every topic replicated
# min(N, 3) times with min.insync.replicas = replicas - 1; services get every broker as bootstrap.
KAFKA_BROKERS ?= 1
ifneq ($(KAFKA_BROKERS),1)
export KAFKA_BOOTSTRAP_SERVERS ?= $(shell KAFKA_BROKERS=$(KAFKA_BROKERS) bash scripts/kafka.sh bootstrap)
export TOPIC_REPLICATION ?= $(if $(filter 2,$(KAFKA_BROKERS)),2,3)
endif
export KAFKA_BOOTSTRAP_SERVERS ?= localhost:9092
export DATABASE_URL ?= mysql+pymysql://cofi:cofi@127.0.0.1:3306/cofi
# KAFKA_SECURITY=sasl_ssl make up/demo: the broker with TLS, SCRAM and ACLs; each command logs in as its principal
as_principal = $(if $(filter sasl_ssl,$(KAFKA_SECURITY)),env $$(bash scripts/kafka.sh client-env $(1)),)

.PHONY: help bootstrap servers up down test test-all demo lint status constraints

help:
	@echo "make bootstrap   install Debian packages, .venv (pip install -e '.[all,dev]'), Kafka jars"
	@echo "make servers     start Kafka (localhost:9092; KAFKA_BROKERS=3: a 3-broker cluster on 9092/9094/9096) and MariaDB (127.0.0.1:3306) from .local/"
	@echo "make up          servers + python -m cofi.ops.admin init (topics, migrations) + all services, the console (:8090), Prometheus (:9090)"
	@echo "make down        stop the services, then Kafka and MariaDB"
	@echo "make test        bootstrap + servers + pytest -q, 2 test files at once (TEST_WORKERS=1: one; PYTEST_ARGS=... to pass more)"
	@echo "make test-all    same, including slow tests (-m \"\")"
	@echo "make demo        bootstrap + up + python -m cofi.ops.demo"
	@echo "make lint        ruff check . + dead code (vulture, whitelist in vulture_whitelist.py)"
	@echo "make status      what runs"
	@echo "make constraints write constraints.txt (the versions pip installs) from .venv, once make test passed on it"

bootstrap:
	bash scripts/bootstrap.sh

servers:
	bash scripts/mariadb.sh start
	bash scripts/kafka.sh start

up: servers
	$(call as_principal,admin) $(PY) -m cofi.ops.admin init
	bash scripts/services.sh start
	bash scripts/prometheus.sh start

down:
	bash scripts/prometheus.sh stop
	bash scripts/services.sh stop
	bash scripts/kafka.sh stop
	bash scripts/mariadb.sh stop

test: bootstrap servers
	$(PYTEST) $(PYTEST_ARGS)

test-all: bootstrap servers
	$(PYTEST) -m "" $(PYTEST_ARGS)

demo: bootstrap up
	$(call as_principal,submitter) $(PY) -m cofi.ops.demo

lint:
	@if [ -x .venv/bin/ruff ]; then .venv/bin/ruff check .; else ruff check .; fi
	@if [ -x .venv/bin/vulture ]; then V=.venv/bin/vulture; else V=vulture; fi; \
	  $$V cofi services bench tests vulture_whitelist.py --min-confidence 60 \
	    --ignore-decorators "@*.get,@*.post,@*.exception_handler"  # FastAPI routes and handlers

# New releases: rm -rf .venv && COFI_NO_CONSTRAINTS=1 make test, then make constraints and commit the file.
constraints:
	@{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --exclude-editable --disable-pip-version-check | \
	  grep -v -i -E '^(llama[-_]cpp[-_]python|cofi)( |=|@)'; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	@echo "constraints.txt: $$(grep -c '==' constraints.txt) pinned packages"

status:
	@bash scripts/kafka.sh status || true
	@bash scripts/mariadb.sh status || true
	@bash scripts/services.sh status || true
	@bash scripts/prometheus.sh status || true
