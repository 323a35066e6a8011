//! Helpers shared by the integration tests: the fixture cases and running the CLI.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One CLI case: a directory with `args` (one argument a line) and expected outputs.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub args: Vec<String>,
}

impl Case {
    pub fn stdout_golden(&self) -> PathBuf {
        self.dir.join("stdout.golden")
    }
    pub fn is_manual_inject(&self) -> bool {
        self.args.first().map(String::as_str) == Some("inject")
            && self.args.iter().any(|a| a == "--manual")
    }
    pub fn has(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a == arg)
    }
    /// Input paths: the trailing arguments that are not flags or flag values.
    pub fn inputs(&self) -> Vec<PathBuf> {
        let takes_value = |a: &str| {
            a.starts_with("--") && !a.contains('=') && !BOOL_FLAGS.contains(&a)
                || a == "-o"
                || a == "-L"
        };
        let mut out = Vec::new();
        let mut skip = false;
        for a in self.args.iter().skip(1) {
            if skip {
                skip = false;
                continue;
            }
            if a == "-" {
                continue;
            }
            if a.starts_with('-') && a != "-" {
                skip = takes_value(a);
                continue;
            }
            out.push(self.dir.join(a));
        }
        if self.args.iter().any(|a| a == "-") {
            out.push(self.dir.join("stdin"));
        }
        out
    }
}

const BOOL_FLAGS: &[&str] = &[
    "--manual",
    "--enable-debug-sidecar",
    "--ingress",
    "--verbose",
    "--ignore-cluster",
];

pub fn cases() -> Vec<Case> {
    let root = fixtures().join("cli");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures/cli is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let args =
                std::fs::read_to_string(dir.join("args")).expect("every case has an args file");
            Case {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                args: args.lines().map(str::to_string).collect(),
                dir,
            }
        })
        .collect()
}

pub struct Run {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub code: i32,
}

/// Runs the binary in `dir` with `args` and `stdin`, without colour or LINKERD_* variables.
pub fn run_cli(dir: &Path, args: &[String], stdin: &[u8]) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxy-injector"));
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("LINKERD_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("the CLI finishes");
    Run {
        stdout: out.stdout,
        stderr: out.stderr,
        code: out.status.code().unwrap_or(-1),
    }
}

/// Parses a YAML stream into documents as JSON values, dropping blank documents.
pub fn yaml_docs(text: &str) -> Vec<serde_json::Value> {
    proxy_injector::manifest::split(text)
        .expect("splits")
        .iter()
        .map(|d| proxy_injector::manifest::parse(d).expect("parses"))
        .filter(|v| !v.is_null())
        .collect()
}
pub mod kube_api;
pub mod webhook;
pub mod workloads;

/// The text of a file, or of every file under a directory in lexical order.
pub fn read_tree(p: &Path) -> Vec<String> {
    if p.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        entries.iter().flat_map(|e| read_tree(e)).collect()
    } else {
        vec![std::fs::read_to_string(p).unwrap()]
    }
}

/// Runs the Python script `tests/support/<script>` with `input` as JSON on stdin and returns
/// its JSON output; its failure (`what` says what failed) fails the test with its stderr.
pub fn support_script(script: &str, input: &serde_json::Value, what: &str) -> serde_json::Value {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(fixtures().join("../support").join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with the test tools (install tests/requirements.txt)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write the input");
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// Applies each `{"doc", "patch"}` of `batch` with Python's `jsonpatch` (an RFC 6902
/// implementation we did not write), in one process, and returns the patched documents.
pub fn apply_patches_independently(batch: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let out = support_script(
        "apply_patches.py",
        &serde_json::Value::from(batch.to_vec()),
        "jsonpatch failed",
    );
    serde_json::from_value(out).expect("patched documents")
}

/// Validates `files` with `kubernetes-validate --strict` for each of `versions` (Kubernetes'
/// own OpenAPI schemas, strict: no unknown fields).
pub fn kubernetes_validate(files: &[PathBuf], versions: &[&str]) {
    for version in versions {
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", version])
            .args(files)
            .output()
            .expect("kubernetes-validate runs (install tests/requirements.txt)");
        assert!(
            out.status.success(),
            "kubernetes-validate {version} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
