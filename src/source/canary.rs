//! The canary (`--canary`): a short-lived, unprivileged pod per node where the namespace ran,
//! whose one action Falco's default rules report; the report in that node's Falco log proves
//! Falco watches the namespace there. Every pod made is deleted, on every path.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use memchr::memmem;
use tokio::time::Instant;

use super::{Stop, StopSignal};
use crate::cluster::{self, Cluster, ClusterError, FalcoPod, LogRequest};
use crate::falco::{Decoder, Event, EventSink};
pub use crate::options::{CanaryOptions, DEFAULT_COMMAND, DEFAULT_IMAGE};
pub use crate::verdict::canary::nonce;
use crate::verdict::canary::{self, CanaryNode, CanaryReport, CanaryRule, Outcome, Sighting};

/// The label every pod this tool makes carries (and the cleanup command selects on).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kubectl-falco-verify");
/// The label holding a run's nonce.
pub const NONCE_LABEL: &str = "falco-verify.io/nonce";
/// Everything a round talks to.
pub struct Round<'a> {
    pub cluster: &'a Cluster,
    pub namespace: &'a str,
    pub falco_namespace: &'a str,
    /// The Falco pods read, to find the one of a canary's node.
    pub falco_pods: &'a [FalcoPod],
    /// `--container`, if given.
    pub container: Option<&'a str>,
    pub nonce: &'a str,
    pub options: &'a CanaryOptions,
    /// `start` or `end`.
    pub name: &'a str,
    /// The first pod's number: a later round's pods never reuse a name (a pod just deleted may
    /// still be terminating).
    pub first_index: usize,
}

