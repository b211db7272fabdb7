//! The arguments layer: the clap definition ([`Cli`], the flag contract scripts depend on), then
//! [`resolve`], which turns flags, environment and terminal into everything a run needs, or a
//! usage error before any request is made.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::check::{CheckOptions, Follow, Input};
use crate::cluster::Target;
use crate::falco::Priority;
use crate::render::{neutralize, Style};
use crate::verdict::{Exit, GroupBy, Ignores, Scope, Window};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Yaml,
    /// Text with node and container.
    Wide,
    /// JUnit XML (the junit-10.xsd shape CI test reporters read).
    Junit,
    /// Markdown (as the GitHub job summary).
    Markdown,
}

/// Formats of `--report FORMAT=PATH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Json,
    Yaml,
    Junit,
    Markdown,
}

/// `--annotations`: GitHub Actions workflow commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnnotationsChoice {
    /// Under GitHub Actions (`GITHUB_ACTIONS=true`) only.
    Auto,
    Always,
    Never,
}

/// Files and CI outputs written besides the main output.
#[derive(Debug, Clone, Default)]
pub struct Reports {
    /// `--report FORMAT=PATH`, written atomically.
    pub files: Vec<(ReportFormat, PathBuf)>,
    /// Write GitHub workflow-command annotations.
    pub annotations: bool,
    /// `$GITHUB_STEP_SUMMARY`: a Markdown job summary is appended to it.
    pub step_summary: Option<PathBuf>,
}

/// `FORMAT=PATH` of `--report`.
fn parse_report(s: &str) -> Result<(ReportFormat, PathBuf), String> {
    let (format, path) = s
        .split_once('=')
        .ok_or_else(|| format!("--report {s:?}: use FORMAT=PATH, e.g. junit=falco.xml"))?;
    let format = ReportFormat::from_str(format, true)
        .map_err(|_| format!("--report {s:?}: the format is one of json, yaml, junit, markdown"))?;
    if path.is_empty() {
        return Err(format!("--report {s:?}: the path is empty"));
    }
    Ok((format, PathBuf::from(path)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Did Falco raise an alert for workloads in NAMESPACE since a time, at or above a priority?
///
/// Reads the logs of every Falco pod for the window through the Kubernetes API, keeps the alerts
/// whose namespace is exactly NAMESPACE, and exits 0 (passed, or could not verify without
/// --fail-closed), 1 (blocked), 2 (usage error) or 3 (could not verify, with --fail-closed).
#[derive(Debug, Clone, Parser)]
#[command(
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FALCO_VERIFY_GIT_COMMIT"), ")"),
    about,
    long_about,
    max_term_width = 100,
    after_help = "Also: `completion bash|zsh|fish|powershell` prints a completion script, `man` a man page."
)]
pub struct Cli {
    /// Namespace whose workloads' alerts count (exact match, a DNS-1123 label).
    #[arg(value_name = "NAMESPACE", value_parser = parse_namespace, required_unless_present_any = ["all_namespaces", "namespace_flag"])]
    pub namespace: Option<String>,

    /// The namespace, as kubectl names it (same as NAMESPACE; both given must agree).
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE", value_parser = parse_namespace, conflicts_with = "all_namespaces")]
    pub namespace_flag: Option<String>,

    /// Every namespace: one row of alert counts per namespace, worst first (blocks on any).
    #[arg(short = 'A', long, conflicts_with_all = ["namespace", "nodes_of_namespace"])]
    pub all_namespaces: bool,

    /// Window length ending now: 30s, 5m, 1h, 1h30m [default: 10m; with --for: the window starts now].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "since_time")]
    pub since: Option<Duration>,

    /// Window start instead of --since (RFC3339, e.g. 2024-01-15T10:30:00Z or +00:00).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub since_time: Option<DateTime<Utc>>,

    /// Lowest priority that blocks (case-insensitive): emergency alert critical error warning notice informational|info debug.
    #[arg(short, long, visible_alias = "priority", value_name = "LEVEL", default_value = "warning", env = "AEGIS_SECURITY__FALCO_SEVERITY", value_parser = priority_parser(), ignore_case = true, hide_env_values = true)]
    pub severity: Priority,

