//! Where Falco's output comes from: the Falco pods of a cluster ([`pods`], found by
//! [`discover`]) or files and stdin ([`files`]). Every source ends with a report whose coverage
//! ledger says what part of the window it did not prove it read and understood.

pub mod canary;
pub mod cluster;
pub mod discover;
pub mod files;
pub mod placement;
pub mod pods;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::falco::{DecodeStats, SpotKind};
use std::collections::BTreeSet;

use crate::verdict::{Alert, AlertFilter, Findings, Gap, GapKind, Ledger, PodReport, Tally};

/// Why a run is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The window is over (`--for` ended, or `--watch` without an end was stopped): a followed
    /// log read until now is complete.
    WindowEnd,
    /// SIGINT / SIGTERM before the window was read to its end.
    Interrupted,
}

/// The receiving end of a run's stop: readers look at it between chunks.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<Option<Stop>>);

impl StopSignal {
    pub fn channel() -> (watch::Sender<Option<Stop>>, StopSignal) {
        let (tx, rx) = watch::channel(None);
        (tx, StopSignal(rx))
    }

    pub fn now(&self) -> Option<Stop> {
        *self.0.borrow()
    }

    /// Waits for the stop; never returns when its sender is gone without stopping.
    pub async fn wait(&mut self) -> Stop {
        loop {
            if let Some(s) = self.now() {
                return s;
            }
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

pub use crate::options::Progress;
pub use crate::verdict::SourceRead;

/// What a live view is told while following.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// An alert for the namespace in the window.
    Alert(Box<Alert>),
    /// Now following this Falco pod.
    Followed { pod: String, node: Option<String> },
    /// This Falco pod's log ended before the window did, with the gaps that left.
    Ended { pod: String, gaps: Vec<Gap> },
}

/// Bounded: a slow terminal holds the readers back instead of growing memory.
pub type LiveSender = mpsc::Sender<LiveEvent>;

/// Hands a tally's newly counted alerts to the live view, waiting while it is behind.
pub(crate) async fn send_live(live: Option<&LiveSender>, tally: &mut Tally) {
    let Some(tx) = live else { return };
    for a in tally.take_live() {
        if tx.send(LiveEvent::Alert(Box::new(a))).await.is_err() {
            return;
        }
    }
}

/// Waits for every source's reader and adds what it read to `findings`. A reader that failed,
/// or had not stopped by `grace` (followed logs drain briefly after the stop), is a source not
/// read, never one that passed. The one fan-in of every kind of source.
pub(crate) async fn gather(
    findings: &mut Findings,
    tasks: Vec<(String, tokio::task::JoinHandle<SourceRead>)>,
    grace: Option<tokio::time::Instant>,
) {
    for (name, task) in tasks {
        let joined = match grace {
            Some(g) => tokio::time::timeout_at(g, task).await.ok(),
            None => Some(task.await),
        };
        let why = match joined {
            Some(Ok(r)) => {
                findings.add(r);
                continue;
            }
            Some(Err(e)) => format!("reading failed: {e}"),
            None => "did not stop within 5s of the window end".to_string(),
        };
        findings.pods.push(PodReport {
            name,
            gaps: vec![Gap::new(GapKind::Unreadable, why)],
            ..PodReport::default()
        });
    }
}

/// Keeps what Falco's own output says about a source for the report: its last metrics
/// snapshot, and the container alerts it could not label (judged once the map of nodes is
/// final, by [`judge_unlabelled`]).
pub(crate) fn keep_falco_facts(tally: &Tally, report: &mut PodReport) {
    if let Some(s) = &tally.snapshot {
        report.falco_metrics = Some(s.clone());
    }
    report.unlabelled = tally.unlabelled.clone();
}

/// Judges the alerts Falco could not label, for every source. Where the namespace ran (or may
/// have: offline input, or no map of its nodes, `None`), a container alert at or above the
/// threshold with no namespace may be the namespace's: a gap, never a silent pass. Elsewhere
/// they are only counted in a note.
pub(crate) fn judge_unlabelled(
    findings: &mut Findings,
    filter: &AlertFilter,
    namespace_nodes: Option<&BTreeSet<String>>,
) {
    let whom = filter.scope.describe();
    for report in &mut findings.pods {
        let u = &report.unlabelled;
        if u.total == 0 {
            continue;
        }
        let ran_here = namespace_nodes
            .is_none_or(|nodes| report.node.as_ref().is_none_or(|n| nodes.contains(n)));
        let place = match &report.node {
            Some(n) => format!("node {n}"),
            None => report.name.clone(),
        };
        if ran_here && u.at_or_above > 0 {
            let first: Vec<String> = u.first.iter().map(|t| format!("{t:?}")).collect();
            report.gaps.push(Gap::new(
                GapKind::UnlabelledAlerts,
                format!(
                    "{} container alert(s) at or above {} on {place} carry no namespace (Falco could not resolve Kubernetes metadata) and {whom} ran there: they may be its alerts; the first: {}. Fix Falco's metadata (container runtime socket, container/k8smeta plugin) or check these alerts by hand",
                    u.at_or_above,
                    filter.threshold.as_upper(),
                    first.join(", ")
                ),
            ));
        } else {
            let why = if ran_here {
                "all below the threshold"
            } else {
                "where it did not run"
            };
            findings.warnings.push(format!(
                "{}: {} container alert(s) on {place} carry no namespace (Falco could not resolve Kubernetes metadata); not counted for {whom}: {why}",
                report.name, u.total
            ));
        }
    }
}

/// Adds decoder statistics to the source's report, and turns them into warnings, and into gaps
/// where something that may have been an alert for the namespace was not understood. The one
/// place that judges a decoded log.
pub(crate) fn note_stats(
    stats: &DecodeStats,
    report: &mut PodReport,
    ledger: &mut Ledger,
    warnings: &mut Vec<String>,
) {
    report.lines_read += stats.lines;
    report.unparsed_mentions += stats.unparsed_mentions;
    for v in &stats.falco_versions {
        if !report.falco_versions.contains(v) {
            report.falco_versions.push(v.clone());
        }
    }
    let name = report.name.clone();
    if stats.oversized > 0 {
        warnings.push(format!(
            "{name}: {} line(s) longer than the line limit were skipped (raise --max-line-bytes)",
            stats.oversized
        ));
    }
    if stats.loosely_dated > 0 {
        warnings.push(format!(
            "{name}: {} text alert(s) had no kubelet time stamp: their date comes from nearby lines and their clock is taken as UTC (save logs with `kubectl logs --timestamps`)",
            stats.loosely_dated
        ));
    }
    // Where to look, in the words of the source: a file's line, or a pod log's kubelet time.
    let place = |at: &crate::falco::LineAt| {
        match (&report.node, at.time) {
        (None, _) => format!("line {} of {name}", at.line),
        (Some(_), Some(t)) => format!(
            "line {} of the log read, written at {} (`kubectl logs {name} -c {} --timestamps --since-time {}` in the Falco namespace)",
            at.line,
            t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            report.container.as_deref().unwrap_or("falco"),
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        (Some(_), None) => format!("line {} of the log read", at.line),
    }
    };
    if stats.oversized_wanted > 0 {
        let first = stats
            .first(SpotKind::Overlong)
            .map(|s| format!("; the first ends at {}", place(&s.at)))
            .unwrap_or_default();
        ledger.open(Gap::new(
            GapKind::OverlongLine,
            format!(
                "{} over-long line(s) or alert(s) spread over too many lines mention the namespace and could not be parsed (raise --max-line-bytes){first}",
                stats.oversized_wanted
            ),
        ));
    }
    if stats.malformed > 0 {
        let first = stats
            .first(SpotKind::Malformed)
            .map(|s| format!("; the first ends at {}: {:?}", place(&s.at), s.excerpt))
            .unwrap_or_default();
        ledger.open(Gap::new(
            GapKind::NotUnderstood,
            format!(
                "{} JSON line(s) that could hold an alert for the namespace are malformed, truncated or not Falco's: an alert cut short cannot be counted{first}",
                stats.malformed
            ),
        ));
    }
    if let (n @ 1.., Some(spot)) = (stats.unparsed_mentions, stats.first(SpotKind::Unparsed)) {
        let at = format!(" ({})", place(&spot.at));
        let first = &spot.excerpt;
        let hint = if report.node.is_none() {
            "Check how the log was saved (see README, Offline input)"
        } else {
            "Check what else writes to this Falco container's output (see README, What counts)"
        };
        ledger.open(Gap::new(
            GapKind::NotUnderstood,
            format!(
                "{n} line(s) name the namespace but are no Falco output this tool understands; the first{at}: {first:?}. {hint}"
            ),
        ));
    }
    // `-v 4` lists every place kept, not only the first of each kind.
    if crate::debug::enabled(4) {
        for spot in &stats.spots {
            let what = match spot.kind {
                SpotKind::Malformed => "not_understood (malformed JSON)",
                SpotKind::Unparsed => "not_understood (names the namespace)",
                SpotKind::Overlong => "overlong_line",
            };
            let line = format!("{name}: {what} at {}: {:?}", place(&spot.at), spot.excerpt);
            crate::debug::log(4, format_args!("{}", crate::sanitize::neutralize(&line)));
        }
        if stats.spots.len() >= crate::falco::SPOTS_KEPT {
            crate::debug::log(
                4,
                format_args!(
                    "{}: only the first {} places are listed",
                    crate::sanitize::neutralize(&name),
                    crate::falco::SPOTS_KEPT
                ),
            );
        }
    }
    if stats.lines > 0 && stats.recognized == 0 && stats.unparsed_mentions == 0 {
        ledger.open(Gap::new(
            GapKind::NotUnderstood,
            format!(
                "none of its {} line(s) is Falco output (JSON alerts, text alerts or Falco's own messages): is this the right input?",
                stats.lines
            ),
        ));
    }
}

/// Turns the user's interrupt and the window's end into the run's stop.
pub(crate) async fn drive_stop(
    mut interrupt: watch::Receiver<bool>,
    stop: watch::Sender<Option<Stop>>,
    on_interrupt: Stop,
    ends_at: Option<Instant>,
) {
    let window_over = async {
        match ends_at {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
    };
    let interrupted = async { interrupt.wait_for(|v| *v).await.is_ok() };
    let why = tokio::select! {
        _ = window_over => Stop::WindowEnd,
        i = interrupted => {
            if !i {
                // Nobody can interrupt any more: only the window end is left.
                match ends_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            }
            if i { on_interrupt } else { Stop::WindowEnd }
        }
    };
    let _ = stop.send(Some(why));
}
