//! The result of a check and its JSON contract (`-o json`): verdict, exit code, sources.

use serde::Serialize;

use super::alerts::Alert;
use super::breakdown::{GroupBy, GroupStat, Minute, NamespaceStat};
use super::filter::Scope;
use super::ledger::Gap;
use super::tally::Summary;
use crate::falco::Priority;

/// The answer to the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every source closed its ledger and no alert at or above the threshold was found.
    Passed,
    /// An alert at or above the threshold was found (whatever else could not be read).
    Blocked,
    /// Could not look at all (Falco missing, no access, unreachable, disabled).
    Skipped,
    /// Looked, found nothing blocking, but some source has a gap in its coverage.
    Incomplete,
}

impl Verdict {
    pub fn as_upper(self) -> &'static str {
        match self {
            Verdict::Passed => "PASSED",
            Verdict::Blocked => "BLOCKED",
            Verdict::Skipped => "SKIPPED",
            Verdict::Incomplete => "INCOMPLETE",
        }
    }
}

/// Exit codes: the contract scripts depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: passed, disabled, or could not verify without `--fail-closed`.
    Passed,
    /// 1: an alert at or above the threshold.
    Blocked,
    /// 2: the user's own mistake; nothing was requested.
    Usage,
    /// 3: could not verify (skipped or incomplete) with `--fail-closed`, or the result was lost.
    NotVerified,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Passed => 0,
            Exit::Blocked => 1,
            Exit::Usage => 2,
            Exit::NotVerified => 3,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// One source (a Falco pod's container, a file, stdin) and how reading it went.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PodReport {
    pub name: String,
    pub node: Option<String>,
    pub container: Option<String>,
    pub lines_read: u64,
    pub bytes_read: u64,
    /// Also read the previous container instance (restarted inside the window).
    pub previous_read: bool,
    /// Lines that name the namespace as a token but are no Falco output understood.
    pub unparsed_mentions: u64,
    /// The gaps' messages in one line; `null` when the ledger is closed.
    pub error: Option<String>,
    /// The coverage ledger: empty when this source was read for the whole window and understood.
    pub gaps: Vec<Gap>,
    /// The Falco versions its start banners name.
    pub falco_versions: Vec<String>,
    /// Falco's last metrics snapshot in the window (when Falco writes them to this log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub falco_metrics: Option<super::tally::Snapshot>,
    /// Container alerts Falco could not label (judged with the map of nodes).
    #[serde(skip)]
    pub unlabelled: super::tally::Unlabelled,
}

impl PodReport {
    pub fn is_closed(&self) -> bool {
        self.gaps.is_empty()
    }
}

/// Where Falco's output was read from: `"cluster"` or `"logs"` (files given with `--logs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    Cluster,
    Logs,
}

/// The words for the sources of each kind of input, so no view compares kinds to pick them.
impl InputKind {
    /// The sources in a sentence ("2 input(s) could not be read fully").
    pub fn sources(self) -> &'static str {
        match self {
            InputKind::Cluster => "Falco pod(s)",
            InputKind::Logs => "input(s)",
        }
    }

    /// The sources in the header's read count ("1/1 log file(s) read").
    pub fn read_noun(self) -> &'static str {
        match self {
            InputKind::Cluster => "Falco pod(s)",
            InputKind::Logs => "log file(s)",
        }
    }

    /// The heading of the per-source coverage table.
    pub fn heading(self) -> &'static str {
        match self {
            InputKind::Cluster => "Falco pods",
            InputKind::Logs => "Inputs",
        }
    }
}

fn upper<S: serde::Serializer>(p: &Priority, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_upper())
}

/// The result of a check: serializes to the JSON contract of `-o json`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub tool: &'static str,
    pub passed: bool,
    pub skipped: bool,
    pub reason: Option<String>,
    pub namespace_filter: String,
    pub falco_namespace: String,
    pub label_selector: String,
    pub since_timestamp: String,
    pub since_minutes: u64,
    /// The threshold, kept a priority until printed (upper case in the contract).
    #[serde(serialize_with = "upper")]
    pub severity_threshold: Priority,
    pub alert_count: u64,
    pub summary: Summary,
    pub alerts: Vec<Alert>,
    pub raw_lines_count: u64,
    pub stderr: Option<String>,
    pub blocking_count: u64,
    pub incomplete: bool,
    pub pods: Vec<PodReport>,
    pub verdict: Verdict,
    pub fail_closed: bool,
    pub exit_code: i32,
    /// Alerts counted but not listed (the list is bounded).
    pub alerts_omitted: u64,
    /// Falco's own "syscall event drop" reports inside the window: it may have missed events.
    pub syscall_drops: u64,
    /// Records that passed the byte prefilter and were parsed fully.
    pub parsed_records: u64,
    /// Alerts for the namespace that fell outside the window (ignored).
    pub outside_window_count: u64,
    /// Text alerts that nothing could date, counted as inside the window (`"dated": false`).
    pub undated_count: u64,
    /// Lines naming the namespace that were not understood, over all sources (each makes its
    /// source incomplete).
    pub unparsed_mentions: u64,
    /// Where the output was read from.
    pub input: InputKind,
    /// `-A`: every namespace (`namespace_filter` is `"*"`).
    pub all_namespaces: bool,
    /// Which Falco pods were read (all of them unless `--nodes-of-namespace`).
    pub scope: Option<String>,
    /// Alerts accepted as noise (`--ignore-rule`, `--ignore-file`): counted, never blocking.
    pub ignored_count: u64,
    /// `--group-by` key and rows (worst priority first).
    pub group_by: Option<GroupBy>,
    pub groups: Vec<GroupStat>,
    /// Alerts per minute, from the first to the last.
    pub timeline: Vec<Minute>,
    /// `--all-namespaces`: one row per namespace, worst priority first.
    pub namespaces: Vec<NamespaceStat>,
    /// One row per rule (or text title) with alerts counted, worst priority first.
    pub by_rule: Vec<GroupStat>,
    /// The window's end (RFC3339): `--for`'s end, when `--watch` stopped, or when the check ran.
    pub window_end: String,
    /// The kubeconfig context used (cluster input).
    pub context: Option<String>,
    /// The API server read (cluster input).
    pub server: Option<String>,
    /// This tool's version.
    pub tool_version: &'static str,
    /// The Falco versions named by the start banners read.
    pub falco_versions: Vec<String>,
    /// Whether Falco watched every node where the namespace ran.
    pub node_coverage: super::nodes::NodeCoverage,
    /// `--canary`: the canary pods and how each fared; null without `--canary`.
    pub canary: Option<super::canary::CanaryReport>,
    /// Canary alerts found in the logs (this run's and earlier runs'): expected, never counted.
    pub canary_alerts: Vec<super::canary::Sighting>,
    /// Whose alerts counted: the one description of it every view uses.
    #[serde(skip)]
    pub scope_of: Scope,
    #[serde(skip)]
    pub exit: Exit,
    #[serde(skip)]
    pub warnings: Vec<String>,
}
