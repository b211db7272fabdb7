//! The `__complete` protocol: candidates for the words typed so far, from the clap
//! definition, and from the cluster and kubeconfig the words point at (reached as the check
//! reaches them). Never fails: whatever goes wrong means fewer candidates.

use std::time::Duration;

use clap::builder::ValueHint;
use clap::{Arg, Command, ValueEnum};
use clap_complete::Shell;

use super::{command, directive, CLUSTER_TIMEOUT};
use crate::args::Cli;
use crate::cluster::{Cluster, ConnectionEnv, Target};
use crate::falco::Priority;

/// Answers for completion that come from outside the command line.
pub trait Lookup {
    /// Namespace names of the cluster `target` points at; empty on any failure.
    fn namespaces(&self, target: &Target) -> Vec<String>;
    /// Context names of the kubeconfig `target` reads (merged as kubectl merges them).
    fn contexts(&self, target: &Target) -> Vec<String>;
}

/// The real lookups, through the check's own connection (kubeconfig merge, flags, proxies,
/// credential plugins), bounded by a deadline.
#[derive(Debug, Clone)]
pub struct ClusterLookup {
    pub timeout: Duration,
}

impl Default for ClusterLookup {
    fn default() -> Self {
        ClusterLookup {
            timeout: CLUSTER_TIMEOUT,
        }
    }
}

impl Lookup for ClusterLookup {
    fn namespaces(&self, target: &Target) -> Vec<String> {
        let target = target.clone();
        let timeout = self.timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        // A thread of its own: an exec credential plugin blocks, and a deadline must still hold.
        // When it passes, the thread is left behind; the process ends right after printing.
        let spawned = std::thread::Builder::new()
            .name("complete-namespaces".into())
            .spawn(move || {
                let names = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()
                    .and_then(|rt| {
                        rt.block_on(async {
                            let deadline = tokio::time::Instant::now() + timeout;
                            let cluster = Cluster::connect(&target, timeout, timeout).await.ok()?;
                            cluster.namespace_names(deadline).await.ok()
                        })
                    })
                    .unwrap_or_default();
                let _ = tx.send(names);
            });
        if spawned.is_err() {
            return Vec::new();
        }
        rx.recv_timeout(timeout).unwrap_or_default()
    }

    fn contexts(&self, target: &Target) -> Vec<String> {
        let files = crate::cluster::kubeconfig_files(
            target.kubeconfig.as_deref(),
            target.env.kubeconfig.as_deref(),
            target.env.home.as_deref(),
        );
        let mut names: Vec<String> = crate::cluster::load_kubeconfig(&files)
            .ok()
            .flatten()
            .map(|kc| kc.contexts.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        names.sort();
        names.dedup();
        names
    }
}

/// Candidates and a cobra directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completions {
    /// `(candidate, description)`.
    pub candidates: Vec<(String, String)>,
    pub directive: u32,
}

impl Completions {
    fn new(directive: u32) -> Self {
        Completions {
            candidates: Vec::new(),
            directive,
        }
    }

    /// Just the candidate words.
    pub fn words(&self) -> Vec<&str> {
        self.candidates.iter().map(|(w, _)| w.as_str()).collect()
    }

    /// Cobra's wire format: `word[\tdescription]` lines, then `:directive`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (word, desc) in &self.candidates {
            out.push_str(word);
            if !desc.is_empty() {
                out.push('\t');
                out.push_str(desc);
            }
            out.push('\n');
        }
        out.push_str(&format!(":{}\n", self.directive));
        out
    }

    fn push(&mut self, word: String, desc: impl Into<String>) {
        // Words come from the cluster and the kubeconfig: one with a control character (escape,
        // tab, newline) could drive the terminal or forge extra candidates. No such name is valid.
        if word.is_empty() || word.chars().any(crate::render::unsafe_on_terminal) {
            return;
        }
        let desc: String = crate::render::neutralize(&desc.into());
        // One line per candidate: tabs and newlines would break the format.
        let desc = desc
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('\t', " ");
        self.candidates.push((word, desc));
    }
}

