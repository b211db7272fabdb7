//! From what the sources found to the verdict, the reason and the exit code.

use chrono::{DateTime, SecondsFormat, Utc};

use super::breakdown::GroupBy;
use super::filter::{Scope, Window};
use super::nodes::NodeCoverage;
use super::result::{CheckResult, Exit, InputKind, PodReport, Verdict};
use super::tally::Tally;
use crate::falco::Priority;

/// Why nothing at all could be read.
#[derive(Debug, thiserror::Error)]
pub enum Skip {
    /// `AEGIS_SECURITY__FALCO_ENABLED` switched the check off.
    #[error("disabled: AEGIS_SECURITY__FALCO_ENABLED={value}; unset it to run the Falco check")]
    Disabled { value: String },
    /// The cluster could not be reached, or refused to list the Falco pods (the cluster
    /// layer's error, kept whole as the cause).
    #[error(transparent)]
    Cluster(Box<dyn std::error::Error + Send + Sync>),
    /// No pod matches the Falco selector.
    #[error("no Falco pods: no pod in namespace {namespace} matches {tried}. Is Falco installed? Check `kubectl get pods -n {namespace} --show-labels`, then pass --falco-namespace / --selector")]
    NoFalcoPods { namespace: String, tried: String },
    /// `--nodes-of-namespace`: no Falco pod runs where the namespace's pods do.
    #[error("--nodes-of-namespace: no Falco pod runs on a node of namespace {namespace} (it has {workloads} pod(s))")]
    NoPodsOnNodes { namespace: String, workloads: usize },
    /// `--nodes-of-namespace`: the namespace's pods could not be listed.
    #[error("--nodes-of-namespace: {0}")]
    NodesOfNamespace(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Everything the check learned, before it becomes a [`CheckResult`].
#[derive(Debug)]
pub struct Findings {
    /// Which cluster was read (cluster input, once connected).
    pub connection: Option<Connection>,
    pub tally: Tally,
    pub pods: Vec<PodReport>,
    pub raw_lines: u64,
    pub parsed_records: u64,
    /// Why nothing at all could be read, when so.
    pub skipped: Option<Skip>,
    /// Which Falco pods were read and why (cluster input).
    pub scope: Option<String>,
    pub warnings: Vec<String>,
    /// Whether Falco watched every node where the namespace ran.
    pub node_coverage: NodeCoverage,
    /// `--canary`: how each canary fared.
    pub canary: Option<super::canary::CanaryReport>,
}

impl Findings {
    /// Nothing read yet: sources add their reads with [`Findings::add`].
    pub fn new(tally: Tally, node_coverage: NodeCoverage) -> Self {
        Findings {
            connection: None,
            tally,
            pods: Vec::new(),
            raw_lines: 0,
            parsed_records: 0,
            skipped: None,
            scope: None,
            warnings: Vec::new(),
            node_coverage,
            canary: None,
        }
    }

    /// Nothing could be read.
    pub fn skipped(
        tally: Tally,
        why: Skip,
        warnings: Vec<String>,
        node_coverage: NodeCoverage,
    ) -> Self {
        Findings {
            skipped: Some(why),
            warnings,
            ..Findings::new(tally, node_coverage)
        }
    }

    /// One source's read: its counts merged, its report kept.
    pub fn add(&mut self, r: SourceRead) {
        self.raw_lines += r.report.lines_read;
        self.parsed_records += r.parsed;
        self.tally.merge(r.tally);
        self.warnings.extend(r.warnings);
        self.pods.push(r.report);
    }
}

/// What one source's reading produced.
pub struct SourceRead {
    pub tally: Tally,
    pub report: PodReport,
    pub parsed: u64,
    pub warnings: Vec<String>,
}

/// The cluster a check talked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The kubeconfig context (none for `--server` alone or in-cluster).
    pub context: Option<String>,
    pub server: String,
}

/// The fixed facts of a check, echoed in the result.
#[derive(Debug, Clone)]
pub struct Echo {
    pub scope: Scope,
    pub falco_namespace: String,
    pub label_selector: String,
    pub window: Window,
    pub since_minutes: u64,
    pub threshold: Priority,
    pub fail_closed: bool,
    pub input: InputKind,
    pub group_by: Option<GroupBy>,
    /// When the window ended: `--for`'s end, the stop of `--watch`, or the one-shot's start.
    pub window_end: DateTime<Utc>,
}

/// Works out the verdict, the reason and the exit code. A source counts as read only when its
/// ledger is closed; `error` is rendered here, once, from the gaps.
pub fn conclude(echo: Echo, f: Findings) -> CheckResult {
    let Findings {
        connection,
        tally,
        mut pods,
        raw_lines,
        parsed_records,
        skipped,
        scope,
        mut warnings,
        node_coverage,
        canary,
    } = f;
    for p in &mut pods {
        p.error = (!p.gaps.is_empty()).then(|| {
            p.gaps
                .iter()
                .map(|g| g.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        });
    }
    let open: Vec<&PodReport> = pods.iter().filter(|p| !p.is_closed()).collect();
    let node_gaps = node_coverage.open_gaps();
    let incomplete = skipped.is_none() && (!open.is_empty() || !node_gaps.is_empty());
    // A reader that did not finish in time leaves its tally behind, but the alerts it found
    // are in the shared list: a blocking alert seen is never lost.
    let listed_blocking = tally.alerts.blocking_kept();
    let blocking = tally.blocking.max(listed_blocking);
    let threshold = echo.threshold.as_upper();
    let whom = echo.scope.describe();

    if tally.syscall_drops > 0 {
        warnings.push(format!(
            "Falco reported {} syscall event drop(s) inside the window: it may have missed events (see Falco's syscall_event_drops settings)",
            tally.syscall_drops
        ));
    }
    if tally.undated > 0 {
        warnings.push(format!(
            "{} text alert(s) for {whom} carried no date and nothing in their input dated them: counted as inside the window (`\"dated\": false`; save logs with `kubectl logs --timestamps` or set time_format_iso_8601)",
            tally.undated
        ));
    }
    if tally.text_unmatched > 0 {
        warnings.push(format!(
            "{} text alert(s) for {whom} matched no ignore entry: Falco's text output has no rule names, so a file's `rule:` entries match JSON alerts only; accept a text alert by its title (`title: ...` in --ignore-file, or --ignore-rule with the title)",
            tally.text_unmatched
        ));
    }
    if tally.namespace_objects > 0 {
        warnings.push(format!(
            "{} k8s audit alert(s) are about the Namespace object {} itself (such as `Disallowed namespace created`: Falco's k8saudit rules print the namespace created or deleted as `ns=`): no alert for a workload in it, not counted",
            tally.namespace_objects,
            echo.scope.label()
        ));
    }
    let disabled = matches!(skipped, Some(Skip::Disabled { .. }));
    let sources = echo.input.sources();
    let (verdict, reason) = if blocking > 0 {
        let whose = match &echo.scope {
            Scope::All => "across all namespaces".to_string(),
            Scope::Namespace(n) => format!("for namespace {n}"),
        };
        let mut r = format!("{blocking} Falco alert(s) at or above {threshold} {whose}");
        if !open.is_empty() {
            r.push_str(&format!(
                " ({} {sources} could not be read fully)",
                open.len()
            ));
        }
        if !node_gaps.is_empty() {
            r.push_str(&format!(" ({} gap(s) in node coverage)", node_gaps.len()));
        }
        (Verdict::Blocked, Some(r))
    } else if let Some(why) = &skipped {
        (Verdict::Skipped, Some(why.to_string()))
    } else if incomplete {
        let details: Vec<String> = open
            .iter()
            .map(|p| format!("{}: {}", p.name, p.error.as_deref().unwrap_or("")))
            .collect();
        let nodes: Vec<String> = node_gaps
            .iter()
            .map(|(at, g)| format!("{at}: {}", g.message))
            .collect();
        let reason = match (details.is_empty(), nodes.is_empty()) {
            (false, true) => format!(
                "could not read the whole window from {} of {} {sources}; no blocking alert in what was read. {}",
                open.len(),
                pods.len(),
                details.join("; ")
            ),
            (true, _) => format!(
                "Falco did not watch every node where {whom} ran; no blocking alert in what was read. {}",
                nodes.join("; ")
            ),
            (false, false) => format!(
                "could not read the whole window from {} of {} {sources}, and Falco did not watch every node where {whom} ran; no blocking alert in what was read. {}; {}",
                open.len(),
                pods.len(),
                details.join("; "),
                nodes.join("; ")
            ),
        };
        (Verdict::Incomplete, Some(reason))
    } else {
        (Verdict::Passed, None)
    };

    let exit = match verdict {
        Verdict::Passed => Exit::Passed,
        Verdict::Blocked => Exit::Blocked,
        Verdict::Skipped if disabled => Exit::Passed,
        Verdict::Skipped | Verdict::Incomplete if echo.fail_closed => Exit::NotVerified,
        Verdict::Skipped | Verdict::Incomplete => Exit::Passed,
    };
    // The loud part of fail-open: said on stderr and kept in the result's `stderr`.
    match verdict {
        Verdict::Skipped if disabled => warnings.push(format!(
            "Falco check disabled, nothing was checked: {}",
            reason.as_deref().unwrap_or("")
        )),
        Verdict::Skipped | Verdict::Incomplete => {
            let what = if exit == Exit::NotVerified {
                "failing closed (exit 3)"
            } else {
                "failing open: the gate passes without a verdict"
            };
            warnings.push(format!(
                "Falco check could NOT verify {whom}, {what}: {}",
                reason.as_deref().unwrap_or("")
            ));
        }
        Verdict::Passed | Verdict::Blocked => {}
    }
    let timeline = tally.timeline.minutes();
    let unparsed_mentions = pods.iter().map(|p| p.unparsed_mentions).sum();
    let (alerts, alerts_omitted) = tally.alerts.into_sorted();
    let mut falco_versions: Vec<String> = pods
        .iter()
        .flat_map(|p| p.falco_versions.iter().cloned())
        .collect();
    falco_versions.sort();
    falco_versions.dedup();
    CheckResult {
        tool: "falco",
        passed: exit == Exit::Passed,
        skipped: verdict == Verdict::Skipped,
        reason,
        namespace_filter: echo.scope.as_filter().to_string(),
        falco_namespace: echo.falco_namespace,
        label_selector: echo.label_selector,
        since_timestamp: echo
            .window
            .start
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        since_minutes: echo.since_minutes,
        severity_threshold: echo.threshold,
        alert_count: tally.summary.total(),
        summary: tally.summary,
        alerts,
        raw_lines_count: raw_lines,
        stderr: (!warnings.is_empty()).then(|| warnings.join("\n")),
        blocking_count: blocking,
        incomplete,
        pods,
        verdict,
        fail_closed: echo.fail_closed,
        exit_code: i32::from(exit.code()),
        alerts_omitted,
        syscall_drops: tally.syscall_drops,
        parsed_records,
        outside_window_count: tally.outside_window,
        undated_count: tally.undated,
        unparsed_mentions,
        input: echo.input,
        all_namespaces: echo.scope == Scope::All,
        scope,
        ignored_count: tally.ignored,
        group_by: echo.group_by,
        groups: tally.groups.rows(),
        timeline,
        namespaces: tally.namespaces.rows(),
        by_rule: tally.rules.rows(),
        window_end: echo.window_end.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        context: connection.as_ref().and_then(|c| c.context.clone()),
        server: connection.map(|c| c.server),
        tool_version: env!("CARGO_PKG_VERSION"),
        falco_versions,
        node_coverage,
        canary,
        canary_alerts: tally.canaries,
        scope_of: echo.scope.clone(),
        exit,
        warnings,
    }
}

/// Minutes in the window up to now, rounded up (the seed's `since_minutes`).
pub fn minutes_since(start: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let secs = (now - start).num_seconds().max(0) as u64;
    secs.div_ceil(60)
}
