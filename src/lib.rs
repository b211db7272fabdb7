//! `kubectl falco-verify`: did Falco raise an alert for workloads in a namespace since a time, at
//! or above a priority? The check is [`check_falco_alerts`]; the binary is one client of it.
//!
//! Data flows one way: [`cli`] (flags) -> [`cluster`] (pods, log streams) -> [`falco`] (records)
//! -> [`verdict`] (filter, counts, outcome) -> [`render`] (text, JSON).

pub mod cli;
pub mod cluster;
pub mod completion;
pub mod falco;
pub mod render;
pub mod verdict;
pub mod watch;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use cluster::{Cluster, ClusterError, LogRequest, Target};
use falco::{DecodeStats, Decoder, Priority};
use verdict::{AlertFilter, CheckResult, Echo, Findings, LogOrigin, PodReport, Tally, Window};

/// Counters for a progress display while pods are read.
#[derive(Debug, Default)]
pub struct Progress {
    pub pods_total: std::sync::atomic::AtomicUsize,
    pub pods_done: std::sync::atomic::AtomicUsize,
    pub bytes: std::sync::atomic::AtomicU64,
}

/// Where Falco's output is read from.
#[derive(Debug, Clone)]
pub enum Input {
    /// The Falco pods of a cluster.
    Cluster(Target),
    /// Files of Falco output (`-` is standard input), e.g. saved `kubectl logs --timestamps`.
    Files(Vec<PathBuf>),
}

/// Everything a check needs. [`CheckOptions::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The namespace whose workloads' alerts count (exact match).
    pub namespace: String,
    pub window: Window,
    /// Lowest priority that blocks.
    pub threshold: Priority,
    pub falco_namespace: String,
    /// `None`: `app=falco`, falling back to the Helm chart's `app.kubernetes.io/name=falco`.
    pub selector: Option<String>,
    pub container: Option<String>,
    /// Deadline for all cluster work.
    pub timeout: Duration,
    pub fail_closed: bool,
    /// `false` (AEGIS_SECURITY__FALCO_ENABLED=false): skip without touching the cluster.
    pub enabled: bool,
    pub input: Input,
    /// Falco pods read at the same time.
    pub max_concurrency: usize,
    /// Alerts listed in the result (all are counted).
    pub max_alerts: usize,
    /// Longest log line kept; longer lines are counted and skipped.
    pub max_line: usize,
    /// Only the Falco pods on nodes where the namespace's pods run (plus k8saudit ones).
    pub nodes_of_namespace: bool,
    /// Reference "now" for `since_minutes`.
    pub now: DateTime<Utc>,
    /// Every namespace instead of `namespace` (`-A`): per-namespace counts.
    pub all_namespaces: bool,
    /// Accepted noise: counted and shown, never blocking.
    pub ignores: verdict::Ignores,
    pub group_by: Option<verdict::GroupBy>,
    /// Updated while reading, for a progress display.
    pub progress: Option<Arc<Progress>>,
}

impl CheckOptions {
    pub fn new(namespace: &str, since: DateTime<Utc>) -> Self {
        CheckOptions {
            namespace: namespace.to_string(),
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
            enabled: true,
            input: Input::Cluster(Target::default()),
            max_concurrency: 16,
            max_alerts: 1000,
            max_line: falco::DEFAULT_MAX_LINE,
            nodes_of_namespace: false,
            now: Utc::now(),
            all_namespaces: false,
            ignores: verdict::Ignores::default(),
            group_by: None,
            progress: None,
        }
    }

    /// True when reading files, not a cluster.
    pub fn is_offline(&self) -> bool {
        matches!(self.input, Input::Files(_))
    }

    /// The alert filter these options describe.
    pub fn filter(&self) -> AlertFilter {
        let ns = (!self.all_namespaces).then_some(self.namespace.as_str());
        let mut f = AlertFilter::for_namespace(ns, self.window, self.threshold);
        f.ignores = self.ignores.clone();
        f.group_by = self.group_by;
        f
    }

    pub(crate) fn echo(&self, selector_used: String) -> Echo {
        Echo {
            namespace: if self.all_namespaces {
                verdict::ALL_NAMESPACES.to_string()
            } else {
                self.namespace.clone()
            },
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
                Input::Cluster(_) => verdict::InputKind::Cluster,
                Input::Files(_) => verdict::InputKind::Logs,
            },
        }
    }
}