/// The cluster the words before the cursor point at, read as the check reads its flags
/// (`--kubeconfig`, `--context`, `--server`, `--token`, ...), in the same environment
/// (`KUBECONFIG` lists, proxies): completing against X behaves like a check against X.
fn target_of(done: &[String], env: &ConnectionEnv) -> Target {
    use clap::FromArgMatches as _;
    let argv = std::iter::once(crate::args::bin_name(None)).chain(done.iter().cloned());
    let cli = command()
        .ignore_errors(true)
        .try_get_matches_from(argv)
        .ok()
        .and_then(|m| Cli::from_arg_matches(&m).ok());
    match cli {
        Some(cli) => cli.target(env.clone()),
        None => Target {
            kubeconfig: None,
            context: None,
            overrides: crate::cluster::Overrides::default(),
            env: env.clone(),
        },
    }
}

/// What the words before the cursor say.
#[derive(Default)]
struct Seen<'a> {
    /// Ids of the flags given so far.
    used: Vec<String>,
    positionals: Vec<&'a str>,
    after_dashdash: bool,
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

fn first_line(arg: &Arg) -> String {
    arg.get_help()
        .map(|h| h.to_string())
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Completes `words`: the words typed after `kubectl falco-verify`, the last one being the word
/// under the cursor (`""` when it is a new word).
pub fn complete(words: &[String], lookup: &dyn Lookup, env: &ConnectionEnv) -> Completions {
    let mut cmd = command();
    cmd.build();
    let (partial, done) = match words.split_last() {
        Some((last, done)) => (last.as_str(), done),
        None => ("", &[][..]),
    };
    let target = target_of(done, env);
    let find_long = |name: &str| {
        cmd.get_arguments()
            .find(|a| a.get_long() == Some(name))
            .cloned()
    };
    let find_short = |c: char| {
        cmd.get_arguments()
            .find(|a| a.get_short() == Some(c))
            .cloned()
    };

    let mut seen = Seen::default();
    // A flag whose value is the next word (the value itself is read by `target_of`).
    let mut pending: Option<Arg> = None;
    for word in done {
        if pending.take().is_some() {
            continue;
        }
        if seen.after_dashdash {
            seen.positionals.push(word);
            continue;
        }
        if word == "--" {
            seen.after_dashdash = true;
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            if let Some(arg) = find_long(name) {
                seen.used.push(arg.get_id().to_string());
                if takes_value(&arg) && value.is_none() {
                    pending = Some(arg);
                }
            }
            continue;
        }
        if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (i, c) in shorts.char_indices() {
                let Some(arg) = find_short(c) else { break };
                seen.used.push(arg.get_id().to_string());
                if takes_value(&arg) {
                    let rest = &shorts[i + c.len_utf8()..];
                    if rest.strip_prefix('=').unwrap_or(rest).is_empty() {
                        pending = Some(arg);
                    }
                    break;
                }
            }
            continue;
        }
        seen.positionals.push(word);
    }

    if let Some(arg) = pending {
        return values(&arg, "", partial, lookup, &target);
    }
    if !seen.after_dashdash {
        if let Some(long) = partial.strip_prefix("--") {
            if let Some((name, value)) = long.split_once('=') {
                return match find_long(name).filter(takes_value) {
                    Some(arg) => values(&arg, &format!("--{name}="), value, lookup, &target),
                    None => Completions::new(directive::NO_FILE_COMP),
                };
            }
        }
        if partial.starts_with('-') && partial != "-" && !partial.starts_with("--") {
            // `-sCR`: a short flag with its value attached.
            let mut chars = partial[1..].chars();
            if let Some(arg) = chars.next().and_then(find_short).filter(takes_value) {
                let head = &partial[..1 + partial[1..].chars().next().map_or(0, char::len_utf8)];
                let value = chars.as_str();
                if !value.is_empty() {
                    return values(&arg, head, value, lookup, &target);
                }
            }
        }
        if partial.starts_with('-') {
            return flags(&cmd, partial, &seen);
        }
    }
    positional(&cmd, partial, &seen, lookup, &target)
}

