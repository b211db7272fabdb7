//! One check from start to verdict: the options, then sources -> verdict. A one-shot check, a
//! `--for` soak and `--watch` are the same run; they differ only in whether the pods' logs are
//! followed, when the run stops, and whether the pod list is read again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::cluster::{self, Target};
use crate::falco::{self, Priority};
use crate::source::canary::{self, CanaryOptions, Round};
use crate::source::discover::{discover, Discovered, NotFound, Wanted};
use crate::source::pods::PodReader;
use crate::source::{files, gather, judge_unlabelled, LiveSender, Progress, Stop, StopSignal};
use crate::verdict::nodes::{self, FalcoOnNode};
use crate::verdict::{
    self, AlertFilter, AlertList, CheckResult, CoverageMode, Echo, Findings, Gap, GroupBy, Ignores,
    InputKind, LogOrigin, NodeCoverage, Scope, Skip, Tally, Window,
};
use k8s_openapi::api::core::v1::Pod;

/// Where Falco's output is read from.
#[derive(Debug, Clone)]
pub enum Input {
    /// The Falco pods of a cluster.
    Cluster(Box<Target>),
    /// Files of Falco output (`-` is standard input), e.g. saved `kubectl logs --timestamps`.
    Files(Vec<PathBuf>),
}

/// Follow the Falco pods' logs live instead of reading them once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follow {
    /// The window's end (`--for`); `None` for `--watch` until stopped.
    pub until: Option<DateTime<Utc>>,
    /// How often the Falco pod list is read again to pick up new pods.
    pub relist_every: Duration,
}

/// How often `--watch` / `--for` read the pod list again, by default.
pub const RELIST_EVERY: Duration = Duration::from_secs(10);

/// Everything a check needs. [`CheckOptions::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Whose alerts count.
    pub scope: Scope,
    pub window: Window,
    /// Lowest priority that blocks.
    pub threshold: Priority,
    pub falco_namespace: String,
    /// `None`: `app=falco`, falling back to the Helm chart's `app.kubernetes.io/name=falco`.
    pub selector: Option<String>,
    pub container: Option<String>,
    /// Deadline for all cluster work of a one-shot check (and for discovery when following).
    pub timeout: Duration,
    pub fail_closed: bool,
    /// `Some(value)`: AEGIS_SECURITY__FALCO_ENABLED switched the check off.
    pub disabled: Option<String>,
    pub input: Input,
    /// `Some`: follow the logs (`--watch`, `--for`).
    pub follow: Option<Follow>,
    /// Falco pods read at the same time (one-shot).
    pub max_concurrency: usize,
    /// Alerts listed in the result (all are counted).
    pub max_alerts: usize,
    /// Longest log line kept; longer lines are counted and skipped.
    pub max_line: usize,
    /// Only the Falco pods on nodes where the namespace's pods ran (plus k8saudit ones).
    pub nodes_of_namespace: bool,
    /// Map the nodes where the namespace ran and require a Falco pod watching each (default).
    pub node_coverage: bool,
    /// `--canary`: prove it with a canary pod on each of those nodes.
    pub canary: Option<CanaryOptions>,
    /// This run's nonce, in every canary pod's name.
    pub canary_nonce: String,
    /// Reference "now" for `since_minutes`.
    pub now: DateTime<Utc>,
    /// Accepted noise: counted and shown, never blocking.
    pub ignores: Ignores,
    pub group_by: Option<GroupBy>,
    /// Updated while reading, for a progress display.
    pub progress: Option<Arc<Progress>>,
    /// Said once with the result (e.g. connection flags that offline input does not use).
    pub notes: Vec<String>,
}

impl CheckOptions {
    pub fn new(namespace: &str, since: DateTime<Utc>) -> Self {
        CheckOptions {
            scope: Scope::Namespace(namespace.to_string()),
            window: Window {
                start: since,
                end: None,
            },
            threshold: Priority::Warning,
            falco_namespace: "falco".to_string(),
            selector: None,
            container: None,
            timeout: Duration::from_secs(30),
            fail_closed: false,
            disabled: None,
            input: Input::Cluster(Box::new(Target::from_environment())),
            follow: None,
            max_concurrency: 16,
            max_alerts: 1000,
            max_line: falco::DEFAULT_MAX_LINE,
            nodes_of_namespace: false,
            node_coverage: true,
            canary: None,
            canary_nonce: canary::nonce(),
            now: Utc::now(),
            ignores: Ignores::default(),
            group_by: None,
            progress: None,
            notes: Vec::new(),
        }
    }

    /// True when reading files, not a cluster.
    pub fn is_offline(&self) -> bool {
        matches!(self.input, Input::Files(_))
    }

    /// The selector asked for, or the default one.
    pub fn selector_or_default(&self) -> &str {
        self.selector
            .as_deref()
            .unwrap_or(cluster::DEFAULT_SELECTOR)
    }

