# ivyzmq: every target sets up the virtual environment first if it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
IVY    := $(BIN)/ivy
STAMP  := $(VENV)/.installed-stamp
SEEDS    ?= 2000
DURATION ?= 60
OPS      ?= 100
FRAMES   ?= 200000

.PHONY: sysdeps plotdeps all venv run r w test sim chaos fuzz bench bench-scale bench-cli experiments clean help

all: help

help:
	@echo "make run          start the small cluster, read and write page 1 through node 2, show traces and readouts"
	@echo "make r / make w   the homework: 100 random reads / writes while the primary is killed and restarted"
	@echo "make test         the test suite (what CI runs)"
	@echo "make sim          deterministic simulation, SEEDS=$(SEEDS) seeds"
	@echo "make chaos        real-process chaos run, DURATION=$(DURATION) s"
	@echo "make fuzz         FRAMES=$(FRAMES) random and mutated frames at a running cluster under a workload"
	@echo "make bench        latency and throughput table beside a raw pyzmq baseline (CDF=file.png: latency CDFs too)"
	@echo "make bench-scale  memory, start-up, read fault and failover at 100 to 1M pages, 10 and 40 nodes"
	@echo "make bench-cli    wall time of the short ivy commands"
	@echo "make experiments  the fault-tolerance experiments (a)-(d)"

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The optional `plot` extra (matplotlib): the tests and the bench use it; `make run` does not.
PLOT_STAMP := $(VENV)/.plot-stamp
$(PLOT_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,plot]'
	touch $(PLOT_STAMP)

plotdeps: $(PLOT_STAMP)

run: venv
	@PATH="$(CURDIR)/$(BIN):$$PATH" bin/demo config/cluster.yaml

r: venv
	$(IVY) homework r -c config/ten.yaml --ops $(OPS)

w: venv
	$(IVY) homework w -c config/ten.yaml --ops $(OPS)

test: venv plotdeps sysdeps
	$(BIN)/python -m pytest -q

sim: venv
	$(IVY) sim --seeds $(SEEDS) --jobs 2

chaos: venv
	$(IVY) chaos --duration $(DURATION)

fuzz: venv
	IVY_FUZZ_FRAMES=$(FRAMES) $(BIN)/python -m pytest -q tests/test_fuzz_cluster.py -p no:cacheprovider --timeout 3600

bench: venv plotdeps
	$(BIN)/python bench/bench.py $(if $(CDF),--cdf $(CDF))

bench-scale: venv
	$(BIN)/python bench/scale.py

bench-cli: venv
	$(BIN)/python bench/cli_speed.py

experiments: venv
	for x in a b c d e; do $(IVY) experiment $$x -c config/ten.yaml || exit 1; done

clean:
	rm -rf $(VENV) .ivy *.egg-info .pytest_cache

# System tools some tests use: network namespaces and nftables (partitions), tmux (`ivy top`
# in a real terminal), chromium (the trace SVG rendered in a browser). Installed when
# running as root with apt-get; otherwise those tests skip with a one-line reason.
SYSDEPS := nft:nftables ip:iproute2 tmux:tmux chromium:chromium
sysdeps:
	@missing=""; for pair in $(SYSDEPS); do \
	  command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing$$missing for the tests that need them"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null 2>&1 \
	    || echo "could not install$$missing: the tests that need them will skip"; \
	fi
