//! What a check is asked to do: the options the arguments resolve to (or a library caller
//! sets), read by every stage. The kind of input is decided here, once, and carried as a value.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cluster::{self, Target};
use crate::falco::{self, Priority};
use crate::verdict::canary::CanaryRule;
use crate::verdict::{
    self, AlertFilter, CoverageMode, Echo, GroupBy, Ignores, InputKind, Scope, Window,
};

/// Where Falco's output is read from.
#[derive(Debug, Clone)]
pub enum Input {
    /// The Falco pods of a cluster.
    Cluster(Box<Target>),
    /// Files of Falco output (`-` is standard input), e.g. saved `kubectl logs --timestamps`.
    Files(Vec<PathBuf>),
}

/// Follow the Falco pods' logs live instead of reading them once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follow {
    /// The window's end (`--for`); `None` for `--watch` until stopped.
    pub until: Option<DateTime<Utc>>,
    /// How often the Falco pod list is read again to pick up new pods.
    pub relist_every: Duration,
}

/// How often `--watch` / `--for` read the pod list again, by default.
pub const RELIST_EVERY: Duration = Duration::from_secs(10);

/// Everything a check needs. [`CheckOptions::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Whose alerts count.
    pub scope: Scope,
    pub window: Window,
    /// Lowest priority that blocks.
    pub threshold: Priority,
    pub falco_namespace: String,
    /// `None`: `app=falco`, falling back to the Helm chart's `app.kubernetes.io/name=falco`.
    pub selector: Option<String>,
    pub container: Option<String>,
    /// Deadline for all cluster work of a one-shot check (and for discovery when following).
    pub timeout: Duration,
    pub fail_closed: bool,
    /// `Some(value)`: AEGIS_SECURITY__FALCO_ENABLED switched the check off.
    pub disabled: Option<String>,
    pub input: Input,
    /// `Some`: follow the logs (`--watch`, `--for`).
    pub follow: Option<Follow>,
    /// Falco pods read at the same time (one-shot).
    pub max_concurrency: usize,
    /// Alerts listed in the result (all are counted).
    pub max_alerts: usize,
    /// Longest log line kept; longer lines are counted and skipped.
    pub max_line: usize,
    /// Only the Falco pods on nodes where the namespace's pods ran (plus k8saudit ones).
    pub nodes_of_namespace: bool,
    /// Map the nodes where the namespace ran and require a Falco pod watching each (default).
    pub node_coverage: bool,
    /// `--canary`: prove it with a canary pod on each of those nodes.
    pub canary: Option<CanaryOptions>,
    /// This run's nonce, in every canary pod's name.
    pub canary_nonce: String,
    /// Reference "now" for `since_minutes`.
    pub now: DateTime<Utc>,
    /// Accepted noise: counted and shown, never blocking.
    pub ignores: Ignores,
    pub group_by: Option<GroupBy>,
    /// Updated while reading, for a progress display.
    pub progress: Option<Arc<Progress>>,
    /// Said once with the result (e.g. connection flags that offline input does not use).
    pub notes: Vec<String>,
}

impl CheckOptions {
    pub fn new(namespace: &str, since: DateTime<Utc>) -> Self {
        CheckOptions {
            scope: Scope::Namespace(namespace.to_string()),
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
            disabled: None,
            input: Input::Cluster(Box::new(Target::from_environment())),
            follow: None,
            max_concurrency: 16,
            max_alerts: 1000,
            max_line: falco::DEFAULT_MAX_LINE,
            nodes_of_namespace: false,
            node_coverage: true,
            canary: None,
            canary_nonce: verdict::canary::nonce(),
            now: Utc::now(),
            ignores: Ignores::default(),
            group_by: None,
            progress: None,
            notes: Vec::new(),
        }
    }

    /// True when reading files, not a cluster.
    pub fn is_offline(&self) -> bool {
        matches!(self.input, Input::Files(_))
    }

    /// The selector asked for, or the default one.
    pub fn selector_or_default(&self) -> &str {
        self.selector
            .as_deref()
            .unwrap_or(cluster::DEFAULT_SELECTOR)
    }

    /// How node coverage is checked for these options.
    pub fn coverage_mode(&self) -> CoverageMode {
        if self.is_offline() {
            CoverageMode::Offline
        } else if self.node_coverage && self.scope.namespace().is_some() {
            CoverageMode::Nodes
        } else {
            CoverageMode::Off
        }
    }

    /// The alert filter these options describe.
    pub fn filter(&self) -> AlertFilter {
        let mut f = AlertFilter::for_scope(self.scope.clone(), self.window, self.threshold);
        f.ignores = self.ignores.clone();
        f.group_by = self.group_by;
        if let Some(c) = &self.canary {
            f.canary_nonce = Some(self.canary_nonce.clone());
            if !f.canary_rules.contains(&c.rule) {
                f.canary_rules.push(c.rule.clone());
            }
        }
        f
    }

    /// The fixed facts of the check, echoed in its result.
    pub(crate) fn echo(&self, selector_used: String) -> Echo {
        // A followed window without an end ends when it was stopped: now.
        let window_end = self.window.end.unwrap_or(if self.follow.is_some() {
            Utc::now()
        } else {
            self.now
        });
        Echo {
            window_end,
            scope: self.scope.clone(),
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
                Input::Cluster(_) => InputKind::Cluster,
                Input::Files(_) => InputKind::Logs,
            },
        }
    }
}

/// A public image with a POSIX shell and `ln` (busybox, about 2 MB), by its full name so that
/// runtimes refusing short names pull it too.
pub const DEFAULT_IMAGE: &str = "docker.io/library/busybox:1.36.1";
/// The canary's action: a symlink to /etc/shadow named after the pod (the name in the path is
/// what tells its alert from any other). The short sleep first lets Falco learn the container's
/// metadata; the long one keeps the pod until it is deleted.
pub const DEFAULT_COMMAND: &str =
    "sleep 1; ln -s /etc/shadow \"/tmp/$FALCO_VERIFY_CANARY\"; exec sleep 600";

/// What a canary round needs.
#[derive(Debug, Clone)]
pub struct CanaryOptions {
    pub image: String,
    /// Run by `/bin/sh -c`, with `FALCO_VERIFY_CANARY` set to the pod's name.
    pub command: String,
    /// The rule its action triggers (and that rule's output title, for text output).
    pub rule: CanaryRule,
    /// How long to wait for each canary's alert.
    pub timeout: Duration,
}

impl Default for CanaryOptions {
    fn default() -> Self {
        CanaryOptions {
            image: DEFAULT_IMAGE.to_string(),
            command: DEFAULT_COMMAND.to_string(),
            rule: CanaryRule::default(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Counters for a progress display while pods are read.
#[derive(Debug, Default)]
pub struct Progress {
    pub pods_total: AtomicUsize,
    pub pods_done: AtomicUsize,
    pub bytes: AtomicU64,
}

pub use crate::verdict::SourceRead;