/// Runs the check. Never fails: every problem ends in the result's verdict and reason.
pub async fn check_falco_alerts(opts: &CheckOptions) -> CheckResult {
    let filter = Arc::new(opts.filter());
    let empty = || Tally::new(filter.clone(), LogOrigin::default(), opts.max_alerts);
    let default_selector = opts
        .selector
        .clone()
        .unwrap_or_else(|| cluster::DEFAULT_SELECTOR.to_string());
    if !opts.enabled {
        let why = "disabled: AEGIS_SECURITY__FALCO_ENABLED=false; unset it to run the Falco check";
        let findings = Findings {
            disabled: true,
            ..Findings::skipped(empty(), why.to_string(), vec![])
        };
        return verdict::conclude(opts.echo(default_selector), findings);
    }
    match &opts.input {
        Input::Files(paths) => {
            let findings = read_files(paths, &filter, opts).await;
            verdict::conclude(opts.echo(default_selector), findings)
        }
        Input::Cluster(target) => {
            let (selector, findings) = read_cluster(target, &filter, opts).await;
            verdict::conclude(opts.echo(selector), findings)
        }
    }
}

/// Decodes a byte source fully; used for files and stdin.
fn decode_reader(
    mut reader: impl Read,
    tally: Tally,
    max_line: usize,
    reference: DateTime<Utc>,
) -> std::io::Result<(Tally, DecodeStats, u64)> {
    let mut decoder = Decoder::with_max_line(tally, max_line);
    decoder.set_reference(reference);
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes += n as u64;
        decoder.feed(&buf[..n]);
    }
    let (tally, stats) = decoder.finish();
    Ok((tally, stats, bytes))
}

async fn read_files(paths: &[PathBuf], filter: &Arc<AlertFilter>, opts: &CheckOptions) -> Findings {
    let alerts = verdict::AlertList::new(opts.max_alerts);
    let mut total = Tally::with_alerts(filter.clone(), LogOrigin::default(), alerts.clone());
    let mut findings_pods = Vec::new();
    let mut warnings = Vec::new();
    let (mut raw, mut parsed) = (0, 0);
    let mut handles = Vec::new();
    for path in paths {
        let origin = LogOrigin {
            pod: Some(path.display().to_string()),
            node: None,
            container: None,
        };
        let tally = Tally::with_alerts(filter.clone(), origin, alerts.clone());
        let path = path.clone();
        let (max_line, reference) = (opts.max_line, opts.window.start);
        // Files are read on blocking threads, side by side.
        handles.push((
            path.clone(),
            tokio::task::spawn_blocking(move || {
                if path.as_os_str() == "-" {
                    decode_reader(std::io::stdin().lock(), tally, max_line, reference)
                } else {
                    std::fs::File::open(&path)
                        .and_then(|f| decode_reader(f, tally, max_line, reference))
                }
            }),
        ));
    }
    for (path, handle) in handles {
        let name = if path.as_os_str() == "-" {
            "(stdin)".to_string()
        } else {
            path.display().to_string()
        };
        let mut report = PodReport {
            name: name.clone(),
            ..PodReport::default()
        };
        match handle.await {
            Ok(Ok((tally, stats, bytes))) => {
                report.lines_read = stats.lines;
                report.bytes_read = bytes;
                raw += stats.lines;
                parsed += stats.parsed;
                note_stats(&name, &stats, &mut report, &mut warnings);
                total.merge(tally);
            }
            Ok(Err(e)) => report.error = Some(format!("cannot read {name}: {e}")),
            Err(e) => report.error = Some(format!("reading {name} failed: {e}")),
        }
        findings_pods.push(report);
    }
    Findings {
        scope: None,
        tally: total,
        pods: findings_pods,
        raw_lines: raw,
        parsed_records: parsed,
        skipped: None,
        disabled: false,
        warnings,
    }
}

/// Turns decoder statistics into warnings, and into a coverage error when a skipped line may
/// have been an alert for the namespace.
fn note_stats(name: &str, stats: &DecodeStats, report: &mut PodReport, warnings: &mut Vec<String>) {
    if stats.oversized > 0 {
        warnings.push(format!(
            "{name}: {} line(s) longer than the line limit were skipped (raise --max-line-bytes)",
            stats.oversized
        ));
    }
    if stats.oversized_wanted > 0 && report.error.is_none() {
        report.error = Some(format!(
            "{} over-long line(s) or alert(s) spread over too many lines mention the namespace and could not be parsed (raise --max-line-bytes)",
            stats.oversized_wanted
        ));
    }
    if stats.loosely_dated > 0 {
        warnings.push(format!(
            "{name}: {} text alert(s) had no kubelet time stamp: their date comes from nearby lines and their clock is taken as UTC (save logs with `kubectl logs --timestamps`)",
            stats.loosely_dated
        ));
    }
    if stats.malformed > 0 {
        warnings.push(format!(
            "{name}: {} JSON line(s) that could hold an alert for the namespace are malformed or truncated and were ignored (an alert cut short cannot be counted; check the log around them)",
            stats.malformed
        ));
    }
}

