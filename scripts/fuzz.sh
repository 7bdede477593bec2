#!/usr/bin/env bash
# make fuzz: installs cargo-fuzz (pinned, from crates.io, into .tools/), builds the libFuzzer targets of
# fuzz/ on the installed stable toolchain (RUSTC_BOOTSTRAP=1 lets stable take the -Z flags cargo-fuzz
# passes; AddressSanitizer when it links, else no sanitizer), runs each target for FUZZ_SECONDS with a
# corpus seeded from events/ and the configs, and prints per target its executions and crashes.
#
#   FUZZ_SECONDS=600 (default)   FUZZ_TARGETS="source config" (default: every target)
#   FUZZ_SANITIZER=address|none  (default: address if it builds)
# Exit status 1 when any target crashed; its input is in fuzz/artifacts/<target>/: fix the bug and keep
# the input in fuzz/regressions/<target>/ (tests/fuzz_regressions.rs replays it in make test).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO_FUZZ_VERSION=0.13.1
FUZZ_SECONDS=${FUZZ_SECONDS:-600}
TOOLS=$ROOT/.tools
export PATH="$TOOLS/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}
CORPUS=$CARGO_TARGET_DIR/corpus
NICE="nice -n 10"

if ! cargo-fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
  $NICE cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root "$TOOLS"
fi

ALL=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^tocsin-fuzz$')
TARGETS=${FUZZ_TARGETS:-$ALL}

cd fuzz
# cargo fuzz build takes one target, or none for every target.
build() {
  if [ -z "${FUZZ_TARGETS:-}" ]; then $NICE cargo fuzz build -O -s "$1"; else
    for t in $TARGETS; do $NICE cargo fuzz build -O -s "$1" "$t" || return 1; done
  fi
}
if [ -z "${FUZZ_SANITIZER:-}" ]; then
  if build address; then FUZZ_SANITIZER=address; else
    echo "fuzz: AddressSanitizer does not build here; fuzzing without a sanitizer"
    FUZZ_SANITIZER=none
    build none
  fi
else
  build "$FUZZ_SANITIZER"
fi

# Seeds: every event file for the byte-level parser, the configs for the config loader; the
# structure-aware targets read any bytes, and start from the same events.
for t in $TARGETS; do
  mkdir -p "$CORPUS/$t"
  case $t in
    config) find ../infra ../tests/configs ../tests/e2e_support -name '*.yaml' -exec sh -c 'cp -n "$1" "$2/$(echo "$1" | tr / _)"' _ {} "$CORPUS/$t" \; ;;
    *) find ../events -name '*.json' -exec sh -c 'cp -n "$1" "$2/$(echo "$1" | tr / _)"' _ {} "$CORPUS/$t" \; ;;
  esac
done

printf '%-14s %12s %10s %8s  %s\n' target executions exec/s crashes sanitizer > "$CARGO_TARGET_DIR/summary.txt"
failed=0
for t in $TARGETS; do
  log=$CARGO_TARGET_DIR/$t.log
  echo "fuzz: $t for ${FUZZ_SECONDS}s"
  set +e
  $NICE cargo fuzz run -O -s "$FUZZ_SANITIZER" "$t" "$CORPUS/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -rss_limit_mb=2048 -max_len=65536 >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crashes=$(ls "artifacts/$t" 2>/dev/null | grep -c -E '^(crash|oom|timeout|leak)-' || true)
  if [ "$rc" -ne 0 ]; then
    failed=1
    grep -E '^(thread .* panicked|==[0-9]+==ERROR|SUMMARY)' "$log" | head -3 || true
  fi
  printf '%-14s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$crashes" "$FUZZ_SANITIZER" | tee -a "$CARGO_TARGET_DIR/summary.txt"
done
echo
cat "$CARGO_TARGET_DIR/summary.txt"
exit $failed
