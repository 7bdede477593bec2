//! The fuzz targets' bodies, apart from libFuzzer so that `tests/fuzz_regressions.rs` replays the kept
//! crash inputs (fuzz/regressions/<target>/*) through exactly the same code in the ordinary suite.

#[path = "entries.rs"]
pub mod entries;