    /// Namespace where Falco runs.
    #[arg(
        long,
        value_name = "NS",
        default_value = "falco",
        env = "AEGIS_SECURITY__FALCO_NAMESPACE",
        hide_env_values = true,
        value_parser = parse_namespace
    )]
    pub falco_namespace: String,

    /// Falco pods [default: app=falco, then app.kubernetes.io/name=falco when that matches nothing].
    #[arg(
        short = 'l',
        long,
        value_name = "SELECTOR",
        env = "AEGIS_SECURITY__FALCO_LABEL_SELECTOR",
        hide_env_values = true
    )]
    pub selector: Option<String>,

    /// Falco's container [default: falco if the pod has one, else the pod's kubectl.kubernetes.io/default-container, else its only container].
    #[arg(short, long, value_name = "NAME")]
    pub container: Option<String>,

    /// Breakdown table: counts, worst priority, first and last seen per key.
    #[arg(long, value_name = "KEY", value_enum)]
    pub group_by: Option<GroupBy>,

    /// Accept alerts of this rule as known noise (glob; repeatable): counted and shown as ignored, never blocking.
    #[arg(long, value_name = "NAME")]
    pub ignore_rule: Vec<String>,

    /// YAML list of accepted noise: `- rule: GLOB` with optional `output_fields: {FIELD: GLOB}`.
    #[arg(long, value_name = "PATH")]
    pub ignore_file: Vec<PathBuf>,

    /// Follow the Falco pods live and print each new alert as it arrives; Ctrl-C (or --for) ends
    /// with the usual verdict and exit code.
    #[arg(short, long, conflicts_with = "logs")]
    pub watch: bool,

    /// Soak window: follow the logs for DURATION from now, then give the verdict for the whole
    /// window (start the check before applying a change).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration, conflicts_with = "logs")]
    pub for_: Option<Duration>,

    /// Output format.
    #[arg(short, long, value_name = "FORMAT", default_value = "text")]
    pub output: OutputFormat,

    /// Also write the result as FORMAT (json, yaml, junit, markdown) to PATH (repeatable; written
    /// atomically; a path that cannot be written is a usage error).
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = parse_report)]
    pub reports: Vec<(ReportFormat, PathBuf)>,

    /// GitHub Actions annotations and job summary: auto (when GITHUB_ACTIONS=true), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub annotations: AnnotationsChoice,

    /// Overall deadline for all cluster work.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// "Could not verify" (skipped or incomplete) exits 3 instead of 0.
    #[arg(long)]
    pub fail_closed: bool,

    /// Color: auto (only on a terminal, never when NO_COLOR is set), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,

    /// Path to the kubeconfig file (KUBECONFIG is honoured; in-cluster config when there is none).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Read Falco output from files instead of the cluster ('-' = stdin); repeatable.
    #[arg(long, value_name = "PATH")]
    pub logs: Vec<PathBuf>,

    /// Falco pods read at the same time.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrency: u32,

    /// Alerts listed in the result (all are counted).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_alerts: usize,

    /// Read only the Falco pods on nodes where NAMESPACE's pods ran in the window (its pods now
    /// and its Scheduled Events; plus Falco pods not run by a DaemonSet, e.g. k8saudit). Needs
    /// list on pods and events in NAMESPACE.
    #[arg(long)]
    pub nodes_of_namespace: bool,

    /// Map the nodes where NAMESPACE ran in the window (its pods and Scheduled Events) and
    /// require a Falco pod that watched each: a PASSED then means Falco watched the namespace.
    /// Needs list on pods and events in NAMESPACE (and nodes, to say why a node has no Falco).
    /// `--node-coverage=false` checks the Falco pods only.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub node_coverage: bool,

    /// Prove that Falco watches NAMESPACE: on each node where it ran, create a short-lived,
    /// unprivileged pod in NAMESPACE (labelled app.kubernetes.io/managed-by=kubectl-falco-verify)
    /// whose one action, a symlink to /etc/shadow, Falco's default rule "Create Symlink Over
    /// Sensitive Files" reports; wait for each report in that node's Falco log; delete the pods.
    /// Needs create, get and delete on pods in NAMESPACE. With --for: at the start and the end.
    #[arg(long, conflicts_with_all = ["logs", "all_namespaces"])]
    pub canary: bool,

    /// --canary: the image (needs /bin/sh; runs as user 65534).
    #[arg(long, value_name = "IMAGE", default_value = crate::source::canary::DEFAULT_IMAGE, requires = "canary")]
    pub canary_image: String,

    /// --canary: the command run by /bin/sh -c instead of the symlink (for custom rulesets); its
    /// alert must show $FALCO_VERIFY_CANARY (the pod's name) in a path, e.g. /tmp/$FALCO_VERIFY_CANARY.
    #[arg(long, value_name = "COMMAND", requires_all = ["canary", "canary_rule"])]
    pub canary_command: Option<String>,

    /// --canary: the rule the canary command triggers (`RULE` or `RULE=TEXT TITLE` when Falco
    /// writes text, whose alerts carry the output's title instead of the rule name).
    #[arg(long, value_name = "RULE", requires = "canary")]
    pub canary_rule: Option<String>,

    /// --canary: how long to wait for each canary's alert (apart from --timeout, which bounds
    /// the reads).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, requires = "canary")]
    pub canary_timeout: Duration,

    /// Longest log line parsed; longer lines are counted, reported and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = crate::falco::DEFAULT_MAX_LINE, value_parser = parse_line_limit)]
    pub max_line_bytes: usize,

    /// With --watch / --for: how often the Falco pod list is read again to pick up new pods.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub relist_every: Duration,

    /// The kubeconfig cluster to use (instead of the context's).
    #[arg(long, value_name = "NAME", help_heading = KUBECTL_FLAGS)]
    pub cluster: Option<String>,

    /// The kubeconfig user to use (instead of the context's).
    #[arg(long, value_name = "NAME", help_heading = KUBECTL_FLAGS)]
    pub user: Option<String>,

    /// The API server's address (no short form: -s is --severity).
    #[arg(long, value_name = "URL", help_heading = KUBECTL_FLAGS)]
    pub server: Option<String>,

    /// Bearer token for the API server.
    #[arg(long, value_name = "TOKEN", help_heading = KUBECTL_FLAGS, hide_env_values = true)]
    pub token: Option<String>,

    /// User to impersonate.
    #[arg(long = "as", value_name = "USER", help_heading = KUBECTL_FLAGS)]
    pub as_user: Option<String>,

    /// Group to impersonate (repeatable).
    #[arg(long = "as-group", value_name = "GROUP", help_heading = KUBECTL_FLAGS)]
    pub as_group: Vec<String>,

    /// UID to impersonate.
    #[arg(long = "as-uid", value_name = "UID", help_heading = KUBECTL_FLAGS)]
    pub as_uid: Option<String>,

    /// Do not check the server certificate (insecure).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), help_heading = KUBECTL_FLAGS)]
    pub insecure_skip_tls_verify: Option<bool>,

    /// CA certificate file for the server.
    #[arg(long, value_name = "PATH", help_heading = KUBECTL_FLAGS)]
    pub certificate_authority: Option<PathBuf>,

    /// Client certificate file for TLS.
    #[arg(long, value_name = "PATH", help_heading = KUBECTL_FLAGS)]
    pub client_certificate: Option<PathBuf>,

    /// Client key file for TLS.
    #[arg(long, value_name = "PATH", help_heading = KUBECTL_FLAGS)]
    pub client_key: Option<PathBuf>,

    /// Server name to check the server certificate against.
    #[arg(long, value_name = "NAME", help_heading = KUBECTL_FLAGS)]
    pub tls_server_name: Option<String>,

    /// Longest wait for one request, inside --timeout [default: 0, none; a bare number is seconds].
    #[arg(long, value_name = "DURATION", value_parser = parse_request_timeout, help_heading = KUBECTL_FLAGS)]
    pub request_timeout: Option<Duration>,

    /// Debug log on stderr: 4 decisions (kubeconfig, proxy, credentials, retries, coverage), 6 every request.
    #[arg(short = 'v', long = "v", value_name = "LEVEL", default_value_t = 0, help_heading = KUBECTL_FLAGS)]
    pub verbosity: u8,
}