/// Long flags matching `partial`, without those already given (unless repeatable) or in
/// conflict with one given.
fn flags(cmd: &Command, partial: &str, seen: &Seen) -> Completions {
    let mut out = Completions::new(directive::NO_FILE_COMP);
    let used: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| seen.used.iter().any(|u| u == a.get_id().as_str()))
        .collect();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.is_hide_set() || arg.is_positional() {
            continue;
        }
        let repeatable = matches!(
            arg.get_action(),
            clap::ArgAction::Append | clap::ArgAction::Count
        );
        let id = arg.get_id().as_str();
        if !repeatable && seen.used.iter().any(|u| u == id) {
            continue;
        }
        if used.iter().any(|u| {
            cmd.get_arg_conflicts_with(u)
                .iter()
                .any(|c| c.get_id() == arg.get_id())
        }) {
            continue;
        }
        let word = format!("--{long}");
        if word.starts_with(partial) {
            out.push(word, first_line(arg));
        }
    }
    out
}

fn positional(
    cmd: &Command,
    partial: &str,
    seen: &Seen,
    lookup: &dyn Lookup,
    target: &Target,
) -> Completions {
    let mut out = Completions::new(directive::NO_FILE_COMP);
    // A flag given may rule the NAMESPACE argument out (`--all-namespaces`).
    let namespace_excluded = cmd
        .get_arguments()
        .filter(|a| seen.used.iter().any(|u| u == a.get_id().as_str()))
        .any(|a| {
            cmd.get_arg_conflicts_with(a)
                .iter()
                .any(|c| c.is_positional())
        });
    match seen.positionals.as_slice() {
        [] if namespace_excluded => {}
        [] => {
            for ns in lookup.namespaces(target) {
                if ns.starts_with(partial) {
                    out.push(ns, "");
                }
            }
        }
        ["completion"] if seen.used.is_empty() && !seen.after_dashdash => {
            for shell in Shell::value_variants() {
                if let Some(pv) = shell.to_possible_value() {
                    if pv.get_name().starts_with(partial) {
                        out.push(pv.get_name().to_string(), "");
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// Values of `arg` starting with `partial`, each prefixed with `head` (`--flag=` or `-s` when
/// the value is attached to the flag).
fn values(
    arg: &Arg,
    head: &str,
    partial: &str,
    lookup: &dyn Lookup,
    target: &Target,
) -> Completions {
    let mut out = Completions::new(directive::NO_FILE_COMP);
    let lower = partial.to_ascii_lowercase();
    let offer = |out: &mut Completions, word: &str, desc: &str, fold: bool| {
        let matches = if fold {
            word.to_ascii_lowercase().starts_with(&lower)
        } else {
            word.starts_with(partial)
        };
        if matches {
            out.push(format!("{head}{word}"), desc);
        }
    };
    let id = arg.get_id().as_str();
    match id {
        "severity" => {
            for p in Priority::ALL {
                let desc = if p == Priority::Debug {
                    "any alert blocks".to_string()
                } else {
                    format!("{} and more severe block", p.as_falco_str())
                };
                offer(&mut out, p.as_lower(), &desc, true);
            }
        }
        "falco_namespace" => {
            for ns in lookup.namespaces(target) {
                offer(&mut out, &ns, "", false);
            }
        }
        "context" => {
            for c in lookup.contexts(target) {
                offer(&mut out, &c, "", false);
            }
        }
        "selector" => {
            offer(
                &mut out,
                crate::cluster::DEFAULT_SELECTOR,
                "old stable/falco chart",
                false,
            );
            offer(
                &mut out,
                crate::cluster::CHART_SELECTOR,
                "falcosecurity Helm chart",
                false,
            );
        }
        "container" => offer(&mut out, "falco", "the Helm chart's Falco container", false),
        "since" => {
            for d in ["5m", "10m", "30m", "1h", "24h"] {
                offer(&mut out, d, "", false);
            }
        }
        "timeout" => {
            for d in ["10s", "30s", "1m", "2m"] {
                offer(&mut out, d, "", false);
            }
        }
        _ => {
            let possible = arg.get_possible_values();
            if !possible.is_empty() {
                for pv in possible.iter().filter(|pv| !pv.is_hide_set()) {
                    let desc = pv.get_help().map(|h| h.to_string()).unwrap_or_default();
                    offer(&mut out, pv.get_name(), &desc, true);
                }
            } else if matches!(
                arg.get_value_hint(),
                ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath
            ) {
                // No candidates and no directive: the shell completes file names.
                out.directive = directive::DEFAULT;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Lookup for Fake {
        fn namespaces(&self, target: &Target) -> Vec<String> {
            match (
                target.context.as_deref(),
                target.overrides.server.as_deref(),
            ) {
                (Some("other"), _) => vec!["elsewhere".into()],
                (_, Some(s)) => vec![format!("on-{}", s.len())],
                _ => vec!["default".into(), "falco".into(), "shadow-abc123".into()],
            }
        }
        fn contexts(&self, _: &Target) -> Vec<String> {
            vec!["kind-a".into(), "prod".into()]
        }
    }

    fn run(words: &[&str]) -> Completions {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        complete(&words, &Fake, &ConnectionEnv::default())
    }

    #[test]
    fn flag_names() {
        let c = run(&["--sev"]);
        assert_eq!(c.words(), ["--severity"]);
        assert_eq!(c.directive, directive::NO_FILE_COMP);
        let all = run(&["-"]);
        for f in [
            "--since",
            "--output",
            "--logs",
            "--help",
            "--version",
            "--context",
        ] {
            assert!(all.words().contains(&f), "{f} in {:?}", all.words());
        }
        // Given flags are not offered again, nor their conflicts; --logs repeats. kubectl's
        // connection flags stay offered with --logs (accepted, and said to be unused).
        let c = run(&["ns", "--since", "5m", "--logs", "a", "--"]);
        assert!(!c.words().contains(&"--since"));
        assert!(!c.words().contains(&"--since-time"));
        assert!(c.words().contains(&"--logs"));
        assert!(c.render().contains("--severity\tLowest priority"));
    }

    #[test]
    fn candidates_with_control_characters_are_dropped() {
        let mut c = Completions {
            candidates: Vec::new(),
            directive: 4,
        };
        c.push("evil\u{1b}]0;x\u{7}".to_string(), "");
        c.push("a\nb".to_string(), "");
        c.push("ok".to_string(), "desc\u{1b}[2J");
        assert_eq!(c.words(), ["ok"]);
        assert!(!c.render().contains('\u{1b}'));
    }

    #[test]
    fn flag_values() {
        let levels = run(&["--severity", ""]);
        assert_eq!(
            levels.words(),
            [
                "emergency",
                "alert",
                "critical",
                "error",
                "warning",
                "notice",
                "informational",
                "debug"
            ]
        );
        assert_eq!(run(&["-s", "CR"]).words(), ["critical"]);
        assert_eq!(run(&["--severity=w"]).words(), ["--severity=warning"]);
        assert_eq!(run(&["-sc"]).words(), ["-scritical"]);
        let formats: Vec<String> = crate::args::OutputFormat::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|v| v.get_name().to_owned())
            .collect();
        assert_eq!(run(&["ns", "-o", ""]).words(), formats);
        assert!(formats.starts_with(&["text".to_string(), "json".to_string()]));
        assert_eq!(run(&["--color", "a"]).words(), ["auto", "always"]);
        assert_eq!(run(&["--falco-namespace", "f"]).words(), ["falco"]);
        assert_eq!(run(&["--context", ""]).words(), ["kind-a", "prod"]);
        let files = run(&["--logs", ""]);
        assert!(files.candidates.is_empty());
        assert_eq!(files.directive, directive::DEFAULT);
        assert_eq!(run(&["--kubeconfig", "x"]).directive, directive::DEFAULT);
    }

    #[test]
    fn namespaces_for_the_positional() {
        assert_eq!(run(&["sh"]).words(), ["shadow-abc123"]);
        assert_eq!(run(&[""]).words().len(), 3);
        // --context picks the cluster asked.
        assert_eq!(run(&["--context", "other", ""]).words(), ["elsewhere"]);
        assert_eq!(run(&["--since", "5m", "--", "d"]).words(), ["default"]);
        // One namespace only, and none with --all-namespaces.
        assert!(run(&["ns1", ""]).candidates.is_empty());
        assert!(run(&["--all-namespaces", ""]).candidates.is_empty());
        assert!(run(&["-A", "d"]).candidates.is_empty());
        assert_eq!(run(&["completion", "b"]).words(), ["bash"]);
        assert_eq!(run(&[]).render().lines().last(), Some(":4"));
    }

    #[test]
    fn wire_format() {
        let c = run(&["--output", "w"]);
        assert_eq!(c.render(), "wide\tText with node and container\n:4\n");
    }
}
