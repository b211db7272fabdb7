//! Finding the Falco pods to read: connect, list by selector (with the Helm chart's label as a
//! fallback), and narrow to `--nodes-of-namespace` when asked.

use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::{self, Cluster, ClusterError, FalcoPod, Target};
use crate::source::placement;
use crate::verdict::nodes::Placement;
use crate::verdict::{Connection, Scope, Skip, Window};

/// What to look for: the part of a check's options discovery needs.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    pub falco_namespace: &'a str,
    /// `None`: the default selector, falling back to the Helm chart's label.
    pub selector: Option<&'a str>,
    /// Bounds connecting (and, within the caller's deadline, a credential plugin).
    pub timeout: Duration,
    pub scope: &'a Scope,
    pub window: Window,
    pub now: chrono::DateTime<chrono::Utc>,
    pub nodes_of_namespace: bool,
    pub node_coverage: bool,
}

/// The Falco pods to read.
pub struct Discovered {
    pub cluster: Cluster,
    pub selector: String,
    pub pods: Vec<FalcoPod>,
    /// Which pods were chosen and why, for the result's `scope`.
    pub scope: String,
    pub warnings: Vec<String>,
    /// Where the namespace ran (`None`: not asked for; `Err`: could not be mapped).
    pub placement: Option<Result<Placement, ClusterError>>,
}

/// Why there are no Falco pods to read.
pub struct NotFound {
    /// The selector tried last.
    pub selector: String,
    pub why: Skip,
    pub warnings: Vec<String>,
    /// Which cluster, when the connection was made.
    pub connection: Option<Connection>,
}

/// Connects and finds the Falco pods.
pub async fn discover(
    target: &Target,
    opts: &Wanted<'_>,
    deadline: Instant,
) -> Result<Discovered, NotFound> {
    let mut selector = opts
        .selector
        .unwrap_or(cluster::DEFAULT_SELECTOR)
        .to_string();
    let mut warnings = Vec::new();
    let connect_timeout = opts.timeout.min(Duration::from_secs(10));
    // A credential plugin that hangs (waiting for a login) is killed a little before the
    // deadline, so that its own reason, not a bare deadline, is what the user reads.
    let exec_limit = opts
        .timeout
        .saturating_sub(Duration::from_millis(250))
        .max(Duration::from_millis(100));
    let mut connection = None;
    let fail = |selector: &str,
                why: Skip,
                warnings: &mut Vec<String>,
                connection: &Option<Connection>| NotFound {
        selector: selector.to_string(),
        why,
        warnings: std::mem::take(warnings),
        connection: connection.clone(),
    };
    let cluster = match tokio::time::timeout_at(
        deadline,
        Cluster::connect(target, connect_timeout, exec_limit),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(fail(&selector, e.into(), &mut warnings, &connection)),
        Err(_) => {
            let doing =
                "loading the kubeconfig and running its credential plugin, if any".to_string();
            let e = ClusterError::Deadline { doing };
            return Err(fail(&selector, e.into(), &mut warnings, &connection));
        }
    };
    connection = Some(Connection {
        context: cluster.context().map(str::to_string),
        server: cluster.server().to_string(),
    });
    let ns = opts.falco_namespace;
    let mut pods = match cluster.list_falco_pods(ns, &selector, deadline).await {
        Ok(p) => p,
        Err(e) => return Err(fail(&selector, e.into(), &mut warnings, &connection)),
    };
    if pods.is_empty() && opts.selector.is_none() {
        match cluster
            .list_falco_pods(ns, cluster::CHART_SELECTOR, deadline)
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
            Err(e) => return Err(fail(&selector, e.into(), &mut warnings, &connection)),
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
        let why = Skip::NoFalcoPods {
            namespace: ns.to_string(),
            tried,
        };
        return Err(fail(&selector, why, &mut warnings, &connection));
    }
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    let mut scope = format!("all {} Falco pod(s)", pods.len());
    let target_ns = opts.scope.namespace();
    let wanted = opts.node_coverage || opts.nodes_of_namespace;
    let mut placement = match target_ns.filter(|_| wanted) {
        Some(ns) => Some(placement::map(&cluster, ns, opts.window, opts.now, deadline).await),
        None => None,
    };
    if let (true, Some(target_ns)) = (opts.nodes_of_namespace, target_ns) {
        let map = match placement.take() {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                return Err(fail(
                    &selector,
                    Skip::NodesOfNamespace(Box::new(e)),
                    &mut warnings,
                    &connection,
                ))
            }
            None => Placement::default(),
        };
        let nodes = placement::node_names(&map);
        let total = pods.len();
        let (kept, left): (Vec<_>, Vec<_>) = pods
            .into_iter()
            .partition(|p| !p.daemonset || p.node.as_ref().is_some_and(|n| nodes.contains(n)));
        pods = kept;
        scope = format!(
            "--nodes-of-namespace: {} of {total} Falco pod(s), on the {} node(s) where pods of {target_ns} ran in the window ({}) plus Falco pods not run by a DaemonSet (k8saudit); {} skipped",
            pods.len(),
            nodes.len(),
            nodes.iter().cloned().collect::<Vec<_>>().join(", "),
            left.len()
        );
        warnings.push(format!(
            "{scope}. Pods of {target_ns} deleted before the Events kept by the API server are not on the map"
        ));
        let workloads = map.nodes.values().map(|u| u.pods.len()).sum();
        if pods.is_empty() {
            let why = Skip::NoPodsOnNodes {
                namespace: target_ns.to_string(),
                workloads,
            };
            return Err(fail(&selector, why, &mut warnings, &connection));
        }
        placement = opts.node_coverage.then_some(Ok(map));
    }
    Ok(Discovered {
        cluster,
        selector,
        pods,
        scope,
        warnings,
        placement,
    })
}
