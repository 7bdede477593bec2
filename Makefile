# tocsin: the two commands a newcomer needs are `make demo` and `make test`.
CARGO ?= cargo
SCENARIO ?= events/scenario/incident

.PHONY: demo test lint fmt clippy bench build help

help:
	@echo "make demo   replay $(SCENARIO) through infra/tocsin.yaml on the embedded default"
	@echo "make test   lint + every test, AWS-backed ones against moto (installed into .venv), the browser test in chromium"
	@echo "make bench  criterion benchmarks (figures go in BENCHMARKS.md)"

demo:
	$(CARGO) run -q -p tocsin -- replay --config infra/tocsin.yaml $(SCENARIO)

# The demo runs with the binary the workspace tests built: `cargo run -p tocsin` would unify features
# differently and rebuild the AWS SDK crates.
# The browser test (crates/cli/tests/browser.rs) drives Debian's chromium; ensure-chromium.sh installs it
# when missing, and TOCSIN_REQUIRE_BROWSER=1 makes its absence a failure rather than a skip.
test: lint
	bash scripts/ensure-chromium.sh
	TOCSIN_REQUIRE_BROWSER=1 bash scripts/with-moto.sh $(CARGO) test --workspace
	target/debug/tocsin replay --config infra/tocsin.yaml $(SCENARIO) > /dev/null

lint: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	$(CARGO) bench -p tocsin-core --bench core
	$(CARGO) bench -p tocsin-core --bench render
	$(CARGO) bench -p tocsin-channels --bench deliver
	$(CARGO) build -q --release -p tocsin
	python3 scripts/whole-run.py target/release/tocsin
