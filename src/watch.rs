//! Follow mode (`--watch`, `--for`): the Falco pods' logs are followed live; alerts are reported
//! as they arrive, new Falco pods are picked up, ended ones noted, and when the window ends (or
//! the user stops) the usual verdict is worked out over everything seen.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cluster::{self, Cluster, LogRequest, Target};
use crate::falco::Decoder;
use crate::verdict::{self, Alert, CheckResult, Findings, LogOrigin, PodReport, Tally};
use crate::{discover, pod_target, CheckOptions, Discovered, NotFound};

/// What happens while watching, for a live view.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// An alert for the namespace in the window.
    Alert(Box<Alert>),
    /// Now following this Falco pod.
    PodFollowed { pod: String, node: Option<String> },
    /// This Falco pod's log ended (pod deleted, container stopped, stream broke).
    PodEnded { pod: String, error: Option<String> },
}

/// How often the Falco pod list is read again to pick up new pods.
pub const RELIST_EVERY: Duration = Duration::from_secs(10);

/// [`RELIST_EVERY`], or (undocumented, for tests) `FALCO_VERIFY_RELIST_MS` milliseconds.
fn relist_every() -> Duration {
    std::env::var("FALCO_VERIFY_RELIST_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(RELIST_EVERY, Duration::from_millis)
}

struct Follower {
    handle: JoinHandle<(Tally, PodReport, u64)>,
}

/// Follows the Falco pods until `end` (the window end, for `--for`) or until `stop` turns true,
/// sending [`WatchEvent`]s on `events`, then concludes as a normal check does.
pub async fn watch_falco_alerts(
    opts: &CheckOptions,
    end: Option<DateTime<Utc>>,
    mut stop: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<WatchEvent>,
) -> CheckResult {
    let mut opts = opts.clone();
    opts.window.end = end;
    let filter = Arc::new(opts.filter());
    let target = match &opts.input {
        crate::Input::Cluster(t) => t.clone(),
        crate::Input::Files(_) => Target::default(),
    };
    let discover_deadline = Instant::now() + opts.timeout;
    let Discovered {
        cluster,
        selector,
        pods,
        scope,
        mut warnings,
    } = match discover(&target, &opts, discover_deadline).await {
        Ok(d) => d,
        Err(NotFound {
            selector,
            why,
            warnings,
        }) => {
            let tally = Tally::new(filter.clone(), LogOrigin::default(), opts.max_alerts);
            let findings = Findings::skipped(tally, why, warnings);
            return verdict::conclude(opts.echo(selector), findings);
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alert_tx, mut alert_rx) = mpsc::unbounded_channel::<Alert>();
    let mut followers: BTreeMap<String, Follower> = BTreeMap::new();
    let alerts = verdict::AlertList::new(opts.max_alerts);
    let spawn = |pod: &Pod, followers: &mut BTreeMap<String, Follower>| {
        let name = cluster::name_of(pod);
        let _ = events.send(WatchEvent::PodFollowed {
            pod: name.clone(),
            node: cluster::node_of(pod),
        });
        let follower = Follow {
            cluster: cluster.clone(),
            opts: opts.clone(),
            filter: filter.clone(),
            stop: stop_rx.clone(),
            alert_tx: alert_tx.clone(),
            events: events.clone(),
            alerts: alerts.clone(),
        };
        let handle = tokio::spawn(follower.follow(pod.clone()));
        followers.insert(name, Follower { handle });
    };
    for pod in &pods {
        spawn(pod, &mut followers);
    }
    let ends_at = end.map(|e| {
        let left = (e - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Instant::now() + left
    });
    let every = relist_every();
    let mut relist = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        let window_over = async {
            match ends_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = window_over => break,
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
            Some(alert) = alert_rx.recv() => {
                let _ = events.send(WatchEvent::Alert(Box::new(alert)));
            }
            _ = relist.tick() => {
                // A slow API server must not hold up the window end or Ctrl-C for long.
                let deadline = Instant::now() + opts.timeout.min(Duration::from_secs(5));
                match cluster.list_pods(&opts.falco_namespace, &selector, deadline).await {
                    Ok(now) => {
                        for pod in &now {
                            if !followers.contains_key(&cluster::name_of(pod)) && !opts.nodes_of_namespace {
                                spawn(pod, &mut followers);
                            }
                        }
                    }
                    Err(e) => warnings.push(format!("re-listing Falco pods failed: {e}")),
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    drop(alert_tx);
    let mut total = Tally::with_alerts(filter.clone(), LogOrigin::default(), alerts);
    let mut reports = Vec::new();
    let (mut raw, mut parsed) = (0, 0);
    // One grace period for all followers, not 5 s each in turn.
    let grace = Instant::now() + Duration::from_secs(5);
    for (name, f) in followers {
        match tokio::time::timeout_at(grace, f.handle).await {
            Ok(Ok((tally, report, parsed_here))) => {
                raw += report.lines_read;
                parsed += parsed_here;
                total.merge(tally);
                reports.push(report);
            }
            Ok(Err(e)) => reports.push(PodReport {
                name,
                error: Some(format!("follower failed: {e}")),
                ..PodReport::default()
            }),
            Err(_) => reports.push(PodReport {
                name,
                error: Some("did not stop within 5s".to_string()),
                ..PodReport::default()
            }),
        }
    }
    let findings = Findings {
        tally: total,
        pods: reports,
        raw_lines: raw,
        parsed_records: parsed,
        skipped: None,
        disabled: false,
        scope: Some(format!("{scope}, followed live")),
        warnings,
    };
    verdict::conclude(opts.echo(selector), findings)
}

/// What a pod's follower needs.
struct Follow {
    cluster: Cluster,
    opts: CheckOptions,
    filter: Arc<verdict::AlertFilter>,
    stop: watch::Receiver<bool>,
    alert_tx: mpsc::UnboundedSender<Alert>,
    events: mpsc::UnboundedSender<WatchEvent>,
    /// One bounded list of alerts for all pods.
    alerts: verdict::AlertList,
}

impl Follow {
    /// Follows one Falco pod from the window start until stopped.
    async fn follow(self, pod: Pod) -> (Tally, PodReport, u64) {
        let Follow {
            cluster,
            opts,
            filter,
            stop,
            alert_tx,
            events,
            alerts: alerts_list,
        } = self;
        let alerts = alert_tx;
        let (mut report, target) = pod_target(&pod, opts.container.as_deref());
        let name = report.name.clone();
        let Some((container, origin)) = target else {
            let _ = events.send(WatchEvent::PodEnded {
                pod: name,
                error: report.error.clone(),
            });
            return (
                Tally::with_alerts(filter, LogOrigin::default(), alerts_list.clone()),
                report,
                0,
            );
        };
        // What the pod's status says about the window, as in a one-shot check: a restart inside
        // it means the previous instance holds its first part; a waiting or late container, a gap.
        let cov = cluster::coverage(&pod, &container, opts.window.start);
        let mut gaps: Vec<String> = cov.gap.iter().cloned().collect();
        let mut total = Tally::with_alerts(filter.clone(), origin.clone(), alerts_list.clone());
        let mut parsed = 0;
        if cov.read_previous {
            report.previous_read = true;
            let mut previous =
                Tally::with_alerts(filter.clone(), origin.clone(), alerts_list.clone());
            previous.observe(alerts.clone());
            let mut decoder = Decoder::with_max_line(previous, opts.max_line);
            let request = LogRequest {
                previous: true,
                container: container.clone(),
                since: Some(opts.window.start),
                ..LogRequest::default()
            };
            let deadline = Instant::now() + opts.timeout;
            let (bytes, outcome) = cluster
                .stream_log(
                    &opts.falco_namespace,
                    &name,
                    &request,
                    deadline,
                    &mut |chunk| decoder.feed(chunk),
                )
                .await;
            let (tally, stats) = decoder.finish();
            report.bytes_read += bytes;
            report.lines_read += stats.lines;
            parsed += stats.parsed;
            total.merge(tally);
            if let Err(e) = outcome {
                gaps.push(format!("previous instance: {e}"));
            }
        }
        let mut tally = Tally::with_alerts(filter, origin, alerts_list);
        tally.observe(alerts);
        let mut decoder = Decoder::with_max_line(tally, opts.max_line);
        let request = LogRequest {
            follow: true,
            container,
            since: Some(opts.window.start),
            ..LogRequest::default()
        };
        // Following has no deadline of its own: the window end or the user stops it.
        let far = Instant::now() + Duration::from_secs(60 * 60 * 24 * 365);
        let (bytes, outcome) = cluster
            .stream_log_until(
                &opts.falco_namespace,
                &name,
                &request,
                far,
                Some(stop.clone()),
                &mut |chunk| decoder.feed(chunk),
            )
            .await;
        let (tally, stats) = decoder.finish();
        total.merge(tally);
        report.bytes_read += bytes;
        report.lines_read += stats.lines;
        parsed += stats.parsed;
        let stopped = *stop.borrow();
        let ended = match outcome {
            Err(e) => Some(e.to_string()),
            Ok(()) if !stopped => Some(
                "the log stream ended before the window did (pod deleted or container stopped)"
                    .to_string(),
            ),
            Ok(()) => None,
        };
        gaps.extend(ended.clone());
        report.error = (!gaps.is_empty()).then(|| gaps.join("; "));
        // Stopping (window over, Ctrl-C) is not the pod's log ending.
        if let Some(error) = ended {
            let _ = events.send(WatchEvent::PodEnded {
                pod: name,
                error: Some(error),
            });
        }
        (total, report, parsed)
    }
}
