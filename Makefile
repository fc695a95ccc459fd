# sited: `make run` starts the daemon on the example site, `make test` runs every test.
# Each target installs what it needs first (scripts/deps.sh: apt-get and cargo).

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
SITE ?= site.toml.example
NODE ?= app-1

.PHONY: all build run test bench fuzz image image-test deps clean

all: build

build:
	$(CARGO) build --locked --release -p sited

# The daemon on the example site, in the foreground; edits of the file are reconciled live.
# It never touches this machine's firewall (--firewall none); without root, ports below 1024
# move up by 10000 (the UI is then on http://localhost:10080/).
run:
	@scripts/deps.sh run
	$(CARGO) build --locked -p sited
	target/debug/sited validate $(SITE)
	scripts/run-dev.sh $(SITE) $(NODE)

# Every test; a test that cannot run here (no root, a missing tool) says so and is counted at
# the end (target/skipped.txt). Under SITED_NO_SKIP=1, as in CI, a skip fails the run.
test:
	@scripts/deps.sh test
	$(CARGO) build --locked --workspace --all-targets
	@mkdir -p target && rm -f target/skipped.txt
	SITED_SKIPPED=$(CURDIR)/target/skipped.txt $(CARGO) test --locked --workspace --no-fail-fast
	@scripts/skipped.sh target/skipped.txt

bench:
	@scripts/deps.sh bench
	$(CARGO) build --locked --release -p sited
	scripts/bench.sh

# Each fuzz target under AFL++ for FUZZ_SECS seconds (default 600); CI runs only the smoke of
# `cargo test -p sited-fuzz`.
fuzz:
	scripts/fuzz.sh

image:
	image/build.sh

image-test:
	image/test.sh

clean:
	$(CARGO) clean
	rm -rf out
