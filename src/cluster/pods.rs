//! What a Pod object says: its name and node, which container is Falco's, who runs it, and
//! how a Falco container's life overlaps the window (from its status, before any log is read).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;

use crate::verdict::{Gap, GapKind};

/// A Falco pod as the reader needs it, taken out of the Pod object right after listing: a
/// k8s-openapi `Pod` holds kilobytes per container, and a large cluster has thousands of Falco
/// pods waiting to be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FalcoPod {
    pub name: String,
    pub node: Option<String>,
    /// A DaemonSet owns it (Falco's per-node syscall pods).
    pub daemonset: bool,
    /// Some controller owns it (a DaemonSet, or a Deployment for k8saudit).
    pub owned: bool,
    pub containers: Vec<String>,
    /// The `kubectl.kubernetes.io/default-container` annotation.
    pub default_container: Option<String>,
    pub phase: Option<String>,
    /// Why the scheduler did not place it (its `PodScheduled` condition), when it says.
    pub unscheduled_why: Option<String>,
    pub statuses: Vec<ContainerLife>,
}

/// One container's status, as far as coverage reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLife {
    pub name: String,
    pub restart_count: i32,
    /// Running since then (`None` also when the API gave a running state without a start).
    pub running_since: Option<DateTime<Utc>>,
    /// Waiting, with the reason.
    pub waiting: Option<String>,
    /// Terminated now: the reason and exit code.
    pub terminated: Option<(String, i32)>,
    /// The previous instance, when it terminated.
    pub last_terminated: Option<Ended>,
}

/// A terminated instance's start and finish, as far as the API knows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
}

impl From<Pod> for FalcoPod {
    fn from(pod: Pod) -> Self {
        let Pod {
            metadata,
            spec,
            status,
        } = pod;
        let owners = metadata.owner_references.unwrap_or_default();
        let (node, containers) = spec
            .map(|s| (s.node_name, fresh(s.containers.into_iter().map(|c| c.name))))
            .unwrap_or_default();
        let status = status.unwrap_or_default();
        let unscheduled_why = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status != "True")
            .and_then(|c| c.message.or(c.reason));
        let statuses = fresh(
            status
                .container_statuses
                .unwrap_or_default()
                .into_iter()
                .map(|cs| {
                    let state = cs.state.unwrap_or_default();
                    ContainerLife {
                        name: cs.name,
                        restart_count: cs.restart_count,
                        running_since: state
                            .running
                            .and_then(|r| r.started_at)
                            .as_ref()
                            .map(time_of),
                        waiting: state
                            .waiting
                            .map(|w| w.reason.unwrap_or_else(|| "waiting".to_string())),
                        terminated: state.terminated.map(|t| {
                            (
                                t.reason.unwrap_or_else(|| "terminated".to_string()),
                                t.exit_code,
                            )
                        }),
                        last_terminated: cs.last_state.and_then(|s| s.terminated).map(|t| Ended {
                            started: t.started_at.as_ref().map(time_of),
                            finished: t.finished_at.as_ref().map(time_of),
                        }),
                    }
                }),
        );
        FalcoPod {
            name: metadata.name.unwrap_or_default(),
            node,
            daemonset: owners.iter().any(|r| r.kind == "DaemonSet"),
            owned: !owners.is_empty(),
            containers,
            default_container: metadata
                .annotations
                .and_then(|mut a| a.remove("kubectl.kubernetes.io/default-container")),
            phase: status.phase,
            unscheduled_why,
            statuses,
        }
    }
}

/// Collects into a new allocation. `collect()` from a `Vec`'s `into_iter()` reuses the source's
/// buffer (in-place iteration), which would keep each Pod's kilobytes of `Container`s alive.
fn fresh<T>(items: impl ExactSizeIterator<Item = T>) -> Vec<T> {
    let mut v = Vec::with_capacity(items.len());
    v.extend(items);
    v
}

impl FalcoPod {
    /// Whether it watches its own node: a DaemonSet's pod, or one no controller owns. A
    /// Deployment's (k8saudit) sees the cluster's audit events, not a node's system calls.
    pub fn watches_its_node(&self) -> bool {
        !self.owned || self.daemonset
    }
}

/// Picks Falco's container: `--container`, else `falco`, else the default-container annotation,
/// else the only container. The API server needs a name when a pod has several.
pub fn choose_container(pod: &FalcoPod, wanted: Option<&str>) -> Result<String, String> {
    let names: Vec<&str> = pod.containers.iter().map(String::as_str).collect();
    if let Some(w) = wanted {
        return if names.contains(&w) {
            Ok(w.to_string())
        } else {
            Err(format!(
                "has no container {w:?} (it has {names:?}); fix --container"
            ))
        };
    }
    if names.contains(&"falco") {
        return Ok("falco".to_string());
    }
    let annotated = pod
        .default_container
        .as_ref()
        .filter(|n| names.contains(&n.as_str()));
    if let Some(n) = annotated {
        return Ok(n.clone());
    }
    match names.as_slice() {
        [only] => Ok(only.to_string()),
        [] => Err("has no containers".to_string()),
        _ => Err(format!(
            "has several containers {names:?} and none is named falco; pass --container"
        )),
    }
}

