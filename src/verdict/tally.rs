//! Counting: a [`Tally`] is the decoder's [`EventSink`] for one source; tallies merge into one.

use std::sync::Arc;

use chrono::SecondsFormat;
use serde::Serialize;

use super::alerts::{Alert, AlertList, LogOrigin};
use super::breakdown::{self, GroupBy};
use super::canary::{self, Sighting};
use super::filter::AlertFilter;
use crate::falco::event::{Metrics, Workload};
use crate::falco::{Event, EventSink, Priority};

/// Alerts about containers whose namespace Falco did not resolve, inside the window: they may be
/// the namespace's. Where the namespace ran, those at or above the threshold leave a gap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unlabelled {
    pub total: u64,
    /// At or above the threshold (or of a priority Falco does not define), not ignored.
    pub at_or_above: u64,
    /// The first few of those, as Falco wrote them (untrusted text).
    pub first: Vec<String>,
}

/// Canary alerts kept (each canary writes one; earlier runs' may add a few).
const CANARIES_KEPT: usize = 1000;

/// How many unlabelled alerts are kept as examples.
const UNLABELLED_SHOWN: usize = 3;

impl Unlabelled {
    fn merge(&mut self, o: Unlabelled) {
        self.total += o.total;
        self.at_or_above += o.at_or_above;
        for f in o.first {
            if self.first.len() < UNLABELLED_SHOWN {
                self.first.push(f);
            }
        }
    }
}

/// Falco's last metrics snapshot inside the window: Falco was alive then, with these drops.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// RFC3339, UTC; null when the snapshot carried no time.
    pub time: Option<String>,
    #[serde(flatten)]
    pub metrics: Metrics,
    #[serde(skip)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
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
    pub fn merge(&mut self, o: &Summary) {
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
    /// Text alerts no ignore entry matched while some were given (text has no rule names).
    pub text_unmatched: u64,
    /// k8saudit alerts inside the window about the Namespace object itself (created, deleted):
    /// understood, about no workload in it, not counted.
    pub namespace_objects: u64,
    pub groups: breakdown::Groups,
    /// Always kept: one row per rule (the reports have a test case per rule).
    pub rules: breakdown::Groups,
    pub timeline: breakdown::Timeline,
    pub namespaces: breakdown::Namespaces,
    /// Container alerts with no namespace resolved (namespace scope only).
    pub unlabelled: Unlabelled,
    /// The latest metrics snapshot in the window.
    pub snapshot: Option<Snapshot>,
    /// Canary alerts (expected: never counted), this run's and earlier runs'.
    pub canaries: Vec<Sighting>,
    /// Live view: counted alerts waiting to be handed on (the reader drains them after every
    /// chunk, so at most one chunk's worth is held).
    live: Option<Vec<Alert>>,
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
            text_unmatched: 0,
            namespace_objects: 0,
            ignored: 0,
            groups: breakdown::Groups::default(),
            rules: breakdown::Groups::default(),
            timeline: breakdown::Timeline::default(),
            namespaces: breakdown::Namespaces::default(),
            unlabelled: Unlabelled::default(),
            snapshot: None,
            canaries: Vec::new(),
            live: None,
        }
    }

    /// A tally that keeps its alerts in a list shared with others (bounded across all logs).
    pub fn with_alerts(filter: Arc<AlertFilter>, origin: LogOrigin, alerts: AlertList) -> Self {
        let mut t = Tally::new(filter, origin, 0);
        t.alerts = alerts;
        t
    }

    /// An empty tally counting the same way, with a list of alerts of its own (the same
    /// length): for work that may be thrown away, joined later with [`Tally::merge`].
    pub fn detached(&self) -> Tally {
        Tally::new(self.filter.clone(), self.origin.clone(), self.alerts.cap())
    }

    /// What this tally counts.
    pub fn filter(&self) -> &AlertFilter {
        &self.filter
    }

    /// Keeps a copy of every counted alert for [`Tally::take_live`] (live view).
    pub fn keep_live(&mut self) {
        self.live = Some(Vec::new());
    }

    /// The alerts counted since the last call (live view only).
    pub fn take_live(&mut self) -> Vec<Alert> {
        self.live.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub fn merge(&mut self, o: Tally) {
        self.summary.merge(&o.summary);
        self.blocking += o.blocking;
        self.alerts.merge(o.alerts);
        self.syscall_drops += o.syscall_drops;
        self.outside_window += o.outside_window;
        self.undated += o.undated;
        self.text_unmatched += o.text_unmatched;
        self.namespace_objects += o.namespace_objects;
        self.ignored += o.ignored;
        self.groups.merge(o.groups);
        self.rules.merge(o.rules);
        self.timeline.merge(o.timeline);
        self.namespaces.merge(o.namespaces);
        self.unlabelled.merge(o.unlabelled);
        let room = CANARIES_KEPT.saturating_sub(self.canaries.len());
        self.canaries.extend(o.canaries.into_iter().take(room));
        if o.snapshot.as_ref().map(|s| s.at) > self.snapshot.as_ref().map(|s| s.at) {
            self.snapshot = o.snapshot;
        }
    }

    fn note_snapshot(&mut self, e: &mut Event) {
        let Some(metrics) = e.metrics.take() else {
            return;
        };
        if e.time.is_some_and(|t| !self.filter.window.contains(t)) {
            return;
        }
        if self.snapshot.as_ref().is_none_or(|s| e.time >= s.at) {
            self.snapshot = Some(Snapshot {
                time: e
                    .time
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                metrics,
                at: e.time,
            });
        }
    }

    fn note_unlabelled(&mut self, e: &Event) {
        let f = &self.filter;
        if e.time.is_some_and(|t| !f.window.contains(t)) {
            return;
        }
        self.unlabelled.total += 1;
        let text = e.format == crate::falco::Format::Text;
        let ignored = !f.ignores.is_empty()
            && f.ignores
                .matches(e.rule.as_deref(), text, e.output_fields.as_ref());
        if !ignored && e.priority.is_none_or(|p| p.at_least(f.threshold)) {
            self.unlabelled.at_or_above += 1;
            if self.unlabelled.first.len() < UNLABELLED_SHOWN {
                let shown = e.output.as_deref().or(e.rule.as_deref()).unwrap_or("");
                self.unlabelled
                    .first
                    .push(shown.chars().take(300).collect());
            }
        }
    }
}

