//! JSON objects as a real API server renders them: Pod, PodList, Table, Status, discovery.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::model::{ContainerState, FakeContainer, FakePod};
use super::timefmt::{human_duration, rfc3339_secs};

/// The user name the fake API server says the token belongs to (in Forbidden messages).
pub const USER: &str = "test";

// ------------------------------------------------------------------ Status

pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "AlreadyExists",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

/// A `Status` object.
pub fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

pub fn unauthorized() -> Value {
    status(401, "Unauthorized", "Unauthorized", None)
}

/// The Status a fault injection answers for `code` on the object `kind/name` (`name` empty for
/// lists) at `verb` of `resource` (e.g. "pods/log") in `namespace` (None: cluster scope).
pub fn fault_status(
    code: u16,
    verb: &str,
    resource: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    retry_after: Option<u32>,
) -> Value {
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    details.insert("kind".into(), json!(kind));
    if let Some(r) = retry_after {
        details.insert("retryAfterSeconds".into(), json!(r));
    }
    let what = if name.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} {name:?}")
    };
    let (message, details) = match code {
        401 => return unauthorized(),
        403 => (forbidden_message(verb, resource, name, namespace), details),
        404 => {
            if name.is_empty() {
                let mut d = Map::new();
                if let Some(r) = retry_after {
                    d.insert("retryAfterSeconds".into(), json!(r));
                }
                ("the server could not find the requested resource".to_string(), d)
            } else {
                (format!("{what} not found"), details)
            }
        }
        429 => ("Too many requests, please try again later.".to_string(), {
            let mut d = Map::new();
            if let Some(r) = retry_after {
                d.insert("retryAfterSeconds".into(), json!(r));
            }
            d
        }),
        500 => {
            let mut d = details;
            d.insert(
                "causes".into(),
                json!([{"message": "fake fault injected"}]),
            );
            (
                "Internal error occurred: fake fault injected".to_string(),
                d,
            )
        }
        503 => (
            "the server is currently unable to handle the request".to_string(),
            details,
        ),
        504 => (
            "Timeout: request did not complete within requested timeout - context deadline exceeded"
                .to_string(),
            details,
        ),
        _ => (format!("fake fault {code} for {what}"), details),
    };
    status(
        code,
        reason_for(code),
        &message,
        Some(Value::Object(details)),
    )
}

/// `pods "x" is forbidden: User "test" cannot get resource "pods/log" in API group "" in the
/// namespace "falco"`
pub fn forbidden_message(
    verb: &str,
    resource: &str,
    name: &str,
    namespace: Option<&str>,
) -> String {
    forbidden_message_group(verb, resource, "", name, namespace)
}

pub fn forbidden_message_group(
    verb: &str,
    resource: &str,
    group: &str,
    name: &str,
    namespace: Option<&str>,
) -> String {
    let base = resource.split('/').next().unwrap_or(resource);
    let base = if group.is_empty() {
        base.to_string()
    } else {
        format!("{base}.{group}")
    };
    let subject = if name.is_empty() {
        base
    } else {
        format!("{base} {name:?}")
    };
    let scope = match namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".to_string(),
    };
    format!(
        "{subject} is forbidden: User {USER:?} cannot {verb} resource {resource:?} in API group {group:?} {scope}"
    )
}

// ------------------------------------------------------------------ ids

/// FNV-1a 64.
pub fn hash64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Deterministic hex string of `len` digits derived from `seed`.
pub fn hex_id(seed: &str, len: usize) -> String {
    let mut state = hash64(seed);
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        out.push_str(&format!("{:016x}", splitmix(&mut state)));
    }
    out.truncate(len);
    out
}

pub fn uid(seed: &str) -> String {
    let h = hex_id(seed, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

// ------------------------------------------------------------------ pods

fn default_creation() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 9, 59, 40)
        .single()
        .expect("valid constant date")
}

/// When the pod was created: 10 s before the earliest container start we know of.
pub fn creation_time(pod: &FakePod) -> DateTime<Utc> {
    let mut earliest: Option<DateTime<Utc>> = None;
    let mut see = |t: DateTime<Utc>| {
        earliest = Some(earliest.map_or(t, |e| e.min(t)));
    };
    for c in &pod.containers {
        match &c.state {
            ContainerState::Running { started_at } => see(*started_at),
            ContainerState::Terminated { started_at, .. } => see(*started_at),
            ContainerState::Waiting { .. } => {}
        }
        if let Some(t) = &c.last_terminated {
            see(t.started_at);
        }
    }
    earliest.map_or_else(default_creation, |t| t - Duration::seconds(10))
}

