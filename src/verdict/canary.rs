//! Canary alerts: the expected alert of a canary pod (`--canary`), told apart from real alerts
//! by its rule, its pod's name and that name in a path of the alert's own text. Expected, never
//! counted; and the canary report of the JSON contract.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::falco::event::Workload;
use crate::falco::{Event, Format};

/// Falco's default rule a canary triggers: `ln -s /etc/shadow ...` needs no privilege.
pub const DEFAULT_RULE: &str = "Create Symlink Over Sensitive Files";
/// The same rule's output title, as text output prints it (text has no rule names).
pub const DEFAULT_TITLE: &str = "Symlinks created over sensitive files";
/// Every canary pod's name starts so; then the run's nonce (8 hex digits), `-`, a number.
pub const POD_PREFIX: &str = "falco-verify-canary-";

/// A fresh nonce: 8 hex digits, different for every run.
pub fn nonce() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

/// A canary pod's name: [`POD_PREFIX`], the run's nonce, the node's index.
pub fn pod_name(nonce: &str, index: usize) -> String {
    format!("{POD_PREFIX}{nonce}-{index}")
}

/// The nonce of a canary-shaped name (`falco-verify-canary-1a2b3c4d-0`).
pub fn nonce_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(POD_PREFIX)?;
    let (nonce, index) = rest.split_once('-')?;
    let hex = nonce.len() == 8
        && nonce
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let number = !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit());
    (hex && number).then_some(nonce)
}

/// Canary names that stand in a path of the text (`linkpath=/tmp/falco-verify-canary-...`):
/// what the canary's own action wrote, unlike the pod name Falco appends.
fn names_in_paths(text: &str) -> Vec<&str> {
    let needle = format!("/{POD_PREFIX}");
    text.match_indices(&needle)
        .filter_map(|(at, _)| {
            let start = at + 1;
            let len = text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(text.len() - start);
            let name = &text[start..start + len];
            nonce_of(name).map(|_| name)
        })
        .collect()
}

/// What marks a canary's alert: the rule (JSON) or its title (text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRule {
    pub rule: String,
    pub title: String,
}

impl Default for CanaryRule {
    fn default() -> Self {
        CanaryRule {
            rule: DEFAULT_RULE.to_string(),
            title: DEFAULT_TITLE.to_string(),
        }
    }
}

/// A canary alert found in a log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sighting {
    /// The canary pod the alert is about (the name in its path).
    pub canary: String,
    pub nonce: String,
    /// Falco named the pod (and the namespace); false: the namespace was unresolved.
    pub labelled: bool,
    /// RFC3339, UTC.
    pub time: Option<String>,
    /// The Falco pod whose log held it.
    pub falco_pod: Option<String>,
    #[serde(skip)]
    pub at: Option<DateTime<Utc>>,
}

/// The canary alert `e` is, if it is one: the rule is a canary rule, a canary name stands in a
/// path of its text, and Falco either named that very pod or left the pod unresolved. A pod
/// merely named like a canary, or a canary rule without the name in a path, is no canary.
pub fn sighting(e: &Event, rules: &[CanaryRule]) -> Option<Sighting> {
    let rule = e.rule.as_deref()?;
    let ruled = rules.iter().any(|r| match e.format {
        Format::Json => r.rule == rule,
        Format::Text => r.title == rule,
    });
    if !ruled || e.internal {
        return None;
    }
    let text = e.output.as_deref()?;
    let workload = Workload::of(e.namespace.as_deref(), e.output_fields.as_ref(), Some(text));
    let named = names_in_paths(text);
    let canary = match &workload.pod {
        Some(pod) => named.into_iter().find(|n| n == pod)?,
        None => named.into_iter().next()?,
    };
    Some(Sighting {
        canary: canary.to_string(),
        nonce: nonce_of(canary).unwrap_or_default().to_string(),
        labelled: workload.pod.is_some(),
        time: e
            .time
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true)),
        falco_pod: None,
        at: e.time,
    })
}