impl EventSink for Tally {
    fn wants(&self, raw: &[u8]) -> bool {
        self.filter.may_match(raw)
    }

    fn names_exactly(&self, raw: &[u8]) -> bool {
        self.filter.names_as_token(raw)
    }

    fn scoped(&self) -> bool {
        self.filter.scope != super::filter::Scope::All
    }

    fn line_scan(&self) -> Box<dyn crate::falco::LineScan> {
        Box::new(super::filter::Scan::new(self.filter.clone()))
    }

    fn event(&mut self, mut e: Event) {
        let f = &self.filter;
        if e.internal {
            self.note_snapshot(&mut e);
            let f = &self.filter;
            if e.is_syscall_drop() && e.time.is_none_or(|t| f.window.contains(t)) {
                self.syscall_drops += 1;
            }
            return;
        }
        if let Some(mut s) = canary::sighting(&e, &f.canary_rules) {
            let ours = match (&f.scope, &e.namespace) {
                (_, None) => f.canary_nonce.as_deref() == Some(s.nonce.as_str()),
                (super::filter::Scope::All, Some(_)) => true,
                (super::filter::Scope::Namespace(want), Some(got)) => want == got,
            };
            if ours {
                if e.time.is_none_or(|t| f.window.contains(t))
                    && self.canaries.len() < CANARIES_KEPT
                {
                    s.falco_pod = self.origin.pod.clone();
                    self.canaries.push(s);
                }
                return;
            }
        }
        let named_in_audit = f
            .scope
            .namespace()
            .is_some_and(|n| e.audit_namespaces.iter().any(|a| a == n));
        if !f.wants_namespace(e.namespace.as_deref()) && !named_in_audit {
            if e.namespace.is_none()
                && e.namespace_object.is_some()
                && e.namespace_object.as_deref() == f.scope.namespace()
                && e.time.is_none_or(|t| f.window.contains(t))
            {
                self.namespace_objects += 1;
                return;
            }
            if f.scope != super::filter::Scope::All && e.is_unlabelled() {
                self.note_unlabelled(&e);
            }
            return;
        }
        if named_in_audit {
            e.namespace = f.scope.namespace().map(str::to_string);
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
        let text = e.format == crate::falco::Format::Text;
        let ignored = !f.ignores.is_empty()
            && f.ignores
                .matches(e.rule.as_deref(), text, e.output_fields.as_ref());
        // Text output has no rule names: an ignore list may miss these (said in a warning).
        self.text_unmatched += u64::from(!ignored && text && !f.ignores.is_empty());
        let workload = Workload::of(
            e.namespace.as_deref(),
            e.output_fields.as_ref(),
            e.output.as_deref(),
        );
        let blocking = !ignored && e.priority.is_none_or(|p| p.at_least(f.threshold));
        self.blocking += u64::from(blocking);
        self.ignored += u64::from(ignored);
        if let Some(t) = e.time {
            self.timeline.add(t);
        }
        // The saving tool's word (`kubectl logs --prefix`, stern) on which Falco pod wrote it.
        let (pod, container) = match e.origin.take() {
            Some((p, c)) => (Some(p), Some(c)),
            None => (self.origin.pod.clone(), self.origin.container.clone()),
        };
        if let Some(g) = f.group_by {
            let key = match g {
                GroupBy::Priority => e
                    .priority
                    .map_or_else(|| e.priority_text.clone(), |p| p.as_falco_str().to_string()),
                GroupBy::Rule => e.rule.clone().unwrap_or_default(),
                GroupBy::Pod => workload.pod.clone().unwrap_or_default(),
                GroupBy::Container => workload.container.clone().unwrap_or_default(),
                GroupBy::Image => workload.image.clone().unwrap_or_default(),
                GroupBy::Node => self.origin.node.clone().unwrap_or_default(),
                GroupBy::FalcoPod => pod.clone().unwrap_or_default(),
            };
            self.groups.add(&key, e.priority, e.time, blocking, ignored);
        }
        self.rules.add(
            e.rule.as_deref().unwrap_or(""),
            e.priority,
            e.time,
            blocking,
            ignored,
        );
        if f.scope == super::filter::Scope::All {
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
            dated: e.time.is_some(),
            pod,
            node: self.origin.node.clone(),
            container,
            namespace: e.namespace,
            attributed_by: e.attributed_by,
            workload,
            blocking,
            ignored,
            level: e.priority,
            at: e.time,
        };
        if let Some(live) = &mut self.live {
            live.push(alert.clone());
        }
        self.alerts.push(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::falco::Decoder;
    use crate::verdict::Window;
    use chrono::{DateTime, Utc};

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
}
