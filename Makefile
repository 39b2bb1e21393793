# rmr-swift — see README.md.
SWIFT ?= swift
SEED ?= 1

.PHONY: all deps build test demo scenarios bench clean

all: build

deps:
	./scripts/install-deps

build: deps
	$(SWIFT) build

# Builds everything and runs every test: unit and table tests, the store's crash-safety
# tests, and every scenario file under Scenarios/ (ShippedScenarioTests runs each one).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# The main job: the admin guide's procedures on the embedded simulator, as a transcript.
demo: deps
	$(SWIFT) run rmr-sim demo

scenarios: deps
	$(SWIFT) run rmr-sim run Scenarios/*.scenario --seed $(SEED)

bench: deps
	$(SWIFT) build -c release --product rmr-bench
	.build/release/rmr-bench map
	.build/release/rmr-bench sim
	.build/release/rmr-bench store

clean:
	rm -rf .build
