//! [`resolve`]: flags, environment and terminal become one [`Invocation`], or a usage error
//! before any request is made (the checks that need files: logs, reports, the kubeconfig).

use std::ffi::OsString;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::cli::{parse_from, ArgsError};
use super::defs::{AnnotationsChoice, Cli, ColorChoice};
use super::env::{check_aegis_vars, disabled_by, Environment};
use super::format::OutputFormat;
use super::invocation::{Invocation, LiveView, Output, Reports};
use super::values::check_label_selector;
use crate::check::Input;
use crate::render::{neutralize, Style};

/// Parses and validates everything, as of `now`: the only place flags, environment and
/// terminal are looked at.
pub fn resolve(
    argv: Vec<OsString>,
    env: &Environment,
    now: DateTime<Utc>,
) -> Result<Invocation, ArgsError> {
    let usage = ArgsError::Usage;
    // Before clap reads them: a bad value is named by its variable, not as a flag's.
    let unknown_vars = check_aegis_vars(&env.aegis).map_err(usage)?;
    let cli = parse_from(argv).map_err(ArgsError::Clap)?;
    let disabled = disabled_by(env.enabled.as_deref()).map_err(usage)?;
    // Two readers of one stdin would each see part of it.
    if cli.logs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(usage(
            "--logs - (stdin) given more than once: stdin can be read once".to_string(),
        ));
    }
    // An input file that cannot be opened is a usage error, not a gate that passes unread.
    for path in cli.logs.iter().filter(|p| p.as_os_str() != "-") {
        let shown = neutralize(&path.display().to_string());
        if let Err(e) = crate::source::files::check_input(path) {
            return Err(usage(format!("--logs {shown}: {e}")));
        }
    }
    cli.validate(now).map_err(usage)?;
    // The canary goes where the namespace ran: without the map it has nowhere to go.
    if cli.canary && !cli.node_coverage {
        return Err(usage(
            "--canary needs the map of nodes where the namespace ran: drop --node-coverage=false"
                .to_string(),
        ));
    }
    let mut cli = cli;
    match (&cli.namespace, &cli.namespace_flag) {
        (Some(a), Some(b)) if a != b => {
            return Err(usage(format!(
                "the namespace is given twice and differs: {a} and -n {b}; give one"
            )))
        }
        (None, Some(b)) => cli.namespace = Some(b.clone()),
        _ => {}
    }
    if cli.logs.is_empty() {
        check_kubeconfig(&cli, env).map_err(usage)?;
    }
    if let Some(sel) = cli.selector.as_deref().filter(|s| !s.trim().is_empty()) {
        check_label_selector(sel).map_err(usage)?;
    }
    let mut check = cli.to_options(now);
    if let Input::Cluster(target) = &mut check.input {
        target.env = env.connection.clone();
    } else {
        // kubectl never rejects its generic flags; offline they have nothing to act on.
        let unused = cli.connection_flags();
        if !unused.is_empty() {
            check.notes.push(format!(
                "{} not used: the input is --logs, no cluster is contacted",
                unused.join(", ")
            ));
        }
    }
    check.disabled = disabled;
    check.notes.extend(unknown_vars);
    check.ignores = cli.ignores().map_err(|e| usage(e.to_string()))?;
    let color = |tty| use_color(cli.color, env.no_color.as_deref(), env.term.as_deref(), tty);
    let dumb = env.term.as_deref() == Some("dumb");
    let stdout = Style {
        color: color(env.stdout_tty),
        wide: cli.output == OutputFormat::Wide,
        tty: env.stdout_tty && !dumb,
        streamed: false,
    };
    let stderr = Style {
        color: color(env.stderr_tty),
        wide: stdout.wide,
        tty: env.stderr_tty && !dumb,
        streamed: false,
    };
    let text_out = cli.output.is_text();
    let live = check.follow.map(|_| LiveView {
        print_alerts: cli.watch,
        to_stdout: text_out,
        status: stderr.tty && cli.watch,
        columns: env.columns.filter(|c| *c > 0).unwrap_or(80),
        threshold: check.threshold,
    });
    // Alerts streamed as they arrived are not listed again in the final summary.
    let stdout = Style {
        streamed: cli.watch && text_out,
        ..stdout
    };
    let output = Output {
        format: cli.output,
        stdout,
        stderr,
        progress: stderr.tty && !check.is_offline() && live.is_none(),
        live,
    };
    let annotations = match cli.annotations {
        AnnotationsChoice::Always => true,
        AnnotationsChoice::Never => false,
        AnnotationsChoice::Auto => env.github_actions,
    };
    for (_, path) in &cli.reports {
        check_writable(path).map_err(usage)?;
    }
    let reports = Reports {
        files: cli.reports.clone(),
        annotations,
        step_summary: env
            .step_summary
            .clone()
            .filter(|_| annotations && cli.annotations != AnnotationsChoice::Never),
    };
    Ok(Invocation {
        check,
        output,
        reports,
        verbosity: cli.verbosity,
    })
}

