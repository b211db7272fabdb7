//! The data model of the fake cluster: pods, containers, their logs, and injected faults.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

/// Bearer token the fake API server accepts unless `FakeCluster::token` says otherwise.
pub const DEFAULT_TOKEN: &str = "test-token-s3cr3t";

/// Everything the fake API server serves.
#[derive(Clone, Debug)]
pub struct FakeCluster {
    pub pods: Vec<FakePod>,
    /// Bearer token required on every request (default [`DEFAULT_TOKEN`]).
    pub token: String,
    pub faults: Faults,
    /// Serve the API under this path (e.g. `/k8s/clusters/c-1`, as Rancher does); other paths
    /// answer 404.
    pub path_prefix: Option<String>,
    /// Events (core/v1), listed per namespace.
    pub events: Vec<FakeEvent>,
    /// The Node objects; `None`: one plain node for every node a pod names.
    pub nodes: Option<Vec<FakeNode>>,
    /// How pods created through the API (canaries) are answered, and how Falco reacts.
    pub canary: CanarySim,
}

/// Lines written to a Falco pod's current log while the server runs, by pod name.
pub type Appended =
    std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<(DateTime<Utc>, Vec<u8>)>>>>;

/// Pods created through the API (`POST .../pods`, as `--canary` does) and the Falco that sees
/// them: when a pod whose command makes a symlink to /etc/shadow is created on a node, the
/// Falco pod of that node writes "Create Symlink Over Sensitive Files" to its log `delay` later.
#[derive(Clone, Debug)]
pub struct CanarySim {
    /// Refuse every create with this status and message (403 RBAC or PodSecurity, 422).
    pub refuse: Option<(u16, String)>,
    /// Created pods cannot pull their image (`ErrImagePull`).
    pub image_pull_fails: bool,
    /// Falco on these nodes reports nothing.
    pub blind_nodes: BTreeSet<String>,
    /// Falco on these nodes cannot resolve Kubernetes metadata (`k8s.ns.name: null`).
    pub unresolved_nodes: BTreeSet<String>,
    /// Falco on these nodes writes text, not JSON.
    pub text_nodes: BTreeSet<String>,
    /// From the create to the alert in the log.
    pub delay: std::time::Duration,
    /// Where a pod created without `nodeName` is placed (default: the first Falco pod's node).
    pub schedule_to: Option<String>,
}

impl Default for CanarySim {
    fn default() -> Self {
        CanarySim {
            refuse: None,
            image_pull_fails: false,
            blind_nodes: BTreeSet::new(),
            unresolved_nodes: BTreeSet::new(),
            text_nodes: BTreeSet::new(),
            delay: std::time::Duration::from_millis(300),
            schedule_to: None,
        }
    }
}

/// A core/v1 Event about a pod, as the scheduler records `Scheduled`.
#[derive(Clone, Debug)]
pub struct FakeEvent {
    pub namespace: String,
    pub reason: String,
    pub message: String,
    /// The pod it is about.
    pub pod: String,
    /// `eventTime` (what the scheduler sets through events.k8s.io/v1).
    pub at: DateTime<Utc>,
}

impl FakeEvent {
    /// `Scheduled`: "Successfully assigned NS/POD to NODE".
    pub fn scheduled(namespace: &str, pod: &str, node: &str, at: DateTime<Utc>) -> Self {
        FakeEvent {
            namespace: namespace.to_string(),
            reason: "Scheduled".to_string(),
            message: format!("Successfully assigned {namespace}/{pod} to {node}"),
            pod: pod.to_string(),
            at,
        }
    }
}

/// A Node object: its name, labels and taints `(key, value, effect)`.
#[derive(Clone, Debug, Default)]
pub struct FakeNode {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<(String, String, String)>,
}

impl FakeNode {
    pub fn new(name: impl Into<String>) -> Self {
        FakeNode {
            name: name.into(),
            ..FakeNode::default()
        }
    }

    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn with_taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints
            .push((key.to_string(), value.to_string(), effect.to_string()));
        self
    }
}

