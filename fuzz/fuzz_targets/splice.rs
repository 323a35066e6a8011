//! `cargo fuzz run splice`: the splicer on arbitrary text and changes (see `checks.rs`).
#![no_main]

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::splice(data));
