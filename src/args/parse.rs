//! The command line through clap ([`parse_from`], named as kubectl shows the plugin), and
//! [`ArgsError`], why arguments cannot run.

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
    let matches = cmd.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::OutputFormat;
    use crate::falco::Priority;

    #[test]
    fn plugin_name_in_usage() {
        assert_eq!(
            bin_name(Some(&"/usr/bin/kubectl-falco_verify".into())),
            "kubectl falco-verify"
        );
        let e = parse_from(["kubectl-falco_verify", "--bogus"]).expect_err("usage");
        assert!(e.to_string().contains("kubectl falco-verify"), "{e}");
    }

    #[test]
    fn flags_parse() {
        let c = parse_from([
            "x",
            "ns1",
            "-s",
            "CRITICAL",
            "--since",
            "5m",
            "-o",
            "json",
            "--fail-closed",
        ])
        .expect("parse");
        assert_eq!(c.severity, Priority::Critical);
        assert_eq!(c.output, OutputFormat::Json);
        assert!(parse_from([
            "x",
            "ns1",
            "--since",
            "5m",
            "--since-time",
            "2024-01-15T10:30:00Z"
        ])
        .is_err());
        assert!(parse_from(["x", "ns1", "-s", "loud"]).is_err());
    }
}
