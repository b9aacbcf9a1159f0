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

# Start (or reuse) a local buildkitd, bootstrap a local repository (busybox from Debian's
# busybox-static, packaged by melange2), build examples/hello into packages/, verify and run it.
demo: build
	@scripts/with-buildkit.sh scripts/demo.sh

# The whole test suite against a real buildkitd (started here when BUILDKIT_HOST is unset),
# including the real-toolchain tier on the Debian rootfs of scripts/toolchain-rootfs.sh (made
# once and cached, see docs/toolchain.md; MELANGE2_TOOLCHAIN_ROOTFS set by hand is used as is).
test: deps
	$(CARGO) build --locked --workspace --all-targets
	@rootfs=$${MELANGE2_TOOLCHAIN_ROOTFS:-$$(scripts/toolchain-rootfs.sh)} && \
	  MELANGE2_TOOLCHAIN_ROOTFS="$$rootfs" scripts/with-buildkit.sh $(CARGO) test --locked --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

bench: build
	@scripts/with-buildkit.sh $(CARGO) bench --locked --workspace
	@scripts/with-buildkit.sh bench/build.sh
	@scripts/with-buildkit.sh bench/graph.sh
	@scripts/with-buildkit.sh bench/pool.sh

stop:
	@scripts/buildkit.sh stop

clean:
	$(CARGO) clean
	rm -rf .state
