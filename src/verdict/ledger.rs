//! The coverage ledger: what part of the window a source (a Falco container instance, a file,
//! stdin) did not prove it read and understood. A PASSED needs every source's ledger closed.

use serde::Serialize;

/// Why a source's coverage is not closed. The names are a contract: scripts branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// The Falco pod has no node: that node is not watched at all.
    NotScheduled,
    /// The Falco container is not running now (waiting, no status, no container to read).
    NotRunning,
    /// The container restarted more often than the API keeps logs for (current and previous).
    InstancesLost,
    /// The earliest instance read started after the window start.
    StartedLate,
    /// The kubelet rotated part of the window out of the file the API serves.
    Rotated,
    /// The log could not be read: the message carries the HTTP status or the cause.
    Unreadable,
    /// The stream ended or broke before the window was read to its end.
    StreamBroken,
    /// The `--timeout` deadline passed while reading.
    Deadline,
    /// SIGINT / SIGTERM ended the run before the window was read to its end.
    StoppedEarly,
    /// A line (or text alert) over the bound names the namespace: it could not be parsed.
    OverlongLine,
    /// Input that could hold an alert for the namespace was not understood.
    NotUnderstood,
    /// Container alerts at or above the threshold with no namespace resolved, on a node where
    /// the namespace ran: they may be its alerts.
    UnlabelledAlerts,
    /// A node where the namespace ran has no Falco pod.
    NoFalcoPod,
    /// The nodes where the namespace ran could not be mapped (no access to its pods or events).
    CoverageUnmapped,
    /// `--canary`: Falco did not report the canary's action within the canary timeout.
    CanaryNotSeen,
    /// `--canary`: Falco reported it without the namespace: it cannot label the namespace's
    /// alerts on that node.
    CanaryUnlabelled,
    /// `--canary`: the canary could not run (refused, image, scheduling).
    CanaryNotRun,
}

impl GapKind {
    pub const ALL: [GapKind; 17] = [
        GapKind::NotScheduled,
        GapKind::NotRunning,
        GapKind::InstancesLost,
        GapKind::StartedLate,
        GapKind::Rotated,
        GapKind::Unreadable,
        GapKind::StreamBroken,
        GapKind::Deadline,
        GapKind::StoppedEarly,
        GapKind::OverlongLine,
        GapKind::NotUnderstood,
        GapKind::UnlabelledAlerts,
        GapKind::NoFalcoPod,
        GapKind::CoverageUnmapped,
        GapKind::CanaryNotSeen,
        GapKind::CanaryUnlabelled,
        GapKind::CanaryNotRun,
    ];

    /// The stable name used in JSON (`gaps[].kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::NotScheduled => "not_scheduled",
            GapKind::NotRunning => "not_running",
            GapKind::InstancesLost => "instances_lost",
            GapKind::StartedLate => "started_late",
            GapKind::Rotated => "rotated",
            GapKind::Unreadable => "unreadable",
            GapKind::StreamBroken => "stream_broken",
            GapKind::Deadline => "deadline",
            GapKind::StoppedEarly => "stopped_early",
            GapKind::OverlongLine => "overlong_line",
            GapKind::NotUnderstood => "not_understood",
            GapKind::UnlabelledAlerts => "unlabelled_alerts",
            GapKind::NoFalcoPod => "no_falco_pod",
            GapKind::CoverageUnmapped => "coverage_unmapped",
            GapKind::CanaryNotSeen => "canary_not_seen",
            GapKind::CanaryUnlabelled => "canary_unlabelled",
            GapKind::CanaryNotRun => "canary_not_run",
        }
    }
}

impl std::fmt::Display for GapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One hole in a source's coverage, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub kind: GapKind,
    /// Human text: what is missing and what to do next.
    pub message: String,
}

impl Gap {
    pub fn new(kind: GapKind, message: impl Into<String>) -> Self {
        Gap {
            kind,
            message: message.into(),
        }
    }
}

/// A source's gaps, in the order they were found; one per kind and message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    gaps: Vec<Gap>,
}

impl Ledger {
    pub fn open(&mut self, gap: Gap) {
        if !self.gaps.contains(&gap) {
            self.gaps.push(gap);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.gaps.is_empty()
    }

    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    pub fn into_gaps(self) -> Vec<Gap> {
        self.gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_contract() {
        for k in GapKind::ALL {
            let json = serde_json::to_value(k).expect("json");
            assert_eq!(json, serde_json::Value::String(k.as_str().to_string()));
        }
        let mut l = Ledger::default();
        assert!(l.is_closed());
        l.open(Gap::new(GapKind::Rotated, "x"));
        l.open(Gap::new(GapKind::Rotated, "x"));
        assert_eq!(l.gaps().len(), 1);
        assert!(l.gaps()[0].kind == GapKind::Rotated && !l.is_closed());
    }
}
