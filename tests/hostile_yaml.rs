//! Hostile YAML: each input is refused (or handled) with a clear error naming the document,
//! in bounded time and memory, and never a panic. "Bounded" is checked as the process
//! finishing under a generous wall-clock cap and an address-space limit (`ulimit -v`), not
//! as a timing assertion.

mod common;

use std::process::Command;

/// Runs `inject` on `input` under a 2 GiB address-space limit and a 60 s cap.
fn inject(input: &[u8]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.yaml");
    std::fs::write(&file, input).unwrap();
    let script = format!(
        "ulimit -v 2097152; exec timeout 60 '{}' inject '{}'",
        env!("CARGO_BIN_EXE_proxy-injector"),
        file.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\n";

fn assert_refused(name: &str, input: Vec<u8>, document: usize, needle: &str) {
    let (code, out, err) = inject(&input);
    assert_eq!(code, 1, "{name}: exit code; stderr: {err}");
    assert!(out.is_empty(), "{name}: nothing on stdout");
    assert!(
        err.contains(&format!("document {document}")),
        "{name}: names the document: {err}"
    );
    assert!(err.contains(needle), "{name}: says what failed: {err}");
    assert!(!err.contains("panicked"), "{name}: no panic: {err}");
}

#[test]
fn alias_bombs_are_refused() {
    let mut bomb = String::from(GOOD);
    bomb.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    let mut prev = 'a';
    for n in "bcdefghi".chars() {
        bomb.push_str(&format!(
            "  {n}: &{n} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
        prev = n;
    }
    assert_refused(
        "alias bomb",
        bomb.into_bytes(),
        2,
        "repetition limit exceeded",
    );
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!(
        "{GOOD}data: {}{}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    assert_refused(
        "deep flow nesting",
        deep.into_bytes(),
        2,
        "nesting deeper than",
    );
    let mut block = String::from(GOOD);
    block.push_str("kind: ConfigMap\ndata:\n");
    for i in 0..2_000 {
        block.push_str(&format!("{}k{i}:\n", " ".repeat(2 * (i + 1))));
    }
    assert_refused(
        "deep block nesting",
        block.into_bytes(),
        2,
        "recursion limit exceeded",
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let dup = format!("{GOOD}apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\nspec: {{containers: []}}\n");
    assert_refused(
        "duplicate keys",
        dup.into_bytes(),
        2,
        "duplicate key \"name\"",
    );
}

#[test]
fn non_utf8_bytes_are_refused() {
    let mut bytes = GOOD.as_bytes().to_vec();
    bytes.extend_from_slice(
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: \"\xff\xfe\"}\n",
    );
    let (code, out, err) = inject(&bytes);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("input.yaml: line 8 (document 2): not valid UTF-8 text"),
        "{err}"
    );
}

#[test]
fn tabs_are_a_parse_error_and_a_bom_is_fine() {
    let tabs = format!("{GOOD}apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n");
    assert_refused(
        "tab indentation",
        tabs.into_bytes(),
        2,
        "found character that cannot start any token",
    );
    let bom = format!("\u{feff}{GOOD}");
    let (code, out, err) = inject(bom.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("apiVersion: v1"),
        "the BOM is dropped: {out:?}"
    );
}

#[test]
fn bare_scalars_and_sequences_are_refused() {
    let (code, out, err) = inject(format!("{GOOD}just a string\n---\n- a\n- b\n").as_bytes());
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("document 2: expected a Kubernetes object (a mapping), found a string"),
        "{err}"
    );
    assert!(
        err.contains("document 3: expected a Kubernetes object (a mapping), found a list"),
        "{err}"
    );
}

#[test]
fn huge_scalars_are_handled() {
    let huge = format!(
        "{GOOD}apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: huge}}\ndata:\n  big: \"{}\"\n",
        "x".repeat(20 << 20)
    );
    let (code, out, err) = inject(huge.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.len(),
        huge.len() + 4,
        "both documents written back as they were"
    );
}
