# tocsin: the two commands a newcomer needs are `make demo` and `make test`.
CARGO ?= cargo
SCENARIO ?= events/scenario/incident

.PHONY: demo test lint fmt clippy bench build help

help:
	@echo "make demo   replay $(SCENARIO) through infra/tocsin.yaml on the embedded default"
	@echo "make test   lint + every test, AWS-backed ones against moto (installed into .venv)"
	@echo "make bench  criterion benchmarks and the storm against Alertmanager (figures go in BENCHMARKS.md)"

demo:
	$(CARGO) run -q -p tocsin -- replay --config infra/tocsin.yaml $(SCENARIO)

# The demo runs with the binary the workspace tests built: `cargo run -p tocsin` would unify features
# differently and rebuild the AWS SDK crates.
test: lint
	bash scripts/with-moto.sh $(CARGO) test --workspace
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
	$(CARGO) bench -p tocsin-local --bench storm
	python3 scripts/storm/alertmanager.py target/storm/transitions.jsonl