    /// What discovery needs of these options.
    pub fn wanted(&self) -> Wanted<'_> {
        Wanted {
            falco_namespace: &self.falco_namespace,
            selector: self.selector.as_deref(),
            timeout: self.timeout,
            scope: &self.scope,
            window: self.window,
            now: self.now,
            nodes_of_namespace: self.nodes_of_namespace,
            node_coverage: self.node_coverage,
        }
    }

    /// How node coverage is checked for these options.
    pub fn coverage_mode(&self) -> CoverageMode {
        if self.is_offline() {
            CoverageMode::Offline
        } else if self.node_coverage && self.scope.namespace().is_some() {
            CoverageMode::Nodes
        } else {
            CoverageMode::Off
        }
    }

    /// The alert filter these options describe.
    pub fn filter(&self) -> AlertFilter {
        let mut f = AlertFilter::for_scope(self.scope.clone(), self.window, self.threshold);
        f.ignores = self.ignores.clone();
        f.group_by = self.group_by;
        if let Some(c) = &self.canary {
            f.canary_nonce = Some(self.canary_nonce.clone());
            if !f.canary_rules.contains(&c.rule) {
                f.canary_rules.push(c.rule.clone());
            }
        }
        f
    }

    fn echo(&self, selector_used: String) -> Echo {
        // A followed window without an end ends when it was stopped: now.
        let window_end = self.window.end.unwrap_or(if self.follow.is_some() {
            Utc::now()
        } else {
            self.now
        });
        Echo {
            window_end,
            scope: self.scope.clone(),
            group_by: self.group_by,
            falco_namespace: self.falco_namespace.clone(),
            label_selector: selector_used,
            window: self.window,
            since_minutes: verdict::minutes_since(
                self.window.start,
                self.window.end.unwrap_or(self.now),
            ),
            threshold: self.threshold,
            fail_closed: self.fail_closed,
            input: match self.input {
                Input::Cluster(_) => InputKind::Cluster,
                Input::Files(_) => InputKind::Logs,
            },
        }
    }
}

/// Runs a check to its end. Never fails: every problem ends in the result's verdict and reason.
pub async fn check_falco_alerts(opts: &CheckOptions) -> CheckResult {
    run(opts, watch::channel(false).1, None).await
}

/// Runs a check until its window is read (one-shot), its window ends (`--for`), or
/// `interrupt` turns true (SIGINT / SIGTERM). Alerts and pod news go to `live` as they are found.
pub async fn run(
    opts: &CheckOptions,
    interrupt: watch::Receiver<bool>,
    live: Option<LiveSender>,
) -> CheckResult {
    let filter = Arc::new(opts.filter());
    let alerts = AlertList::new(opts.max_alerts);
    if let Some(value) = &opts.disabled {
        let tally = Tally::with_alerts(filter.clone(), LogOrigin::default(), alerts);
        let why = Skip::Disabled {
            value: value.clone(),
        };
        let findings =
            Findings::skipped(tally, why, vec![], NodeCoverage::new(opts.coverage_mode()));
        return verdict::conclude(opts.echo(opts.selector_or_default().to_string()), findings);
    }
    let (stop_tx, stop) = StopSignal::channel();
    // With `--watch` and no end, stopping is how the window ends; otherwise it cuts it short.
    let open_ended = opts.follow.is_some_and(|f| f.until.is_none());
    let on_interrupt = if open_ended {
        Stop::WindowEnd
    } else {
        Stop::Interrupted
    };
    let ends_at = opts.follow.and_then(|f| f.until).map(instant_of);
    let end_round_interrupt = interrupt.clone();
    let stopper = tokio::spawn(drive_stop(interrupt, stop_tx, on_interrupt, ends_at));
    let (selector, mut findings) = match &opts.input {
        Input::Files(paths) => {
            let f = files::read(paths, &filter, &alerts, opts.max_line, &stop).await;
            (opts.selector_or_default().to_string(), f)
        }
        Input::Cluster(target) => {
            let streams = Streams {
                stop,
                live,
                end_round_interrupt,
            };
            read_cluster(target, &filter, alerts, opts, streams).await
        }
    };
    stopper.abort();
    findings.warnings.extend(opts.notes.iter().cloned());
    verdict::conclude(opts.echo(selector), findings)
}

fn instant_of(t: DateTime<Utc>) -> Instant {
    let left = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + left
}

/// Turns the user's interrupt and the window's end into the run's stop.
async fn drive_stop(
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

/// How a cluster read is stopped and who hears of it.
struct Streams {
    stop: StopSignal,
    live: Option<LiveSender>,
    /// The user's interrupt, for the canary round after a `--for` window has ended.
    end_round_interrupt: watch::Receiver<bool>,
}

async fn read_cluster(
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
    } = match discover(target, &opts.wanted(), discover_deadline).await {
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
    let reader = PodReader {
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
    };
    // Followed logs stay open for the whole window: each needs its own stream.
    let limit = Arc::new(Semaphore::new(if following {
        Semaphore::MAX_PERMITS
    } else {
        opts.max_concurrency.max(1)
    }));
    let mut tasks = Vec::new();
    let mut watchers = Vec::new();
    let mut spawn = |pod: Pod, tasks: &mut Vec<_>| {
        watchers.extend(watcher_of(&pod, opts));
        let (reader, limit) = (reader.clone(), limit.clone());
        let name = cluster::name_of(&pod);
        let task = tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            reader.read(&pod).await
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
                    match cluster.list_pods(&opts.falco_namespace, &selector, deadline).await {
                        Ok(now) if !opts.nodes_of_namespace => {
                            for pod in now {
                                let name = cluster::name_of(&pod);
                                if !tasks.iter().any(|(n, _)| *n == name) {
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
fn watcher_of(pod: &Pod, opts: &CheckOptions) -> Option<FalcoOnNode> {
    let node = cluster::node_of(pod).filter(|_| cluster::watches_its_node(pod))?;
    let container = cluster::choose_container(pod, opts.container.as_deref()).ok()?;
    let cov = cluster::coverage(pod, &container, opts.window.start);
    Some(FalcoOnNode {
        pod: cluster::name_of(pod),
        node,
        watching_since: cov.watching_since,
    })
}
