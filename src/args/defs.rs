//! The flag contract scripts depend on: the clap definition [`Cli`], its help text and the
//! sections shared by `--help` and the man page.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser, ValueEnum};

use super::format::OutputFormat;
use super::values::{
    parse_duration, parse_line_limit, parse_namespace, parse_report, parse_request_timeout,
    parse_time, priority_parser,
};
use crate::falco::Priority;
use crate::verdict::GroupBy;

/// `--annotations`: GitHub Actions workflow commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnnotationsChoice {
    /// Under GitHub Actions (`GITHUB_ACTIONS=true`) only.
    Auto,
    Always,
    Never,
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
    pub reports: Vec<(OutputFormat, PathBuf)>,

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
