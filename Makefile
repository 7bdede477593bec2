# tocsin: the two commands a newcomer needs are `make demo` and `make test`.
CARGO ?= cargo
SCENARIO ?= events/scenario/incident

# Tools installed into .venv on first use (scripts/venv-install.sh), pinned so that every machine lints
# and builds alike.
VENV := $(CURDIR)/.venv
CFN_LINT_VERSION := 1.58.0
CARGO_LAMBDA_VERSION := 1.9.2
SAM_CLI_VERSION := 1.170.0
LAMBDA_TARGET := aarch64-unknown-linux-gnu
# Every crate whose main.rs runs the Lambda runtime is a function, and its folder is its bin's name
# (tests/stack.rs checks both against infra/template.yaml).
LAMBDA_BINS := $(sort $(patsubst crates/%/src/main.rs,%,$(shell grep -l -E 'lambda_(runtime|http)::run' crates/*/src/main.rs)))

.PHONY: demo test lint fmt clippy cfn-lint checkov bench build deploy lambda-tools figures chaos fuzz help

help:
	@echo "make demo    replay $(SCENARIO) through infra/tocsin.yaml on the embedded default"
	@echo "make test    lint (fmt, clippy, cfn-lint, checkov) + every test, AWS-backed ones against moto (.venv), the browser test in chromium"
	@echo "make bench   criterion benchmarks and the storm against Alertmanager (figures go in BENCHMARKS.md)"
	@echo "make build   release zips of the Lambda functions ($(LAMBDA_BINS)) for arm64"
	@echo "make deploy  sam build && sam deploy --guided (infra/template.yaml, infra/samconfig.toml)"
	@echo "make figures init time, peak RSS, time per record and cost of each function, locally on moto"
	@echo "make chaos   the real functions on moto through a fault proxy (31 % faults drawn, a SIGKILL drawn for 15 % of invocations): pages lost, doubled"
	@echo "make fuzz    libFuzzer over every entry that reads untrusted bytes, FUZZ_SECONDS (600) per target"

demo:
	$(CARGO) run -q -p tocsin -- replay --config infra/tocsin.yaml $(SCENARIO)

# The demo runs with the binary the workspace tests built: `cargo run -p tocsin` would unify features
# differently and rebuild the AWS SDK crates.
# The browser test (crates/cli/tests/browser.rs) drives Debian's chromium; ensure-chromium.sh installs it
# when missing, and TOCSIN_REQUIRE_BROWSER=1 makes its absence a failure rather than a skip.
# The end-to-end test (tests/e2e.rs) runs the function binaries under cargo-lambda's Runtime API: the
# build step makes every bin with the test build's own feature resolution (so `cargo test` reuses them,
# nothing is built twice), and CARGO_LAMBDA tells the test where cargo-lambda is.
# No incremental caches in the test build: they double the disk a clean build takes and a CI run never
# reuses them. `df` before and after puts the disk the run took in CI's log.
test: export CARGO_INCREMENTAL = 0
test: lint
	@df -h . | tail -1
	bash scripts/ensure-chromium.sh
	bash scripts/venv-install.sh cargo-lambda==$(CARGO_LAMBDA_VERSION)
	$(CARGO) build --workspace --bins --tests
	TOCSIN_REQUIRE_BROWSER=1 CARGO_LAMBDA=$(VENV)/bin/cargo-lambda bash scripts/with-moto.sh $(CARGO) test --workspace
	target/debug/tocsin replay --config infra/tocsin.yaml $(SCENARIO) > /dev/null
	@df -h . | tail -1; du -sh target

lint: fmt clippy cfn-lint checkov

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

cfn-lint:
	bash scripts/venv-install.sh cfn-lint==$(CFN_LINT_VERSION)
	$(VENV)/bin/cfn-lint infra/template.yaml

# checkov (pinned, in .venv/checkov: its own pins fight moto's) on the template: no failed check; every
# check the template does not pass has an inline skip on its resource saying why.
checkov:
	bash scripts/checkov.sh

bench:
	$(CARGO) bench -p tocsin-core --bench core
	$(CARGO) bench -p tocsin-core --bench render
	$(CARGO) bench -p tocsin-channels --bench deliver
	$(CARGO) build -q --release -p tocsin
	python3 scripts/whole-run.py target/release/tocsin
	$(CARGO) bench -p tocsin-local --bench storm
	python3 scripts/storm/alertmanager.py target/storm/transitions.jsonl

# cargo-lambda (from PyPI, with zig for cross-linking) and the arm64 standard library.
lambda-tools:
	bash scripts/venv-install.sh cargo-lambda==$(CARGO_LAMBDA_VERSION)
	rustup target list --installed | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET)

# One cargo invocation per function (its package, tocsin-<bin>), so that each resolves its own
# features and links only the SDK clients it calls (features on tocsin-aws), not the union of every
# function's and the `tocsin` command's; dependencies whose features agree are built once. Then the
# zip sizes: target/lambda/<bin>/bootstrap.zip is what Lambda runs.
build: lambda-tools
	for b in $(LAMBDA_BINS); do \
		PATH="$(VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 --output-format zip \
			-p tocsin-$$b --bin $$b || exit 1; \
	done
	@for b in $(LAMBDA_BINS); do \
		printf '%-10s %9d bytes zipped  %9d bytes unzipped\n' $$b \
			$$(stat -c %s $${CARGO_TARGET_DIR:-target}/lambda/$$b/bootstrap.zip) \
			$$(unzip -Zt $${CARGO_TARGET_DIR:-target}/lambda/$$b/bootstrap.zip | awk '{print $$3}'); \
	done

# sam build runs cargo lambda itself (BuildMethod rust-cargolambda, CodeUri the workspace root).
deploy: lambda-tools
	bash scripts/venv-install.sh aws-sam-cli==$(SAM_CLI_VERSION)
	cd infra && PATH="$(VENV)/bin:$$PATH" sam build && PATH="$(VENV)/bin:$$PATH" sam deploy --guided

# Init time, peak RSS, time per record and AWS calls of each function, run on this machine under a local
# Runtime API against moto, for BENCHMARKS.md (KIND=critical|medium, RECORDS=1000). Each function is
# built on its own, as `make build` does.
KIND ?= critical
RECORDS ?= 1000
figures:
	for b in $(LAMBDA_BINS); do $(CARGO) build --release -p tocsin-$$b --bin $$b || exit 1; done
	bash scripts/with-moto.sh $(VENV)/bin/python scripts/lambda-figures.py --kind $(KIND) --records $(RECORDS)

# The chaos run (tests/chaos.rs, ignored by `cargo test`): the function binaries of the workspace build
# on moto, through a fault proxy, killed at random; writes target/chaos/{expected,received,dead_letters}.jsonl
# and prints `chaos: A alerts, C calls, F faults (P %), K kills, lost L, doubled D, dead-lettered Q`.
# CHAOS_ALERTS (transitions, 1000), CHAOS_SEED (17), CHAOS_FAULTS (0.31), CHAOS_KILLS (0.15, drawn per
# invocation; about 8 % land before it ends), CHAOS_TIME_LIMIT (seconds, 1800). Built as `make test` builds (no incremental caches), so a chaos run
# after `make test` reuses its binaries instead of building the workspace again.
chaos: export CARGO_INCREMENTAL = 0
chaos:
	$(CARGO) build --workspace --bins --tests
	bash scripts/with-moto.sh $(CARGO) test --workspace --test chaos -- --ignored --nocapture
	@tail -n 1 target/chaos/last_line.txt

# cargo-fuzz targets of fuzz/ (scripts/fuzz.sh installs cargo-fuzz, pinned, into .tools/), each run for
# FUZZ_SECONDS (600); crashes are kept in fuzz/regressions/<target>/, which `make test` replays
# (tests/fuzz_regressions.rs).
FUZZ_SECONDS ?= 600
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh
