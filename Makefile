# rmr-swift — see README.md.
SWIFT ?= swift
SEED ?= 1

.PHONY: all deps build test demo scenarios bench clean fuzz-ci fuzz mutants

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
	$(MAKE) fuzz-ci

# The fuzzer over a fixed CI seed range (release build; sized for ~10 min on 2 cores), with the
# coverage-probe check (Simulations/required-probes.txt); seeds 1-300, ~1-2 min. Known failing
# seeds beyond that range are listed in Docs/fuzzing.md. Regression scenarios under
# Simulations/regressions/ are replayed by FuzzRegressionTests in `swift test`.
FUZZ_CI_SEEDS ?= 300
FUZZ_CI_BEYOND_SEEDS ?= 100
FUZZ_JOBS ?= 2
fuzz-ci: deps
	$(SWIFT) build -c release --product rmr-sim
	.build/release/rmr-sim fuzz --profile ci --seeds $(FUZZ_CI_SEEDS) --jobs $(FUZZ_JOBS) --report --no-shrink
	.build/release/rmr-sim fuzz --profile ci --beyond-budget --seeds $(FUZZ_CI_BEYOND_SEEDS) --jobs $(FUZZ_JOBS) --no-shrink

FUZZ_SEEDS ?= 1000
fuzz: deps
	$(SWIFT) build -c release --product rmr-sim
	.build/release/rmr-sim fuzz --profile default --seeds $(FUZZ_SEEDS) --jobs $(FUZZ_JOBS) --report

# Proof that the harness bites: every patch under Simulations/mutants/ must be caught.
mutants: deps
	Simulations/run-mutants.sh

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