/// The help heading of kubectl's generic flags.
const KUBECTL_FLAGS: &str = "Kubernetes connection (as kubectl)";

/// kubectl's `--request-timeout`: `0` is no limit (zero), a bare number is seconds, else a
/// duration.
fn parse_request_timeout(s: &str) -> Result<Duration, String> {
    if let Ok(n) = s.trim().parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    parse_duration(s)
}

/// Sections of `--help` and of the man page: (heading, [(term, text)]). One source for both.
pub const HELP_SECTIONS: [(&str, &[(&str, &str)]); 3] = [
    (
        "EXAMPLES",
        &[
            ("kubectl falco-verify shadow-abc123 --since 10m", "alerts of the last 10 minutes at or above Warning"),
            ("kubectl falco-verify -n shadow-abc123 --since-time \"$T\" --severity error --fail-closed -o json", "a CI gate: could-not-verify exits 3"),
            ("kubectl falco-verify shadow-abc123 --for 5m --fail-closed", "a soak: follow the Falco pods for 5 minutes, then the verdict"),
            ("kubectl falco-verify shadow-abc123 --watch", "live alerts; Ctrl-C ends with the verdict"),
            ("kubectl logs -n falco -l app.kubernetes.io/name=falco -c falco --tail=-1 --timestamps --prefix > f.log; kubectl falco-verify shadow-abc123 --logs f.log --since-time \"$T\"", "check saved logs offline"),
        ],
    ),
    (
        "ENVIRONMENT",
        &[
            ("AEGIS_SECURITY__FALCO_ENABLED", "false/0/no/off: skip the check with exit 0 and no request (the kill switch); true/1/yes/on or unset: enabled; anything else: usage error"),
            ("AEGIS_SECURITY__FALCO_SEVERITY", "default for --severity"),
            ("AEGIS_SECURITY__FALCO_NAMESPACE", "default for --falco-namespace"),
            ("AEGIS_SECURITY__FALCO_LABEL_SELECTOR", "default for --selector"),
            ("KUBECONFIG", "kubeconfig files, merged as kubectl merges them"),
            ("NO_COLOR, TERM=dumb", "no colour"),
        ],
    ),
    (
        "EXIT STATUS",
        &[
            ("0", "passed; or could not verify (skipped, incomplete) without --fail-closed, with a warning on stderr"),
            ("1", "blocked: an alert at or above the threshold"),
            ("2", "usage error: nothing was requested"),
            ("3", "could not verify, with --fail-closed; or the result could not be written"),
        ],
    ),
];

