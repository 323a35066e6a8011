//! The layering rule, checked: the core crate (`core/`) does no I/O and reads no clock. Cargo
//! enforces most of it, because the core's manifest lists none of the runtime, HTTP, TLS or
//! Kubernetes client crates; this test keeps it that way (a dependency added to the core, even
//! one that pulls such a crate in transitively, fails here) and looks for the standard
//! library's I/O and clock modules in the core's source.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates that do I/O (or run it): none may appear among the core's normal dependencies.
const IO_CRATES: &[&str] = &[
    "tokio",
    "hyper",
    "hyper-util",
    "axum",
    "tower",
    "kube",
    "kube-client",
    "kube-runtime",
    "reqwest",
    "ureq",
    "rustls",
    "tokio-rustls",
    "mio",
    "socket2",
    "h2",
    "tracing-subscriber",
    "clap",
];

fn core_dependencies() -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "proxy-injector-core",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--offline", "--locked", "--format", "{lib}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").replace('_', "-"))
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_core_depends_on_no_io_crate() {
    let deps = core_dependencies();
    // The tree is real: the core's own crate and its JSON library are in it.
    assert!(deps.iter().any(|d| d == "proxy-injector-core"), "{deps:?}");
    assert!(deps.iter().any(|d| d == "serde-json"), "{deps:?}");
    let io: Vec<_> = deps
        .iter()
        .filter(|d| IO_CRATES.contains(&d.as_str()))
        .collect();
    assert!(io.is_empty(), "the core depends on I/O crates: {io:?}");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("core/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_core_source_uses_no_std_io_or_clock() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("core/src"),
        &mut files,
    );
    assert!(files.len() > 10, "found only {files:?}");
    let banned = [
        "std::fs",
        "std::io",
        "std::net::Tcp",
        "std::net::Udp",
        "std::process",
        "std::env",
        "std::time",
        "std::thread",
        "Instant::",
        "SystemTime",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a core source file is readable");
        for (n, line) in text.lines().enumerate() {
            for b in banned.iter().filter(|b| line.contains(**b)) {
                found.push(format!("{}:{}: {b}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O or clock in the core:\n{}",
        found.join("\n")
    );
}