impl Default for FakeCluster {
    fn default() -> Self {
        FakeCluster {
            pods: Vec::new(),
            token: DEFAULT_TOKEN.to_string(),
            faults: Faults::default(),
            path_prefix: None,
            events: Vec::new(),
            nodes: None,
            canary: CanarySim::default(),
        }
    }
}

impl FakeCluster {
    /// A cluster with these pods, the default token and no faults.
    pub fn new(pods: Vec<FakePod>) -> Self {
        FakeCluster {
            pods,
            ..FakeCluster::default()
        }
    }

    pub fn with_pod(mut self, pod: FakePod) -> Self {
        self.pods.push(pod);
        self
    }

    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    pub fn with_canary(mut self, sim: CanarySim) -> Self {
        self.canary = sim;
        self
    }

    pub fn with_event(mut self, event: FakeEvent) -> Self {
        self.events.push(event);
        self
    }

    /// Serves exactly these Node objects (a pod's node not among them is a node that is gone).
    pub fn with_nodes(mut self, nodes: Vec<FakeNode>) -> Self {
        self.nodes = Some(nodes);
        self
    }

    /// The Node objects served.
    pub fn node_objects(&self) -> Vec<FakeNode> {
        if let Some(n) = &self.nodes {
            return n.clone();
        }
        let names: BTreeSet<&String> = self.pods.iter().filter_map(|p| p.node.as_ref()).collect();
        names.into_iter().map(FakeNode::new).collect()
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }
}

/// Per-route fault injection. Everything is off by default.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// A pod list request with a `continue` token answers 410 Gone, as an API server does when
    /// the token outlived etcd's compaction window.
    pub continue_expired: bool,
    /// Pod list requests (namespaced and cluster-wide) always answer this Status code.
    pub list_status: Option<u16>,
    /// `(code, n, retry_after_seconds)`: the first `n` pod list requests fail with `code`
    /// (with a `Retry-After` header and `details.retryAfterSeconds` when given), then succeed.
    pub list_fail_times: Option<(u16, u32, Option<u32>)>,
    /// `/log` of that pod (by name, any namespace) always answers this Status code.
    pub log_status: BTreeMap<String, u16>,
    /// `(code, n, retry_after_seconds)`: the first `n` `/log` requests for that pod fail.
    pub log_fail_times: BTreeMap<String, (u16, u32, Option<u32>)>,
    /// Stream that many body bytes of the pod's `/log`, then abort the connection abruptly
    /// (no chunked terminator, TCP RST). Also aborts when the log is shorter than that.
    pub log_reset_after_bytes: BTreeMap<String, usize>,
    /// Complete the TLS handshake and read requests, but never answer any.
    pub hang_all: bool,
    /// `/log` of these pods never answers (headers are never sent).
    pub hang_log: BTreeSet<String>,
    /// Throttle every `/log` body to about this many bytes per second.
    pub slow_log_bytes_per_sec: Option<u64>,
    /// The server certificate names only `wrong.example.invalid` (still signed by the CA).
    pub tls_wrong_name: bool,
    /// The `*_fail_times` answers are API priority and fairness's: a text/plain body, and the
    /// wait only in the `Retry-After` header.
    pub fail_as_text: bool,
    /// List requests answered 403 (RBAC), by `resource/namespace` (`pods/shadow-abc123`,
    /// `events/shadow-abc123`) or `nodes`.
    pub forbidden_lists: BTreeSet<String>,
    /// `(after, token)`: that long after the server started, the token is rotated: only this
    /// one is accepted, the old one is revoked (401).
    pub token_rotation: Option<(std::time::Duration, String)>,
    /// A short-lived token, rotated every period: in period k (k >= 1) only `TOKEN-k` is
    /// accepted, the one before it revoked; in the last [`TOKEN_OVERLAP`] of a period the next
    /// one is accepted too (it is written out before the old one is revoked, as a kubelet
    /// refreshes a projected token). [`crate::FakeApiServer::token_clock`] says which to write.
    pub token_period: Option<std::time::Duration>,
}

/// How long before its period a rotated token is already accepted.
pub const TOKEN_OVERLAP: std::time::Duration = std::time::Duration::from_secs(5);

