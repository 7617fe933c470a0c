# ivyzmq: every target sets up the virtual environment first if it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
IVY    := $(BIN)/ivy
STAMP  := $(VENV)/.installed-stamp
SEEDS    ?= 2000
DURATION ?= 60
OPS      ?= 100

.PHONY: sysdeps all venv run r w test sim chaos bench experiments clean help

all: help

help:
	@echo "make run          start the small cluster, read and write page 1 through node 2, show traces and readouts"
	@echo "make r / make w   the homework: 100 random reads / writes while the primary is killed and restarted"
	@echo "make test         the test suite (what CI runs)"
	@echo "make sim          deterministic simulation, SEEDS=$(SEEDS) seeds"
	@echo "make chaos        real-process chaos run, DURATION=$(DURATION) s"
	@echo "make bench        latency and throughput table beside a raw pyzmq baseline"
	@echo "make experiments  the fault-tolerance experiments (a)-(d)"

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: venv
	@PATH="$(CURDIR)/$(BIN):$$PATH" bin/demo config/cluster.yaml

r: venv
	$(IVY) homework r -c config/ten.yaml --ops $(OPS)

w: venv
	$(IVY) homework w -c config/ten.yaml --ops $(OPS)

test: venv sysdeps
	$(BIN)/python -m pytest -q

sim: venv
	$(IVY) sim --seeds $(SEEDS) --jobs 2

chaos: venv
	$(IVY) chaos --duration $(DURATION)

bench: venv
	$(BIN)/python bench/bench.py

experiments: venv
	for x in a b c d; do $(IVY) experiment $$x -c config/ten.yaml || exit 1; done

clean:
	rm -rf $(VENV) .ivy *.egg-info .pytest_cache

# System tools the partition tests use (network namespaces and nftables). Installed when
# running as root with apt-get; otherwise those tests skip with a one-line reason.
sysdeps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	   ! { command -v nft >/dev/null && command -v ip >/dev/null; }; then \
	  echo "installing nftables and iproute2 for the partition tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iproute2) >/dev/null 2>&1 \
	    || echo "could not install nftables/iproute2: partition tests will skip"; \
	fi