/// [`HELP_SECTIONS`] as plain text, for `--help`.
pub fn long_help_text() -> String {
    let mut o = String::new();
    for (heading, items) in HELP_SECTIONS {
        o.push_str(heading);
        o.push_str(":\n");
        for (term, text) in items {
            o.push_str(&format!("  {term}\n      {text}\n"));
        }
        o.push('\n');
    }
    o.push_str(
        "Also: `completion bash|zsh|fish|powershell` prints a completion script, `man` a man page.",
    );
    o
}

/// The clap command with the long help sections.
pub fn command() -> clap::Command {
    Cli::command().after_long_help(long_help_text())
}

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

pub fn parse_namespace(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err("must be a DNS-1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit".to_string())
    }
}

/// Go durations, as kubectl takes them: `30s`, `5m`, `1h30m`, `1.5h`, `90s`, `500ms`, `2h45m`
/// (units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, fractions allowed). Zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {s:?}: use a number with a unit, e.g. 30s, 5m, 1.5h, 1h30m");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    // Whole nanoseconds, in u128 so that no sum or product overflows before the century check.
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let digits = |d: &str| -> Result<u128, String> {
            if d.len() > 20 {
                return Err(bad());
            }
            if d.is_empty() {
                Ok(0)
            } else {
                d.parse::<u128>().map_err(|_| bad())
            }
        };
        total += digits(whole)? * unit;
        // The fraction, to the nanosecond (Go keeps the same precision).
        let frac = &frac[..frac.len().min(18)];
        if !frac.is_empty() {
            total += digits(frac)? * unit / 10u128.pow(frac.len() as u32);
        }
        if total > 100 * 365 * 24 * 3_600_000_000_000 {
            return Err(format!("invalid duration {s:?}: longer than a century"));
        }
    }
    if total == 0 {
        return Err(format!("invalid duration {s:?}: must be more than zero"));
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, nanos))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid RFC3339 time {s:?} ({e}): use e.g. 2024-01-15T10:30:00Z"))
}

