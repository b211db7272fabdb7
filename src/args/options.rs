//! The flags lowered to what the library takes: the check's [`CheckOptions`], kubectl's
//! connection overrides and the accepted noise.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::defs::Cli;
use crate::check::{CheckOptions, Follow, Input};
use crate::cluster::Target;
use crate::verdict::{Ignores, Scope, Window};

impl Cli {
    /// Checks what depends on the clock: a window that starts in the future would see nothing
    /// and pass, so it is a usage error (a minute of clock skew is allowed).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), String> {
        match self.since_time {
            Some(t) if t > now + chrono::Duration::seconds(60) => Err(format!(
                "--since-time {} is in the future (now is {}): give the window start in UTC or with its offset, e.g. $(date -u +%Y-%m-%dT%H:%M:%SZ)",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            _ => Ok(()),
        }
    }

    /// Loads `--ignore-file`s and adds `--ignore-rule`s.
    pub fn ignores(&self) -> Result<Ignores, crate::verdict::ignore::IgnoreFileError> {
        let mut all = Ignores::from_globs(self.ignore_rule.iter().cloned());
        for p in &self.ignore_file {
            all.extend(Ignores::load(p)?);
        }
        Ok(all)
    }

    /// The check these flags ask for, as of `now`.
    pub fn to_options(&self, now: DateTime<Utc>) -> CheckOptions {
        let back = |d: Duration| {
            now - chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::minutes(10))
        };
        let since = match (self.since_time, self.since, self.for_) {
            (Some(t), _, _) => t,
            (None, Some(d), _) => back(d),
            // A soak window starts when the check does.
            (None, None, Some(_)) => now,
            (None, None, None) => back(Duration::from_secs(600)),
        };
        let until = self
            .for_
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| now + d);
        let mut o = CheckOptions::new(self.namespace.as_deref().unwrap_or(""), since);
        if self.all_namespaces {
            o.scope = Scope::All;
        }
        o.group_by = self.group_by;
        o.now = now;
        o.window = Window {
            start: since,
            end: until,
        };
        o.follow = (self.watch || until.is_some()).then_some(Follow {
            until,
            relist_every: self.relist_every,
        });
        o.threshold = self.severity;
        o.falco_namespace = self.falco_namespace.clone();
        o.selector = self.selector.clone().filter(|s| !s.trim().is_empty());
        o.container = self.container.clone();
        o.timeout = self.timeout;
        o.fail_closed = self.fail_closed;
        o.max_concurrency = self.max_concurrency as usize;
        o.max_alerts = self.max_alerts;
        o.max_line = self.max_line_bytes;
        o.nodes_of_namespace = self.nodes_of_namespace;
        o.node_coverage = self.node_coverage;
        o.canary = self.canary.then(|| {
            let mut c = crate::source::canary::CanaryOptions {
                image: self.canary_image.clone(),
                timeout: self.canary_timeout,
                ..Default::default()
            };
            if let Some(cmd) = &self.canary_command {
                c.command = cmd.clone();
            }
            if let Some(rule) = &self.canary_rule {
                let (rule, title) = rule.split_once('=').unwrap_or((rule, rule));
                c.rule = crate::verdict::canary::CanaryRule {
                    rule: rule.to_string(),
                    title: title.to_string(),
                };
            }
            c
        });
        o.input = if self.logs.is_empty() {
            Input::Cluster(Box::new(
                self.target(crate::cluster::ConnectionEnv::default()),
            ))
        } else {
            Input::Files(self.logs.clone())
        };
        o
    }

    /// kubectl's generic flags, as the cluster layer takes them.
    /// The cluster these flags point at, in `env`: the one way to it for the check and for
    /// completion alike.
    pub fn target(&self, env: crate::cluster::ConnectionEnv) -> Target {
        Target {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            overrides: self.overrides(),
            env,
        }
    }

    pub fn overrides(&self) -> crate::cluster::Overrides {
        // An empty value is unset, as in kubectl (`--token "$UNSET"` must not drop the
        // kubeconfig's credentials).
        let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        crate::cluster::Overrides {
            cluster: set(&self.cluster),
            user: set(&self.user),
            server: set(&self.server),
            token: set(&self.token).map(secrecy::SecretString::from),
            impersonate: set(&self.as_user),
            impersonate_groups: self
                .as_group
                .iter()
                .filter(|g| !g.is_empty())
                .cloned()
                .collect(),
            impersonate_uid: set(&self.as_uid),
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
            certificate_authority: self.certificate_authority.clone(),
            client_certificate: self.client_certificate.clone(),
            client_key: self.client_key.clone(),
            tls_server_name: set(&self.tls_server_name),
            request_timeout: self.request_timeout.filter(|d| !d.is_zero()),
        }
    }

    /// The connection flags given, by name (`--kubeconfig` and `--context` included).
    pub(super) fn connection_flags(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        if self.kubeconfig.is_some() {
            given.push("--kubeconfig");
        }
        if self.context.is_some() {
            given.push("--context");
        }
        given.extend(self.overrides().given());
        given
    }
}
