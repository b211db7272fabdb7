//! Which cluster, as whom: the context chosen from the merged kubeconfig, kubectl's generic
//! flags laid over its cluster and user as client-go's `ConfigOverrides` are, in-cluster
//! configuration as client-go builds it, and the kube `Config` all this makes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use kube::config::{AuthInfo, Cluster as KubeCluster, ExecAuthCluster, Kubeconfig};
use kube::Config;
use secrecy::SecretString;

use super::exec::ExecPlugin;
use super::kubeconfig_files::{is_empty, kubeconfig_files, load_kubeconfig};
use super::proxy::{proxy_for, ProxyEnv};
use super::ClusterError;

/// Which cluster to talk to, and how: the kubeconfig, kubectl's flags and the environment.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub overrides: Overrides,
    pub env: ConnectionEnv,
}

/// kubectl's generic flags (`--server`, `--token`, `--as`, ...), as client-go's
/// `ConfigOverrides`: laid over what the chosen context names.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub server: Option<String>,
    pub token: Option<SecretString>,
    pub impersonate: Option<String>,
    pub impersonate_groups: Vec<String>,
    pub impersonate_uid: Option<String>,
    pub insecure_skip_tls_verify: Option<bool>,
    pub certificate_authority: Option<PathBuf>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    /// Per request, inside the overall `--timeout` (`None`: no limit of its own).
    pub request_timeout: Option<Duration>,
}

