# melange2 — the two set-up commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/debug/melange2
DEMO_DIR := .state/demo

.PHONY: all deps build demo test lint bench stop clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --locked -p melange2

# Start (or reuse) a local buildkitd, show what it is, then exercise the offline tools on the
# example package: key generation and the compiled build plan for both architectures.
demo: build
	@scripts/with-buildkit.sh bash -c '\
	  set -e; \
	  echo "== buildkit info ($$BUILDKIT_HOST)"; $(BIN) buildkit info; \
	  mkdir -p $(DEMO_DIR); \
	  if [ ! -f $(DEMO_DIR)/melange.rsa ]; then \
	    echo "== keygen"; $(BIN) keygen --key-size 2048 $(DEMO_DIR)/melange.rsa; fi; \
	  echo "== package-version"; $(BIN) package-version examples/hello/melange.yaml; \
	  for arch in x86_64 aarch64; do \
	    $(BIN) compile examples/hello/melange.yaml --arch $$arch > $(DEMO_DIR)/hello-$$arch.json; \
	    echo "== compiled plan: $(DEMO_DIR)/hello-$$arch.json"; done; \
	  echo "demo done: key in $(DEMO_DIR)/melange.rsa(.pub), plans in $(DEMO_DIR)/"'

# The whole test suite against a real buildkitd (started here when BUILDKIT_HOST is unset).
test: deps
	$(CARGO) build --locked --workspace --all-targets
	@scripts/with-buildkit.sh $(CARGO) test --locked --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

bench: deps
	@scripts/with-buildkit.sh $(CARGO) bench --locked --workspace

stop:
	@scripts/buildkit.sh stop

clean:
	$(CARGO) clean
	rm -rf .state
