//! One Falco pod's log for the window: the same reader for a one-shot check, a `--for` soak and
//! `--watch` (stern's single `Tail`). It reads the previous instance when the container
//! restarted inside the window, follows the current one when asked, probes for rotation, and
//! closes the pod's coverage ledger only when all of that went through.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{
    keep_falco_facts, note_stats, send_live, LiveEvent, LiveSender, Progress, SourceRead, Stop,
    StopSignal,
};
use crate::cluster::{self, Cluster, ClusterError, FalcoPod, LogRequest};
use crate::falco::{self, Decoder};
use crate::verdict::{AlertFilter, AlertList, Gap, GapKind, Ledger, LogOrigin, PodReport, Tally};

/// How long a followed stream is still read after a stop: lines already on their way (written
/// just before the window ended) still count.
const STOP_DRAIN: Duration = Duration::from_millis(1000);

/// What every Falco pod's reader shares.
#[derive(Clone)]
pub struct PodReader {
    pub cluster: Cluster,
    pub falco_namespace: String,
    /// `--container`, if given.
    pub container: Option<String>,
    pub filter: Arc<AlertFilter>,
    /// One bounded list of alerts for all pods.
    pub alerts: AlertList,
    pub max_line: usize,
    /// Ends every request (one-shot: `--timeout`; following: far away, the stop ends it).
    pub deadline: Instant,
    /// Keep the current instance's stream open for new lines until the stop.
    pub follow: bool,
    pub stop: StopSignal,
    pub live: Option<LiveSender>,
    pub progress: Option<Arc<Progress>>,
}

/// At most this long after the stop, a followed stream may still be catching up.
const DRAIN_CAP: Duration = Duration::from_secs(3);
/// A line stamped this long after the window end shows that the stream has caught up.
const END_SLACK: Duration = Duration::from_secs(2);

/// How reading one instance's log ended, short of an error.
#[derive(Clone, Copy)]
enum End {
    /// The server ended the stream.
    Complete,
    /// The run's stop came first.
    Stopped(Stop),
    /// The run's stop came before the log was even opened: nothing of it was read.
    NotOpened(Stop),
    /// A followed stream was still delivering lines written before the stop, [`DRAIN_CAP`]
    /// after it: the end of the window did not arrive.
    Behind,
}

/// A followed stream after the stop: read on while lines written before it are still coming.
#[derive(Clone, Copy)]
struct Draining {
    stop: Stop,
    /// The window's end (or the stop's wall time, for `--watch` without an end).
    end: DateTime<Utc>,
    /// Ends the drain when nothing arrives until then.
    quiet_until: Instant,
    cap: Instant,
}

impl Draining {
    fn new(stop: Stop, window_end: Option<DateTime<Utc>>) -> Self {
        let now = Instant::now();
        Draining {
            stop,
            end: window_end.unwrap_or_else(Utc::now),
            quiet_until: now + STOP_DRAIN,
            cap: now + DRAIN_CAP,
        }
    }
}

impl PodReader {
    fn tally(&self, origin: &LogOrigin) -> Tally {
        let mut t = Tally::with_alerts(self.filter.clone(), origin.clone(), self.alerts.clone());
        if self.live.is_some() {
            t.keep_live();
        }
        t
    }

    /// Reads the window from the pod's Falco container and says what part is not covered.
    pub async fn read(&self, pod: &FalcoPod) -> SourceRead {
        if let (true, Some(tx)) = (self.follow, &self.live) {
            let _ = tx
                .send(LiveEvent::Followed {
                    pod: pod.name.clone(),
                    node: pod.node.clone(),
                })
                .await;
        }
        let read = self.read_pod(pod).await;
        if crate::debug::enabled(4) {
            let r = &read.report;
            let gaps: Vec<String> = r
                .gaps
                .iter()
                .map(|g| format!("{}: {}", g.kind, g.message))
                .collect();
            crate::debug::log(
                4,
                format_args!(
                    "coverage of {}: {} lines read{}; {}",
                    crate::sanitize::neutralize(&r.name),
                    r.lines_read,
                    if r.previous_read {
                        ", previous instance too"
                    } else {
                        ""
                    },
                    if gaps.is_empty() {
                        "closed".to_string()
                    } else {
                        crate::sanitize::neutralize(&gaps.join("; "))
                    }
                ),
            );
        }
        if let Some(p) = &self.progress {
            p.pods_done.fetch_add(1, Ordering::Relaxed);
        }
        // A followed pod whose log ended on its own (not at the run's stop) is news.
        if let (Some(tx), None, false) = (&self.live, self.stop.now(), read.report.is_closed()) {
            let _ = tx
                .send(LiveEvent::Ended {
                    pod: read.report.name.clone(),
                    gaps: read.report.gaps.clone(),
                })
                .await;
        }
        read
    }

