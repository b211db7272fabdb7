//! Node coverage: did a Falco pod watch every node where the namespace ran, for the part of the
//! window it ran there? The map of nodes comes from the sources; the judgement is made here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::ledger::{Gap, GapKind};
use super::Window;

/// Where the namespace ran in the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// The map was made (its pods and Events could be listed).
    pub mapped: bool,
    pub nodes: BTreeMap<String, NodeUse>,
    /// What the Node objects say, by node name; `None` when they could not be read.
    pub facts: Option<BTreeMap<String, NodeFacts>>,
    /// Said with the result (e.g. the window is older than the Events kept).
    pub notes: Vec<String>,
}

impl Placement {
    /// The namespace's pod `pod` ran (or was placed) on `node`, from `since` when known.
    pub fn add(&mut self, node: &str, pod: &str, since: Option<DateTime<Utc>>) {
        let u = self.nodes.entry(node.to_string()).or_default();
        u.pods.insert(pod.to_string());
        u.since = match (u.since, since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Adds a later map of the same namespace (made again at the end of a followed window).
    pub fn merge(&mut self, later: Placement) {
        for (node, u) in later.nodes {
            for pod in &u.pods {
                self.add(&node, pod, u.since);
            }
        }
        if later.facts.is_some() {
            self.facts = later.facts;
        }
    }

    pub fn has(&self, node: &str, pod: &str) -> bool {
        self.nodes.get(node).is_some_and(|u| u.pods.contains(pod))
    }
}

/// The namespace's use of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeUse {
    pub pods: BTreeSet<String>,
    /// The earliest time one of them started (or was scheduled) there.
    pub since: Option<DateTime<Utc>>,
}

/// What a Node object says about whether a DaemonSet pod can run on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// `EKS Fargate`, `virtual-kubelet`: DaemonSets do not run there.
    pub serverless: Option<String>,
    /// `key=value:effect` of its NoSchedule / NoExecute taints.
    pub taints: Vec<String>,
}

/// A Falco pod as node coverage sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FalcoOnNode {
    pub pod: String,
    pub node: String,
    /// When the earliest container instance read started watching.
    pub watching_since: Option<DateTime<Utc>>,
}

/// How the nodes were checked (`node_coverage.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverageMode {
    /// The nodes where the namespace ran were mapped and checked.
    Nodes,
    /// `--node-coverage=false` (or every namespace, `-A`): Falco pods only.
    Off,
    /// Files: there are no nodes to map; every input counts as one where the namespace ran.
    Offline,
}

/// One node where the namespace ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRow {
    pub node: String,
    /// The namespace's pods seen on it (now, or in Scheduled Events).
    pub namespace_pods: Vec<String>,
    /// The Falco pod that watched it.
    pub falco_pod: Option<String>,
    /// A Falco pod read it for the whole part of the window the namespace ran there.
    pub covered: bool,
    /// The part of the window the Falco pod's log was read for (RFC3339).
    pub read_from: Option<String>,
    pub read_to: Option<String>,
    /// The node's own gaps, then its Falco pod's.
    pub gaps: Vec<Gap>,
    /// The canary's outcome on this node (`--canary`); null without one.
    pub canary: Option<String>,
    /// The node's own gaps (not its Falco pod's, which the pod's report holds).
    #[serde(skip)]
    pub own_gaps: Vec<Gap>,
}

/// `node_coverage` in the JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeCoverage {
    pub mode: CoverageMode,
    /// The map of nodes was made.
    pub mapped: bool,
    pub nodes: Vec<NodeRow>,
    /// Gaps of the mapping itself (`coverage_unmapped`).
    pub gaps: Vec<Gap>,
}

impl NodeCoverage {
    pub fn new(mode: CoverageMode) -> Self {
        NodeCoverage {
            mode,
            mapped: false,
            nodes: Vec::new(),
            gaps: Vec::new(),
        }
    }

    /// The mapping could not be done: a gap, with the Role that would allow it.
    pub fn unmapped(namespace: &str, why: &str) -> Self {
        let mut c = NodeCoverage::new(CoverageMode::Nodes);
        c.gaps.push(Gap::new(
            GapKind::CoverageUnmapped,
            format!(
                "the nodes where {namespace} ran could not be mapped ({why}), so it is not known that Falco watched them. Grant list on pods and events in {namespace} (`kubectl create role falco-verify-nodes -n {namespace} --verb=list --resource=pods,events` and a RoleBinding; see README, RBAC), or pass --node-coverage=false to check Falco pods only"
            ),
        ));
        c
    }

