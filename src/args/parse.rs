//! The command line: [`parse`] tells a check from the special modes (completion, man page),
//! clap reads a check's flags ([`parse_from`]), and [`ArgsError`] says why arguments cannot run.

use std::ffi::OsString;

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use clap_complete::Shell;

use super::cli::ArgsError;
use super::env::Environment;
use super::invocation::Invocation;
use super::resolve::resolve;

/// Hidden first argument: answer a completion request (cobra's name for it).
pub const COMPLETE_ARG: &str = "__complete";

/// The shells `completion` writes a script for.
pub const SHELLS: &str = "bash, zsh, fish, powershell, elvish";

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// A check, resolved (boxed: it is large beside a special mode).
    Check(Box<Invocation>),
    /// Something other than a check, answered by [`crate::completion::run`].
    Special(Special),
}

/// The modes beside the check (ripgrep's `SpecialMode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Special {
    /// `__complete WORDS... PARTIAL`: kubectl's plugin completion protocol.
    Complete(Vec<String>),
    /// `completion SHELL`: a completion script.
    Script(Shell),
    /// `completion -h` / `--help` (`asked`: stdout, exit 0), or `completion` alone (stderr,
    /// exit 2).
    CompletionUsage { asked: bool },
    /// `man`: the roff man page.
    Man,
}

/// Parses `argv` (with the program name first), as of `now`: a special mode, or a check
/// resolved against `env`.
pub fn parse(
    argv: Vec<OsString>,
    env: &Environment,
    now: DateTime<Utc>,
) -> Result<Parsed, ArgsError> {
    match special(&argv)? {
        Some(mode) => Ok(Parsed::Special(mode)),
        None => resolve(argv, env, now).map(|inv| Parsed::Check(Box::new(inv))),
    }
}

/// Recognises `completion SHELL`, `man` and `__complete ...` before clap sees them (a namespace
/// is a positional, so they cannot be clap subcommands); `None` means the arguments are a check.
///
/// `man` and `completion` are only taken as commands when they are the first argument and the
/// rest has the command's shape (`man` alone; `completion` alone, with `-h`/`--help`, or with one
/// word). A namespace with one of these names is checked with `kubectl falco-verify -- man`.
fn special(argv: &[OsString]) -> Result<Option<Special>, ArgsError> {
    let Some(first) = argv.get(1).and_then(|a| a.to_str()) else {
        return Ok(None);
    };
    let rest = &argv[2..];
    let mode = match first {
        COMPLETE_ARG => Special::Complete(
            rest.iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect(),
        ),
        "man" if rest.is_empty() => Special::Man,
        "completion" => match rest {
            [] => Special::CompletionUsage { asked: false },
            [w] => match w.to_str().unwrap_or("") {
                "-h" | "--help" => Special::CompletionUsage { asked: true },
                // `completion --fail-closed`: a check of a namespace called `completion`.
                w if w.starts_with('-') => return Ok(None),
                w => match <Shell as ValueEnum>::from_str(w, true) {
                    Ok(shell) => Special::Script(shell),
                    Err(_) => {
                        return Err(ArgsError::Usage(format!(
                            "unknown shell {w:?}: use one of {SHELLS}"
                        )))
                    }
                },
            },
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::OutputFormat;
    use crate::args::{bin_name, parse_from};
    use crate::falco::Priority;

    fn argv(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn special_modes() {
        let mode = |v: &[&str]| special(&argv(v)).ok().flatten();
        assert_eq!(mode(&["k", "man"]), Some(Special::Man));
        assert_eq!(
            mode(&["k", "completion", "ZSH"]),
            Some(Special::Script(Shell::Zsh))
        );
        assert_eq!(
            mode(&["k", "completion", "--help"]),
            Some(Special::CompletionUsage { asked: true })
        );
        assert_eq!(
            mode(&["k", "completion"]),
            Some(Special::CompletionUsage { asked: false })
        );
        assert_eq!(
            mode(&["k", "__complete", "-s", ""]),
            Some(Special::Complete(vec!["-s".into(), "".into()]))
        );
        assert!(matches!(
            special(&argv(&["k", "completion", "tcsh"])),
            Err(ArgsError::Usage(_))
        ));
    }

    #[test]
    fn special_modes_leave_checks_alone() {
        for check in [
            &["k", "shadow-abc123"][..],
            &["k", "man", "--since", "5m"],
            &["k", "completion", "--fail-closed"],
            &["k", "completion", "bash", "zsh"],
            &["k", "--", "man"],
            &["k"],
        ] {
            assert!(matches!(special(&argv(check)), Ok(None)), "{check:?}");
        }
    }

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
