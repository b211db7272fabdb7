//! Which events are alerts for the namespace in the window, how they count, and the verdict.

use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use memchr::memmem;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::falco::{Event, EventSink, Priority};

pub mod breakdown;
pub mod ignore;

pub use breakdown::{GroupBy, GroupStat, Minute, NamespaceStat};
pub use ignore::{IgnoreRule, Ignores};

/// The time window: events at or after `start` (inclusive) and, when set, before `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.start && self.end.is_none_or(|e| t < e)
    }
}

/// What to look for: alerts for exactly this namespace (or any, for `-A`), in the window,
/// blocking from `threshold` up unless accepted as noise.
#[derive(Debug)]
pub struct AlertFilter {
    /// `None`: every namespace (`--all-namespaces`).
    pub namespace: Option<String>,
    pub window: Window,
    pub threshold: Priority,
    pub ignores: Ignores,
    pub group_by: Option<GroupBy>,
    /// Most lines belong to other namespaces: a line without these bytes is not parsed.
    needle: Option<memmem::Finder<'static>>,
    drop_needle: memmem::Finder<'static>,
}

impl AlertFilter {
    pub fn new(namespace: &str, window: Window, threshold: Priority) -> Self {
        Self::for_namespace(Some(namespace), window, threshold)
    }

    pub fn for_namespace(namespace: Option<&str>, window: Window, threshold: Priority) -> Self {
        AlertFilter {
            namespace: namespace.map(str::to_string),
            window,
            threshold,
            ignores: Ignores::default(),
            group_by: None,
            needle: namespace.map(|n| memmem::Finder::new(n.as_bytes()).into_owned()),
            drop_needle: memmem::Finder::new(b"syscall event drop").into_owned(),
        }
    }

    /// True when the bytes could hold an alert for the namespace or a Falco drop report.
    pub fn may_match(&self, raw: &[u8]) -> bool {
        match &self.needle {
            Some(n) => n.find(raw).is_some() || self.drop_needle.find(raw).is_some(),
            None => true,
        }
    }

    fn wants_namespace(&self, ns: Option<&str>) -> bool {
        match (&self.namespace, ns) {
            (Some(want), Some(got)) => want == got,
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }
}

/// Where a log came from: a Falco pod's container, or a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogOrigin {
    pub pod: Option<String>,
    pub node: Option<String>,
    pub container: Option<String>,
}

/// One alert for the namespace in the window, as reported in `alerts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// RFC3339 with nanoseconds, UTC; null when the text log gave no date.
    pub time: Option<String>,
    pub priority: String,
    pub rule: Option<String>,
    pub source: Option<String>,
    pub hostname: Option<String>,
    pub output: Option<String>,
    pub output_fields: Option<Map<String, Value>>,
    pub pod: Option<String>,
    pub node: Option<String>,
    pub container: Option<String>,
    /// The workload's namespace.
    pub namespace: Option<String>,
    /// At or above the threshold (or of a priority Falco does not define), and not ignored.
    pub blocking: bool,
    /// Matched `--ignore-rule` / `--ignore-file`: counted and shown, never blocking.
    pub ignored: bool,
    #[serde(skip)]
    pub level: Option<Priority>,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
}

/// Counts by priority: the eight Falco priorities and `other` (a priority Falco does not define).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub by_priority: [u64; 8],
    pub other: u64,
}

impl Summary {
    pub fn add(&mut self, p: Option<Priority>) {
        match p {
            Some(p) => self.by_priority[p as usize] += 1,
            None => self.other += 1,
        }
    }
    pub fn get(&self, p: Priority) -> u64 {
        self.by_priority[p as usize]
    }
    pub fn total(&self) -> u64 {
        self.by_priority.iter().sum::<u64>() + self.other
    }
    pub(crate) fn merge(&mut self, o: &Summary) {
        for (a, b) in self.by_priority.iter_mut().zip(o.by_priority) {
            *a += b;
        }
        self.other += o.other;
    }
}

impl Serialize for Summary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(9))?;
        for p in Priority::ALL {
            m.serialize_entry(p.as_lower(), &self.get(p))?;
        }
        m.serialize_entry("other", &self.other)?;
        m.end()
    }
}

/// Keeps at most `cap` alerts, preferring the most severe, then the earliest. A handle: the
/// readers of all pods share one list, so memory is bounded by `cap` whatever the pod count.
#[derive(Debug, Clone, Default)]
pub struct AlertList {
    kept: Arc<Mutex<Kept>>,
}

