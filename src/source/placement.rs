//! Where the namespace ran during the window: the nodes its pods used, from its pods now
//! (finished ones included) and the scheduler's `Scheduled` Events (pods that are gone), with
//! what the Node objects say about each node when they may be read.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use tokio::time::Instant;

use crate::cluster::{self, Cluster, ClusterError};
use crate::verdict::nodes::{NodeFacts, Placement};
use crate::verdict::Window;

/// How long the API server keeps Events by default (kube-apiserver `--event-ttl`).
const EVENT_TTL: Duration = Duration::hours(1);

/// Maps the nodes where `namespace`'s pods ran in the window. `Err` when its pods or Events
/// may not be listed: the map cannot be made.
pub async fn map(
    cluster: &Cluster,
    namespace: &str,
    window: Window,
    now: DateTime<Utc>,
    deadline: Instant,
) -> Result<Placement, ClusterError> {
    let pods = cluster.list_pods(namespace, "", deadline).await?;
    let events = cluster
        .list_events(
            namespace,
            "reason=Scheduled,involvedObject.kind=Pod",
            deadline,
        )
        .await?;
    let mut placement = Placement {
        mapped: true,
        ..Placement::default()
    };
    let end = window.end.unwrap_or(now);
    for pod in &pods {
        let Some(node) = cluster::node_of(pod) else {
            continue;
        };
        let (started, finished) = run_time(pod);
        if finished.is_some_and(|f| f < window.start) || started.is_some_and(|s| s > end) {
            continue;
        }
        placement.add(&node, &cluster::name_of(pod), started);
    }
    let mut oldest: Option<DateTime<Utc>> = None;
    for e in &events {
        let Some((pod, node)) = scheduled_to(e, namespace) else {
            continue;
        };
        let at = event_time(e);
        oldest = match (oldest, at) {
            (Some(o), Some(a)) => Some(o.min(a)),
            (o, a) => o.or(a),
        };
        // A pod scheduled after the window cannot have run in it; one scheduled before it that
        // is gone may have run into it.
        if at.is_some_and(|a| a > end) {
            continue;
        }
        if !placement.has(&node, &pod) {
            placement.add(&node, &pod, at);
        }
    }
    if window.start < now - EVENT_TTL {
        let seen = oldest
            .map(|o| format!(" (the oldest one left for it is from {})", secs(o)))
            .unwrap_or_default();
        placement.notes.push(format!(
            "the window starts at {}, more than an hour ago: Kubernetes keeps Events about an hour (kube-apiserver --event-ttl){seen}, so pods of {namespace} deleted before then are not on the node map",
            secs(window.start)
        ));
    }
    match cluster.list_nodes(deadline).await {
        Ok(nodes) => placement.facts = Some(nodes.iter().map(facts_of).collect()),
        Err(e) => placement.notes.push(format!(
            "Node objects could not be read ({e}): why a node has no Falco pod is not known"
        )),
    }
    Ok(placement)
}

/// When the pod's containers ran: the earliest start and, when every one has finished, the
/// latest finish. A pod that has not started yet has neither.
fn run_time(pod: &Pod) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let status = pod.status.as_ref();
    let statuses = status
        .and_then(|s| s.container_statuses.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut started: Option<DateTime<Utc>> = status.and_then(|s| s.start_time.as_ref()).map(time);
    let mut finished: Option<DateTime<Utc>> = None;
    let mut all_finished = !statuses.is_empty();
    for cs in statuses {
        let state = cs.state.as_ref();
        let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        let run_start = state
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref())
            .or_else(|| {
                state
                    .and_then(|s| s.terminated.as_ref())
                    .and_then(|t| t.started_at.as_ref())
            })
            .or_else(|| last.and_then(|t| t.started_at.as_ref()))
            .map(time);
        if let Some(s) = run_start {
            started = Some(started.map_or(s, |o| o.min(s)));
        }
        match state.and_then(|s| s.terminated.as_ref()) {
            Some(t) => {
                let f = t.finished_at.as_ref().map(time);
                finished = finished.max(f);
            }
            None => all_finished = false,
        }
    }
    let phase = status.and_then(|s| s.phase.as_deref());
    let done = matches!(phase, Some("Succeeded" | "Failed")) || all_finished;
    (started, if done { finished } else { None })
}

/// `Successfully assigned NS/POD to NODE`: the pod and the node.
fn scheduled_to(e: &Event, namespace: &str) -> Option<(String, String)> {
    let msg = e.message.as_deref()?;
    let rest = msg.strip_prefix("Successfully assigned ")?;
    let (who, node) = rest.split_once(" to ")?;
    let (ns, pod) = who.split_once('/')?;
    (ns == namespace && !pod.is_empty() && !node.is_empty())
        .then(|| (pod.to_string(), node.trim().to_string()))
}

/// The Event's time: `eventTime` (events.k8s.io), else `lastTimestamp` / `firstTimestamp`,
/// else its creation.
fn event_time(e: &Event) -> Option<DateTime<Utc>> {
    let micro = e.event_time.as_ref().map(|t| cluster::pods::utc(t.0));
    micro
        .or_else(|| e.last_timestamp.as_ref().map(time))
        .or_else(|| e.first_timestamp.as_ref().map(time))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(time))
}

/// What a Node object says about whether a DaemonSet pod can run there.
fn facts_of(n: &Node) -> (String, NodeFacts) {
    let name = n.metadata.name.clone().unwrap_or_default();
    let labels = n.metadata.labels.clone().unwrap_or_default();
    let taints: Vec<String> = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|t| {
            t.iter()
                .filter(|t| matches!(t.effect.as_str(), "NoSchedule" | "NoExecute"))
                .map(|t| match &t.value {
                    Some(v) => format!("{}={v}:{}", t.key, t.effect),
                    None => format!("{}:{}", t.key, t.effect),
                })
                .collect()
        })
        .unwrap_or_default();
    let fargate = labels
        .get("eks.amazonaws.com/compute-type")
        .is_some_and(|v| v == "fargate");
    let virtual_kubelet = labels.get("type").is_some_and(|v| v == "virtual-kubelet")
        || taints
            .iter()
            .any(|t| t.starts_with("virtual-kubelet.io/provider"));
    let serverless = if fargate {
        Some("EKS Fargate".to_string())
    } else if virtual_kubelet {
        Some("virtual-kubelet".to_string())
    } else {
        None
    };
    (name, NodeFacts { serverless, taints })
}

fn time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> DateTime<Utc> {
    cluster::pods::utc(t.0)
}

fn secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The nodes where the namespace ran.
pub fn node_names(p: &Placement) -> BTreeSet<String> {
    p.nodes.keys().cloned().collect()
}