/// How a Falco container's life overlaps the window, from its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// The pod has a node: there is something to read.
    pub scheduled: bool,
    /// Also read `previous=true`: the container restarted inside the window.
    pub read_previous: bool,
    /// When the current instance started running (to tell a rotated log from a quiet one).
    pub running_since: Option<DateTime<Utc>>,
    /// When the earliest instance read started: Falco on this node watched from then on.
    pub watching_since: Option<DateTime<Utc>>,
    /// What part of the window is known to be lost before reading.
    pub gaps: Vec<Gap>,
}

fn time_of(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> DateTime<Utc> {
    utc(t.0)
}

/// An API time (`Time`, `MicroTime`: both hold a jiff timestamp) as the chrono time we use.
pub fn utc(t: jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32).unwrap_or_default()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Works out which container instances hold the window, and what is lost for sure.
pub fn coverage(pod: &FalcoPod, container: &str, window_start: DateTime<Utc>) -> Coverage {
    let phase = pod.phase.as_deref().unwrap_or("Unknown");
    if pod.node.is_none() {
        // A DaemonSet pod that could not be scheduled: its node has no Falco at all.
        let why = pod
            .unscheduled_why
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        return Coverage {
            gaps: vec![Gap::new(
                GapKind::NotScheduled,
                format!("pod is {phase} and not scheduled on any node{why}: a node is not watched by Falco; check `kubectl describe pod` and the DaemonSet's tolerations and resources"),
            )],
            ..Coverage::default()
        };
    }
    let mut cov = Coverage {
        scheduled: true,
        ..Coverage::default()
    };
    let Some(cs) = pod.statuses.iter().find(|c| c.name == container) else {
        cov.gaps.push(Gap::new(
            GapKind::NotRunning,
            format!("pod is {phase} and reports no status for container {container}: Falco is not known to be running there; check `kubectl describe pod`"),
        ));
        return cov;
    };
    cov.running_since = cs.running_since;
    if let Some(reason) = &cs.waiting {
        cov.gaps.push(Gap::new(
            GapKind::NotRunning,
            format!(
                "container {container} is not running ({reason}, {} restarts): Falco on this node is not watching now",
                cs.restart_count
            ),
        ));
    } else if let Some((reason, exit_code)) = &cs.terminated {
        cov.gaps.push(Gap::new(
            GapKind::NotRunning,
            format!("container {container} has terminated ({reason}, exit code {exit_code}): Falco on this node is not watching now"),
        ));
    } else if cov.running_since.is_none() {
        cov.gaps.push(Gap::new(
            GapKind::NotRunning,
            format!(
                "container {container} reports no state: Falco is not known to be running there"
            ),
        ));
    }
    if let Some(Ended { started, finished }) = cs.last_terminated {
        // Restarted inside the window: the previous instance holds its first part. When waiting,
        // the kubelet already serves that instance as the current log.
        if finished.is_none_or(|f| f >= window_start) && cov.running_since.is_some() {
            cov.read_previous = true;
        }
        if cs.restart_count >= 2 && started.is_some_and(|s| s > window_start) {
            cov.gaps.push(Gap::new(
                GapKind::InstancesLost,
                format!(
                    "container {container} restarted {} times, the last two inside the window: only the current and previous instances' logs are served, earlier ones are gone",
                    cs.restart_count
                ),
            ));
        }
    }
    // The earliest instance read must have been running at the window start; otherwise Falco in
    // this pod did not watch the first part (a pod that replaced another: its log is gone).
    let earliest = match (cov.read_previous, cs.last_terminated) {
        (true, Some(ended)) => ended.started,
        _ => cov.running_since,
    };
    cov.watching_since = earliest;
    if let Some(e) = earliest.filter(|e| *e > window_start + chrono::Duration::seconds(60)) {
        if !cov.gaps.iter().any(|g| g.kind == GapKind::InstancesLost) {
            cov.gaps.push(Gap::new(
                GapKind::StartedLate,
                format!(
                    "container {container} started at {}, after the window start: what happened on this node before that was not watched by this pod (a replaced pod's log is not served)",
                    rfc3339(e)
                ),
            ));
        }
    }
    cov
}

/// The pod's node, for reports.
pub fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone())
}

