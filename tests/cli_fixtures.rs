//! Golden tests of the CLI as a process: every case under `tests/fixtures/cli` is run (with
//! its `stdin` file, if any, on standard input) and its stdout, stderr and exit code compared
//! byte for byte with the files beside it.
//!
//! After an intended change, regenerate with `UPDATE_GOLDEN=1 cargo test --test cli_fixtures`
//! and review the diff.

mod common;

use common::{cases, run_cli};

#[test]
fn cli_cases_match_their_goldens() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let all = cases();
    assert!(
        all.len() >= 30,
        "expected the fixture cases, found {}",
        all.len()
    );
    let mut failures = Vec::new();
    // Some cases read another case's golden as input: two passes settle them when updating.
    for pass in 0..(if update { 2 } else { 1 }) {
        for case in &all {
            let stdin = std::fs::read(case.dir.join("stdin")).unwrap_or_default();
            let run = run_cli(&case.dir, &case.args, &stdin);
            let files = [
                ("stdout.golden", run.stdout.clone()),
                ("stderr.golden", run.stderr.clone()),
                ("exit", format!("{}\n", run.code).into_bytes()),
            ];
            for (file, got) in files {
                let path = case.dir.join(file);
                if update {
                    std::fs::write(&path, &got).expect("write golden");
                    continue;
                }
                let want =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if want != got {
                    failures.push(format!(
                        "{}/{file} differs:\n--- want\n{}\n--- got\n{}",
                        case.name,
                        String::from_utf8_lossy(&want),
                        String::from_utf8_lossy(&got)
                    ));
                }
            }
        }
        let _ = pass;
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
