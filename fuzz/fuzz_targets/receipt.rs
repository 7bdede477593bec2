//! libFuzzer target: see `tocsin_fuzz::entries::receipt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tocsin_fuzz::entries::receipt(data));
