//! The offline CLI: `inject`, `uninject` and `check` over files, directories, stdin
//! and HTTPS URLs, and `policy`, which writes the MutatingAdmissionPolicy.
//!
//! Stdout carries only YAML or JSON; the human report goes to stderr after the documents, in
//! Linkerd's exact format, so scripts and the conformance runner can compare it byte for byte.
//! Exit codes: 0 success, 1 any error (nothing is written to stdout then).

mod args;
mod check;
mod flags;
mod help;
mod input;
mod pipeline;
mod policy;
mod report;
mod sarif;

use std::io::Write;

use crate::manifest::Rope;

pub use args::{CheckArgs, Cli, Command, ControlPlane, InjectArgs, PolicyArgs, UninjectArgs};
pub use help::{parse, BIN_NAME, PLUGIN_BIN_NAME};
pub use pipeline::InjectPlan;

/// A failure before any document is processed: bad flags, unreadable inputs or values.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Flag(String),
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{ns} is not a valid namespace")]
    Namespace { ns: String },
}

/// What a command produced: stdout, stderr and the exit code. Kept in memory so that nothing
/// half-written reaches stdout when a later document fails; stdout as a [`Rope`], so that the
/// texts inject writes into every pod are held once.
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: Rope,
    pub stderr: String,
    pub code: i32,
}

/// Runs a parsed command line; `stdin` is read only for the input `-`.
pub fn run(cli: Cli, stdin: &mut dyn std::io::Read) -> Output {
    let result = match cli.command {
        Command::Inject(a) => pipeline::inject(&a, stdin),
        Command::Uninject(a) => pipeline::uninject(&a, stdin),
        Command::Check(a) => check::run(&a, stdin),
        Command::Policy(a) => policy::run(&a),
        Command::Completions { shell } => Ok(help::completions(shell)),
        Command::Man { out_dir } => help::man(out_dir.as_deref()),
        Command::Webhook(_) => {
            return Output {
                stderr: "Error: the webhook is run by main, not cli::run\n".into(),
                code: 1,
                ..Output::default()
            }
        }
    };
    result.unwrap_or_else(|e| Output {
        stdout: Rope::new(),
        stderr: format!("Error: {e}\n"),
        code: 1,
    })
}

/// Writes an [`Output`] to the process's streams and returns its exit code.
pub fn emit(out: &Output) -> i32 {
    let mut so = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = out
        .stdout
        .pieces()
        .try_for_each(|p| so.write_all(p.as_bytes()))
        .and_then(|_| so.flush());
    let mut se = std::io::stderr().lock();
    let _ = se.write_all(out.stderr.as_bytes());
    out.code
}