#[derive(Debug, Default)]
struct Kept {
    cap: usize,
    /// Max-heap on [`Ranked`]: the top is the least interesting kept alert.
    heap: BinaryHeap<Ranked>,
    omitted: u64,
}

/// An alert ordered by how little it matters: less severe, then later, is greater.
#[derive(Debug)]
struct Ranked(Alert);

impl Ranked {
    #[allow(clippy::type_complexity)]
    fn key(
        &self,
    ) -> (
        bool,
        bool,
        u8,
        bool,
        Option<DateTime<Utc>>,
        Option<&str>,
        Option<&str>,
    ) {
        let a = &self.0;
        // Blocking alerts first, accepted noise last; unknown priorities rank with the most
        // severe: they block.
        (
            !a.blocking,
            a.ignored,
            a.level.map_or(0, |p| p as u8),
            a.at.is_none(),
            a.at,
            a.pod.as_deref(),
            a.output.as_deref(),
        )
    }
}

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.key().cmp(&o.key())
    }
}

impl AlertList {
    pub fn new(cap: usize) -> Self {
        AlertList {
            kept: Arc::new(Mutex::new(Kept {
                cap,
                heap: BinaryHeap::new(),
                omitted: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic elsewhere while holding the lock leaves the list usable.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, alert: Alert) {
        let mut k = self.lock();
        if k.heap.len() < k.cap {
            k.heap.push(Ranked(alert));
            return;
        }
        k.omitted += 1;
        let new = Ranked(alert);
        if k.heap.peek().is_some_and(|worst| new < *worst) {
            k.heap.pop();
            k.heap.push(new);
        }
    }

    /// Adds another list's alerts (nothing when both are the same shared list).
    pub fn merge(&self, other: AlertList) {
        if Arc::ptr_eq(&self.kept, &other.kept) {
            return;
        }
        let (heap, omitted) = {
            let mut o = other.lock();
            (std::mem::take(&mut o.heap), std::mem::take(&mut o.omitted))
        };
        self.lock().omitted += omitted;
        for r in heap {
            self.push(r.0);
        }
    }

    /// Sorted by time (undated last), then by severity; and how many were left out.
    pub fn into_sorted(self) -> (Vec<Alert>, u64) {
        let (heap, omitted) = {
            let mut k = self.lock();
            (std::mem::take(&mut k.heap), k.omitted)
        };
        let mut alerts: Vec<Alert> = heap.into_iter().map(|r| r.0).collect();
        // Deterministic whatever order the pods finished in.
        alerts.sort_by_cached_key(|x| {
            (
                x.at.is_none(),
                x.at,
                x.level.map_or(0, |p| p as u8),
                x.pod.clone(),
                x.output.clone(),
            )
        });
        (alerts, omitted)
    }
}

/// Counts for one log (or, merged, for all): an [`EventSink`] for the decoder.
#[derive(Debug, Clone)]
pub struct Tally {
    filter: Arc<AlertFilter>,
    origin: LogOrigin,
    pub summary: Summary,
    pub blocking: u64,
    pub alerts: AlertList,
    /// `Falco internal: syscall event drop` reports inside the window.
    pub syscall_drops: u64,
    /// Alerts for the namespace outside the window (the server still sent them).
    pub outside_window: u64,
    /// Alerts for the namespace whose date could not be worked out: counted as inside.
    pub undated: u64,
    /// Alerts accepted as noise.
    pub ignored: u64,
    pub groups: breakdown::Groups,
    pub timeline: breakdown::Timeline,
    pub namespaces: breakdown::Namespaces,
    /// Watch mode: every counted alert is also sent here as it is found.
    observer: Option<tokio::sync::mpsc::UnboundedSender<Alert>>,
}

impl Tally {
    pub fn new(filter: Arc<AlertFilter>, origin: LogOrigin, max_alerts: usize) -> Self {
        Tally {
            filter,
            origin,
            summary: Summary::default(),
            blocking: 0,
            alerts: AlertList::new(max_alerts),
            syscall_drops: 0,
            outside_window: 0,
            undated: 0,
            ignored: 0,
            groups: breakdown::Groups::default(),
            timeline: breakdown::Timeline::default(),
            namespaces: breakdown::Namespaces::default(),
            observer: None,
        }
    }

    /// A tally that keeps its alerts in a list shared with others (bounded across all logs).
    pub fn with_alerts(filter: Arc<AlertFilter>, origin: LogOrigin, alerts: AlertList) -> Self {
        let mut t = Tally::new(filter, origin, 0);
        t.alerts = alerts;
        t
    }

    /// Sends every counted alert to `tx` as well (live view).
    pub fn observe(&mut self, tx: tokio::sync::mpsc::UnboundedSender<Alert>) {
        self.observer = Some(tx);
    }

    pub fn merge(&mut self, o: Tally) {
        self.summary.merge(&o.summary);
        self.blocking += o.blocking;
        self.alerts.merge(o.alerts);
        self.syscall_drops += o.syscall_drops;
        self.outside_window += o.outside_window;
        self.undated += o.undated;
        self.ignored += o.ignored;
        self.groups.merge(o.groups);
        self.timeline.merge(o.timeline);
        self.namespaces.merge(o.namespaces);
    }
}

impl EventSink for Tally {
    fn wants(&self, raw: &[u8]) -> bool {
        self.filter.may_match(raw)
    }

    fn event(&mut self, mut e: Event) {
        let f = &self.filter;
        if e.internal {
            if e.is_syscall_drop() && e.time.is_none_or(|t| f.window.contains(t)) {
                self.syscall_drops += 1;
            }
            return;
        }
        let named_in_audit = f
            .namespace
            .as_ref()
            .is_some_and(|n| e.audit_namespaces.iter().any(|a| a == n));
        if !f.wants_namespace(e.namespace.as_deref()) && !named_in_audit {
            return;
        }
        if named_in_audit {
            e.namespace = f.namespace.clone();
        }
        match e.time {
            Some(t) if !f.window.contains(t) => {
                self.outside_window += 1;
                return;
            }
            Some(_) => {}
            // A security gate counts what it cannot place rather than drop it.
            None => self.undated += 1,
        }
        self.summary.add(e.priority);
        let ignored = !f.ignores.is_empty()
            && f.ignores
                .matches(e.rule.as_deref(), e.output_fields.as_ref());
        let blocking = !ignored && e.priority.is_none_or(|p| p.at_least(f.threshold));
        self.blocking += u64::from(blocking);
        self.ignored += u64::from(ignored);
        if let Some(t) = e.time {
            self.timeline.add(t);
        }
        if let Some(g) = f.group_by {
            let key = match g {
                GroupBy::Priority => e
                    .priority
                    .map_or_else(|| e.priority_text.clone(), |p| p.as_falco_str().to_string()),
                GroupBy::Rule => e.rule.clone().unwrap_or_default(),
                GroupBy::Pod => self.origin.pod.clone().unwrap_or_default(),
                GroupBy::Node => self.origin.node.clone().unwrap_or_default(),
                GroupBy::Container => self.origin.container.clone().unwrap_or_default(),
            };
            self.groups.add(&key, e.priority, e.time, blocking, ignored);
        }
        if f.namespace.is_none() {
            self.namespaces.add(
                e.namespace.as_deref().unwrap_or(""),
                e.priority,
                blocking,
                ignored,
            );
        }
        let alert = Alert {
            time: e
                .time
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true)),
            priority: e
                .priority
                .map_or(e.priority_text, |p| p.as_falco_str().to_string()),
            rule: e.rule,
            source: e.source,
            hostname: e.hostname,
            output: e.output,
            output_fields: e.output_fields,
            pod: self.origin.pod.clone(),
            node: self.origin.node.clone(),
            container: self.origin.container.clone(),
            namespace: e.namespace,
            blocking,
            ignored,
            level: e.priority,
            at: e.time,
        };
        if let Some(tx) = &self.observer {
            let _ = tx.send(alert.clone());
        }
        self.alerts.push(alert);
    }
}

/// The answer to the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Everything was read and no alert at or above the threshold was found.
    Passed,
    /// An alert at or above the threshold was found (whatever else could not be read).
    Blocked,
    /// Could not look at all (Falco missing, no access, unreachable, disabled).
    Skipped,
    /// Looked, found nothing blocking, but part of the window could not be read.
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
pub mod exit {
    pub const PASSED: i32 = 0;
    pub const BLOCKED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_VERIFIED: i32 = 3;
}

/// One Falco pod (or input file) and how reading it went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodReport {
    pub name: String,
    pub node: Option<String>,
    pub container: Option<String>,
    pub lines_read: u64,
    pub bytes_read: u64,
    /// Also read the previous container instance (restarted inside the window).
    pub previous_read: bool,
    /// Why this pod's part of the window is not (fully) covered; `null` when it is.
    pub error: Option<String>,
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
    pub severity_threshold: String,
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
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Findings {
    /// Nothing could be read: `why` says what to do.
    pub fn skipped(tally: Tally, why: String, warnings: Vec<String>) -> Self {
        Findings {
            tally,
            pods: Vec::new(),
            raw_lines: 0,
            parsed_records: 0,
            skipped: Some(why),
            disabled: false,
            scope: None,
            warnings,
        }
    }
}

/// Everything the check learned, before it becomes a [`CheckResult`].
#[derive(Debug)]
pub struct Findings {
    pub tally: Tally,
    pub pods: Vec<PodReport>,
    pub raw_lines: u64,
    pub parsed_records: u64,
    /// Why nothing at all could be read, when so.
    pub skipped: Option<String>,
    /// Switched off by configuration: skipped, but never a "could not verify".
    pub disabled: bool,
    /// Which Falco pods were read and why (cluster input).
    pub scope: Option<String>,
    pub warnings: Vec<String>,
}

/// The fixed facts of a check, echoed in the result.
#[derive(Debug, Clone)]
pub struct Echo {
    pub namespace: String,
    pub falco_namespace: String,
    pub label_selector: String,
    pub window: Window,
    pub since_minutes: u64,
    pub threshold: Priority,
    pub fail_closed: bool,
    pub input: InputKind,
    pub group_by: Option<GroupBy>,
}

/// Where Falco's output was read from: `"cluster"` or `"logs"` (files given with `--logs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    Cluster,
    Logs,
}

/// `namespace_filter` of `-A`.
pub const ALL_NAMESPACES: &str = "*";

/// Works out the verdict, the reason and the exit code.
pub fn conclude(echo: Echo, f: Findings) -> CheckResult {
    let Findings {
        tally,
        pods,
        raw_lines,
        parsed_records,
        skipped,
        disabled,
        scope,
        mut warnings,
    } = f;
    let failed_pods: Vec<&PodReport> = pods.iter().filter(|p| p.error.is_some()).collect();
    let incomplete = skipped.is_none() && !failed_pods.is_empty();
    let blocking = tally.blocking;
    let threshold = echo.threshold.as_upper();
    let ns = &echo.namespace;

    if tally.syscall_drops > 0 {
        warnings.push(format!(
            "Falco reported {} syscall event drop(s) inside the window: it may have missed events (see Falco's syscall_event_drops settings)",
            tally.syscall_drops
        ));
    }
    if tally.undated > 0 {
        warnings.push(format!(
            "{} text alert(s) for {ns} carried no date and were counted as inside the window (read logs with kubelet timestamps or set time_format_iso_8601)",
            tally.undated
        ));
    }

    let (verdict, reason) = if blocking > 0 {
        let whose = if ns == ALL_NAMESPACES {
            "across all namespaces".to_string()
        } else {
            format!("for namespace {ns}")
        };
        let mut r = format!("{blocking} Falco alert(s) at or above {threshold} {whose}");
        if incomplete {
            r.push_str(&format!(
                " ({} Falco pod(s) could not be read fully)",
                failed_pods.len()
            ));
        }
        (Verdict::Blocked, Some(r))
    } else if let Some(why) = skipped {
        (Verdict::Skipped, Some(why))
    } else if incomplete {
        let details: Vec<String> = failed_pods
            .iter()
            .map(|p| format!("{}: {}", p.name, p.error.as_deref().unwrap_or("")))
            .collect();
        (
            Verdict::Incomplete,
            Some(format!(
                "could not read the whole window from {} of {} {}; no blocking alert in what was read. {}",
                failed_pods.len(),
                pods.len(),
                if echo.input == InputKind::Logs { "log file(s)" } else { "Falco pod(s)" },
                details.join("; ")
            )),
        )
    } else {
        (Verdict::Passed, None)
    };

    let exit_code = match verdict {
        Verdict::Passed => exit::PASSED,
        Verdict::Blocked => exit::BLOCKED,
        Verdict::Skipped if disabled => exit::PASSED,
        Verdict::Skipped | Verdict::Incomplete if echo.fail_closed => exit::NOT_VERIFIED,
        Verdict::Skipped | Verdict::Incomplete => exit::PASSED,
    };
    // The loud part of fail-open: said on stderr and kept in the result's `stderr`.
    match verdict {
        Verdict::Skipped if disabled => warnings.push(format!(
            "Falco check disabled, nothing was checked: {}",
            reason.as_deref().unwrap_or("")
        )),
        Verdict::Skipped | Verdict::Incomplete => {
            let what = if exit_code == exit::NOT_VERIFIED {
                "failing closed (exit 3)"
            } else {
                "failing open: the gate passes without a verdict"
            };
            let whom = if ns == ALL_NAMESPACES {
                "all namespaces".to_string()
            } else {
                format!("namespace {ns}")
            };
            warnings.push(format!(
                "Falco check could NOT verify {whom}, {what}: {}",
                reason.as_deref().unwrap_or("")
            ));
        }
        Verdict::Passed | Verdict::Blocked => {}
    }
    let outside = tally.outside_window;
    let ignored = tally.ignored;
    let timeline = tally.timeline.minutes();
    let groups = tally.groups.rows();
    let namespaces = tally.namespaces.rows();
    let (alerts, alerts_omitted) = tally.alerts.into_sorted();
    CheckResult {
        tool: "falco",
        passed: exit_code == exit::PASSED,
        skipped: verdict == Verdict::Skipped,
        reason,
        namespace_filter: echo.namespace.clone(),
        falco_namespace: echo.falco_namespace,
        label_selector: echo.label_selector,
        since_timestamp: echo
            .window
            .start
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        since_minutes: echo.since_minutes,
        severity_threshold: threshold.to_string(),
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
        exit_code,
        alerts_omitted,
        syscall_drops: tally.syscall_drops,
        parsed_records,
        outside_window_count: outside,
        input: echo.input,
        all_namespaces: echo.namespace == ALL_NAMESPACES,
        scope,
        ignored_count: ignored,
        group_by: echo.group_by,
        groups,
        timeline,
        namespaces,
        warnings,
    }
}

/// Minutes in the window up to now, rounded up (the seed's `since_minutes`).
pub fn minutes_since(start: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let secs = (now - start).num_seconds().max(0) as u64;
    secs.div_ceil(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::falco::Decoder;

    fn window() -> Window {
        Window {
            start: DateTime::parse_from_rfc3339("2024-01-15T10:30:00Z")
                .expect("t")
                .with_timezone(&Utc),
            end: None,
        }
    }

    fn tally_of(input: &[u8], threshold: Priority) -> Tally {
        let filter = Arc::new(AlertFilter::new("shadow-abc123", window(), threshold));
        let mut d = Decoder::new(Tally::new(filter, LogOrigin::default(), 1000));
        d.feed(input);
        d.finish().0
    }

    #[test]
    fn prefix_trap_window_and_threshold() {
        let l = |ns: &str, p: &str, t: &str| {
            format!(
                r#"{{"output":"x","output_fields":{{"k8s.ns.name":"{ns}"}},"priority":"{p}","rule":"R","source":"syscall","time":"{t}"}}"#
            )
        };
        let input = [
            l("shadow-abc1234", "Critical", "2024-01-15T10:31:00Z"),
            l("shadow-abc12", "Critical", "2024-01-15T10:31:00Z"),
            l(
                "shadow-abc123",
                "Critical",
                "2024-01-15T10:29:59.999999999Z",
            ),
            l("shadow-abc123", "Warning", "2024-01-15T10:30:00Z"),
            l("shadow-abc123", "Notice", "2024-01-15T10:35:00Z"),
        ]
        .join("\n");
        let t = tally_of(input.as_bytes(), Priority::Warning);
        assert_eq!((t.summary.total(), t.blocking, t.outside_window), (2, 1, 1));
        let t = tally_of(input.as_bytes(), Priority::Error);
        assert_eq!((t.summary.total(), t.blocking), (2, 0));
    }

    #[test]
    fn alert_list_keeps_the_most_severe() {
        let l = AlertList::new(2);
        let mk = |p: Option<Priority>| Alert {
            time: None,
            priority: String::new(),
            rule: None,
            source: None,
            hostname: None,
            output: None,
            output_fields: None,
            pod: None,
            node: None,
            container: None,
            namespace: None,
            blocking: true,
            ignored: false,
            level: p,
            at: None,
        };
        l.push(mk(Some(Priority::Debug)));
        l.push(mk(Some(Priority::Notice)));
        l.push(mk(Some(Priority::Critical)));
        l.push(mk(Some(Priority::Debug)));
        let (v, omitted) = l.into_sorted();
        let got: Vec<_> = v.iter().map(|a| a.level).collect();
        assert_eq!(got, vec![Some(Priority::Critical), Some(Priority::Notice)]);
        assert_eq!(omitted, 2);
    }
}