pub fn image_for(container: &str) -> String {
    match container {
        "falco" => "docker.io/falcosecurity/falco:0.42.1".to_string(),
        "falcoctl-artifact-follow" | "falcoctl-artifact-install" => {
            "docker.io/falcosecurity/falcoctl:0.11.2".to_string()
        }
        "falco-driver-loader" => "docker.io/falcosecurity/falco-driver-loader:0.42.1".to_string(),
        other => format!("registry.example.invalid/{other}:1.0.0"),
    }
}

fn host_ip(node: &str) -> String {
    format!("10.0.1.{}", 2 + hash64(node) % 250)
}

fn pod_ip(pod: &FakePod) -> String {
    let h = hash64(&format!("{}/{}", pod.namespace, pod.name));
    format!("10.42.{}.{}", h % 200, 2 + (h >> 8) % 250)
}

fn container_id(pod: &FakePod, container: &str, instance: i32) -> String {
    format!(
        "containerd://{}",
        hex_id(
            &format!("{}/{}/{container}/{instance}", pod.namespace, pod.name),
            64
        )
    )
}

fn image_id(image: &str) -> String {
    let repo = image.rsplit_once(':').map_or(image, |(r, _)| r);
    format!("{repo}@sha256:{}", hex_id(image, 64))
}

fn terminated_reason(exit_code: i32) -> &'static str {
    if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

fn container_status(pod: &FakePod, c: &FakeContainer) -> Value {
    let image = image_for(&c.name);
    let running = c.is_running();
    let mut st = json!({
        "name": c.name,
        "image": image,
        "imageID": image_id(&image),
        "ready": running,
        "started": running,
        "restartCount": c.restart_count,
    });
    let current_id = container_id(pod, &c.name, c.restart_count);
    let last_id = container_id(pod, &c.name, c.restart_count - 1);
    let state = match &c.state {
        ContainerState::Running { started_at } => {
            st["containerID"] = json!(current_id);
            json!({"running": {"startedAt": rfc3339_secs(*started_at)}})
        }
        ContainerState::Waiting { reason } => {
            if c.last_terminated.is_some() {
                st["containerID"] = json!(last_id);
            }
            let mut w = json!({"reason": reason});
            if reason == "CrashLoopBackOff" {
                w["message"] = json!(format!(
                    "back-off 5m0s restarting failed container={} pod={}_{}({})",
                    c.name,
                    pod.name,
                    pod.namespace,
                    uid(&format!("{}/{}", pod.namespace, pod.name))
                ));
            }
            json!({ "waiting": w })
        }
        ContainerState::Terminated {
            started_at,
            finished_at,
            exit_code,
        } => {
            st["containerID"] = json!(current_id);
            json!({"terminated": {
                "exitCode": exit_code,
                "reason": terminated_reason(*exit_code),
                "startedAt": rfc3339_secs(*started_at),
                "finishedAt": rfc3339_secs(*finished_at),
                "containerID": current_id,
            }})
        }
    };
    st["state"] = state;
    st["lastState"] = match &c.last_terminated {
        Some(t) => json!({"terminated": {
            "exitCode": t.exit_code,
            "reason": terminated_reason(t.exit_code),
            "startedAt": rfc3339_secs(t.started_at),
            "finishedAt": rfc3339_secs(t.finished_at),
            "containerID": last_id,
        }}),
        None => json!({}),
    };
    st
}