/// What one Falco pod's reading produced.
struct PodRead {
    tally: Tally,
    report: PodReport,
    parsed: u64,
    warnings: Vec<String>,
}

/// The Falco pods to read, found by [`discover`].
pub(crate) struct Discovered {
    cluster: Cluster,
    selector: String,
    pods: Vec<k8s_openapi::api::core::v1::Pod>,
    scope: String,
    warnings: Vec<String>,
}

/// Why there are no Falco pods to read.
pub(crate) struct NotFound {
    /// The selector tried last.
    pub(crate) selector: String,
    /// What went wrong and what to do.
    pub(crate) why: String,
    pub(crate) warnings: Vec<String>,
}

/// Connects and finds the Falco pods (selector fallback, `--nodes-of-namespace` scope).
pub(crate) async fn discover(
    target: &Target,
    opts: &CheckOptions,
    deadline: Instant,
) -> Result<Discovered, NotFound> {
    let first_selector = opts
        .selector
        .clone()
        .unwrap_or_else(|| cluster::DEFAULT_SELECTOR.to_string());
    let connect_timeout = opts.timeout.min(Duration::from_secs(10));
    let cluster =
        match tokio::time::timeout_at(deadline, Cluster::connect(target, connect_timeout)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(NotFound {
                    selector: first_selector,
                    why: e.to_string(),
                    warnings: vec![],
                })
            }
            Err(_) => {
                let doing =
                    "loading the kubeconfig and running its credential plugin, if any".to_string();
                return Err(NotFound {
                    selector: first_selector,
                    why: ClusterError::Deadline { doing }.to_string(),
                    warnings: vec![],
                });
            }
        };
    let mut warnings = Vec::new();
    let ns = &opts.falco_namespace;
    let mut selector = first_selector;
    let mut pods = match cluster.list_pods(ns, &selector, deadline).await {
        Ok(p) => p,
        Err(e) => {
            return Err(NotFound {
                selector,
                why: e.to_string(),
                warnings,
            })
        }
    };
    if pods.is_empty() && opts.selector.is_none() {
        match cluster
            .list_pods(ns, cluster::CHART_SELECTOR, deadline)
            .await
        {
            Ok(p) if !p.is_empty() => {
                warnings.push(format!(
                    "no pods match {} in namespace {ns}; using the Helm chart's label {} ({} pods)",
                    cluster::DEFAULT_SELECTOR,
                    cluster::CHART_SELECTOR,
                    p.len()
                ));
                selector = cluster::CHART_SELECTOR.to_string();
                pods = p;
            }
            Ok(_) => {}
            Err(e) => {
                return Err(NotFound {
                    selector,
                    why: e.to_string(),
                    warnings,
                })
            }
        }
    }
    if pods.is_empty() {
        let tried = if opts.selector.is_none() {
            format!(
                "{} or {}",
                cluster::DEFAULT_SELECTOR,
                cluster::CHART_SELECTOR
            )
        } else {
            selector.clone()
        };
        let why = format!(
            "no Falco pods: no pod in namespace {ns} matches {tried}. Is Falco installed? Check `kubectl get pods -n {ns} --show-labels`, then pass --falco-namespace / --selector"
        );
        return Err(NotFound {
            selector,
            why,
            warnings,
        });
    }
    pods.sort_by_key(cluster::name_of);
    let mut scope = format!("all {} Falco pod(s)", pods.len());
    if opts.nodes_of_namespace {
        let workloads = match cluster.list_pods(&opts.namespace, "", deadline).await {
            Ok(p) => p,
            Err(e) => {
                return Err(NotFound {
                    selector,
                    why: format!("--nodes-of-namespace: {e}"),
                    warnings,
                })
            }
        };
        let nodes: std::collections::BTreeSet<String> =
            workloads.iter().filter_map(cluster::node_of).collect();
        let total = pods.len();
        let (kept, left): (Vec<_>, Vec<_>) = pods.into_iter().partition(|p| {
            !cluster::is_daemonset_pod(p) || cluster::node_of(p).is_some_and(|n| nodes.contains(&n))
        });
        pods = kept;
        scope = format!(
            "--nodes-of-namespace: {} of {total} Falco pod(s), on the {} node(s) where pods of {} run now ({}) plus Falco pods not run by a DaemonSet (k8saudit); {} skipped",
            pods.len(),
            nodes.len(),
            opts.namespace,
            nodes.iter().cloned().collect::<Vec<_>>().join(", "),
            left.len()
        );
        warnings.push(format!(
            "{scope}. Alerts from pods of {} that ran on other nodes earlier in the window are not seen",
            opts.namespace
        ));
        if pods.is_empty() {
            let why = format!("--nodes-of-namespace: no Falco pod runs on a node of namespace {} (it has {} pod(s))", opts.namespace, workloads.len());
            return Err(NotFound {
                selector,
                why,
                warnings,
            });
        }
    }

    Ok(Discovered {
        cluster,
        selector,
        pods,
        scope,
        warnings,
    })
}