/// How a canary fared on one node (`canary.nodes[].outcome`). The names are a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Falco reported the canary's action, labelled with its pod and namespace.
    Seen,
    /// Falco reported it without the namespace: it sees the namespace's processes there but
    /// cannot label them, so its alerts for the namespace cannot be attributed.
    SeenUnlabelled,
    /// Falco did not report a known-bad action within the canary timeout.
    NotSeen,
    /// The canary did not run: refused (RBAC, admission, quota), image not pulled, not
    /// scheduled.
    NotRun,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Seen => "seen",
            Outcome::SeenUnlabelled => "seen_unlabelled",
            Outcome::NotSeen => "not_seen",
            Outcome::NotRun => "not_run",
        }
    }
}

/// One canary pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryNode {
    /// Which round: `start`, or `end` (a `--for` soak has both).
    pub round: String,
    /// The node it was pinned to (or the scheduler placed it on).
    pub node: Option<String>,
    pub pod: String,
    pub outcome: Outcome,
    /// When Falco's alert says the action happened (RFC3339).
    pub seen_at: Option<String>,
    /// From the pod's creation to the alert in the log.
    pub latency_ms: Option<u64>,
    pub falco_pod: Option<String>,
    /// What happened, with the API's own reason when it did not run.
    pub message: String,
}

/// `canary` in the JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryReport {
    pub nonce: String,
    pub image: String,
    pub rule: String,
    pub nodes: Vec<CanaryNode>,
}

impl Outcome {
    /// The node coverage gap this outcome leaves, if any.
    pub fn gap_kind(self) -> Option<super::GapKind> {
        match self {
            Outcome::Seen => None,
            Outcome::SeenUnlabelled => Some(super::GapKind::CanaryUnlabelled),
            Outcome::NotSeen => Some(super::GapKind::CanaryNotSeen),
            Outcome::NotRun => Some(super::GapKind::CanaryNotRun),
        }
    }
}

impl CanaryReport {
    /// Canaries seen with their labels, of all.
    pub fn seen(&self) -> (usize, usize) {
        let seen = self
            .nodes
            .iter()
            .filter(|n| n.outcome == Outcome::Seen)
            .count();
        (seen, self.nodes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(rule: &str, output: &str, pod: Option<&str>, ns: Option<&str>) -> Event {
        let fields = serde_json::json!({
            "k8s.pod.name": pod,
            "k8s.ns.name": ns,
            "container.id": "abc",
        });
        let line = serde_json::json!({
            "output": output,
            "output_fields": fields,
            "priority": "Warning",
            "rule": rule,
            "time": "2024-01-15T10:31:00Z",
        });
        crate::falco::event::parse_json(line.to_string().as_bytes()).expect("event")
    }

    #[test]
    fn only_the_canary_rule_with_its_own_name_in_a_path_is_a_canary() {
        let rules = [CanaryRule::default()];
        let name = "falco-verify-canary-0a1b2c3d-0";
        let out = format!(
            "Symlinks created over sensitive files | target=/etc/shadow linkpath=/tmp/{name}"
        );
        let s = sighting(&ev(DEFAULT_RULE, &out, Some(name), Some("ns")), &rules).expect("canary");
        assert_eq!(
            (s.canary.as_str(), s.nonce.as_str(), s.labelled),
            (name, "0a1b2c3d", true)
        );
        // Unlabelled: the path alone names it.
        let s = sighting(&ev(DEFAULT_RULE, &out, None, None), &rules).expect("canary");
        assert!(!s.labelled);
        // A pod merely named like a canary, without the path: a normal alert.
        let plain = format!("Symlinks created | linkpath=/tmp/x k8s_pod_name={name}");
        assert!(sighting(&ev(DEFAULT_RULE, &plain, Some(name), Some("ns")), &rules).is_none());
        // Another canary's path from a pod of another name: a normal alert.
        assert!(sighting(&ev(DEFAULT_RULE, &out, Some("web-1"), Some("ns")), &rules).is_none());
        // Another rule: a normal alert.
        assert!(sighting(&ev("Terminal shell", &out, Some(name), Some("ns")), &rules).is_none());
        assert_eq!(nonce_of("falco-verify-canary-0A1B2C3D-0"), None);
        assert_eq!(nonce_of("falco-verify-canary-0a1b2c3d-"), None);
    }
}