/// The pod's name.
pub fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> FalcoPod {
        serde_json::from_value::<Pod>(v).expect("pod json").into()
    }

    #[test]
    fn a_falco_pod_keeps_only_what_reading_needs() {
        let p = pod(json!({
            "metadata":{"name":"falco-x","annotations":{"kubectl.kubernetes.io/default-container":"falco","other":"x"},
                "ownerReferences":[{"apiVersion":"apps/v1","kind":"DaemonSet","name":"falco","uid":"u"}]},
            "spec":{"nodeName":"n1","containers":[{"name":"falco","image":"i","args":["a"]},{"name":"falcoctl"}]},
            "status":{"phase":"Running","containerStatuses":[{"name":"falco","ready":true,"restartCount":2,"image":"i","imageID":"",
                "state":{"running":{"startedAt":"2024-01-15T10:40:00Z"}},
                "lastState":{"terminated":{"exitCode":1,"startedAt":"2024-01-15T09:00:00Z"}}}]}}));
        assert_eq!(p.name, "falco-x");
        assert_eq!(p.node.as_deref(), Some("n1"));
        assert!(p.daemonset && p.owned && p.watches_its_node());
        assert_eq!(p.containers, ["falco", "falcoctl"]);
        assert_eq!(p.default_container.as_deref(), Some("falco"));
        let life = &p.statuses[0];
        assert_eq!(life.restart_count, 2);
        assert!(life.running_since.is_some() && life.waiting.is_none());
        assert!(life
            .last_terminated
            .is_some_and(|e| e.started.is_some() && e.finished.is_none()));
        // Not the Pod's buffers: `collect()` in place would keep a Container's kilobytes per name.
        assert!(p.containers.capacity() <= 2 && p.statuses.capacity() <= 1);
        let deployment = pod(json!({"metadata":{"name":"k8saudit","ownerReferences":[
            {"apiVersion":"apps/v1","kind":"ReplicaSet","name":"r","uid":"u"}]}}));
        assert!(!deployment.watches_its_node());
        assert!(pod(json!({"metadata":{"name":"bare"}})).watches_its_node());
    }

    #[test]
    fn container_choice() {
        let p = pod(
            json!({"metadata":{"name":"f"},"spec":{"containers":[{"name":"falcoctl-artifact-follow"},{"name":"falco"}]}}),
        );
        assert_eq!(choose_container(&p, None), Ok("falco".into()));
        assert!(choose_container(&p, Some("nope")).is_err());
        let p = pod(
            json!({"metadata":{"name":"f","annotations":{"kubectl.kubernetes.io/default-container":"b"}},"spec":{"containers":[{"name":"a"},{"name":"b"}]}}),
        );
        assert_eq!(choose_container(&p, None), Ok("b".into()));
        let p = pod(json!({"metadata":{"name":"f"},"spec":{"containers":[{"name":"a"}]}}));
        assert_eq!(choose_container(&p, None), Ok("a".into()));
        let p =
            pod(json!({"metadata":{"name":"f"},"spec":{"containers":[{"name":"a"},{"name":"b"}]}}));
        assert!(choose_container(&p, None).is_err());
    }

    #[test]
    fn restart_inside_window_reads_previous() {
        let start = DateTime::parse_from_rfc3339("2024-01-15T10:30:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let p = pod(
            json!({"metadata":{"name":"f"},"spec":{"nodeName":"n","containers":[{"name":"falco"}]},"status":{"containerStatuses":[{
            "name":"falco","ready":true,"restartCount":1,"image":"i","imageID":"","started":true,
            "state":{"running":{"startedAt":"2024-01-15T10:40:00Z"}},
            "lastState":{"terminated":{"exitCode":1,"startedAt":"2024-01-15T09:00:00Z","finishedAt":"2024-01-15T10:39:00Z"}}}]}}),
        );
        let c = coverage(&p, "falco", start);
        assert!(c.read_previous);
        assert_eq!(c.gaps, vec![]);
        let p = pod(
            json!({"metadata":{"name":"f"},"spec":{"nodeName":"n","containers":[{"name":"falco"}]},"status":{"containerStatuses":[{
            "name":"falco","ready":false,"restartCount":5,"image":"i","imageID":"",
            "state":{"waiting":{"reason":"CrashLoopBackOff"}},
            "lastState":{"terminated":{"exitCode":1,"startedAt":"2024-01-15T10:41:00Z","finishedAt":"2024-01-15T10:41:05Z"}}}]}}),
        );
        let c = coverage(&p, "falco", start);
        assert!(!c.read_previous);
        assert!(c
            .gaps
            .iter()
            .any(|g| g.kind == GapKind::NotRunning && g.message.contains("CrashLoopBackOff")));
    }

    #[test]
    fn unscheduled_and_statusless_pods_are_gaps() {
        let start = DateTime::parse_from_rfc3339("2024-01-15T10:30:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let p = pod(
            json!({"metadata":{"name":"f"},"spec":{"containers":[{"name":"falco"}]},
            "status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/3 nodes are available"}]}}),
        );
        let c = coverage(&p, "falco", start);
        assert!(!c.scheduled);
        assert_eq!(c.gaps.len(), 1);
        assert_eq!(c.gaps[0].kind, GapKind::NotScheduled);
        assert!(c.gaps[0].message.contains("0/3 nodes"), "{:?}", c.gaps);
        let p = pod(
            json!({"metadata":{"name":"f"},"spec":{"nodeName":"n","containers":[{"name":"falco"}]},"status":{"phase":"Pending"}}),
        );
        let c = coverage(&p, "falco", start);
        assert!(c.scheduled);
        assert_eq!(
            c.gaps.iter().map(|g| g.kind).collect::<Vec<_>>(),
            vec![GapKind::NotRunning]
        );
    }
}
