//! What a Pod object says: its name and node, which container is Falco's, who runs it, and
//! how a Falco container's life overlaps the window (from its status, before any log is read).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::verdict::{Gap, GapKind};

/// Picks Falco's container: `--container`, else `falco`, else the default-container annotation,
/// else the only container. The API server needs a name when a pod has several.
pub fn choose_container(pod: &Pod, wanted: Option<&str>) -> Result<String, String> {
    let names: Vec<&str> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
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
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
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
pub fn coverage(pod: &Pod, container: &str, window_start: DateTime<Utc>) -> Coverage {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".to_string());
    if node_of(pod).is_none() {
        // A DaemonSet pod that could not be scheduled: its node has no Falco at all.
        let why = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| {
                c.iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status != "True")
            })
            .and_then(|c| c.message.clone().or(c.reason.clone()))
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
    let status: Option<&ContainerStatus> = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == container));
    let Some(cs) = status else {
        cov.gaps.push(Gap::new(
            GapKind::NotRunning,
            format!("pod is {phase} and reports no status for container {container}: Falco is not known to be running there; check `kubectl describe pod`"),
        ));
        return cov;
    };
    let state = cs.state.as_ref();
    cov.running_since = state
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .map(time_of);
    let waiting = state.and_then(|s| s.waiting.as_ref());
    let terminated_now = state.and_then(|s| s.terminated.as_ref());
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    if let Some(w) = waiting {
        let reason = w.reason.clone().unwrap_or_else(|| "waiting".to_string());
        cov.gaps.push(Gap::new(
            GapKind::NotRunning,
            format!(
                "container {container} is not running ({reason}, {} restarts): Falco on this node is not watching now",
                cs.restart_count
            ),
        ));
    } else if let Some(t) = terminated_now {
        let reason = t.reason.clone().unwrap_or_else(|| "terminated".to_string());
        cov.gaps.push(Gap::new(
            GapKind::NotRunning,
            format!("container {container} has terminated ({reason}, exit code {}): Falco on this node is not watching now", t.exit_code),
        ));
    } else if cov.running_since.is_none() {
        cov.gaps.push(Gap::new(
            GapKind::NotRunning,
            format!(
                "container {container} reports no state: Falco is not known to be running there"
            ),
        ));
    }
    if let Some(t) = last {
        let finished = t.finished_at.as_ref().map(time_of);
        let started = t.started_at.as_ref().map(time_of);
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
    let earliest = match (cov.read_previous, last) {
        (true, Some(t)) => t.started_at.as_ref().map(time_of),
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

/// Whether the pod watches its own node: a DaemonSet's pod, or one no controller owns. A
/// Deployment's (k8saudit) sees the cluster's audit events, not a node's system calls.
pub fn watches_its_node(pod: &Pod) -> bool {
    let owners = pod.metadata.owner_references.as_deref().unwrap_or_default();
    owners.is_empty() || is_daemonset_pod(pod)
}

/// Whether a DaemonSet owns the pod (Falco's per-node syscall pods); k8saudit Falco usually runs
/// as a Deployment and sees audit events of the whole cluster.
pub fn is_daemonset_pod(pod: &Pod) -> bool {
    pod.metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.kind == "DaemonSet"))
}

/// The pod's name.
pub fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod json")
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