/// A pod. Build with [`FakePod::falco`] or [`FakePod::new`] and the `with_*` builders.
#[derive(Clone, Debug)]
pub struct FakePod {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `spec.nodeName`; `None` = not scheduled.
    pub node: Option<String>,
    /// `status.phase`: "Running", "Pending", "Succeeded", "Failed".
    pub phase: String,
    pub containers: Vec<FakeContainer>,
    /// Names of the init containers (they have empty logs and completed successfully).
    pub init_containers: Vec<String>,
    /// The pod exists only from this (wall clock) time on: before it, lists leave it out and
    /// get/log answer 404. `None` = always there.
    pub appears_at: Option<DateTime<Utc>>,
    /// Scheduled, but the kubelet has not reported container statuses yet.
    pub no_container_statuses: bool,
}

/// One container of a pod.
#[derive(Clone, Debug)]
pub struct FakeContainer {
    pub name: String,
    pub state: ContainerState,
    pub restart_count: i32,
    /// `lastState.terminated`; required for `previous=true`.
    pub last_terminated: Option<Terminated>,
    /// Log of the current container instance.
    pub log: LogSource,
    /// Log of the previous (terminated) instance, served with `previous=true`.
    pub previous_log: LogSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Running {
        started_at: DateTime<Utc>,
    },
    Waiting {
        reason: String,
    },
    Terminated {
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        exit_code: i32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub exit_code: i32,
}

impl Terminated {
    pub fn new(started_at: DateTime<Utc>, finished_at: DateTime<Utc>, exit_code: i32) -> Self {
        Terminated {
            started_at,
            finished_at,
            exit_code,
        }
    }
}

/// A container log: every entry is one line (without its `'\n'`) and the kubelet time it was
/// written. Times must not decrease (the kubelet writes in order).
#[derive(Clone)]
pub enum LogSource {
    Lines(Vec<(DateTime<Utc>, Vec<u8>)>),
    /// Line `i` (0-based, `i < count`) is `line(i)`, written at `start + i * step`. Produced
    /// lazily while streaming, never materialised.
    Generated {
        count: u64,
        start: DateTime<Utc>,
        step: Duration,
        line: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
    },
}

impl fmt::Debug for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogSource::Lines(lines) => write!(f, "LogSource::Lines({} lines)", lines.len()),
            LogSource::Generated {
                count, start, step, ..
            } => write!(
                f,
                "LogSource::Generated {{ count: {count}, start: {start:?}, step: {step:?} }}"
            ),
        }
    }
}

impl Default for LogSource {
    fn default() -> Self {
        LogSource::empty()
    }
}

impl LogSource {
    pub fn empty() -> Self {
        LogSource::Lines(Vec::new())
    }