/// The level names Falco accepts, as possible values (so completion can offer them).
fn priority_parser() -> impl clap::builder::TypedValueParser<Value = Priority> {
    let names = Priority::ALL.iter().map(|p| p.as_lower()).chain(["info"]);
    clap::builder::TypedValueParser::map(
        clap::builder::PossibleValuesParser::new(names),
        |s: String| {
            // Every possible value parses; Warning is never reached.
            Priority::parse(&s).unwrap_or(Priority::Warning)
        },
    )
}

fn parse_line_limit(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("invalid byte count {s:?}"))?;
    if n < 1024 {
        return Err("must be at least 1024".to_string());
    }
    Ok(n)
}

/// The environment variable that switches the check off.
pub const ENABLED_VAR: &str = "AEGIS_SECURITY__FALCO_ENABLED";

/// `AEGIS_SECURITY__FALCO_ENABLED`: `Ok(Some(value))` when it switches the check off. A value
/// that is not a boolean is the user's mistake, never "enabled" nor "disabled" by guess.
pub fn disabled_by(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(None),
        "false" | "0" | "no" | "off" => Ok(Some(v.trim().to_string())),
        _ => Err(format!(
            "{ENABLED_VAR}={:?} is not a boolean: use true or false (also 1/0, yes/no, on/off), or unset it",
            neutralize(v)
        )),
    }
}

/// The `AEGIS_SECURITY__*` variables this tool reads: (name, flag it sets).
const AEGIS_VARS: [(&str, &str); 4] = [
    (ENABLED_VAR, "the kill switch"),
    ("AEGIS_SECURITY__FALCO_SEVERITY", "--severity"),
    ("AEGIS_SECURITY__FALCO_NAMESPACE", "--falco-namespace"),
    ("AEGIS_SECURITY__FALCO_LABEL_SELECTOR", "--selector"),
];

/// Checks the values of the `AEGIS_SECURITY__FALCO_*` variables, naming the variable that is
/// wrong; unknown `AEGIS_SECURITY__FALCO_*` names (a typo does nothing) come back as notes.
pub fn check_aegis_vars(vars: &[(String, String)]) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    for (name, value) in vars {
        let v = value.trim();
        let bad = |why: String| {
            Err(format!(
                "{name}={:?}: {why}; fix or unset the variable",
                neutralize(value)
            ))
        };
        match name.as_str() {
            ENABLED_VAR => {}
            "AEGIS_SECURITY__FALCO_SEVERITY" if !v.is_empty() && Priority::parse(v).is_none() => {
                return bad("not a Falco priority (emergency alert critical error warning notice informational debug)".to_string());
            }
            "AEGIS_SECURITY__FALCO_NAMESPACE" => {
                if let Err(why) = parse_namespace(v) {
                    return bad(format!("not a namespace name: it {why}"));
                }
            }
            "AEGIS_SECURITY__FALCO_LABEL_SELECTOR" if !v.is_empty() => {
                if let Err(why) = check_label_selector(v) {
                    return bad(why);
                }
            }
            n if AEGIS_VARS.iter().any(|(known, _)| *known == n) => {}
            n if n.starts_with("AEGIS_SECURITY__FALCO_") => notes.push(format!(
                "{} is not a variable this tool reads (it reads {}); it has no effect",
                neutralize(n),
                AEGIS_VARS.map(|(n, _)| n).join(", ")
            )),
            _ => {}
        }
    }
    Ok(notes)
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

/// What the process environment says, read once (tests build their own).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub enabled: Option<String>,
    /// Every `AEGIS_SECURITY__*` variable (name, value), for their checks.
    pub aegis: Vec<(String, String)>,
    /// What connecting reads: `KUBECONFIG`, `HOME`, the proxy variables, in-cluster, stdin.
    pub connection: crate::cluster::ConnectionEnv,
    pub no_color: Option<String>,
    pub term: Option<String>,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    /// Terminal width of stderr, for the live status line.
    pub columns: Option<usize>,
    /// `GITHUB_ACTIONS=true`: running as a GitHub Actions step.
    pub github_actions: bool,
    /// `GITHUB_STEP_SUMMARY`: the job summary file.
    pub step_summary: Option<PathBuf>,
}