/// The directory a report file goes to (its temporary file too): its parent, or `.`.
pub fn report_dir(path: &std::path::Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A report path must be writable before anything is requested: its directory exists and a
/// file can be made there (then removed).
fn check_writable(path: &std::path::Path) -> Result<(), String> {
    let shown = neutralize(&path.display().to_string());
    if path.is_dir() {
        return Err(format!("--report {shown} is a directory: give a file path"));
    }
    let probe = report_dir(path).join(format!(".falco-verify-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "--report {shown} cannot be written ({e}): check that its directory exists and is writable"
        )),
    }
}

/// A `--kubeconfig` that is not there or does not parse, or a `--context` that no kubeconfig
/// has, is the user's typo: a usage error, never a gate that skips. (No kubeconfig at all, and
/// no `--context`, stays the in-cluster / "not configured" case.)
fn check_kubeconfig(cli: &Cli, env: &Environment) -> Result<(), String> {
    let files = crate::cluster::kubeconfig_files(
        cli.kubeconfig.as_deref(),
        env.connection.kubeconfig.as_deref(),
        env.connection.home.as_deref(),
    );
    let mut names = crate::cluster::kubeconfig::Names::default();
    // The check's own reading of the files (merged as kubectl merges them).
    let merged = crate::cluster::kubeconfig_files::read_kubeconfigs(&files).map_err(|bad| {
        let origin = if cli.kubeconfig.is_some() {
            "--kubeconfig"
        } else {
            "KUBECONFIG / ~/.kube/config:"
        };
        format!(
            "{origin} {}: {}. Point --kubeconfig at the file kubectl uses",
            neutralize(&bad.path.display().to_string()),
            neutralize(&bad.why)
        )
    })?;
    if let Some(kc) = merged {
        names.add(kc);
    }
    let unknown =
        |flag: &str, value: &str, have: &std::collections::BTreeSet<String>, list: &str| {
            let have = if have.is_empty() {
                "no kubeconfig defines any".to_string()
            } else {
                format!(
                    "it has: {}",
                    have.iter()
                        .map(|c| neutralize(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            Err(format!(
                "{flag} {} is not in the kubeconfig; {have} (see `kubectl config {list}`)",
                neutralize(value)
            ))
        };
    if let Some(ctx) = cli
        .context
        .as_deref()
        .filter(|c| !names.contexts.contains(*c))
    {
        return unknown("--context", ctx, &names.contexts, "get-contexts");
    }
    // With --server a cluster need not be in the kubeconfig (client-go takes the flags alone).
    if let Some(c) = cli
        .cluster
        .as_deref()
        .filter(|c| cli.server.is_none() && !names.clusters.contains(*c))
    {
        return unknown("--cluster", c, &names.clusters, "get-clusters");
    }
    if let Some(u) = cli.user.as_deref().filter(|u| !names.users.contains(*u)) {
        return unknown("--user", u, &names.users, "get-users");
    }
    if let Some(server) = &cli.server {
        let ok = server
            .parse::<http::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("https" | "http")) && u.host().is_some());
        if !ok {
            return Err(format!(
                "--server {:?} is not an http(s) URL, e.g. https://10.0.0.1:6443",
                neutralize(server)
            ));
        }
    }
    for (flag, path) in [
        ("--certificate-authority", &cli.certificate_authority),
        ("--client-certificate", &cli.client_certificate),
        ("--client-key", &cli.client_key),
    ] {
        if let Some(p) = path {
            if let Err(e) = std::fs::File::open(p) {
                return Err(format!(
                    "cannot read {flag} {}: {e}",
                    neutralize(&p.display().to_string())
                ));
            }
        }
    }
    Ok(())
}

/// Whether to color, from `--color`, NO_COLOR, TERM and whether the stream is a terminal.
pub fn use_color(
    choice: ColorChoice,
    no_color: Option<&str>,
    term: Option<&str>,
    is_terminal: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && no_color.is_none_or(str::is_empty) && term != Some("dumb")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color() {
        assert!(use_color(ColorChoice::Auto, None, None, true));
        assert!(!use_color(ColorChoice::Auto, None, Some("dumb"), true));
        assert!(!use_color(ColorChoice::Auto, Some("1"), None, true));
        assert!(!use_color(ColorChoice::Auto, None, None, false));
        assert!(use_color(ColorChoice::Always, Some("1"), None, false));
    }
}