async fn read_cluster(
    target: &Target,
    filter: &Arc<AlertFilter>,
    opts: &CheckOptions,
) -> (String, Findings) {
    let deadline = Instant::now() + opts.timeout;
    let empty = || Tally::new(filter.clone(), LogOrigin::default(), opts.max_alerts);
    let skipped = |selector: String, why: String, warnings: Vec<String>| {
        (selector, Findings::skipped(empty(), why, warnings))
    };
    let Discovered {
        cluster,
        selector,
        pods,
        scope,
        mut warnings,
    } = match discover(target, opts, deadline).await {
        Ok(d) => d,
        Err(NotFound {
            selector,
            why,
            warnings,
        }) => return skipped(selector, why, warnings),
    };
    let ns = &opts.falco_namespace;
    if let Some(p) = &opts.progress {
        p.pods_total
            .store(pods.len(), std::sync::atomic::Ordering::Relaxed);
    }

    let alerts = verdict::AlertList::new(opts.max_alerts);
    let reader = PodReader {
        cluster,
        namespace: ns.clone(),
        container: opts.container.clone(),
        filter: filter.clone(),
        start: opts.window.start,
        alerts: alerts.clone(),
        max_line: opts.max_line,
        deadline,
        progress: opts.progress.clone(),
    };
    let limit = Arc::new(Semaphore::new(opts.max_concurrency.max(1)));
    let mut tasks = Vec::new();
    for pod in pods {
        let reader = reader.clone();
        let limit = limit.clone();
        let name = cluster::name_of(&pod);
        let task = tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            reader.read(&pod).await
        });
        tasks.push((name, task));
    }
    let mut total = Tally::with_alerts(filter.clone(), LogOrigin::default(), alerts);
    let mut reports = Vec::new();
    let (mut raw, mut parsed) = (0, 0);
    for (name, t) in tasks {
        match t.await {
            Ok(r) => {
                raw += r.report.lines_read;
                parsed += r.parsed;
                total.merge(r.tally);
                warnings.extend(r.warnings);
                reports.push(r.report);
            }
            // A reader that failed is a pod not read, never a pod that passed.
            Err(e) => reports.push(PodReport {
                name,
                error: Some(format!("reading failed: {e}")),
                ..PodReport::default()
            }),
        }
    }
    (
        selector,
        Findings {
            scope: Some(scope),
            tally: total,
            pods: reports,
            raw_lines: raw,
            parsed_records: parsed,
            skipped: None,
            disabled: false,
            warnings,
        },
    )
}

/// The pod's report to fill, and the container to read with its origin for alerts; `None` (and
/// the report's error says why) when no container can be chosen.
pub(crate) fn pod_target(
    pod: &k8s_openapi::api::core::v1::Pod,
    wanted: Option<&str>,
) -> (PodReport, Option<(String, LogOrigin)>) {
    let name = cluster::name_of(pod);
    let node = cluster::node_of(pod);
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
            (report, Some((container, origin)))
        }
        Err(why) => {
            report.error = Some(format!("pod {name} {why}"));
            (report, None)
        }
    }
}

/// What every Falco pod's reader shares.
#[derive(Clone)]
struct PodReader {
    cluster: Cluster,
    namespace: String,
    /// `--container`, if given.
    container: Option<String>,
    filter: Arc<AlertFilter>,
    start: DateTime<Utc>,
    /// One bounded list of alerts for all pods.
    alerts: verdict::AlertList,
    max_line: usize,
    deadline: Instant,
    progress: Option<Arc<Progress>>,
}

