//! `cargo fuzz run admission`: AdmissionReview handling on arbitrary bytes (see `checks.rs`).
#![no_main]

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::admission(data));