impl Round<'_> {
    /// One canary on each of `nodes` (`None`: where the scheduler puts it), each watched in its
    /// node's Falco log until seen, refused or the canary timeout; then all deleted. Warnings
    /// (a pod that could not be deleted, with the command that does it) go to `warnings`.
    pub async fn run(
        &self,
        nodes: &[Option<String>],
        stop: &StopSignal,
        warnings: &mut Vec<String>,
    ) -> CanaryReport {
        let deadline = Instant::now() + self.options.timeout;
        let mut created = Vec::new();
        let mut watchers = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let name = canary::pod_name(self.nonce, self.first_index + i);
            let spec = pod_spec(
                &name,
                node.as_deref(),
                self.namespace,
                self.nonce,
                self.options,
            );
            let started = Utc::now();
            let made = match spec {
                Ok(spec) => {
                    self.cluster
                        .create_pod(self.namespace, &spec, deadline)
                        .await
                }
                Err(e) => Err(e),
            };
            match made {
                Ok(_) => {
                    created.push(name.clone());
                    watchers.push(self.watch(name, node.clone(), started, deadline, stop.clone()));
                }
                Err(e) => watchers.push(Box::pin(refused(
                    self.name.to_string(),
                    name,
                    node.clone(),
                    e,
                ))),
            }
        }
        let nodes = futures::future::join_all(watchers).await;
        self.delete(&created, warnings).await;
        CanaryReport {
            nonce: self.nonce.to_string(),
            image: self.options.image.clone(),
            rule: self.options.rule.rule.clone(),
            nodes,
        }
    }

    /// Watches one created canary until its alert is in its node's Falco log, it cannot run,
    /// the canary timeout, or the run's stop.
    fn watch(
        &self,
        pod: String,
        node: Option<String>,
        started: DateTime<Utc>,
        deadline: Instant,
        mut stop: StopSignal,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = CanaryNode> + Send + '_>> {
        Box::pin(async move {
            let mut row = CanaryNode {
                round: self.name.to_string(),
                node: node.clone(),
                pod: pod.clone(),
                outcome: Outcome::NotSeen,
                seen_at: None,
                latency_ms: None,
                falco_pod: None,
                message: String::new(),
            };
            let watched = async {
                let node = match node {
                    Some(n) => n,
                    None => match self.scheduled_to(&pod, deadline).await {
                        Ok(n) => n,
                        Err(why) => return Err((Outcome::NotRun, why)),
                    },
                };
                row.node = Some(node.clone());
                let falco = self
                    .falco_pods
                    .iter()
                    .find(|p| p.node.as_deref() == Some(&node) && p.watches_its_node());
                let Some(falco) = falco else {
                    return Err((
                        Outcome::NotSeen,
                        format!(
                            "no Falco pod runs on node {node}: nothing could report the canary"
                        ),
                    ));
                };
                let falco_name = falco.name.clone();
                row.falco_pod = Some(falco_name.clone());
                let container = cluster::choose_container(falco, self.container)
                    .map_err(|why| (Outcome::NotSeen, format!("Falco pod {falco_name} {why}")))?;
                tokio::select! {
                    seen = self.seen_in(&falco_name, &container, &pod, started, deadline) => seen,
                    why = self.not_running(&pod, deadline) => Err((Outcome::NotRun, why)),
                }
            };
            let result = tokio::select! {
                r = watched => r,
                s = stop.wait() => Err((Outcome::NotSeen, match s {
                    Stop::Interrupted => "stopped by a signal before the canary was seen".to_string(),
                    Stop::WindowEnd => "the window ended before the canary was seen".to_string(),
                })),
            };
            match result {
                Ok(s) => {
                    row.outcome = if s.labelled {
                        Outcome::Seen
                    } else {
                        Outcome::SeenUnlabelled
                    };
                    let latency = (Utc::now() - started).num_milliseconds().max(0) as u64;
                    row.latency_ms = Some(latency);
                    row.seen_at = s.time.clone();
                    row.message = if s.labelled {
                        format!("Falco reported the canary's action in {latency} ms")
                    } else {
                        format!("Falco reported the canary's action in {latency} ms but without its namespace: it sees the namespace's processes on this node and cannot label them, so their alerts cannot be attributed (check Falco's container runtime socket and metadata plugins)")
                    };
                }
                Err((outcome, message)) => {
                    row.outcome = outcome;
                    row.message = if outcome == Outcome::NotSeen && message.is_empty() {
                        format!("Falco did not report the canary's action (rule {:?}) within {}s: its driver, rules or output are not working (e.g. buffered stdout)", self.options.rule.rule, self.options.timeout.as_secs())
                    } else {
                        message
                    };
                }
            }
            row
        })
    }

    /// Follows the Falco pod's log from just before the canary started until its alert comes.
    async fn seen_in(
        &self,
        falco: &str,
        container: &str,
        canary: &str,
        started: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<Sighting, (Outcome, String)> {
        let request = LogRequest {
            follow: true,
            container: container.to_string(),
            previous: false,
            since: Some(started - chrono::Duration::seconds(5)),
            limit_bytes: None,
        };
        let not_seen = |e: ClusterError| {
            (
                Outcome::NotSeen,
                format!("reading Falco pod {falco}'s log failed: {e}"),
            )
        };
        let mut stream = self
            .cluster
            .open_log(self.falco_namespace, falco, &request, deadline)
            .await
            .map_err(not_seen)?;
        let sink = Watch {
            canary: canary.as_bytes().to_vec(),
            rules: vec![self.options.rule.clone()],
            seen: None,
        };
        let mut decoder = Decoder::new(sink);
        loop {
            let chunk = match stream.next_chunk(deadline).await {
                Ok(Some(c)) => c,
                Ok(None) => {
                    return Err((
                        Outcome::NotSeen,
                        format!("Falco pod {falco}'s log ended before the canary was seen"),
                    ))
                }
                Err(ClusterError::Deadline { .. }) => {
                    return Err((Outcome::NotSeen, String::new()))
                }
                Err(e) => return Err(not_seen(e)),
            };
            let n = chunk.len();
            decoder.feed(chunk);
            stream.consume(n);
            // A text alert is decoded when the next line starts: the canary cannot wait.
            decoder.close_open_record();
            if let Some(s) = decoder.sink_mut().seen.take() {
                return Ok(s);
            }
        }
    }

    /// Waits until the canary pod shows it cannot run (image not pulled, not schedulable,
    /// failed), with the API's own reason; pending for ever otherwise.
    async fn not_running(&self, pod: &str, deadline: Instant) -> String {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let Ok(p) = self.cluster.get_pod(self.namespace, pod, deadline).await else {
                continue;
            };
            if let Some(why) = cannot_run(&p) {
                return why;
            }
        }
    }

    /// The node the scheduler put a canary without a node on.
    async fn scheduled_to(&self, pod: &str, deadline: Instant) -> Result<String, String> {
        loop {
            match self.cluster.get_pod(self.namespace, pod, deadline).await {
                Ok(p) => {
                    if let Some(n) = cluster::node_of(&p) {
                        return Ok(n);
                    }
                    if let Some(why) = cannot_run(&p) {
                        return Err(why);
                    }
                }
                Err(ClusterError::Deadline { .. }) => {
                    return Err(
                        "the scheduler did not place the canary within the canary timeout"
                            .to_string(),
                    )
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(
                    "the scheduler did not place the canary within the canary timeout".to_string(),
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Deletes every canary made; one that could not be deleted is said with the command that
    /// deletes it.
    async fn delete(&self, created: &[String], warnings: &mut Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let deletes = created
            .iter()
            .map(|name| self.cluster.delete_pod(self.namespace, name, deadline));
        let results = futures::future::join_all(deletes).await;
        for (name, r) in created.iter().zip(results) {
            if let Err(e) = r {
                warnings.push(format!(
                    "the canary pod {name} could not be deleted ({e}); delete it with `kubectl delete pod -n {} -l {}={},{NONCE_LABEL}={}`",
                    self.namespace, MANAGED_BY.0, MANAGED_BY.1, self.nonce
                ));
            }
        }
    }
}

/// The canary pod: what PodSecurity `restricted` admits (non-root, no capabilities, no
/// privilege escalation, RuntimeDefault seccomp), small, labelled, pinned to its node.
fn pod_spec(
    name: &str,
    node: Option<&str>,
    namespace: &str,
    nonce: &str,
    options: &CanaryOptions,
) -> Result<Pod, ClusterError> {
    let mut spec = serde_json::json!({
        "restartPolicy": "Never",
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "terminationGracePeriodSeconds": 0,
        // Gone on its own even if this run is killed before it deletes it.
        "activeDeadlineSeconds": options.timeout.as_secs() + 120,
        // Pinned to the node, whatever its taints: it must run where the namespace ran.
        "tolerations": [{"operator": "Exists"}],
        // What PodSecurity `restricted` asks for.
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [{
            "name": "canary",
            "image": options.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/sh", "-c", options.command],
            "env": [{"name": "FALCO_VERIFY_CANARY", "value": name}],
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": true,
            },
            "resources": {
                "requests": {"cpu": "10m", "memory": "16Mi"},
                "limits": {"cpu": "100m", "memory": "32Mi"},
            },
        }],
    });
    if let Some(n) = node {
        spec["nodeName"] = serde_json::json!(n);
    }
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                MANAGED_BY.0: MANAGED_BY.1,
                "app.kubernetes.io/name": "falco-verify-canary",
                NONCE_LABEL: nonce,
            },
        },
        "spec": spec,
    });
    serde_json::from_value(pod).map_err(|e| ClusterError::Config {
        detail: format!("the canary pod spec is invalid: {e}"),
    })
}

