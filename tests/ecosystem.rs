//! The CLI in the tools operators already use: shell completions, man pages, the kubectl
//! plugin (run by the real kubectl), the pre-commit hooks (validated and run by the real
//! pre-commit) and the krew manifest template.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fixtures, run_cli};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_proxy-injector"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn completions_cover_every_command_and_bash_parses_them() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = run_cli(Path::new("."), &["completions".into(), shell.into()], b"");
        assert_eq!(run.code, 0, "{shell}: {}", text(&run.stderr));
        let script = text(&run.stdout);
        for word in ["inject", "uninject", "check", "policy", "manual", "values"] {
            assert!(script.contains(word), "{shell}: {word} is not completed");
        }
    }
    let run = run_cli(Path::new("."), &["completions".into(), "bash".into()], b"");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("proxy-injector.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    let out = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    ok(&out, "bash -n on the completion script");
    // Loaded into bash, the function it registers for `proxy-injector` completes a subcommand.
    let probe = format!(
        "source {}; f=$(complete -p proxy-injector | sed 's/.*-F \\([^ ]*\\).*/\\1/'); \
         COMP_WORDS=(proxy-injector pol); COMP_CWORD=1; COMP_LINE='proxy-injector pol'; \
         COMP_POINT=${{#COMP_LINE}}; \"$f\" proxy-injector pol proxy-injector; echo \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = Command::new("bash").arg("-c").arg(probe).output().unwrap();
    assert_eq!(ok(&out, "completing `pol`").trim(), "policy");
    let run = run_cli(Path::new("."), &["completions".into(), "tcsh".into()], b"");
    assert_eq!(run.code, 1, "an unknown shell is a usage error");
}

#[test]
fn man_pages_for_the_tool_and_each_command() {
    let run = run_cli(Path::new("."), &["man".into()], b"");
    assert_eq!(run.code, 0, "{}", text(&run.stderr));
    let page = text(&run.stdout);
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH proxy-injector 1"),
        "{page:.200}"
    );
    assert!(page.contains(".TH proxy-injector 1"), "a section-1 page");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let run = run_cli(
        Path::new("."),
        &[
            "man".into(),
            "--out-dir".into(),
            out_dir.display().to_string(),
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", text(&run.stderr));
    for command in ["", "-inject", "-uninject", "-check", "-policy", "-webhook"] {
        let page = out_dir.join(format!("proxy-injector{command}.1"));
        let body = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert!(
            body.contains(".SH OPTIONS") || command.is_empty(),
            "{page:?} has options"
        );
    }
    let inject = std::fs::read_to_string(out_dir.join("proxy-injector-inject.1")).unwrap();
    assert!(
        inject.contains("manual"),
        "the inject page documents --manual"
    );
}

/// A PATH with a directory holding the binary as kubectl finds plugins: an executable named
/// `kubectl-<name>`, a `-` in the name written `_`.
fn plugin_path(dir: &Path) -> String {
    std::os::unix::fs::symlink(binary(), dir.join("kubectl-proxy_injector")).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn kubectl_runs_it_as_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let path = plugin_path(dir.path());
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .args(args)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .current_dir(repo())
            .output()
            .expect("kubectl (the client) on PATH")
    };
    let listed = ok(&kubectl(&["plugin", "list"]), "kubectl plugin list");
    assert!(listed.contains("kubectl-proxy_injector"), "{listed}");
    let help = ok(&kubectl(&["proxy-injector", "inject", "--help"]), "--help");
    assert!(
        help.contains("Usage: kubectl proxy-injector inject"),
        "usage names the plugin: {help:.300}"
    );
    let values = fixtures().join("values.yaml").display().to_string();
    let args = [
        "inject",
        "--manual",
        "--values",
        &values,
        "manifests/examples/shop.yaml",
    ];
    let mut plugin_args = vec!["proxy-injector"];
    plugin_args.extend(args);
    let via_kubectl = kubectl(&plugin_args);
    let direct = Command::new(binary())
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(
        ok(&via_kubectl, "kubectl proxy-injector inject"),
        ok(&direct, "inject")
    );
    assert_eq!(
        text(&via_kubectl.stderr),
        text(&direct.stderr),
        "the same report"
    );
}

#[test]
fn the_pre_commit_hooks_are_valid_and_run_check() {
    let manifest = repo().join(".pre-commit-hooks.yaml");
    let out = Command::new("python3")
        .args(["-m", "pre_commit", "validate-manifest"])
        .arg(&manifest)
        .output()
        .expect("python3 with pre-commit (install tests/requirements.txt)");
    ok(&out, "pre-commit validate-manifest");
    // The installed-binary hook, run by pre-commit itself on a repository of manifests.
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("manifests");
    std::fs::create_dir(&work).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&work)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        ok(&out, &format!("git {args:?}"));
    };
    git(&["init", "-q"]);
    std::fs::copy(
        fixtures().join("inputs/deployment.yaml"),
        work.join("deployment.yaml"),
    )
    .unwrap();
    std::fs::write(
        work.join("typo.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: agent\n  annotations:\n    linkerd.io/inject: sometimes\nspec:\n  containers:\n  - name: a\n    image: a\n",
    )
    .unwrap();
    git(&["add", "."]);
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(binary(), bin_dir.join("proxy-injector")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |file: &str| {
        Command::new("python3")
            .args(["-m", "pre_commit", "try-repo"])
            .arg(repo())
            .args(["proxy-injector-check-system", "--files", file])
            .current_dir(&work)
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", dir.path().join("cache"))
            .output()
            .unwrap()
    };
    let good = run("deployment.yaml");
    ok(&good, "the hook on a clean manifest");
    let bad = run("typo.yaml");
    assert!(
        !bad.status.success(),
        "an invalid linkerd.io/inject fails the hook"
    );
    assert!(
        text(&bad.stdout).contains("invalid value for annotation"),
        "the hook shows check's finding: {}",
        text(&bad.stdout)
    );
}

#[test]
fn the_krew_manifest_installs_the_binary_as_the_plugin() {
    let path = repo().join("packaging/krew/proxy-injector.yaml");
    let manifest: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "proxy-injector");
    let platforms = manifest["spec"]["platforms"].as_array().unwrap();
    assert!(platforms.len() >= 2);
    for p in platforms {
        assert_eq!(p["bin"], "kubectl-proxy_injector", "{p}");
        let files = p["files"].as_array().unwrap();
        assert!(
            files
                .iter()
                .any(|f| f["from"] == "proxy-injector" && f["to"] == "kubectl-proxy_injector"),
            "{p}"
        );
        for key in ["uri", "sha256"] {
            assert!(
                p[key].as_str().unwrap().contains("{{"),
                "{key} is a placeholder"
            );
        }
    }
}
