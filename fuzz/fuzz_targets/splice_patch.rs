//! `cargo fuzz run splice_patch`: the direct splicer on arbitrary text and patches (see
//! `checks.rs`).
#![no_main]

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::splice_patch(data);
});