/// A canary the API refused: not run, with its reason.
async fn refused(round: String, pod: String, node: Option<String>, e: ClusterError) -> CanaryNode {
    CanaryNode {
        round,
        node,
        pod,
        outcome: Outcome::NotRun,
        seen_at: None,
        latency_ms: None,
        falco_pod: None,
        message: match &e {
            // A 403 from admission is no RBAC matter: granting create would not help.
            ClusterError::Forbidden { message, .. } if message.contains("violates PodSecurity") => {
                format!("the canary pod was refused by PodSecurity admission: {message}. The canary meets `restricted`: check the namespace's pod-security labels and other admission policies")
            }
            e => format!("the canary pod was refused: {e}"),
        },
    }
}

/// Why a pod cannot run, from its status: an image that cannot be pulled, a container that
/// cannot be created, a pod the scheduler cannot place, a pod that failed.
fn cannot_run(p: &Pod) -> Option<String> {
    let status = p.status.as_ref()?;
    for cs in status.container_statuses.iter().flatten() {
        let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(w) = waiting {
            let reason = w.reason.as_deref().unwrap_or("");
            if matches!(
                reason,
                "ErrImagePull"
                    | "ImagePullBackOff"
                    | "InvalidImageName"
                    | "CreateContainerConfigError"
                    | "CreateContainerError"
            ) {
                let msg = w.message.as_deref().unwrap_or("");
                return Some(
                    format!("the canary pod cannot run: {reason} {msg}")
                        .trim()
                        .to_string(),
                );
            }
        }
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(c) = unschedulable {
        return Some(format!(
            "the canary pod was not scheduled: {}",
            c.message.as_deref().unwrap_or("Unschedulable")
        ));
    }
    (status.phase.as_deref() == Some("Failed")).then(|| {
        format!(
            "the canary pod failed: {}",
            status
                .reason
                .as_deref()
                .or(status.message.as_deref())
                .unwrap_or("Failed")
        )
    })
}

/// The decoder's sink while waiting for one canary's alert.
struct Watch {
    canary: Vec<u8>,
    rules: Vec<CanaryRule>,
    seen: Option<Sighting>,
}

impl EventSink for Watch {
    fn wants(&self, raw: &[u8]) -> bool {
        memmem::find(raw, &self.canary).is_some()
    }

    fn event(&mut self, e: Event) {
        if let Some(s) = canary::sighting(&e, &self.rules) {
            if s.canary.as_bytes() == self.canary.as_slice() && self.seen.is_none() {
                self.seen = Some(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_pod_is_what_podsecurity_restricted_admits() {
        let pod = pod_spec(
            "falco-verify-canary-0a1b2c3d-0",
            Some("node-a"),
            "ns",
            "0a1b2c3d",
            &CanaryOptions::default(),
        )
        .expect("pod");
        let v = serde_json::to_value(&pod).expect("json");
        let spec = &v["spec"];
        assert_eq!(spec["nodeName"], "node-a");
        assert_eq!(
            spec["tolerations"],
            serde_json::json!([{"operator": "Exists"}])
        );
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        assert_eq!(spec["securityContext"]["runAsUser"], 65534);
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &spec["containers"][0];
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(
            c["securityContext"]["capabilities"]["drop"],
            serde_json::json!(["ALL"])
        );
        assert!(c.get("volumeMounts").is_none() && spec.get("volumes").is_none());
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(v["metadata"]["labels"][MANAGED_BY.0], MANAGED_BY.1);
        assert_eq!(v["metadata"]["labels"][NONCE_LABEL], "0a1b2c3d");
        assert!(c["command"][2]
            .as_str()
            .is_some_and(|s| s.contains("ln -s /etc/shadow")));
        assert!(spec["activeDeadlineSeconds"]
            .as_u64()
            .is_some_and(|s| s > 60));
    }

    #[test]
    fn nonces_differ_and_make_canary_names() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert_eq!(canary::nonce_of(&canary::pod_name(&a, 3)), Some(a.as_str()));
    }
}
