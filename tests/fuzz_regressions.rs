//! The fuzz targets' invariants (`fuzz/fuzz_targets/checks.rs`) on every input a fuzzer once
//! crashed or that found a bug (`tests/fixtures/fuzz/<target>/`), and on the CLI fixtures'
//! inputs, so a fixed crash stays fixed without running the fuzzer.

#[path = "../fuzz/fuzz_targets/checks.rs"]
mod checks;

use std::path::Path;

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// Runs `check` on every input under `tests/fixtures/fuzz/<target>/`.
fn regressions_hold(target: &str, check: fn(&[u8])) {
    let found = files(&fixtures().join("fuzz").join(target));
    assert!(
        !found.is_empty(),
        "the {target} regression inputs are missing"
    );
    for f in found {
        check(&std::fs::read(&f).expect("a regression input"));
    }
}

#[test]
fn manifest_regressions_hold() {
    regressions_hold("manifest", checks::manifest);
}

#[test]
fn admission_regressions_hold() {
    regressions_hold("admission", checks::admission);
}

#[test]
fn splice_regressions_hold() {
    regressions_hold("splice", checks::splice);
}

/// Every document of every fixture input that splits.
fn fixture_documents() -> Vec<String> {
    let mut out = Vec::new();
    for case in files(&fixtures().join("inputs")) {
        let text = std::fs::read_to_string(&case).expect("an input");
        out.extend(proxy_injector::manifest::split(&text).unwrap_or_default());
    }
    out
}

/// Every document of every fixture input, under each change the splice target can make to
/// its first mappings and lists.
#[test]
fn the_splice_invariants_hold_on_every_fixture() {
    let mut n = 0;
    for doc in fixture_documents() {
        for kind in 0..8u8 {
            for pick in 0..6u8 {
                let mut data = vec![kind, pick, n as u8];
                data.extend_from_slice(doc.as_bytes());
                checks::splice(&data);
                n += 1;
            }
        }
    }
    assert!(n > 1000, "only {n} cases");
}

#[test]
fn splice_patch_regressions_hold() {
    regressions_hold("splice_patch", |data| {
        checks::splice_patch(data);
    });
}

/// Every document of every fixture input, under each patch the `splice_patch` target can
/// make at its first mappings and lists, with each hole filling.
#[test]
fn the_splice_patch_invariants_hold_on_every_fixture() {
    let (mut n, mut spliced) = (0, 0);
    for doc in fixture_documents() {
        for kind in 0..4u8 {
            for pick in 0..8u8 {
                let mut data = vec![kind, pick, n as u8, pick.wrapping_add(kind)];
                data.extend_from_slice(doc.as_bytes());
                spliced += usize::from(checks::splice_patch(&data));
                n += 1;
            }
        }
    }
    assert!(n > 1000, "only {n} cases");
    // Most fixtures are block style: most of their patches are spliced (and so checked).
    assert!(spliced * 2 > n, "only {spliced} of {n} cases spliced");
}

#[test]
fn the_manifest_invariants_hold_on_every_fixture() {
    let mut n = 0;
    for case in files_in_cases() {
        checks::manifest(&std::fs::read(&case).expect("an input"));
        n += 1;
    }
    assert!(n > 40, "only {n} fixture inputs found");
}

/// The fixture inputs and every CLI case's expected stdout (injected, uninjected, JSON):
/// the seeds of the fuzz corpora (`fuzz/seed.sh`).
fn files_in_cases() -> Vec<std::path::PathBuf> {
    let mut out = files(&fixtures().join("inputs"));
    for entry in std::fs::read_dir(fixtures().join("cli")).expect("the CLI fixtures") {
        let golden = entry.expect("a case").path().join("stdout.golden");
        if golden.metadata().is_ok_and(|m| m.len() > 0) {
            out.push(golden);
        }
    }
    out.sort();
    out
}
