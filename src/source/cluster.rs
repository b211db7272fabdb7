//! The Falco pods of a cluster as a source: discover them (and where the namespace ran), run
//! the canary rounds, read every pod's log for the window (following it when asked, picking up
//! new pods), and judge node coverage once everything is read.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use super::canary::Round;
use super::discover::{discover, Discovered, NotFound, Wanted};
use super::pods::PodReader;
use super::{drive_stop, gather, judge_unlabelled, LiveSender, Stop, StopSignal};
use crate::cluster::{self, FalcoPod, Target};
use crate::options::CheckOptions;
use crate::verdict::nodes::{self, FalcoOnNode};
use crate::verdict::{
    self, AlertFilter, AlertList, CoverageMode, Findings, Gap, LogOrigin, NodeCoverage, Tally,
};

/// How a cluster read is stopped and who hears of it.
pub struct Streams {
    pub stop: StopSignal,
    pub live: Option<LiveSender>,
    /// The user's interrupt, for the canary round after a `--for` window has ended.
    pub end_round_interrupt: watch::Receiver<bool>,
}

/// Reads the cluster's Falco pods for the window; the selector used, and what was found.
pub async fn read(
    target: &Target,
    filter: &Arc<AlertFilter>,
    alerts: AlertList,
    opts: &CheckOptions,
    streams: Streams,
) -> (String, Findings) {
    let Streams {
        mut stop,
        live,
        end_round_interrupt,
    } = streams;
    let discover_deadline = Instant::now() + opts.timeout;
    let Discovered {
        cluster,
        selector,
        pods,
        scope,
        mut warnings,
        placement,
    } = match discover(target, &wanted(opts), discover_deadline).await {
        Ok(d) => d,
        Err(NotFound {
            selector,
            why,
            warnings,
            connection,
        }) => {
            let tally = Tally::with_alerts(filter.clone(), LogOrigin::default(), alerts);
            let coverage = NodeCoverage::new(opts.coverage_mode());
            let mut f = Findings::skipped(tally, why, warnings, coverage);
            f.connection = connection;
            return (selector, f);
        }
    };
    if let Some(p) = &opts.progress {
        p.pods_total
            .store(pods.len(), std::sync::atomic::Ordering::Relaxed);
    }
    let following = opts.follow.is_some();
    let placement = match placement {
        Some(Ok(p)) => {
            warnings.extend(p.notes.iter().cloned());
            Ok(Some(p))
        }
        Some(Err(e)) => Err(e),
        None => Ok(None),
    };
    let mut canary_report: Option<verdict::canary::CanaryReport> = None;
    let canary_nodes: Vec<Option<String>> = match &placement {
        Ok(Some(p)) if p.nodes.is_empty() => vec![None],
        Ok(Some(p)) => p.nodes.keys().cloned().map(Some).collect(),
        _ => Vec::new(),
    };
    let round = |name: &'static str, first_index: usize| {
        opts.canary
            .as_ref()
            .zip(opts.scope.namespace())
            .map(|(c, ns)| Round {
                cluster: &cluster,
                namespace: ns,
                falco_namespace: &opts.falco_namespace,
                falco_pods: &pods,
                container: opts.container.as_deref(),
                nonce: &opts.canary_nonce,
                options: c,
                name,
                first_index,
            })
    };
    if let Some(r) = round("start", 0) {
        if canary_nodes.is_empty() {
            warnings.push(
                "--canary: no map of the namespace's nodes, so no canary was run".to_string(),
            );
        } else {
            canary_report = Some(r.run(&canary_nodes, &stop, &mut warnings).await);
        }
    }
    // Following has no deadline of its own: the window end or the user stops it.
    let far = Instant::now() + Duration::from_secs(60 * 60 * 24 * 365);
    let reader = Arc::new(PodReader {
        cluster: cluster.clone(),
        falco_namespace: opts.falco_namespace.clone(),
        container: opts.container.clone(),
        filter: filter.clone(),
        alerts: alerts.clone(),
        max_line: opts.max_line,
        deadline: if following { far } else { discover_deadline },
        follow: following,
        stop: stop.clone(),
        live: live.clone(),
        progress: opts.progress.clone(),
    });
    // Followed logs stay open for the whole window: each needs its own stream.
    let limit = Arc::new(Semaphore::new(if following {
        Semaphore::MAX_PERMITS
    } else {
        opts.max_concurrency.max(1)
    }));
    let mut tasks = Vec::new();
    let mut watchers = Vec::new();
    let mut spawn = |pod: FalcoPod, tasks: &mut Vec<_>| {
        watchers.extend(watcher_of(&pod, opts));
        let (reader, limit) = (reader.clone(), limit.clone());
        let name = pod.name.clone();
        // The read's state is boxed when it starts: thousands of tasks waiting for a permit
        // would otherwise each hold a whole read's state (measured: ~46 KiB a Falco pod).
        let task = tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            Box::pin(reader.read(&pod)).await
        });
        tasks.push((name, task));
    };
    for pod in pods.iter().cloned() {
        spawn(pod, &mut tasks);
    }
    if let Some(follow) = opts.follow {
        let every = follow.relist_every;
        let mut relist = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = stop.wait() => break,
                _ = relist.tick() => {
                    // A slow API server must not hold up the window end or Ctrl-C for long.
                    let deadline = Instant::now() + opts.timeout.min(Duration::from_secs(5));
                    match cluster.list_falco_pods(&opts.falco_namespace, &selector, deadline).await {
                        Ok(now) if !opts.nodes_of_namespace => {
                            for pod in now {
                                if !tasks.iter().any(|(n, _)| *n == pod.name) {
                                    spawn(pod, &mut tasks);
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => warnings.push(format!("re-listing Falco pods failed: {e}")),
                    }
                }
            }
        }
    }
    // Pods of the namespace scheduled while following are on the map only if it is made again.
    let mut placement = placement;
    if let (true, Ok(Some(p)), Some(ns)) = (following, &mut placement, opts.scope.namespace()) {
        let deadline = Instant::now() + opts.timeout.min(Duration::from_secs(10));
        match crate::source::placement::map(&cluster, ns, opts.window, Utc::now(), deadline).await {
            Ok(later) => p.merge(later),
            Err(e) => warnings.push(format!(
                "the map of nodes where {ns} ran could not be made again at the end ({e}): pods scheduled while following are not on it"
            )),
        }
    }
    let canary_nodes: Vec<Option<String>> = match &placement {
        Ok(Some(p)) if p.nodes.is_empty() => vec![None],
        Ok(Some(p)) => p.nodes.keys().cloned().map(Some).collect(),
        _ => Vec::new(),
    };
    // A soak proves Falco still watched at its end: a second round once the window is over.
    let soak_ended =
        opts.follow.is_some_and(|f| f.until.is_some()) && stop.now() == Some(Stop::WindowEnd);
    if let (true, Some(r), Some(start)) = (
        soak_ended,
        round("end", canary_nodes.len()),
        canary_report.as_mut(),
    ) {
        let (tx, end_stop) = StopSignal::channel();
        let stopper = tokio::spawn(drive_stop(end_round_interrupt, tx, Stop::Interrupted, None));
        let end = r.run(&canary_nodes, &end_stop, &mut warnings).await;
        stopper.abort();
        start.nodes.extend(end.nodes);
    }
    let tally = Tally::with_alerts(filter.clone(), LogOrigin::default(), alerts);
    let mut findings = Findings::new(tally, NodeCoverage::new(opts.coverage_mode()));
    findings.connection = Some(crate::verdict::Connection {
        context: cluster.context().map(str::to_string),
        server: cluster.server().to_string(),
    });
    findings.scope = Some(if following {
        format!("{scope}, followed live")
    } else {
        scope
    });
    findings.warnings = warnings;
    // Followers drain briefly after the stop; one grace period for all of them.
    let grace = following.then(|| Instant::now() + Duration::from_secs(5));
    gather(&mut findings, tasks, grace).await;
    let namespace_nodes = match &placement {
        Ok(Some(p)) => Some(crate::source::placement::node_names(p)),
        _ => None,
    };
    judge_unlabelled(&mut findings, filter, namespace_nodes.as_ref());
    if let (CoverageMode::Nodes, Some(ns)) = (opts.coverage_mode(), opts.scope.namespace()) {
        findings.node_coverage = match &placement {
            Ok(Some(p)) => {
                let end = opts.window.end.unwrap_or_else(Utc::now);
                let read: Vec<(String, Vec<Gap>)> = findings
                    .pods
                    .iter()
                    .map(|r| (r.name.clone(), r.gaps.clone()))
                    .collect();
                nodes::judge(p, &watchers, &read, opts.window, end, ns)
            }
            Ok(None) => NodeCoverage::new(CoverageMode::Nodes),
            Err(e) => NodeCoverage::unmapped(ns, &e.to_string()),
        };
        if let Some(c) = &canary_report {
            findings.node_coverage.add_canaries(c);
        }
    }
    findings.canary = canary_report;
    (selector, findings)
}

/// The Falco pod as node coverage sees it, when it watches a node.
fn watcher_of(pod: &FalcoPod, opts: &CheckOptions) -> Option<FalcoOnNode> {
    let node = pod.node.clone().filter(|_| pod.watches_its_node())?;
    let container = cluster::choose_container(pod, opts.container.as_deref()).ok()?;
    let cov = cluster::coverage(pod, &container, opts.window.start);
    Some(FalcoOnNode {
        pod: pod.name.clone(),
        node,
        watching_since: cov.watching_since,
    })
}

/// What discovery needs of the options.
fn wanted(opts: &CheckOptions) -> Wanted<'_> {
    Wanted {
        falco_namespace: &opts.falco_namespace,
        selector: opts.selector.as_deref(),
        timeout: opts.timeout,
        scope: &opts.scope,
        window: opts.window,
        now: opts.now,
        nodes_of_namespace: opts.nodes_of_namespace,
        node_coverage: opts.node_coverage,
    }
}