    async fn read_pod(&self, pod: &FalcoPod) -> SourceRead {
        let start = self.filter.window.start;
        let mut ledger = Ledger::default();
        let mut warnings = Vec::new();
        let (mut report, target) = pod_target(pod, self.container.as_deref());
        let name = report.name.clone();
        let mut total = self.tally(&LogOrigin::default());
        let mut parsed = 0;
        let done = |report: PodReport, ledger: Ledger, total, parsed, warnings| SourceRead {
            tally: total,
            report: PodReport {
                gaps: ledger.into_gaps(),
                ..report
            },
            parsed,
            warnings,
        };
        let (container, origin) = match target {
            Ok(t) => t,
            Err(gap) => {
                ledger.open(gap);
                return done(report, ledger, total, parsed, warnings);
            }
        };
        let cov = cluster::coverage(pod, &container, start);
        for g in cov.gaps.iter().cloned() {
            ledger.open(g);
        }
        if !cov.scheduled {
            return done(report, ledger, total, parsed, warnings);
        }
        let mut instances = vec![false];
        if cov.read_previous {
            instances.insert(0, true);
            report.previous_read = true;
        }
        for previous in instances {
            let which = if previous { "previous instance" } else { "log" };
            let request = LogRequest {
                follow: self.follow && !previous,
                container: container.clone(),
                previous,
                since: Some(start),
                limit_bytes: None,
            };
            let mut decoder = Decoder::with_max_line(self.tally(&origin), self.max_line);
            let (bytes, end) = self.stream(&name, &request, &mut decoder).await;
            let (mut tally, stats) = decoder.finish();
            send_live(self.live.as_ref(), &mut tally).await;
            report.bytes_read += bytes;
            parsed += stats.parsed;
            note_stats(&stats, &mut report, &mut ledger, &mut warnings);
            total.merge(tally);
            let end = match end {
                Ok(end) => end,
                Err(e) => {
                    ledger.open(e.gap(which));
                    continue;
                }
            };
            match end {
                // A followed stream must last as long as the window.
                End::Complete if request.follow => ledger.open(Gap::new(
                    GapKind::StreamBroken,
                    format!("{which}: the log stream ended before the window did (pod deleted or container stopped)"),
                )),
                End::Complete => {}
                End::Behind => ledger.open(Gap::new(
                    GapKind::Deadline,
                    format!("{which}: the log stream was still delivering lines written before the window end {}s after it (a slow API server or kubelet): the end of the window was not read", DRAIN_CAP.as_secs()),
                )),
                End::Stopped(Stop::WindowEnd) if request.follow => {}
                End::NotOpened(stop) => {
                    let why = match stop {
                        Stop::Interrupted => "stopped by a signal",
                        Stop::WindowEnd => "the window ended",
                    };
                    ledger.open(Gap::new(
                        GapKind::StoppedEarly,
                        format!("{which}: {why} before the log was opened: nothing of it was read"),
                    ));
                    break;
                }
                End::Stopped(stop) => {
                    let why = match stop {
                        Stop::Interrupted => "stopped by a signal",
                        Stop::WindowEnd => "the window ended",
                    };
                    ledger.open(Gap::new(
                        GapKind::StoppedEarly,
                        format!("{which}: {why} before the log was read to its end ({bytes} bytes read)"),
                    ));
                    break;
                }
            }
            if matches!(end, End::Behind) {
                continue;
            }
            // A log that begins after the window start while the container ran before it: the
            // kubelet may have rotated the older part away. The head of the current file tells.
            let began_late = stats
                .first_line_time
                .is_none_or(|t| t > start + chrono::Duration::seconds(1));
            let ran_before = cov.running_since.is_some_and(|t| t < start);
            if !previous && began_late && ran_before {
                let since = cov.running_since.unwrap_or(start);
                let (gap, version) = self.rotated_gap(&name, &container, since).await;
                if let Some(gap) = gap {
                    ledger.open(gap);
                }
                // The banner before the window still says which Falco wrote the log.
                if let Some(v) = version.filter(|v| !report.falco_versions.contains(v)) {
                    report.falco_versions.push(v);
                }
            }
        }
        keep_falco_facts(&total, &mut report);
        done(report, ledger, total, parsed, warnings)
    }