    /// The gaps that are the nodes' own (not a Falco pod's, which its report already holds).
    pub fn open_gaps(&self) -> Vec<(String, &Gap)> {
        let mut v: Vec<(String, &Gap)> = self
            .gaps
            .iter()
            .map(|g| ("node coverage".to_string(), g))
            .collect();
        for n in &self.nodes {
            v.extend(n.own_gaps.iter().map(|g| (format!("node {}", n.node), g)));
        }
        v
    }

    /// Adds each canary's outcome to its node's row; a canary that was not seen with its labels
    /// leaves a gap on its node (or on the map, for a node the namespace did not run on).
    pub fn add_canaries(&mut self, report: &super::canary::CanaryReport) {
        for c in &report.nodes {
            let gap = c.outcome.gap_kind().map(|k| {
                let at = c.node.as_deref().unwrap_or("an unscheduled node");
                Gap::new(
                    k,
                    format!("canary {} ({}) on {at}: {}", c.pod, c.round, c.message),
                )
            });
            match self
                .nodes
                .iter_mut()
                .find(|n| Some(&n.node) == c.node.as_ref())
            {
                Some(row) => {
                    // The worse of two rounds stands.
                    if row.canary.is_none() || c.outcome != super::canary::Outcome::Seen {
                        row.canary = Some(c.outcome.as_str().to_string());
                    }
                    if let Some(g) = gap {
                        row.own_gaps.push(g.clone());
                        row.gaps.insert(0, g);
                        row.covered = false;
                    }
                }
                None => self.gaps.extend(gap),
            }
        }
    }

    /// Nodes whose coverage closed.
    pub fn covered(&self) -> usize {
        self.nodes.iter().filter(|n| n.covered).count()
    }
}

fn secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Judges every node of the map against the Falco pods read and the gaps of their logs
/// (`(Falco pod, gaps)` for every source read).
pub fn judge(
    placement: &Placement,
    falco: &[FalcoOnNode],
    reports: &[(String, Vec<Gap>)],
    window: Window,
    window_end: DateTime<Utc>,
    namespace: &str,
) -> NodeCoverage {
    let mut c = NodeCoverage::new(CoverageMode::Nodes);
    c.mapped = placement.mapped;
    for (node, used) in &placement.nodes {
        let mut row = NodeRow {
            node: node.clone(),
            namespace_pods: used.pods.iter().cloned().collect(),
            falco_pod: None,
            covered: false,
            read_from: None,
            read_to: None,
            gaps: Vec::new(),
            canary: None,
            own_gaps: Vec::new(),
        };
        let here: Vec<&FalcoOnNode> = falco.iter().filter(|f| &f.node == node).collect();
        if here.is_empty() {
            row.own_gaps.push(Gap::new(
                GapKind::NoFalcoPod,
                no_falco_why(node, placement.facts.as_ref(), namespace),
            ));
        }
        // The namespace needs watching from when it first ran there (or the window start).
        let need_from = used.since.map_or(window.start, |s| s.max(window.start));
        let report_of = |f: &FalcoOnNode| reports.iter().find(|(name, _)| *name == f.pod);
        let late = |f: &FalcoOnNode| f.watching_since.is_some_and(|w| w > need_from);
        let best = here
            .iter()
            .find(|f| !late(f) && report_of(f).is_some_and(|(_, gaps)| gaps.is_empty()))
            .or_else(|| here.first());
        if let Some(f) = best {
            row.falco_pod = Some(f.pod.clone());
            if late(f) {
                let first = used
                    .since
                    .map(secs)
                    .unwrap_or_else(|| "the window start".into());
                row.own_gaps.push(Gap::new(
                    GapKind::StartedLate,
                    format!(
                        "Falco pod {} on node {node} started watching at {}, after pods of {namespace} ran there (from {first}): what they did before was not watched",
                        f.pod,
                        f.watching_since.map(secs).unwrap_or_default()
                    ),
                ));
            }
            let from = f
                .watching_since
                .map_or(window.start, |w| w.max(window.start));
            row.read_from = Some(secs(from));
            row.read_to = Some(secs(window_end));
            let own_late = row.own_gaps.iter().any(|g| g.kind == GapKind::StartedLate);
            match report_of(f) {
                // The node's own `started_late` says it for this node; once is enough.
                Some((_, gaps)) => row.gaps.extend(
                    gaps.iter()
                        .filter(|g| !(own_late && g.kind == GapKind::StartedLate))
                        .cloned(),
                ),
                None => row.own_gaps.push(Gap::new(
                    GapKind::Unreadable,
                    format!("Falco pod {} on node {node} was not read", f.pod),
                )),
            }
        }
        let mut gaps = row.own_gaps.clone();
        gaps.append(&mut row.gaps);
        row.gaps = gaps;
        row.covered = row.gaps.is_empty();
        c.nodes.push(row);
    }
    c
}