impl PodReader {
    async fn read(&self, pod: &k8s_openapi::api::core::v1::Pod) -> PodRead {
        let read = self.read_pod(pod).await;
        if let Some(p) = &self.progress {
            p.pods_done
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        read
    }

    /// Reads the window from the pod's Falco container (and its previous instance when it
    /// restarted inside the window), and says what part could not be covered.
    async fn read_pod(&self, pod: &k8s_openapi::api::core::v1::Pod) -> PodRead {
        let PodReader {
            cluster,
            namespace: ns,
            filter,
            start,
            max_line,
            deadline,
            ..
        } = self;
        let (start, max_line, deadline) = (*start, *max_line, *deadline);
        let progress = self.progress.as_deref();
        let container = self.container.as_deref();
        let mut warnings = Vec::new();
        let (mut report, target) = pod_target(pod, container);
        let name = report.name.clone();
        let (container, origin) = match target {
            Some(t) => t,
            None => {
                let tally =
                    Tally::with_alerts(filter.clone(), LogOrigin::default(), self.alerts.clone());
                return PodRead {
                    tally,
                    report,
                    parsed: 0,
                    warnings,
                };
            }
        };
        let cov = cluster::coverage(pod, &container, start);
        let mut errors: Vec<String> = cov.gap.iter().cloned().collect();
        let mut total = Tally::with_alerts(filter.clone(), origin.clone(), self.alerts.clone());
        let mut parsed = 0;
        let mut instances = vec![false];
        if cov.read_previous {
            instances.insert(0, true);
            report.previous_read = true;
        }
        for previous in instances {
            let request = LogRequest {
                follow: false,
                container: container.clone(),
                previous,
                since: Some(start),
                limit_bytes: None,
            };
            let mut decoder = Decoder::with_max_line(
                Tally::with_alerts(filter.clone(), origin.clone(), self.alerts.clone()),
                max_line,
            );
            let (bytes, outcome) = cluster
                .stream_log(ns, &name, &request, deadline, &mut |chunk| {
                    if let Some(p) = progress {
                        p.bytes
                            .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    decoder.feed(chunk)
                })
                .await;
            let (tally, stats) = decoder.finish();
            report.bytes_read += bytes;
            report.lines_read += stats.lines;
            parsed += stats.parsed;
            note_stats(&name, &stats, &mut report, &mut warnings);
            total.merge(tally);
            let which = if previous { "previous instance" } else { "log" };
            if let Err(e) = outcome {
                errors.push(format!("{which}: {e}"));
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
                if let Some(gap) = self.rotated_gap(&name, &container, since).await {
                    errors.push(gap);
                }
            }
        }
        if let Some(e) = report.error.take() {
            errors.push(e);
        }
        if !errors.is_empty() {
            report.error = Some(errors.join("; "));
        }
        PodRead {
            tally: total,
            report,
            parsed,
            warnings,
        }
    }
}

impl PodReader {
    /// Reads the first line of the current log file. Falco prints its banner as it starts, so a
    /// file that begins well after the container started, and after the window start, lost its
    /// older part to rotation (the API serves only the current file).
    async fn rotated_gap(
        &self,
        pod: &str,
        container: &str,
        running_since: DateTime<Utc>,
    ) -> Option<String> {
        let PodReader {
            cluster,
            namespace: ns,
            start,
            deadline,
            ..
        } = self;
        let (start, deadline) = (*start, *deadline);
        let request = LogRequest {
            follow: false,
            container: container.to_string(),
            previous: false,
            since: None,
            limit_bytes: Some(4096),
        };
        let mut head = Vec::new();
        let (_, outcome) = cluster
            .stream_log(ns, pod, &request, deadline, &mut |chunk| {
                if head.len() < 8192 {
                    head.extend_from_slice(chunk);
                }
            })
            .await;
        if let Err(e) = outcome {
            return Some(format!("could not check for log rotation: {e}"));
        }
        if head.is_empty() {
            // Falco prints a banner as it starts: an empty file means it was rotated just now.
            return Some(format!(
                "the current log file is empty although the container has run since {}: the kubelet rotated the window away, alerts in it cannot be read",
                running_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        let first = falco::time::split_kubelet_prefix(&head).map(|(t, _)| t)?;
        let banner_slack = chrono::Duration::seconds(60);
        (first > start && first > running_since + banner_slack).then(|| {
        format!(
            "the current log file begins at {} but the window starts at {}: the kubelet rotated the older part away, alerts in between cannot be read",
            first.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    })
    }
}