impl Environment {
    pub fn from_process() -> Self {
        Environment {
            enabled: std::env::var(ENABLED_VAR).ok(),
            aegis: std::env::vars_os()
                .filter_map(|(k, v)| {
                    let k = k.into_string().ok()?;
                    k.starts_with("AEGIS_SECURITY__")
                        .then(|| (k, v.to_string_lossy().into_owned()))
                })
                .collect(),
            connection: crate::cluster::ConnectionEnv::from_process(),
            no_color: std::env::var("NO_COLOR").ok(),
            term: std::env::var("TERM").ok(),
            stdout_tty: std::io::stdout().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
            columns: terminal_size::terminal_size_of(std::io::stderr())
                .map(|(w, _)| usize::from(w.0))
                .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok()),
            github_actions: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
            step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }
}

/// The live view of `--watch` / `--for`.
#[derive(Debug, Clone, Copy)]
pub struct LiveView {
    /// `--watch`: print each alert as it arrives.
    pub print_alerts: bool,
    /// Alerts go to stdout (text output); with `-o json`/`yaml` stdout is kept for the result.
    pub to_stdout: bool,
    /// Redraw a status line on stderr (a terminal that is not dumb).
    pub status: bool,
    /// The status line's width: the terminal's (80 when it does not say).
    pub columns: usize,
    /// The blocking threshold, for the status line.
    pub threshold: Priority,
}

/// How and where the result is shown.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: OutputFormat,
    pub stdout: Style,
    pub stderr: Style,
    /// A progress line on stderr while pods are read (one-shot, terminal).
    pub progress: bool,
    pub live: Option<LiveView>,
}