    /// Streams one instance's log into the decoder until it ends, the deadline passes, or the
    /// run's stop (after which a followed stream is drained briefly).
    async fn stream(
        &self,
        pod: &str,
        request: &LogRequest,
        decoder: &mut Decoder<Tally>,
    ) -> (u64, Result<End, ClusterError>) {
        let mut stop = self.stop.clone();
        if let Some(s) = stop.now() {
            return (0, Ok(End::NotOpened(s)));
        }
        let opening = self
            .cluster
            .open_log(&self.falco_namespace, pod, request, self.deadline);
        let mut stream = tokio::select! {
            r = opening => match r {
                Ok(s) => s,
                Err(e) => return (0, Err(e)),
            },
            s = stop.wait() => {
                // Asked, but no answer came before the window ended: the kubelet is the suspect.
                if request.follow && s == Stop::WindowEnd {
                    return (0, Err(ClusterError::NoAnswer { pod: pod.to_string() }));
                }
                return (0, Ok(End::NotOpened(s)));
            }
        };
        let mut draining: Option<Draining> = None;
        loop {
            let read_so_far = stream.bytes();
            // A stream that keeps delivering cannot hold the run past the cap.
            if draining.is_some_and(|d| Instant::now() >= d.cap) {
                return (read_so_far, Ok(End::Behind));
            }
            let next = match &draining {
                Some(d) => stream.next_chunk(d.quiet_until.min(d.cap)).await,
                None => tokio::select! {
                    r = stream.next_chunk(self.deadline) => r,
                    s = stop.wait() => {
                        // Only a window that is over is worth catching up on.
                        if !request.follow || s == Stop::Interrupted {
                            return (read_so_far, Ok(End::Stopped(s)));
                        }
                        draining = Some(Draining::new(s, self.filter.window.end));
                        continue;
                    }
                },
            };
            let chunk = match next {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    let end = draining.map_or(End::Complete, |d| End::Stopped(d.stop));
                    return (read_so_far, Ok(end));
                }
                Err(ClusterError::Deadline { .. }) if draining.is_some() => {
                    let end = match draining {
                        Some(d) if Instant::now() >= d.cap => End::Behind,
                        Some(d) => End::Stopped(d.stop),
                        None => End::Complete,
                    };
                    return (read_so_far, Ok(end));
                }
                Err(e) => return (read_so_far, Err(e)),
            };
            let n = chunk.len();
            decoder.feed(chunk);
            stream.consume(n);
            if let Some(p) = &self.progress {
                p.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            send_live(self.live.as_ref(), decoder.sink_mut()).await;
            if let Some(d) = &mut draining {
                // The kubelet streams in order: a line written well after the end (Falco writes
                // an alert a moment after its event) means everything before it has arrived.
                if decoder.stats().last_line_time.is_some_and(|t| {
                    t >= d.end + chrono::Duration::from_std(END_SLACK).unwrap_or_default()
                }) {
                    return (stream.bytes(), Ok(End::Stopped(d.stop)));
                }
                d.quiet_until = Instant::now() + STOP_DRAIN;
            }
        }
    }

    /// Reads the first line of the current log file. Falco prints its banner as it starts, so a
    /// file that begins well after the container started, and after the window start, lost its
    /// older part to rotation (the API serves only the current file). Also gives the version
    /// the banner names.
    async fn rotated_gap(
        &self,
        pod: &str,
        container: &str,
        running_since: DateTime<Utc>,
    ) -> (Option<Gap>, Option<String>) {
        let start = self.filter.window.start;
        let request = LogRequest {
            follow: false,
            container: container.to_string(),
            previous: false,
            since: None,
            limit_bytes: Some(4096),
        };
        // A followed check has no deadline of its own; the probe is one small request.
        let deadline = self.deadline.min(Instant::now() + Duration::from_secs(30));
        let mut head = Vec::new();
        let probe = async {
            let mut stream = self
                .cluster
                .open_log(&self.falco_namespace, pod, &request, deadline)
                .await?;
            while head.len() < 8192 {
                let Some(chunk) = stream.next_chunk(deadline).await? else {
                    break;
                };
                let n = chunk.len();
                head.extend_from_slice(chunk);
                stream.consume(n);
            }
            Ok::<(), ClusterError>(())
        };
        if let Err(e) = probe.await {
            return (Some(e.gap("could not check for log rotation")), None);
        }
        let since = running_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if head.is_empty() {
            // Falco prints a banner as it starts: an empty file means it was rotated just now.
            return (Some(Gap::new(
                GapKind::Rotated,
                format!("the current log file is empty although the container has run since {since}: the kubelet rotated the window away, alerts in it cannot be read"),
            )), None);
        }
        let Some((first, line)) = falco::time::split_kubelet_prefix(&head) else {
            return (None, None);
        };
        let first_line = line.split(|&b| b == b'\n').next().unwrap_or(line);
        let version = falco::banner_version(first_line);
        let banner_slack = chrono::Duration::seconds(60);
        let gap = (first > start && first > running_since + banner_slack).then(|| {
            Gap::new(
                GapKind::Rotated,
                format!(
                    "the current log file begins at {} but the window starts at {}: the kubelet rotated the older part away, alerts in between cannot be read",
                    first.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            )
        });
        (gap, version)
    }
}

/// The pod's report to fill, and the container to read with its origin for alerts; a gap when
/// no container can be chosen.
pub fn pod_target(
    pod: &FalcoPod,
    wanted: Option<&str>,
) -> (PodReport, Result<(String, LogOrigin), Gap>) {
    let name = pod.name.clone();
    let node = pod.node.clone();
    let mut report = PodReport {
        name: name.clone(),
        node: node.clone(),
        ..PodReport::default()
    };
    match cluster::choose_container(pod, wanted) {
        Ok(container) => {
            report.container = Some(container.clone());
            let origin = LogOrigin {
                pod: Some(name),
                node,
                container: Some(container.clone()),
            };
            (report, Ok((container, origin)))
        }
        Err(why) => (
            report,
            Err(Gap::new(GapKind::NotRunning, format!("pod {name} {why}"))),
        ),
    }
}