pub fn metadata(pod: &FakePod, resource_version: u64) -> Value {
    let mut m = json!({
        "name": pod.name,
        "generateName": format!("{}-", pod.name.rsplit_once('-').map_or(pod.name.as_str(), |(p, _)| p)),
        "namespace": pod.namespace,
        "uid": uid(&format!("{}/{}", pod.namespace, pod.name)),
        "resourceVersion": resource_version.to_string(),
        "creationTimestamp": rfc3339_secs(creation_time(pod)),
    });
    if !pod.labels.is_empty() {
        m["labels"] = json!(pod.labels);
    }
    if !pod.annotations.is_empty() {
        m["annotations"] = json!(pod.annotations);
    }
    if pod.labels.get("app").map(String::as_str) == Some("falco")
        || pod.labels.get("app.kubernetes.io/name").map(String::as_str) == Some("falco")
    {
        m["ownerReferences"] = json!([{
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "name": "falco",
            "uid": uid(&format!("{}/daemonset/falco", pod.namespace)),
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    m
}

/// A full `Pod` object.
pub fn pod(pod: &FakePod, resource_version: u64) -> Value {
    let created = creation_time(pod);
    let containers: Vec<Value> = pod
        .containers
        .iter()
        .map(|c| json!({"name": c.name, "image": image_for(&c.name), "imagePullPolicy": "IfNotPresent", "resources": {}}))
        .collect();
    let init_containers: Vec<Value> = pod
        .init_containers
        .iter()
        .map(|n| json!({"name": n, "image": image_for(n), "imagePullPolicy": "IfNotPresent", "resources": {}}))
        .collect();
    let mut spec = json!({
        "containers": containers,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "falco",
        "schedulerName": "default-scheduler",
    });
    if !init_containers.is_empty() {
        spec["initContainers"] = json!(init_containers);
    }
    if let Some(node) = &pod.node {
        spec["nodeName"] = json!(node);
    }

    let all_ready =
        !pod.containers.is_empty() && pod.containers.iter().all(FakeContainer::is_running);
    let mut status = json!({ "phase": pod.phase, "qosClass": "Burstable" });
    if let Some(node) = &pod.node {
        let ready = if all_ready { "True" } else { "False" };
        let started = created + Duration::seconds(1);
        status["conditions"] = json!([
            {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": rfc3339_secs(started)},
            {"type": "Ready", "status": ready, "lastProbeTime": null, "lastTransitionTime": rfc3339_secs(started)},
            {"type": "ContainersReady", "status": ready, "lastProbeTime": null, "lastTransitionTime": rfc3339_secs(started)},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": rfc3339_secs(created)},
        ]);
        let ip = pod_ip(pod);
        status["hostIP"] = json!(host_ip(node));
        status["hostIPs"] = json!([{"ip": host_ip(node)}]);
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{ "ip": ip }]);
        status["startTime"] = json!(rfc3339_secs(started));
        if !pod.no_container_statuses {
            status["containerStatuses"] = json!(pod
                .containers
                .iter()
                .map(|c| container_status(pod, c))
                .collect::<Vec<_>>());
        }
        if !pod.init_containers.is_empty() {
            let inits: Vec<Value> = pod
                .init_containers
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let image = image_for(n);
                    let cid = container_id(pod, n, 0);
                    json!({
                        "name": n,
                        "image": image,
                        "imageID": image_id(&image),
                        "containerID": cid,
                        "ready": true,
                        "started": false,
                        "restartCount": 0,
                        "state": {"terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": rfc3339_secs(started + Duration::seconds(i as i64)),
                            "finishedAt": rfc3339_secs(started + Duration::seconds(i as i64 + 1)),
                            "containerID": cid,
                        }},
                        "lastState": {},
                    })
                })
                .collect();
            status["initContainerStatuses"] = json!(inits);
        }
    } else {
        status["conditions"] = json!([{
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": null,
            "lastTransitionTime": rfc3339_secs(created),
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
        }]);
    }

    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata(pod, resource_version),
        "spec": spec,
        "status": status,
    })
}

/// A `PodList`.
pub fn pod_list<'a>(pods: impl Iterator<Item = &'a FakePod>, resource_version: u64) -> Value {
    let items: Vec<Value> = pods
        .map(|p| {
            let mut v = pod(p, resource_version);
            // items of a list carry no kind/apiVersion
            if let Some(o) = v.as_object_mut() {
                o.remove("kind");
                o.remove("apiVersion");
            }
            v
        })
        .collect();
    json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items,
    })
}

/// The STATUS column of `kubectl get pods` (simplified port of the API server's printer).
fn status_column(pod: &FakePod) -> String {
    let mut reason = pod.phase.clone();
    if pod.node.is_none() {
        return reason;
    }
    for c in pod.containers.iter().rev() {
        match &c.state {
            ContainerState::Waiting { reason: r } if !r.is_empty() => reason = r.clone(),
            ContainerState::Terminated { exit_code, .. } => {
                reason = terminated_reason(*exit_code).to_string();
            }
            _ => {}
        }
    }
    reason
}

fn restarts_column(pod: &FakePod, now: DateTime<Utc>) -> String {
    let restarts: i32 = pod.containers.iter().map(|c| c.restart_count).sum();
    let last = pod
        .containers
        .iter()
        .filter_map(|c| c.last_terminated.as_ref().map(|t| t.finished_at))
        .max();
    match last {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    }
}