    /// Parses what `GET .../log?timestamps=true` returns: every line is
    /// `2024-01-15T10:30:00.000731000Z <content>`. An empty last line (trailing newline) is
    /// ignored. Panics on a line without a valid RFC3339 timestamp and a space.
    pub fn from_text(kubelet_timestamped: &str) -> Self {
        let mut text = kubelet_timestamped;
        if let Some(stripped) = text.strip_suffix('\n') {
            text = stripped;
        }
        if text.is_empty() {
            return LogSource::empty();
        }
        let lines = text
            .split('\n')
            .enumerate()
            .map(|(n, line)| {
                let (ts, content) = line.split_once(' ').unwrap_or_else(|| {
                    panic!(
                        "LogSource::from_text: line {} has no 'TIMESTAMP ' prefix: {line:?}",
                        n + 1
                    )
                });
                let t = DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| {
                    panic!(
                        "LogSource::from_text: line {}: bad timestamp {ts:?}: {e}",
                        n + 1
                    )
                });
                (t.with_timezone(&Utc), content.as_bytes().to_vec())
            })
            .collect();
        LogSource::Lines(lines)
    }

    /// Every line written at `t` (+1µs per line, to keep them ordered and distinct).
    pub fn at(t: DateTime<Utc>, lines: &[&str]) -> Self {
        LogSource::Lines(
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| (t + Duration::microseconds(i as i64), l.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// Lines given with their kubelet times.
    pub fn lines<I, L>(lines: I) -> Self
    where
        I: IntoIterator<Item = (DateTime<Utc>, L)>,
        L: Into<Vec<u8>>,
    {
        LogSource::Lines(lines.into_iter().map(|(t, l)| (t, l.into())).collect())
    }

    /// `count` lines, line `i` = `line(i)` written at `start + i * step`.
    pub fn generated(
        count: u64,
        start: DateTime<Utc>,
        step: Duration,
        line: impl Fn(u64) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        LogSource::Generated {
            count,
            start,
            step,
            line: Arc::new(line),
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            LogSource::Lines(l) => l.len() as u64,
            LogSource::Generated { count, .. } => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Kubelet time of line `i`.
    pub fn time_of(&self, i: u64) -> DateTime<Utc> {
        match self {
            LogSource::Lines(l) => l[i as usize].0,
            LogSource::Generated { start, step, .. } => generated_time(*start, *step, i),
        }
    }

    /// Content of line `i` (without `'\n'`).
    pub fn line(&self, i: u64) -> Cow<'_, [u8]> {
        match self {
            LogSource::Lines(l) => Cow::Borrowed(&l[i as usize].1),
            LogSource::Generated { line, .. } => Cow::Owned(line(i)),
        }
    }

    /// Index of the first line written at or after `t` (lines are in time order).
    pub fn first_at_or_after(&self, t: DateTime<Utc>) -> u64 {
        match self {
            LogSource::Lines(l) => l.partition_point(|(lt, _)| *lt < t) as u64,
            LogSource::Generated {
                count, start, step, ..
            } => {
                if t <= *start {
                    return 0;
                }
                let step_ns = step.num_nanoseconds().unwrap_or(i64::MAX) as i128;
                if step_ns <= 0 {
                    // every line is at `start`, which is before t
                    return *count;
                }
                let delta = (t - *start).num_nanoseconds().map(i128::from);
                let Some(delta) = delta else { return *count };
                let idx = (delta + step_ns - 1) / step_ns; // ceil
                idx.min(*count as i128) as u64
            }
        }
    }

    /// The whole log as `timestamps=true` text (every line ends with `'\n'`).
    pub fn to_kubelet_text(&self) -> String {
        let mut out = Vec::new();
        for i in 0..self.len() {
            super::timefmt::push_rfc3339_nano(&mut out, self.time_of(i));
            out.push(b' ');
            out.extend_from_slice(&self.line(i));
            out.push(b'\n');
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The whole log as plain text (every line ends with `'\n'`).
    pub fn to_plain_text(&self) -> String {
        let mut out = Vec::new();
        for i in 0..self.len() {
            out.extend_from_slice(&self.line(i));
            out.push(b'\n');
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn generated_time(start: DateTime<Utc>, step: Duration, i: u64) -> DateTime<Utc> {
    let step_ns = step.num_nanoseconds().unwrap_or(0) as i128;
    let off = step_ns * i as i128;
    let off = off.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    start + Duration::nanoseconds(off)
}

impl From<&str> for LogSource {
    /// Same as [`LogSource::from_text`].
    fn from(s: &str) -> Self {
        LogSource::from_text(s)
    }
}

impl From<String> for LogSource {
    fn from(s: String) -> Self {
        LogSource::from_text(&s)
    }
}

impl From<&String> for LogSource {
    fn from(s: &String) -> Self {
        LogSource::from_text(s)
    }
}

impl From<Vec<(DateTime<Utc>, Vec<u8>)>> for LogSource {
    fn from(v: Vec<(DateTime<Utc>, Vec<u8>)>) -> Self {
        LogSource::Lines(v)
    }
}

impl From<Vec<(DateTime<Utc>, String)>> for LogSource {
    fn from(v: Vec<(DateTime<Utc>, String)>) -> Self {
        LogSource::lines(v)
    }
}

impl From<Vec<(DateTime<Utc>, &str)>> for LogSource {
    fn from(v: Vec<(DateTime<Utc>, &str)>) -> Self {
        LogSource::lines(v)
    }
}

/// Anything usable as a pod's node: `"node-0"`, `String`, `Some("node-0")`, `None`.
pub trait IntoNode {
    fn into_node(self) -> Option<String>;
}

impl IntoNode for &str {
    fn into_node(self) -> Option<String> {
        Some(self.to_string())
    }
}
impl IntoNode for String {
    fn into_node(self) -> Option<String> {
        Some(self)
    }
}
impl IntoNode for &String {
    fn into_node(self) -> Option<String> {
        Some(self.clone())
    }
}
impl IntoNode for Option<&str> {
    fn into_node(self) -> Option<String> {
        self.map(str::to_string)
    }
}
impl IntoNode for Option<String> {
    fn into_node(self) -> Option<String> {
        self
    }
}

/// 2024-01-15T09:59:58Z, when the `falco` container of [`FakePod::falco`] started.
pub fn falco_started_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 9, 59, 58)
        .single()
        .expect("valid constant date")
}

impl FakeContainer {
    /// A running container started at `started_at` with this log.
    pub fn running(
        name: impl Into<String>,
        started_at: DateTime<Utc>,
        log: impl Into<LogSource>,
    ) -> Self {
        FakeContainer {
            name: name.into(),
            state: ContainerState::Running { started_at },
            restart_count: 0,
            last_terminated: None,
            log: log.into(),
            previous_log: LogSource::empty(),
        }
    }

    /// A container waiting with this reason (`ContainerCreating`, `CrashLoopBackOff`, ...).
    pub fn waiting(name: impl Into<String>, reason: impl Into<String>) -> Self {
        FakeContainer {
            name: name.into(),
            state: ContainerState::Waiting {
                reason: reason.into(),
            },
            restart_count: 0,
            last_terminated: None,
            log: LogSource::empty(),
            previous_log: LogSource::empty(),
        }
    }

    pub fn with_state(mut self, state: ContainerState) -> Self {
        self.state = state;
        self
    }

    pub fn with_log(mut self, log: impl Into<LogSource>) -> Self {
        self.log = log.into();
        self
    }

    /// Sets `lastState.terminated` and the log of that previous instance; bumps
    /// `restart_count` to at least 1.
    pub fn with_previous(
        mut self,
        terminated: Terminated,
        previous_log: impl Into<LogSource>,
    ) -> Self {
        self.last_terminated = Some(terminated);
        self.previous_log = previous_log.into();
        self.restart_count = self.restart_count.max(1);
        self
    }

    pub fn with_restart_count(mut self, n: i32) -> Self {
        self.restart_count = n;
        self
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running { .. })
    }
}

impl FakePod {
    /// A bare pod: phase Running, no node, no labels, no containers.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        FakePod {
            name: name.into(),
            namespace: namespace.into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            node: None,
            phase: "Running".to_string(),
            containers: Vec::new(),
            init_containers: Vec::new(),
            appears_at: None,
            no_container_statuses: false,
        }
    }

    /// A Falco pod as the Helm chart makes it: namespace `falco`, label `app=falco`, phase
    /// Running, containers `falco` (running since 2024-01-15T09:59:58Z, with `log`) and
    /// `falcoctl-artifact-follow` (running, empty log), init containers
    /// `falco-driver-loader` and `falcoctl-artifact-install`.
    pub fn falco(name: impl Into<String>, node: impl IntoNode, log: impl Into<LogSource>) -> Self {
        let started = falco_started_at();
        FakePod {
            name: name.into(),
            namespace: "falco".to_string(),
            labels: BTreeMap::from([("app".to_string(), "falco".to_string())]),
            annotations: BTreeMap::new(),
            node: node.into_node(),
            phase: "Running".to_string(),
            containers: vec![
                FakeContainer::running("falco", started, log),
                FakeContainer::running(
                    "falcoctl-artifact-follow",
                    started + Duration::milliseconds(400),
                    LogSource::empty(),
                ),
            ],
            init_containers: vec![
                "falco-driver-loader".to_string(),
                "falcoctl-artifact-install".to_string(),
            ],
            appears_at: None,
            no_container_statuses: false,
        }
    }

    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Replaces all labels.
    pub fn with_labels<I, K, V>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.labels = labels
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// Adds (or replaces) one label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Replaces all annotations.
    pub fn with_annotations<I, K, V>(mut self, annotations: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.annotations = annotations
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// Adds (or replaces) one annotation.
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    pub fn with_node(mut self, node: impl IntoNode) -> Self {
        self.node = node.into_node();
        self
    }

    /// The pod appears (is created) at `t`, wall clock: see [`FakePod::appears_at`].
    pub fn appearing_at(mut self, t: DateTime<Utc>) -> Self {
        self.appears_at = Some(t);
        self
    }

    /// Whether the pod exists at `now` (it has appeared).
    pub fn exists_at(&self, now: DateTime<Utc>) -> bool {
        self.appears_at.is_none_or(|t| now >= t)
    }

    pub fn with_phase(mut self, phase: impl Into<String>) -> Self {
        self.phase = phase.into();
        self
    }

    /// Not scheduled yet: phase Pending, no node, every container waiting `ContainerCreating`.
    pub fn pending_unscheduled(mut self) -> Self {
        self.phase = "Pending".to_string();
        self.node = None;
        for c in &mut self.containers {
            c.state = ContainerState::Waiting {
                reason: "ContainerCreating".to_string(),
            };
        }
        self
    }

    /// Scheduled on its node, but without `status.containerStatuses` (the kubelet has not
    /// reported them yet).
    pub fn without_container_statuses(mut self) -> Self {
        self.no_container_statuses = true;
        self
    }

    /// Adds a container.
    pub fn with_container(mut self, container: FakeContainer) -> Self {
        self.containers.push(container);
        self
    }

    /// Replaces all containers.
    pub fn with_containers(mut self, containers: Vec<FakeContainer>) -> Self {
        self.containers = containers;
        self
    }

    /// Replaces the init container names.
    pub fn with_init_containers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.init_containers = names.into_iter().map(Into::into).collect();
        self
    }

    pub fn container(&self, name: &str) -> Option<&FakeContainer> {
        self.containers.iter().find(|c| c.name == name)
    }

    pub fn container_mut(&mut self, name: &str) -> Option<&mut FakeContainer> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    /// Changes the container `name` with `f`. Panics if there is no such container.
    pub fn map_container(mut self, name: &str, f: impl FnOnce(&mut FakeContainer)) -> Self {
        let pod_name = self.name.clone();
        let c = self.container_mut(name).unwrap_or_else(|| {
            panic!("FakePod::map_container: pod {pod_name} has no container {name}")
        });
        f(c);
        self
    }

    /// Replaces the log of the `falco` container.
    pub fn with_falco_log(self, log: impl Into<LogSource>) -> Self {
        let log = log.into();
        self.map_container("falco", |c| c.log = log)
    }

    /// The `falco` container restarted: its previous instance ran `terminated` and wrote
    /// `previous_log`; the current instance keeps its state and log.
    pub fn with_falco_previous(
        self,
        terminated: Terminated,
        previous_log: impl Into<LogSource>,
    ) -> Self {
        let previous_log = previous_log.into();
        self.map_container("falco", |c| {
            c.last_terminated = Some(terminated);
            c.previous_log = previous_log;
            c.restart_count = c.restart_count.max(1);
        })
    }

    /// The `falco` container is in `CrashLoopBackOff` after its previous instance ran
    /// `terminated` and wrote `previous_log` (served as the current log, as the kubelet does).
    pub fn falco_crash_looping(
        self,
        terminated: Terminated,
        previous_log: impl Into<LogSource>,
        restart_count: i32,
    ) -> Self {
        let previous_log = previous_log.into();
        self.map_container("falco", |c| {
            c.state = ContainerState::Waiting {
                reason: "CrashLoopBackOff".to_string(),
            };
            c.last_terminated = Some(terminated);
            c.previous_log = previous_log;
            c.log = LogSource::empty();
            c.restart_count = restart_count;
        })
    }
}
