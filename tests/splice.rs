//! The CLI keeps the user's file: over every input fixture (hand-written ones with comments,
//! both list styles, flow maps, quoting and 4-space indentation among them), in annotate-only
//! and `--manual` mode, `inject` only adds lines (beyond the Linkerd annotations it
//! overwrites and the flow nodes it rewrites), every comment survives, and `uninject` takes
//! exactly the added lines away again.

mod common;

use std::path::Path;

use common::{fixtures, run_cli};

/// Inputs whose own text `inject` must not touch at all, so that `uninject` gives back every
/// byte: no Linkerd annotations of their own, no flow node that injection extends.
const ROUND_TRIP: &[&str] = &[
    "automount-false.yaml",
    "capabilities.yaml",
    "deployment.yaml",
    "disabled-udp.yaml",
    "kinds.yaml",
    "list.yaml",
    "namespace-service.yaml",
    "unknown-fields.yaml",
];

fn inject(input: &Path, manual: bool) -> String {
    let mut args = vec!["inject".to_string(), "--values".into()];
    args.push(fixtures().join("values.yaml").display().to_string());
    if manual {
        args.push("--manual".into());
    }
    args.push(input.display().to_string());
    let run = run_cli(&fixtures(), &args, b"");
    assert_eq!(run.code, 0, "{}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8(run.stdout).expect("UTF-8")
}

fn uninject(text: &str) -> String {
    let run = run_cli(
        &fixtures(),
        &["uninject".into(), "-".into()],
        text.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8(run.stdout).expect("UTF-8")
}

/// The input's lines that are not in the output: those outside a longest common
/// subsequence of the two (`---` separators aside: the writer ends every document with one).
fn lost_lines(input: &str, output: &str) -> Vec<String> {
    let a: Vec<&str> = input.lines().filter(|l| *l != "---").collect();
    let b: Vec<&str> = output.lines().filter(|l| *l != "---").collect();
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut lost) = (0, 0, Vec::new());
    while i < a.len() {
        if j < b.len() && a[i] == b[j] {
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && lcs[i][j + 1] >= lcs[i + 1][j] {
            j += 1;
        } else {
            lost.push(a[i].to_string());
            i += 1;
        }
    }
    lost
}

fn inputs() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(fixtures().join("inputs"))
        .expect("the inputs")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn inject_only_adds_lines_and_keeps_every_comment() {
    let mut checked = 0;
    for input in inputs() {
        let text = std::fs::read_to_string(&input).expect("the input");
        let name = input.file_name().unwrap_or_default().to_string_lossy();
        // Inputs the CLI refuses (errors are their own fixtures) are not about splicing.
        let probe = run_cli(
            &fixtures(),
            &["inject".into(), input.display().to_string()],
            b"",
        );
        if probe.code != 0 {
            continue;
        }
        for manual in [false, true] {
            let out = inject(&input, manual);
            for line in lost_lines(&text, &out) {
                let owned = line.contains("linkerd.io/");
                let flow = line.contains('{') || line.contains('[');
                assert!(
                    owned || flow,
                    "{name} (manual: {manual}) lost the line {line:?}:\n{out}"
                );
            }
            for comment in text.lines().filter(|l| l.trim_start().starts_with('#')) {
                assert!(
                    out.contains(comment),
                    "{name}: the comment {comment:?} is gone"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} runs checked");
}

#[test]
fn uninject_takes_exactly_the_added_lines_away() {
    for name in ROUND_TRIP {
        let input = fixtures().join("inputs").join(name);
        let text = std::fs::read_to_string(&input).expect("the input");
        for manual in [false, true] {
            let injected = inject(&input, manual);
            assert_ne!(injected, text, "{name}: injection changed nothing");
            let back = uninject(&injected);
            // The writer ends every document with `---`; the input may not.
            let back = back.strip_suffix("---\n").unwrap_or(&back);
            let text = text.strip_suffix("---\n").unwrap_or(&text);
            assert_eq!(back, text, "{name} (manual: {manual})");
        }
    }
}

#[test]
fn verbose_says_when_a_document_is_re_serialised() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n  labels: &l {app: a}\n\
                spec:\n  selector: {matchLabels: *l}\n  template:\n    metadata:\n      labels: *l\n    \
                spec:\n      containers:\n      - name: c\n        image: x\n";
    let args = ["inject", "--verbose", "-"].map(String::from);
    let run = run_cli(&fixtures(), &args, text.as_bytes());
    assert_eq!(run.code, 0, "{}", String::from_utf8_lossy(&run.stderr));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("re-serialised, not spliced: it uses an anchor"),
        "{stderr}"
    );
    let quiet = run_cli(&fixtures(), &["inject".into(), "-".into()], text.as_bytes());
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("re-serialised"));
}

/// A file with CRLF line ends comes back with CRLF line ends, and `uninject` restores it.
#[test]
fn crlf_files_keep_their_line_ends() {
    let input = fixtures().join("inputs/deployment.yaml");
    let text = std::fs::read_to_string(&input)
        .expect("the input")
        .replace('\n', "\r\n");
    let args = ["inject", "--manual", "--values", "values.yaml", "-"].map(String::from);
    let run = run_cli(&fixtures(), &args, text.as_bytes());
    assert_eq!(run.code, 0, "{}", String::from_utf8_lossy(&run.stderr));
    let out = String::from_utf8(run.stdout).expect("UTF-8");
    assert!(out.len() > text.len() * 3, "injected");
    assert!(
        !out.replace("\r\n", "").contains('\n'),
        "a line without its CR"
    );
    let back = uninject(&out);
    let back = back.strip_suffix("---\r\n").unwrap_or(&back);
    assert_eq!(back, text);
}
