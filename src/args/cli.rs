//! The command line read by clap into [`Cli`], and the errors of the arguments layer (a
//! usage error, or clap's own), reported once.

use std::path::PathBuf;

use clap::FromArgMatches;

use super::defs::{command, Cli};
use crate::verdict::Exit;

/// Parses the command line; the usage text names `kubectl falco-verify` when run as a plugin.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = command();
    cmd = cmd.bin_name(bin_name(args.first()));
    let after_dashes: Vec<String> = args
        .iter()
        .skip_while(|a| a.as_os_str() != "--")
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let matches = cmd
        .try_get_matches_from_mut(args)
        .map_err(|e| explain(e, &after_dashes, &mut cmd))?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// clap's error, said in the words of this command where clap's own would leave a user
/// guessing: a missing namespace names all three ways to give one, and a flag after `--` says
/// that flags come first.
fn explain(e: clap::Error, after_dashes: &[String], cmd: &mut clap::Command) -> clap::Error {
    use clap::error::ErrorKind;
    let msg = match e.kind() {
        ErrorKind::MissingRequiredArgument => {
            "no namespace given: name it (NAMESPACE, or -n NAMESPACE), or check every namespace with -A".to_string()
        }
        ErrorKind::UnknownArgument | ErrorKind::TooManyValues
            if after_dashes.iter().any(|a| a.starts_with('-')) =>
        {
            let example = match after_dashes.split_first() {
                Some((ns, rest)) if !ns.starts_with('-') => {
                    format!("kubectl falco-verify {} -- {ns}", rest.join(" "))
                }
                _ => "kubectl falco-verify --since 10m -- NAMESPACE".to_string(),
            };
            format!(
                "flags must come before `--`: everything after it is the namespace. Write e.g. `{}`",
                crate::sanitize::neutralize(&example)
            )
        }
        _ => return e,
    };
    clap::Error::raw(e.kind(), msg).format(cmd)
}

/// `kubectl falco-verify` when invoked as `kubectl-falco_verify` (by kubectl or krew).
pub fn bin_name(argv0: Option<&std::ffi::OsString>) -> String {
    let base = argv0
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    if base.starts_with("kubectl-") {
        "kubectl falco-verify".to_string()
    } else if base.is_empty() {
        "kubectl-falco_verify".to_string()
    } else {
        base
    }
}

/// Why the arguments cannot run.
#[derive(Debug)]
pub enum ArgsError {
    /// From clap: a usage error, or `--help` / `--version` (printed to stdout, exit 0).
    Clap(clap::Error),
    /// A value clap accepted that cannot work (exit 2, nothing requested).
    Usage(String),
}

impl ArgsError {
    /// Prints the error (or help) and gives the exit code.
    pub fn report(&self) -> Exit {
        match self {
            ArgsError::Clap(e) => {
                let _ = e.print();
                if e.use_stderr() {
                    Exit::Usage
                } else {
                    Exit::Passed
                }
            }
            ArgsError::Usage(msg) => {
                eprintln!("error: {msg}");
                Exit::Usage
            }
        }
    }
}