impl Overrides {
    /// The flags given (for the offline note: they are not used with `--logs`).
    pub fn given(&self) -> Vec<&'static str> {
        let o = self;
        [
            ("--cluster", o.cluster.is_some()),
            ("--user", o.user.is_some()),
            ("--server", o.server.is_some()),
            ("--token", o.token.is_some()),
            ("--as", o.impersonate.is_some()),
            ("--as-group", !o.impersonate_groups.is_empty()),
            ("--as-uid", o.impersonate_uid.is_some()),
            (
                "--insecure-skip-tls-verify",
                o.insecure_skip_tls_verify.is_some(),
            ),
            ("--certificate-authority", o.certificate_authority.is_some()),
            ("--client-certificate", o.client_certificate.is_some()),
            ("--client-key", o.client_key.is_some()),
            ("--tls-server-name", o.tls_server_name.is_some()),
            ("--request-timeout", o.request_timeout.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// What the environment says about connecting, read once by the arguments layer.
#[derive(Debug, Clone, Default)]
pub struct ConnectionEnv {
    /// `KUBECONFIG`: a list of files.
    pub kubeconfig: Option<OsString>,
    pub home: Option<PathBuf>,
    pub proxy: ProxyEnv,
    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`: running inside a pod.
    pub service_host: Option<String>,
    pub service_port: Option<String>,
    /// Our stdin is a terminal (for exec plugins' `interactiveMode`).
    pub stdin_tty: bool,
}

impl ConnectionEnv {
    /// The process environment (the binary's arguments layer builds its own, read once).
    pub fn from_process() -> ConnectionEnv {
        use std::io::IsTerminal;
        ConnectionEnv {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME").map(PathBuf::from),
            proxy: ProxyEnv::from_lookup(|k| std::env::var(k).ok()),
            service_host: std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            service_port: std::env::var("KUBERNETES_SERVICE_PORT").ok(),
            stdin_tty: std::io::stdin().is_terminal(),
        }
    }
}

impl Target {
    /// kubectl's defaults for a library caller: the current context of `KUBECONFIG` /
    /// `~/.kube/config`, else in-cluster.
    pub fn from_environment() -> Target {
        Target {
            env: ConnectionEnv::from_process(),
            ..Target::default()
        }
    }
}

/// A kube `Config` ready to build a client from, and the exec plugin that gives its credential.
pub struct Resolved {
    pub config: Config,
    pub exec: Option<ExecPlugin>,
    /// Context, cluster and user names, for the debug log.
    pub describe: String,
    /// The kubeconfig context used (none for `--server` alone or in-cluster).
    pub context: Option<String>,
    /// The user's `tokenFile`, when it gave the token: read again as it rotates.
    pub token_file: Option<std::path::PathBuf>,
}

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The cluster, user and namespace to use, before the flags are laid over them.
struct Chosen {
    cluster: KubeCluster,
    user: AuthInfo,
    namespace: Option<String>,
    describe: String,
    context: Option<String>,
}

fn config_error(detail: String) -> ClusterError {
    ClusterError::Config { detail }
}

/// What the kubeconfig's context (or the flags) name; in-cluster configuration when there is no
/// kubeconfig, as client-go's deferred loader does.
fn choose(kc: Option<Kubeconfig>, t: &Target) -> Result<Chosen, ClusterError> {
    let o = &t.overrides;
    let kc = kc.filter(|kc| !is_empty(kc) || t.context.is_some());
    let Some(kc) = kc else {
        if o.server.is_some() {
            return Ok(Chosen {
                cluster: KubeCluster::default(),
                user: AuthInfo::default(),
                namespace: None,
                describe: "no kubeconfig; --server".to_string(),
                context: None,
            });
        }
        return in_cluster(t);
    };
    let context_name = t.context.clone().or(kc.current_context.clone());
    let context = match &context_name {
        Some(name) => Some(
            kc.contexts
                .iter()
                .find(|c| &c.name == name)
                .and_then(|c| c.context.clone())
                .ok_or_else(|| {
                    config_error(format!("context {name:?} is not in the kubeconfig"))
                })?,
        ),
        None => None,
    };
    if context.is_none() && o.server.is_none() && o.cluster.is_none() {
        return Err(config_error(
            "the kubeconfig has no current-context: pick one with --context (kubectl config get-contexts)".to_string(),
        ));
    }
    let cluster_name = o
        .cluster
        .clone()
        .or_else(|| context.as_ref().map(|c| c.cluster.clone()));
    let cluster = match &cluster_name {
        Some(name) => match kc.clusters.iter().find(|c| &c.name == name) {
            Some(c) => c.cluster.clone().unwrap_or_default(),
            None if o.server.is_some() => KubeCluster::default(),
            None => {
                return Err(config_error(format!(
                    "cluster {name:?} is not in the kubeconfig"
                )))
            }
        },
        None => KubeCluster::default(),
    };
    let user_name = o
        .user
        .clone()
        .or_else(|| context.as_ref().and_then(|c| c.user.clone()));
    // client-go does not fail on a missing user: no credentials.
    let user = user_name
        .as_ref()
        .and_then(|n| kc.auth_infos.iter().find(|a| &a.name == n))
        .and_then(|a| a.auth_info.clone())
        .unwrap_or_default();
    Ok(Chosen {
        cluster,
        user,
        namespace: context.and_then(|c| c.namespace),
        describe: format!(
            "context {:?}, cluster {:?}, user {:?}",
            context_name.clone().unwrap_or_default(),
            cluster_name.unwrap_or_default(),
            user_name.unwrap_or_default()
        ),
        context: context_name,
    })
}

/// client-go's `InClusterConfig`: the service's address from the environment, the service
/// account's CA and token from their files.
fn in_cluster(t: &Target) -> Result<Chosen, ClusterError> {
    let (Some(host), Some(port)) = (
        t.env.service_host.as_deref().filter(|h| !h.is_empty()),
        t.env.service_port.as_deref().filter(|p| !p.is_empty()),
    ) else {
        return Err(config_error(
            "no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not inside a cluster (KUBERNETES_SERVICE_HOST is not set)".to_string(),
        ));
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let token_file = format!("{SA_DIR}/token");
    if let Err(e) = std::fs::metadata(&token_file) {
        return Err(ClusterError::Credentials {
            detail: format!("cannot read the service account token {token_file}: {e}"),
        });
    }
    Ok(Chosen {
        cluster: KubeCluster {
            server: Some(format!("https://{host}:{port}")),
            certificate_authority: Some(format!("{SA_DIR}/ca.crt")),
            ..KubeCluster::default()
        },
        // As a file: the kubelet rotates bound service account tokens, and kube re-reads it
        // every minute.
        user: AuthInfo {
            token_file: Some(token_file),
            ..AuthInfo::default()
        },
        namespace: std::fs::read_to_string(format!("{SA_DIR}/namespace"))
            .ok()
            .map(|n| n.trim().to_string()),
        describe: "in-cluster service account".to_string(),
        context: None,
    })
}

/// client-go's rules for laying the flags over the chosen cluster and user.
fn apply(o: &Overrides, cluster: &mut KubeCluster, user: &mut AuthInfo) {
    if let Some(s) = &o.server {
        cluster.server = Some(s.clone());
    }
    // --insecure-skip-tls-verify=true or a --certificate-authority replaces the kubeconfig's CA
    // settings (else "CA and insecure" would conflict, or the old CA would win).
    if o.insecure_skip_tls_verify == Some(true) || o.certificate_authority.is_some() {
        cluster.insecure_skip_tls_verify = o.insecure_skip_tls_verify;
        cluster.certificate_authority = o
            .certificate_authority
            .as_ref()
            .map(|p| p.display().to_string());
        cluster.certificate_authority_data = None;
    }
    // A --server clears the kubeconfig's tls-server-name unless one is given too.
    if o.tls_server_name.is_some() || o.server.is_some() {
        cluster.tls_server_name = o.tls_server_name.clone();
    }
    if let Some(t) = &o.token {
        user.token = Some(t.clone());
        user.token_file = None;
    }
    if let Some(c) = &o.client_certificate {
        user.client_certificate = Some(c.display().to_string());
        user.client_certificate_data = None;
    }
    if let Some(k) = &o.client_key {
        user.client_key = Some(k.display().to_string());
        user.client_key_data = None;
    }
    if o.impersonate.is_some() {
        user.impersonate = o.impersonate.clone();
    }
    if !o.impersonate_groups.is_empty() {
        user.impersonate_groups = Some(o.impersonate_groups.clone());
    }
    if o.impersonate_uid.is_some() {
        user.impersonate_uid = o.impersonate_uid.clone();
    }
}

/// The cluster's CA certificates (DER), from `certificate-authority-data` or the file.
fn ca_bundle(cluster: &KubeCluster) -> Result<Option<Vec<Vec<u8>>>, ClusterError> {
    use base64::Engine as _;
    let pem_bytes = if let Some(data) = cluster
        .certificate_authority_data
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| config_error(format!("certificate-authority-data is not base64: {e}")))?
    } else if let Some(path) = cluster
        .certificate_authority
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        std::fs::read(path).map_err(|e| {
            config_error(format!("cannot read the certificate authority {path}: {e}"))
        })?
    } else {
        return Ok(None);
    };
    let certs: Vec<Vec<u8>> = pem::parse_many(&pem_bytes)
        .map_err(|e| config_error(format!("the certificate authority is not PEM: {e}")))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if certs.is_empty() {
        return Err(config_error(
            "the certificate authority holds no certificate".to_string(),
        ));
    }
    Ok(Some(certs))
}

/// Everything needed to build a client for `t`: kubeconfig (or in-cluster), flags, proxy.
pub fn resolve(t: &Target) -> Result<Resolved, ClusterError> {
    let files = kubeconfig_files(
        t.kubeconfig.as_deref(),
        t.env.kubeconfig.as_deref(),
        t.env.home.as_deref(),
    );
    crate::debug::log(
        4,
        format_args!(
            "kubeconfig files: {}",
            crate::sanitize::neutralize(
                &files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        ),
    );
    let Chosen {
        mut cluster,
        mut user,
        namespace,
        describe,
        context,
    } = choose(load_kubeconfig(&files)?, t)?;
    apply(&t.overrides, &mut cluster, &mut user);
    // The chosen user's token file, as kubectl reads it: trimmed (`kubectl create token ... >
    // token` ends with a newline). In-cluster keeps the file: kube re-reads it as it rotates.
    let mut token_file = None;
    if context.is_some() && user.token.is_none() {
        if let Some(file) = user.token_file.take() {
            user.token = Some(read_token_file(std::path::Path::new(&file))?);
            token_file = Some(std::path::PathBuf::from(file));
        }
    }
    let server = cluster
        .server
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            config_error(
                "the cluster has no server address (set it in the kubeconfig or give --server)"
                    .to_string(),
            )
        })?;
    let url: http::Uri = server
        .parse()
        .map_err(|e| config_error(format!("server {server:?} is not a URL: {e}")))?;
    let mut config = Config::new(url);
    config.default_namespace = namespace.unwrap_or_else(|| "default".to_string());
    config.accept_invalid_certs = cluster.insecure_skip_tls_verify.unwrap_or(false);
    config.disable_compression = cluster.disable_compression.unwrap_or(false);
    config.tls_server_name = cluster.tls_server_name.clone();
    config.root_cert = ca_bundle(&cluster)?;
    let (proxy, why) =
        proxy_for(&server, cluster.proxy_url.as_deref(), &t.env.proxy).map_err(config_error)?;
    crate::debug::log(
        4,
        format_args!(
            "{}; server {}; proxy: {} ({why})",
            crate::sanitize::neutralize(&describe),
            crate::sanitize::neutralize(&server),
            crate::sanitize::neutralize(
                &proxy
                    .as_deref()
                    .map_or("none".to_string(), super::proxy::redact)
            )
        ),
    );
    config.proxy_url = proxy
        .map(|p| {
            p.parse::<http::Uri>().map_err(|e| {
                config_error(format!(
                    "proxy {} is not a URL: {e}",
                    super::proxy::redact(&p)
                ))
            })
        })
        .transpose()?;
    // A token (flag, kubeconfig, token file) wins over an exec plugin, as in client-go.
    let exec = match user.exec.take() {
        Some(cfg) if user.token.is_none() && user.token_file.is_none() => {
            let cluster_info = if cfg.provide_cluster_info {
                Some(ExecAuthCluster::try_from(&cluster).map_err(|e| config_error(e.to_string()))?)
            } else {
                None
            };
            Some(ExecPlugin {
                config: cfg,
                cluster: cluster_info,
                stdin_tty: t.env.stdin_tty,
            })
        }
        _ => None,
    };
    config.auth_info = user;
    Ok(Resolved {
        config,
        exec,
        describe,
        context,
        token_file,
    })
}

/// A `tokenFile`, as kubectl reads it: trimmed (`kubectl create token ... > token` ends with a
/// newline).
pub fn read_token_file(file: &std::path::Path) -> Result<SecretString, ClusterError> {
    let token = std::fs::read_to_string(file).map_err(|e| ClusterError::Credentials {
        detail: format!("cannot read token file {}: {e}", file.display()),
    })?;
    Ok(SecretString::from(token.trim().to_string()))
}

/// Names a kubeconfig defines, for the arguments layer's checks of `--context`, `--cluster` and
/// `--user`.
#[derive(Debug, Default)]
pub struct Names {
    pub contexts: std::collections::BTreeSet<String>,
    pub clusters: std::collections::BTreeSet<String>,
    pub users: std::collections::BTreeSet<String>,
}

impl Names {
    pub fn add(&mut self, kc: Kubeconfig) {
        self.contexts
            .extend(kc.contexts.into_iter().map(|c| c.name));
        self.clusters
            .extend(kc.clusters.into_iter().map(|c| c.name));
        self.users.extend(kc.auth_infos.into_iter().map(|c| c.name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_lay_over_the_kubeconfig_as_client_go_does() {
        let mut cluster = KubeCluster {
            server: Some("https://a".into()),
            certificate_authority_data: Some("Q0E=".into()),
            tls_server_name: Some("kube.internal".into()),
            ..KubeCluster::default()
        };
        let mut user = AuthInfo::default();
        let o = Overrides {
            server: Some("https://b".into()),
            insecure_skip_tls_verify: Some(true),
            impersonate_groups: vec!["g1".into(), "g2".into()],
            ..Overrides::default()
        };
        apply(&o, &mut cluster, &mut user);
        assert_eq!(cluster.server.as_deref(), Some("https://b"));
        assert_eq!(cluster.certificate_authority_data, None);
        assert_eq!(cluster.insecure_skip_tls_verify, Some(true));
        assert_eq!(
            cluster.tls_server_name, None,
            "--server clears tls-server-name"
        );
        assert_eq!(
            user.impersonate_groups.as_deref().map(<[String]>::len),
            Some(2)
        );
        // --insecure-skip-tls-verify=false leaves the CA alone.
        let mut cluster = KubeCluster {
            certificate_authority_data: Some("Q0E=".into()),
            ..KubeCluster::default()
        };
        let o = Overrides {
            insecure_skip_tls_verify: Some(false),
            ..Overrides::default()
        };
        apply(&o, &mut cluster, &mut AuthInfo::default());
        assert!(cluster.certificate_authority_data.is_some());
    }

    #[test]
    fn no_kubeconfig_and_no_service_is_not_configured() {
        let t = Target::default();
        assert!(matches!(choose(None, &t), Err(ClusterError::Config { .. })));
        let t = Target {
            overrides: Overrides {
                server: Some("https://x".into()),
                ..Overrides::default()
            },
            ..Target::default()
        };
        assert!(choose(None, &t).is_ok());
    }
}