/// Why a node has no Falco pod, as far as its Node object tells.
fn no_falco_why(
    node: &str,
    facts: Option<&BTreeMap<String, NodeFacts>>,
    namespace: &str,
) -> String {
    let Some(facts) = facts else {
        return format!("no Falco pod of the selector runs on node {node}, where pods of {namespace} ran (Node objects could not be read: why is not known). Check the Falco DaemonSet's nodeSelector and tolerations (`kubectl get ds -n falco -o wide`)");
    };
    let Some(f) = facts.get(node) else {
        return format!("node {node} no longer exists (removed during the window, e.g. by the cluster autoscaler): pods of {namespace} ran there and no Falco log of that node is left to read");
    };
    if let Some(kind) = &f.serverless {
        return format!("node {node} is a serverless node ({kind}): DaemonSets do not run there, so Falco cannot watch pods of {namespace} on it. Run the namespace's pods on nodes with Falco");
    }
    if !f.taints.is_empty() {
        return format!("no Falco pod runs on node {node}, tainted {}: the Falco DaemonSet does not tolerate it. Add a toleration to the DaemonSet (Helm value `tolerations`)", f.taints.join(", "));
    }
    format!("no Falco pod of the selector runs on node {node}, where pods of {namespace} ran. Check the Falco DaemonSet's nodeSelector and affinity (`kubectl get ds -n falco -o wide`)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn each_node_needs_a_falco_pod_from_when_the_namespace_ran_there() {
        let window = Window {
            start: t("2024-01-15T10:00:00Z"),
            end: None,
        };
        let mut p = Placement {
            mapped: true,
            ..Placement::default()
        };
        p.add("watched", "web-1", Some(t("2024-01-15T10:05:00Z")));
        p.add("late", "web-2", Some(t("2024-01-15T10:05:00Z")));
        p.add("fargate", "web-3", None);
        p.add("tainted", "web-4", None);
        p.add("gone", "web-5", None);
        let mut facts = BTreeMap::new();
        for n in ["watched", "late"] {
            facts.insert(n.to_string(), NodeFacts::default());
        }
        facts.insert(
            "fargate".to_string(),
            NodeFacts {
                serverless: Some("EKS Fargate".into()),
                taints: vec![],
            },
        );
        facts.insert(
            "tainted".to_string(),
            NodeFacts {
                serverless: None,
                taints: vec!["gpu=true:NoSchedule".into()],
            },
        );
        p.facts = Some(facts);
        let falco = [
            FalcoOnNode {
                pod: "falco-a".into(),
                node: "watched".into(),
                // After the window start, before the namespace came: enough for this node.
                watching_since: Some(t("2024-01-15T10:01:00Z")),
            },
            FalcoOnNode {
                pod: "falco-b".into(),
                node: "late".into(),
                watching_since: Some(t("2024-01-15T10:06:00Z")),
            },
        ];
        let reports = [
            ("falco-a".to_string(), Vec::new()),
            ("falco-b".to_string(), Vec::new()),
        ];
        let c = judge(
            &p,
            &falco,
            &reports,
            window,
            t("2024-01-15T11:00:00Z"),
            "ns",
        );
        let kinds: Vec<(&str, Vec<GapKind>)> = c
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.gaps.iter().map(|g| g.kind).collect()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("fargate", vec![GapKind::NoFalcoPod]),
                ("gone", vec![GapKind::NoFalcoPod]),
                ("late", vec![GapKind::StartedLate]),
                ("tainted", vec![GapKind::NoFalcoPod]),
                ("watched", vec![]),
            ]
        );
        let msg = |n: &str| {
            c.nodes
                .iter()
                .find(|r| r.node == n)
                .map(|r| r.gaps[0].message.clone())
        };
        assert!(msg("fargate").is_some_and(|m| m.contains("serverless")));
        assert!(msg("gone").is_some_and(|m| m.contains("no longer exists")));
        assert!(msg("tainted").is_some_and(|m| m.contains("gpu=true:NoSchedule")));
        assert_eq!(c.covered(), 1);
        assert_eq!(c.open_gaps().len(), 4);
    }
}