/// One resolved invocation: the check and how to show it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub check: CheckOptions,
    pub output: Output,
    pub reports: Reports,
    /// `-v LEVEL`: the debug log on stderr.
    pub verbosity: u8,
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
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(usage(format!(
                "--logs {shown} is a directory: give the files in it (e.g. --logs {shown}/*.log)"
            )));
        }
        if let Err(e) = std::fs::File::open(path) {
            return Err(usage(format!("cannot read --logs {shown}: {e}")));
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
    let text_out = matches!(cli.output, OutputFormat::Text | OutputFormat::Wide);
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

/// Checks a label selector the way the API server's parser does (`labels.Parse`), so that a typo
/// is a usage error instead of a list of no pods (a skip). `Err` says what is wrong.
pub fn check_label_selector(selector: &str) -> Result<(), String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 63
            && n.as_bytes()[0].is_ascii_alphanumeric()
            && n.as_bytes()[n.len() - 1].is_ascii_alphanumeric()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let key_ok = |k: &str| match k.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
                && name_ok(name)
        }
        None => name_ok(k),
    };
    let value_ok = |v: &str| v.is_empty() || name_ok(v);
    let bad = |term: &str, why: &str| {
        Err(format!(
            "--selector {:?}: {why} in {:?}; use e.g. app.kubernetes.io/name=falco or 'app in (falco,falco-audit)'",
            neutralize(selector),
            neutralize(term.trim())
        ))
    };
    // Terms are split on commas outside parentheses.
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    if depth != 0 {
        return bad(selector, "unbalanced parentheses");
    }
    for term in terms {
        let t = term.trim();
        if t.is_empty() {
            return bad(term, "an empty requirement");
        }
        if let Some(k) = t.strip_prefix('!') {
            if !key_ok(k.trim()) {
                return bad(term, "not a label key");
            }
            continue;
        }
        let set_op = [" notin ", " in "]
            .iter()
            .find_map(|op| t.find(op).map(|i| (i, op.len())));
        if let Some((i, len)) = set_op {
            let (k, values) = (t[..i].trim(), t[i + len..].trim());
            let Some(inner) = values.strip_prefix('(').and_then(|v| v.strip_suffix(')')) else {
                return bad(term, "a set needs parentheses");
            };
            if !key_ok(k) || !inner.split(',').all(|v| value_ok(v.trim())) {
                return bad(term, "not a label key or value");
            }
            continue;
        }
        let (k, v) = if let Some((k, v)) = t.split_once("!=") {
            (k, Some(v))
        } else if let Some((k, v)) = t.split_once("==") {
            (k, Some(v))
        } else if let Some((k, v)) = t.split_once('=') {
            (k, Some(v))
        } else {
            (t, None)
        };
        if !key_ok(k.trim()) {
            return bad(term, "not a label key");
        }
        if let Some(v) = v {
            if !value_ok(v.trim()) {
                return bad(term, "not a label value");
            }
        }
    }
    Ok(())
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
    for f in &files {
        let shown = neutralize(&f.display().to_string());
        let origin = if cli.kubeconfig.is_some() {
            "--kubeconfig"
        } else {
            "KUBECONFIG / ~/.kube/config:"
        };
        // kubectl takes an empty file as an empty configuration.
        if std::fs::read(f).is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let kc = kube::config::Kubeconfig::read_from(f).map_err(|e| {
            let why = if f.exists() {
                neutralize(&crate::cluster::kubeconfig::parse_error_summary(&e))
            } else {
                "no such file".to_string()
            };
            format!("{origin} {shown}: {why}. Point --kubeconfig at the file kubectl uses")
        })?;
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

impl Cli {
    /// Checks what depends on the clock: a window that starts in the future would see nothing
    /// and pass, so it is a usage error (a minute of clock skew is allowed).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), String> {
        match self.since_time {
            Some(t) if t > now + chrono::Duration::seconds(60) => Err(format!(
                "--since-time {} is in the future (now is {}): give the window start in UTC or with its offset, e.g. $(date -u +%Y-%m-%dT%H:%M:%SZ)",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            _ => Ok(()),
        }
    }

    /// Loads `--ignore-file`s and adds `--ignore-rule`s.
    pub fn ignores(&self) -> Result<Ignores, crate::verdict::ignore::IgnoreFileError> {
        let mut all = Ignores::from_globs(self.ignore_rule.iter().cloned());
        for p in &self.ignore_file {
            all.extend(Ignores::load(p)?);
        }
        Ok(all)
    }

    /// The check these flags ask for, as of `now`.
    pub fn to_options(&self, now: DateTime<Utc>) -> CheckOptions {
        let back = |d: Duration| {
            now - chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::minutes(10))
        };
        let since = match (self.since_time, self.since, self.for_) {
            (Some(t), _, _) => t,
            (None, Some(d), _) => back(d),
            // A soak window starts when the check does.
            (None, None, Some(_)) => now,
            (None, None, None) => back(Duration::from_secs(600)),
        };
        let until = self
            .for_
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| now + d);
        let mut o = CheckOptions::new(self.namespace.as_deref().unwrap_or(""), since);
        if self.all_namespaces {
            o.scope = Scope::All;
        }
        o.group_by = self.group_by;
        o.now = now;
        o.window = Window {
            start: since,
            end: until,
        };
        o.follow = (self.watch || until.is_some()).then_some(Follow {
            until,
            relist_every: self.relist_every,
        });
        o.threshold = self.severity;
        o.falco_namespace = self.falco_namespace.clone();
        o.selector = self.selector.clone().filter(|s| !s.trim().is_empty());
        o.container = self.container.clone();
        o.timeout = self.timeout;
        o.fail_closed = self.fail_closed;
        o.max_concurrency = self.max_concurrency as usize;
        o.max_alerts = self.max_alerts;
        o.max_line = self.max_line_bytes;
        o.nodes_of_namespace = self.nodes_of_namespace;
        o.node_coverage = self.node_coverage;
        o.canary = self.canary.then(|| {
            let mut c = crate::source::canary::CanaryOptions {
                image: self.canary_image.clone(),
                timeout: self.canary_timeout,
                ..Default::default()
            };
            if let Some(cmd) = &self.canary_command {
                c.command = cmd.clone();
            }
            if let Some(rule) = &self.canary_rule {
                let (rule, title) = rule.split_once('=').unwrap_or((rule, rule));
                c.rule = crate::verdict::canary::CanaryRule {
                    rule: rule.to_string(),
                    title: title.to_string(),
                };
            }
            c
        });
        o.input = if self.logs.is_empty() {
            Input::Cluster(Box::new(Target {
                kubeconfig: self.kubeconfig.clone(),
                context: self.context.clone(),
                overrides: self.overrides(),
                env: crate::cluster::ConnectionEnv::default(),
            }))
        } else {
            Input::Files(self.logs.clone())
        };
        o
    }

    /// kubectl's generic flags, as the cluster layer takes them.
    pub fn overrides(&self) -> crate::cluster::Overrides {
        // An empty value is unset, as in kubectl (`--token "$UNSET"` must not drop the
        // kubeconfig's credentials).
        let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        crate::cluster::Overrides {
            cluster: set(&self.cluster),
            user: set(&self.user),
            server: set(&self.server),
            token: set(&self.token).map(secrecy::SecretString::from),
            impersonate: set(&self.as_user),
            impersonate_groups: self
                .as_group
                .iter()
                .filter(|g| !g.is_empty())
                .cloned()
                .collect(),
            impersonate_uid: set(&self.as_uid),
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
            certificate_authority: self.certificate_authority.clone(),
            client_certificate: self.client_certificate.clone(),
            client_key: self.client_key.clone(),
            tls_server_name: set(&self.tls_server_name),
            request_timeout: self.request_timeout.filter(|d| !d.is_zero()),
        }
    }

    /// The connection flags given, by name (`--kubeconfig` and `--context` included).
    fn connection_flags(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        if self.kubeconfig.is_some() {
            given.push("--kubeconfig");
        }
        if self.context.is_some() {
            given.push("--context");
        }
        given.extend(self.overrides().given());
        given
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h45m"), Ok(Duration::from_secs(9900)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m0.25s"), Ok(Duration::from_millis(60_250)));
        assert_eq!(parse_duration("1500us"), Ok(Duration::from_micros(1500)));
        for bad in [
            "",
            "10",
            "m",
            "5x",
            "-5m",
            "0s",
            "1..5h",
            ".h",
            "1.2.3s",
            "3000000000h",
            "876001h",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_selectors() {
        for ok in [
            "app=falco",
            "app.kubernetes.io/name=falco",
            "app==falco,tier!=web",
            "app in (falco, falco-audit)",
            "app notin (x),!legacy",
            "app",
            "app=",
        ] {
            assert_eq!(check_label_selector(ok), Ok(()), "{ok}");
        }
        for bad in [
            "app=fal co",
            "app=(falco",
            "=falco",
            "app in falco",
            "a,,b",
            "app=falco!",
            "-app=x",
        ] {
            assert!(check_label_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaces() {
        assert!(parse_namespace("shadow-abc123").is_ok());
        for bad in ["Shadow", "-a", "a-", "a_b", "", &"a".repeat(64), "a.b"] {
            assert!(parse_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_and_color() {
        assert_eq!(disabled_by(None), Ok(None));
        assert_eq!(disabled_by(Some("")), Ok(None));
        for on in ["true", "1", "YES", "On"] {
            assert_eq!(disabled_by(Some(on)), Ok(None), "{on}");
        }
        for off in ["false", "False", "0", "no", "OFF"] {
            assert_eq!(disabled_by(Some(off)), Ok(Some(off.to_string())), "{off}");
        }
        for bad in ["flase", "disabled", "2", "nope"] {
            assert!(disabled_by(Some(bad)).is_err(), "{bad}");
        }
        assert!(use_color(ColorChoice::Auto, None, None, true));
        assert!(!use_color(ColorChoice::Auto, None, Some("dumb"), true));
        assert!(!use_color(ColorChoice::Auto, Some("1"), None, true));
        assert!(!use_color(ColorChoice::Auto, None, None, false));
        assert!(use_color(ColorChoice::Always, Some("1"), None, false));
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
    fn aegis_variables_are_checked_by_name() {
        let vars = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let ok = vars(&[
            ("AEGIS_SECURITY__FALCO_ENABLED", "true"),
            ("AEGIS_SECURITY__FALCO_SEVERITY", "Critical"),
            ("AEGIS_SECURITY__FALCO_NAMESPACE", "security"),
            ("AEGIS_SECURITY__FALCO_LABEL_SELECTOR", "app in (falco)"),
            ("AEGIS_SECURITY__OTHER_TOOL", "x"),
        ]);
        assert_eq!(check_aegis_vars(&ok), Ok(vec![]));
        let typo = vars(&[("AEGIS_SECURITY__FALCO_SEVERTY", "critical")]);
        assert_eq!(check_aegis_vars(&typo).map(|n| n.len()), Ok(1));
        let bad = vars(&[("AEGIS_SECURITY__FALCO_SEVERITY", "loud")]);
        assert!(check_aegis_vars(&bad).is_err_and(|e| e.contains("AEGIS_SECURITY__FALCO_SEVERITY")));
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
