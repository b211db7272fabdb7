//! Breakdowns of the counted alerts: by a key (`--group-by`), per minute, per namespace (`-A`).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::Summary;
use crate::falco::Priority;

/// Combines two optional values with `pick` (min or max), or keeps the one that is there.
fn both<T>(a: Option<T>, b: Option<T>, pick: fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// `--group-by` keys: what a user means by them (the workload's pod, container, image), and
/// the Falco pod that reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    Priority,
    Rule,
    /// The workload pod the alert is about.
    Pod,
    /// The workload's container.
    Container,
    /// The workload's image (repository:tag).
    Image,
    /// The node.
    Node,
    /// The Falco pod that reported it.
    FalcoPod,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Priority => "priority",
            GroupBy::Rule => "rule",
            GroupBy::Pod => "pod",
            GroupBy::Container => "container",
            GroupBy::Image => "image",
            GroupBy::Node => "node",
            GroupBy::FalcoPod => "falco-pod",
        }
    }
}

/// Counts, worst priority and first/last time of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupStat {
    pub key: String,
    pub count: u64,
    pub blocking: u64,
    pub ignored: u64,
    /// Most severe priority seen (`null` when only unknown ones).
    pub worst: Option<Priority>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    #[serde(skip)]
    first: Option<DateTime<Utc>>,
    #[serde(skip)]
    last: Option<DateTime<Utc>>,
}

impl GroupStat {
    pub fn add(
        &mut self,
        p: Option<Priority>,
        at: Option<DateTime<Utc>>,
        blocking: bool,
        ignored: bool,
    ) {
        self.count += 1;
        self.blocking += u64::from(blocking);
        self.ignored += u64::from(ignored);
        if let Some(p) = p {
            self.worst = both(self.worst, Some(p), Ord::min);
        }
        if let Some(t) = at {
            self.first = both(self.first, Some(t), Ord::min);
            self.last = both(self.last, Some(t), Ord::max);
        }
    }

    pub fn merge(&mut self, o: &GroupStat) {
        self.count += o.count;
        self.blocking += o.blocking;
        self.ignored += o.ignored;
        self.worst = both(self.worst, o.worst, Ord::min);
        self.first = both(self.first, o.first, Ord::min);
        self.last = both(self.last, o.last, Ord::max);
    }

    fn finish(mut self, key: String) -> GroupStat {
        self.key = key;
        self.first_seen = self
            .first
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        self.last_seen = self
            .last
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        self
    }
}

/// Groups keyed by text, merged across pods.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    map: BTreeMap<String, GroupStat>,
}

/// Enough distinct keys for any real cluster; beyond it, keys fold into one row.
const MAX_GROUPS: usize = 10_000;
const OTHER_KEY: &str = "(other keys)";

impl Groups {
    pub fn add(
        &mut self,
        key: &str,
        p: Option<Priority>,
        at: Option<DateTime<Utc>>,
        blocking: bool,
        ignored: bool,
    ) {
        let key = if self.map.len() >= MAX_GROUPS && !self.map.contains_key(key) {
            OTHER_KEY
        } else {
            key
        };
        self.map
            .entry(key.to_string())
            .or_default()
            .add(p, at, blocking, ignored);
    }

    pub fn merge(&mut self, o: Groups) {
        for (k, v) in o.map {
            self.map.entry(k).or_default().merge(&v);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Rows, worst priority first, then most frequent.
    pub fn rows(self) -> Vec<GroupStat> {
        let mut rows: Vec<GroupStat> = self.map.into_iter().map(|(k, v)| v.finish(k)).collect();
        rows.sort_by(|a, b| {
            let wa = a.worst.map_or(8, Priority::rank);
            let wb = b.worst.map_or(8, Priority::rank);
            wa.cmp(&wb)
                .then(b.count.cmp(&a.count))
                .then(a.key.cmp(&b.key))
        });
        rows
    }
}

/// Alerts per minute.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    minutes: BTreeMap<i64, u64>,
}

/// One minute of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minute {
    pub minute: String,
    pub count: u64,
}

impl Timeline {
    pub fn add(&mut self, at: DateTime<Utc>) {
        *self
            .minutes
            .entry(at.timestamp().div_euclid(60))
            .or_default() += 1;
    }

    pub fn merge(&mut self, o: Timeline) {
        for (k, v) in o.minutes {
            *self.minutes.entry(k).or_default() += v;
        }
    }

    /// Every minute from the first to the last alert, zeros included (at most a day of them).
    pub fn minutes(&self) -> Vec<Minute> {
        let (Some(first), Some(last)) =
            (self.minutes.keys().next(), self.minutes.keys().next_back())
        else {
            return Vec::new();
        };
        let last = (*last).min(first + 24 * 60);
        (*first..=last)
            .map(|m| Minute {
                minute: DateTime::from_timestamp(m * 60, 0)
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                count: self.minutes.get(&m).copied().unwrap_or(0),
            })
            .collect()
    }
}

/// Counts for one namespace (`-A`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NamespaceStat {
    pub namespace: String,
    pub alert_count: u64,
    pub blocking_count: u64,
    pub ignored_count: u64,
    pub worst: Option<Priority>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    map: BTreeMap<String, NamespaceStat>,
}

impl Namespaces {
    pub fn add(&mut self, ns: &str, p: Option<Priority>, blocking: bool, ignored: bool) {
        let key = if self.map.len() >= MAX_GROUPS && !self.map.contains_key(ns) {
            OTHER_KEY
        } else {
            ns
        };
        let s = self.map.entry(key.to_string()).or_default();
        s.alert_count += 1;
        s.blocking_count += u64::from(blocking);
        s.ignored_count += u64::from(ignored);
        s.summary.add(p);
        if let Some(p) = p {
            s.worst = both(s.worst, Some(p), Ord::min);
        }
    }

    pub fn merge(&mut self, o: Namespaces) {
        for (k, v) in o.map {
            let s = self.map.entry(k).or_default();
            s.alert_count += v.alert_count;
            s.blocking_count += v.blocking_count;
            s.ignored_count += v.ignored_count;
            s.summary.merge(&v.summary);
            s.worst = both(s.worst, v.worst, Ord::min);
        }
    }

    /// Rows, worst priority first, then most alerts.
    pub fn rows(self) -> Vec<NamespaceStat> {
        let mut rows: Vec<NamespaceStat> = self
            .map
            .into_iter()
            .map(|(k, mut v)| {
                v.namespace = k;
                v
            })
            .collect();
        rows.sort_by(|a, b| {
            let wa = a.worst.map_or(8, Priority::rank);
            let wb = b.worst.map_or(8, Priority::rank);
            wa.cmp(&wb)
                .then(b.alert_count.cmp(&a.alert_count))
                .then(a.namespace.cmp(&b.namespace))
        });
        rows
    }
}

/// A one-line sparkline of counts.
pub fn sparkline(counts: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = counts.iter().copied().max().unwrap_or(0);
    counts
        .iter()
        .map(|&c| {
            if c == 0 || max == 0 {
                ' '
            } else {
                BARS[((c * 7).div_ceil(max)) as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales() {
        assert_eq!(sparkline(&[0, 1, 7]), " ▂█");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn groups_sort_worst_first() {
        let mut g = Groups::default();
        g.add("a", Some(Priority::Notice), None, false, false);
        g.add("a", Some(Priority::Notice), None, false, false);
        g.add("b", Some(Priority::Critical), None, true, false);
        let rows = g.rows();
        assert_eq!(rows[0].key, "b");
        assert_eq!(rows[1].count, 2);
    }
}