/// A `meta.k8s.io/v1` `Table` of pods, what `kubectl get pods` asks for.
pub fn pod_table<'a>(
    pods: impl Iterator<Item = &'a FakePod>,
    resource_version: u64,
    now: DateTime<Utc>,
) -> Value {
    let col = |name: &str, ty: &str, format: &str, description: &str, priority: i32| json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority});
    let columns = vec![
        col("Name", "string", "name", "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names", 0),
        col("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
        col("Status", "string", "", "The aggregate status of the containers in this pod.", 0),
        col("Restarts", "string", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
        col("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", 0),
        col("IP", "string", "", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
        col("Node", "string", "", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once it is scheduled to this node, this field will be set to the node name.", 1),
        col("Nominated Node", "string", "", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node.", 1),
        col("Readiness Gates", "string", "", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates", 1),
    ];
    let rows: Vec<Value> = pods
        .map(|p| {
            let ready = p.containers.iter().filter(|c| c.is_running()).count();
            let ip = if p.node.is_some() {
                pod_ip(p)
            } else {
                "<none>".to_string()
            };
            json!({
                "cells": [
                    p.name,
                    format!("{ready}/{}", p.containers.len()),
                    status_column(p),
                    restarts_column(p, now),
                    human_duration(now - creation_time(p)),
                    ip,
                    p.node.clone().unwrap_or_else(|| "<none>".to_string()),
                    "<none>",
                    "<none>",
                ],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": metadata(p, resource_version),
                },
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

// ------------------------------------------------------------------ discovery

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.1",
        "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
        "gitTreeState": "clean",
        "buildDate": "2025-05-15T08:19:08Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

pub fn api_group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
}

pub fn core_v1_resources() -> Value {
    let all = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    let r = |name: &str, singular: &str, namespaced: bool, kind: &str, short: &[&str]| {
        let mut v = json!({
            "name": name,
            "singularName": singular,
            "namespaced": namespaced,
            "kind": kind,
            "verbs": all,
        });
        if !short.is_empty() {
            v["shortNames"] = json!(short);
        }
        v
    };
    let mut pods = r("pods", "pod", true, "Pod", &["po"]);
    pods["categories"] = json!(["all"]);
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            r("configmaps", "configmap", true, "ConfigMap", &["cm"]),
            r("endpoints", "endpoints", true, "Endpoints", &["ep"]),
            r("events", "event", true, "Event", &["ev"]),
            r("namespaces", "namespace", false, "Namespace", &["ns"]),
            r("nodes", "node", false, "Node", &["no"]),
            pods,
            {"name": "pods/exec", "singularName": "", "namespaced": true, "kind": "PodExecOptions", "verbs": ["create", "get"]},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]},
            {"name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get", "patch", "update"]},
            r("secrets", "secret", true, "Secret", &[]),
            r("serviceaccounts", "serviceaccount", true, "ServiceAccount", &["sa"]),
            r("services", "service", true, "Service", &["svc"]),
        ],
    })
}

/// An `EventList` (core/v1).
pub fn event_list<'a>(
    events: impl Iterator<Item = &'a crate::model::FakeEvent>,
    resource_version: u64,
) -> Value {
    let items: Vec<Value> = events
        .map(|e| {
            json!({
                "metadata": {
                    "name": format!("{}.{:x}", e.pod, hash64(&e.message)),
                    "namespace": e.namespace,
                    "uid": uid(&format!("event/{}/{}", e.namespace, e.message)),
                    "resourceVersion": resource_version.to_string(),
                    "creationTimestamp": rfc3339_secs(e.at),
                },
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": e.namespace,
                    "name": e.pod,
                    "uid": uid(&format!("{}/{}", e.namespace, e.pod)),
                    "apiVersion": "v1",
                },
                "reason": e.reason,
                "message": e.message,
                "source": {},
                "firstTimestamp": null,
                "lastTimestamp": null,
                "type": "Normal",
                "eventTime": crate::timefmt::rfc3339_micro(e.at),
                "action": "Binding",
                "reportingComponent": "default-scheduler",
                "reportingInstance": "default-scheduler-control-plane",
            })
        })
        .collect();
    json!({
        "kind": "EventList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items,
    })
}

/// A `NodeList`.
pub fn node_list(nodes: &[crate::model::FakeNode], resource_version: u64) -> Value {
    let items: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let mut spec = json!({});
            if !n.taints.is_empty() {
                spec["taints"] = n
                    .taints
                    .iter()
                    .map(|(k, v, e)| json!({"key": k, "value": v, "effect": e}))
                    .collect();
            }
            json!({
                "metadata": {
                    "name": n.name,
                    "uid": uid(&format!("node/{}", n.name)),
                    "resourceVersion": resource_version.to_string(),
                    "labels": n.labels,
                },
                "spec": spec,
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            })
        })
        .collect();
    json!({
        "kind": "NodeList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items,
    })
}
