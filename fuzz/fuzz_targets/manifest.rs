//! `cargo fuzz run manifest`: the offline CLI on arbitrary bytes (see `checks.rs`).
#![no_main]

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::manifest(data));
