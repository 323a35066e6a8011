//! How the CLI presents itself: parsing under its own name or as a kubectl plugin, shell
//! completions (clap_complete) and man pages (clap_mangen), all generated from the one
//! definition of the flags (`args.rs`).

use std::ffi::OsString;
use std::path::Path;

use clap::{CommandFactory, FromArgMatches};

use super::{Cli, Output, UsageError};

pub const BIN_NAME: &str = "proxy-injector";
/// How kubectl users call it: kubectl runs `kubectl-proxy_injector` for `kubectl
/// proxy-injector` (a `-` in a plugin's name is a `_` in its file name).
pub const PLUGIN_BIN_NAME: &str = "kubectl proxy-injector";

/// Parses the process's arguments; usage and help name the command as it was called, so a
/// kubectl plugin's `--help` says `kubectl proxy-injector inject ...`.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
    let mut args = args.into_iter().peekable();
    let plugin = args
        .peek()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("kubectl-"));
    let name = if plugin { PLUGIN_BIN_NAME } else { BIN_NAME };
    let matches = Cli::command().bin_name(name).try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Output {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    Output {
        stdout: String::from_utf8_lossy(&script).into_owned().into(),
        ..Output::default()
    }
}

/// The top-level man page on stdout, or every page written into `out_dir`.
pub fn man(out_dir: Option<&Path>) -> Result<Output, UsageError> {
    let failed = |e: std::io::Error| UsageError::Flag(format!("writing the man page: {e}"));
    let cmd = Cli::command().name(BIN_NAME);
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(failed)?;
            clap_mangen::generate_to(cmd, dir).map_err(failed)?;
            Ok(Output::default())
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(failed)?;
            Ok(Output {
                stdout: String::from_utf8_lossy(&page).into_owned().into(),
                ..Output::default()
            })
        }
    }
}
