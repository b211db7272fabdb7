//! Alerts as reported, and the bounded list that keeps the most important of them.

use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::falco::event::Workload;
use crate::falco::Priority;

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
    /// False for a text alert nothing could date: counted as inside the window.
    pub dated: bool,
    pub priority: String,
    pub rule: Option<String>,
    pub source: Option<String>,
    pub hostname: Option<String>,
    pub output: Option<String>,
    pub output_fields: Option<crate::falco::Fields>,
    pub pod: Option<String>,
    pub node: Option<String>,
    pub container: Option<String>,
    /// The workload's namespace.
    pub namespace: Option<String>,
    /// How the namespace was worked out when Falco left it unresolved (`"container_name"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributed_by: Option<crate::falco::event::Attribution>,
    /// The workload the alert is about (pod, container, image); `pod`, `node` and `container`
    /// above are the Falco pod's that reported it.
    pub workload: Workload,
    /// At or above the threshold (or of a priority Falco does not define), and not ignored.
    pub blocking: bool,
    /// Matched `--ignore-rule` / `--ignore-file`: counted and shown, never blocking.
    pub ignored: bool,
    #[serde(skip)]
    pub level: Option<Priority>,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
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
            a.level.map_or(0, Priority::rank),
            a.at.is_none(),
            a.at,
            a.pod.as_deref(),
            a.output.as_deref(),
        )
    }
}

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o).is_eq()
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
        self.key()
            .cmp(&o.key())
            .then_with(|| rest(&self.0).cmp(&rest(&o.0)))
    }
}

/// The order alerts are shown in: by time (undated last), then severity, pod and text.
#[allow(clippy::type_complexity)]
fn shown(x: &Alert) -> (bool, Option<DateTime<Utc>>, u8, Option<&str>, Option<&str>) {
    (
        x.at.is_none(),
        x.at,
        x.level.map_or(0, Priority::rank),
        x.pod.as_deref(),
        x.output.as_deref(),
    )
}

/// The rest of what an alert shows, to break ties: which alerts are kept, and their order, must
/// not depend on the order they arrive in (pods read at once, a file read in halves).
fn rest(a: &Alert) -> (&str, [Option<&str>; 8]) {
    (
        &a.priority,
        [
            a.rule.as_deref(),
            a.source.as_deref(),
            a.hostname.as_deref(),
            a.time.as_deref(),
            a.node.as_deref(),
            a.container.as_deref(),
            a.namespace.as_deref(),
            a.output_fields.as_ref().map(crate::falco::Fields::raw),
        ],
    )
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

    /// How many alerts it keeps.
    pub fn cap(&self) -> usize {
        self.lock().cap
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

    /// How many kept alerts block.
    pub fn blocking_kept(&self) -> u64 {
        self.lock().heap.iter().filter(|r| r.0.blocking).count() as u64
    }

    /// Sorted by time (undated last), then by severity; and how many were left out.
    pub fn into_sorted(self) -> (Vec<Alert>, u64) {
        let (heap, omitted) = {
            let mut k = self.lock();
            (std::mem::take(&mut k.heap), k.omitted)
        };
        let mut alerts: Vec<Alert> = heap.into_iter().map(|r| r.0).collect();
        // Deterministic whatever order the pods finished in.
        alerts.sort_by(|a, b| shown(a).cmp(&shown(b)).then_with(|| rest(a).cmp(&rest(b))));
        (alerts, omitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An undated blocking alert of that level, rule and text; nothing else set.
    fn alert(level: Option<Priority>, rule: Option<&str>, output: Option<&str>) -> Alert {
        Alert {
            workload: Workload::default(),
            time: None,
            dated: false,
            priority: level
                .map(|p| p.as_falco_str().to_string())
                .unwrap_or_default(),
            rule: rule.map(str::to_string),
            source: None,
            hostname: None,
            output: output.map(str::to_string),
            output_fields: None,
            pod: None,
            node: None,
            container: None,
            namespace: None,
            attributed_by: None,
            blocking: true,
            ignored: false,
            level,
            at: None,
        }
    }

    #[test]
    fn alert_list_keeps_the_most_severe() {
        let l = AlertList::new(2);
        let mk = |p: Option<Priority>| alert(p, None, None);
        l.push(mk(Some(Priority::Debug)));
        l.push(mk(Some(Priority::Notice)));
        l.push(mk(Some(Priority::Critical)));
        l.push(mk(Some(Priority::Debug)));
        let (v, omitted) = l.into_sorted();
        let got: Vec<_> = v.iter().map(|a| a.level).collect();
        assert_eq!(got, vec![Some(Priority::Critical), Some(Priority::Notice)]);
        assert_eq!(omitted, 2);
    }

    /// Alerts alike in time, severity, pod and text but not in rule: which are kept, and in
    /// what order, does not depend on the order they came in, nor on lists being merged.
    #[test]
    fn ties_are_kept_and_shown_alike_whatever_the_order() {
        let mk = |rule: &str| alert(Some(Priority::Error), Some(rule), Some("same text"));
        let rules = ["d", "b", "e", "a", "c"];
        let kept = |order: &[usize], merged: bool| {
            let (l, other) = (AlertList::new(3), AlertList::new(3));
            for (n, &i) in order.iter().enumerate() {
                let into = if merged && n % 2 == 1 { &other } else { &l };
                into.push(mk(rules[i]));
            }
            l.merge(other);
            let (v, omitted) = l.into_sorted();
            (
                v.into_iter().filter_map(|a| a.rule).collect::<Vec<_>>(),
                omitted,
            )
        };
        let want = (vec!["a".to_string(), "b".into(), "c".into()], 2);
        for order in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [3, 0, 4, 1, 2]] {
            assert_eq!(kept(&order, false), want, "{order:?}");
            assert_eq!(kept(&order, true), want, "{order:?} merged");
        }
    }
}
