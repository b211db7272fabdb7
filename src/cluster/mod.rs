//! The Kubernetes side: kubeconfig, finding the Falco pods, and streaming their logs.
//!
//! Only these API calls are made: list pods and get pods/log in the Falco namespace, and, for
//! `--nodes-of-namespace` only, list pods in the target namespace. Errors are typed and carry
//! what to do.

mod answers;
pub mod error;
pub mod exec;
pub mod kubeconfig;
pub mod kubeconfig_files;
pub mod pods;
pub mod proxy;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::io::{AsyncBufRead, AsyncBufReadExt};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::{Client, Config};
use tokio::time::{sleep, timeout_at, Instant};

use error::classify;
pub use error::ClusterError;

/// Items per list request, as kubectl's `--chunk-size` default.
pub const LIST_CHUNK: u32 = 500;

/// The default Falco pod selector (old `stable/falco` chart, and the seed).
pub const DEFAULT_SELECTOR: &str = "app=falco";
/// The label of the current `falcosecurity/falco` Helm chart.
pub const CHART_SELECTOR: &str = "app.kubernetes.io/name=falco";

pub use exec::{Credential, ExecPlugin};
pub use kubeconfig::{ConnectionEnv, Overrides, Target};
pub use kubeconfig_files::{kubeconfig_files, load_kubeconfig};
pub use pods::{choose_container, coverage, name_of, node_of, ContainerLife, Coverage, FalcoPod};
pub use proxy::ProxyEnv;

/// A connected client and the facts about it worth echoing. Clones share one credential.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
    server: String,
    context: Option<String>,
    request_timeout: Option<Duration>,
}

struct Shared {
    /// The configuration without the exec plugin's credential.
    base: Config,
    exec: Option<ExecPlugin>,
    /// The user's `tokenFile`: read again when its copy is a minute old, or after a 401.
    token_file: Option<std::path::PathBuf>,
    /// The client in use and when its credential expires.
    current: std::sync::RwLock<(Client, Option<DateTime<Utc>>)>,
    /// One refresh at a time; requests never wait on it while the credential is good.
    refreshing: tokio::sync::Mutex<()>,
    /// The longest an exec plugin may run.
    exec_limit: Duration,
}

/// A credential this close to its expiry is fetched again before the next request.
const EXPIRY_MARGIN: chrono::Duration = chrono::Duration::seconds(5);
/// A `tokenFile` is read again this often, as client-go does (a projected or rotated token is
/// replaced in place, and the old one revoked).
const TOKEN_FILE_REREAD: chrono::Duration = chrono::Duration::seconds(60);

impl Cluster {
    /// Resolves the kubeconfig, flags and environment the way kubectl does, runs the exec
    /// credential plugin (once), and builds the client.
    pub async fn connect(
        target: &Target,
        connect_timeout: Duration,
        exec_limit: Duration,
    ) -> Result<Cluster, ClusterError> {
        let resolved = kubeconfig::resolve(target)?;
        let mut base = resolved.config;
        let server = base
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        // Our own retry loop honours Retry-After within the deadline and retries 500 too.
        base.default_retry = false;
        base.connect_timeout = Some(connect_timeout);
        let credential = match &resolved.exec {
            Some(plugin) => Some(run_plugin(plugin.clone(), exec_limit).await?),
            None => None,
        };
        let token_read = resolved
            .token_file
            .as_ref()
            .map(|_| Utc::now() + TOKEN_FILE_REREAD);
        let expires = credential
            .as_ref()
            .and_then(Credential::expires)
            .or(token_read);
        let client = build_client(&base, credential.as_ref(), &server)?;
        Ok(Cluster {
            shared: Arc::new(Shared {
                base,
                exec: resolved.exec,
                token_file: resolved.token_file,
                current: std::sync::RwLock::new((client, expires)),
                refreshing: tokio::sync::Mutex::new(()),
                exec_limit,
            }),
            server,
            context: resolved.context,
            request_timeout: target.overrides.request_timeout,
        })
    }

    /// The client to use now: the current one while its credential is good, else one built
    /// with a credential the plugin was run again for (one run, whoever asks), within
    /// `deadline`.
    async fn client(&self, deadline: Instant) -> Result<Client, ClusterError> {
        let fresh = |(client, expires): &(Client, Option<DateTime<Utc>>)| {
            expires
                .is_none_or(|e| Utc::now() + EXPIRY_MARGIN < e)
                .then(|| client.clone())
        };
        if let Some(c) = self.current().and_then(|c| fresh(&c)) {
            return Ok(c);
        }
        let _one = self.shared.refreshing.lock().await;
        if let Some(c) = self.current().and_then(|c| fresh(&c)) {
            return Ok(c);
        }
        if let Some(file) = &self.shared.token_file {
            crate::debug::log(4, format_args!("reading the token file again"));
            let credential = Credential::Token {
                token: kubeconfig::read_token_file(file)?,
                expires: Some(Utc::now() + TOKEN_FILE_REREAD),
            };
            return self.install(Some(&credential), credential.expires());
        }
        let Some(plugin) = self.shared.exec.clone() else {
            return self
                .current()
                .map(|c| c.0)
                .ok_or(ClusterError::Credentials {
                    detail: "the client is unusable".to_string(),
                });
        };
        crate::debug::log(
            4,
            format_args!("the exec credential expires: running the plugin again"),
        );
        let left = deadline.saturating_duration_since(Instant::now());
        let credential = run_plugin(plugin, self.shared.exec_limit.min(left)).await?;
        self.install(Some(&credential), credential.expires())
    }

    /// Builds the client for a new credential and makes it the one in use.
    fn install(
        &self,
        credential: Option<&Credential>,
        expires: Option<DateTime<Utc>>,
    ) -> Result<Client, ClusterError> {
        let client = build_client(&self.shared.base, credential, &self.server)?;
        if let Ok(mut cur) = self.shared.current.write() {
            *cur = (client.clone(), expires);
        }
        Ok(client)
    }

    fn current(&self) -> Option<(Client, Option<DateTime<Utc>>)> {
        self.shared.current.read().ok().map(|c| c.clone())
    }

    /// Runs `op` with the current client. After a 401 from a client whose credential came
    /// from an exec plugin, the plugin is run again and `op` once more, as client-go does (the
    /// token may have been revoked or rotated before its expiry).
    async fn call<T, F, Fut>(&self, deadline: Instant, op: F) -> Result<T, ClusterError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        match op(self.client(deadline).await?).await {
            Err(ClusterError::Unauthorized { .. })
                if self.shared.exec.is_some() || self.shared.token_file.is_some() =>
            {
                crate::debug::log(
                    4,
                    format_args!("401 Unauthorized: getting the credential again"),
                );
                if let Ok(mut cur) = self.shared.current.write() {
                    cur.1 = Some(DateTime::<Utc>::MIN_UTC);
                }
                op(self.client(deadline).await?).await
            }
            r => r,
        }
    }

    /// The kubeconfig context in use, if any.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Lists pods in `namespace` matching `selector`, retrying transient errors until `deadline`.
    pub async fn list_pods(
        &self,
        namespace: &str,
        selector: &str,
        deadline: Instant,
    ) -> Result<Vec<Pod>, ClusterError> {
        self.list_pods_as(namespace, selector, deadline, |p| p)
            .await
    }

    /// Lists the Falco pods in `namespace` matching `selector`, each cut down to what reading it
    /// needs as its page arrives.
    pub async fn list_falco_pods(
        &self,
        namespace: &str,
        selector: &str,
        deadline: Instant,
    ) -> Result<Vec<FalcoPod>, ClusterError> {
        self.list_pods_as(namespace, selector, deadline, FalcoPod::from)
            .await
    }

    async fn list_pods_as<T>(
        &self,
        namespace: &str,
        selector: &str,
        deadline: Instant,
        keep: impl Fn(Pod) -> T,
    ) -> Result<Vec<T>, ClusterError> {
        let mut lp = ListParams::default();
        if !selector.is_empty() {
            lp = lp.labels(selector);
        }
        let api = |c| Api::<Pod>::namespaced(c, namespace);
        self.list(api, "pods", namespace, lp, deadline, keep).await
    }

    /// Lists the Events of `namespace` matching the field selector.
    pub async fn list_events(
        &self,
        namespace: &str,
        fields: &str,
        deadline: Instant,
    ) -> Result<Vec<Event>, ClusterError> {
        let lp = ListParams::default().fields(fields);
        let api = |c| Api::<Event>::namespaced(c, namespace);
        self.list(api, "events", namespace, lp, deadline, |e| e)
            .await
    }

    /// Creates a pod (once: a create is not retried, a second one would be a second pod).
    pub async fn create_pod(
        &self,
        namespace: &str,
        pod: &Pod,
        deadline: Instant,
    ) -> Result<Pod, ClusterError> {
        let what = Some(("create", "pods", namespace));
        let attempt = self.call(deadline, |client| async move {
            Api::<Pod>::namespaced(client, namespace)
                .create(&PostParams::default(), pod)
                .await
                .map_err(|e| classify(e, &self.server, what))
        });
        timeout_at(deadline, attempt).await.unwrap_or_else(|_| {
            Err(ClusterError::Deadline {
                doing: "creating a pod".to_string(),
            })
        })
    }

    /// Reads one pod.
    pub async fn get_pod(
        &self,
        namespace: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<Pod, ClusterError> {
        let what = Some(("get", "pods", namespace));
        retry(deadline, self.request_timeout, "reading a pod", || {
            self.call(deadline, |client| async move {
                Api::<Pod>::namespaced(client, namespace)
                    .get(name)
                    .await
                    .map_err(|e| classify(e, &self.server, what))
            })
        })
        .await
    }

    /// Deletes one pod at once (grace period 0); a pod already gone is deleted.
    pub async fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<(), ClusterError> {
        let what = Some(("delete", "pods", namespace));
        let dp = DeleteParams::default().grace_period(0);
        let r = retry(deadline, self.request_timeout, "deleting a pod", || {
            self.call(deadline, |client| {
                let dp = dp.clone();
                async move {
                    Api::<Pod>::namespaced(client, namespace)
                        .delete(name, &dp)
                        .await
                        .map(|_| ())
                        .map_err(|e| classify(e, &self.server, what))
                }
            })
        })
        .await;
        match r {
            Err(ClusterError::Api { code: 404, .. }) => Ok(()),
            r => r,
        }
    }

    /// The cluster's namespace names, sorted.
    pub async fn namespace_names(&self, deadline: Instant) -> Result<Vec<String>, ClusterError> {
        // Names only: the metadata list, as kubectl's completion reads it.
        let what = Some(("list", "namespaces", ""));
        let list = retry(deadline, self.request_timeout, "listing namespaces", || {
            self.call(deadline, |client| async move {
                Api::<Namespace>::all(client)
                    .list_metadata(&ListParams::default())
                    .await
                    .map_err(|e| classify(e, &self.server, what))
            })
        })
        .await?;
        let mut names: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Lists the cluster's Nodes.
    pub async fn list_nodes(&self, deadline: Instant) -> Result<Vec<Node>, ClusterError> {
        let api = |c| Api::<Node>::all(c);
        self.list(api, "nodes", "", ListParams::default(), deadline, |n| n)
            .await
    }

    /// A list through `api` (namespaced, or cluster-wide), read in pages of [`LIST_CHUNK`] as
    /// kubectl reads them (`--chunk-size`, client-go's pager), each page retrying transient
    /// errors until `deadline`. A continue token that expired (410 Gone, the list outlived the
    /// API server's compaction window) falls back to one whole list, as client-go's pager does.
    /// Each item is passed through `keep` as its page arrives.
    async fn list<K, T>(
        &self,
        api: impl Fn(Client) -> Api<K>,
        resource: &'static str,
        namespace: &str,
        lp: ListParams,
        deadline: Instant,
        keep: impl Fn(K) -> T,
    ) -> Result<Vec<T>, ClusterError>
    where
        K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut page = lp.clone().limit(LIST_CHUNK);
            if let Some(t) = &token {
                page = page.continue_token(t);
            }
            let list = match self
                .list_once(&api, resource, namespace, page, deadline)
                .await
            {
                Err(ClusterError::Api { code: 410, .. }) if token.is_some() => {
                    crate::debug::log(
                        4,
                        format_args!(
                            "listing {resource}: the continue token expired; listing them whole"
                        ),
                    );
                    return self
                        .list_once(&api, resource, namespace, lp, deadline)
                        .await
                        .map(|l| l.items.into_iter().map(keep).collect());
                }
                r => r?,
            };
            items.extend(list.items.into_iter().map(&keep));
            token = list.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(items);
            }
        }
    }

    /// One list request, retrying transient errors until `deadline`.
    async fn list_once<K>(
        &self,
        api: &impl Fn(Client) -> Api<K>,
        resource: &'static str,
        namespace: &str,
        lp: ListParams,
        deadline: Instant,
    ) -> Result<kube::core::ObjectList<K>, ClusterError>
    where
        K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    {
        let what = Some(("list", resource, namespace));
        let doing = format!("listing {resource}");
        retry(deadline, self.request_timeout, &doing, || {
            self.call(deadline, |client| {
                let (lp, api) = (lp.clone(), api(client));
                async move {
                    api.list(&lp)
                        .await
                        .map_err(|e| classify(e, &self.server, what))
                }
            })
        })
        .await
    }

    /// Opens one container's log, retrying transient errors until `deadline`.
    pub async fn open_log(
        &self,
        namespace: &str,
        pod: &str,
        request: &LogRequest,
        deadline: Instant,
    ) -> Result<LogStream, ClusterError> {
        let lp = LogParams {
            container: Some(request.container.clone()),
            previous: request.previous,
            timestamps: true,
            since_time: request.since.and_then(to_jiff),
            limit_bytes: request.limit_bytes,
            follow: request.follow,
            ..LogParams::default()
        };
        let what = Some(("get", "pods/log", namespace));
        let reader = retry(
            deadline,
            self.request_timeout,
            "opening a log stream",
            || {
                self.call(deadline, |client| {
                    let lp = lp.clone();
                    async move {
                        Api::<Pod>::namespaced(client, namespace)
                            .log_stream(pod, &lp)
                            .await
                            .map_err(|e| classify(e, &self.server, what))
                    }
                })
            },
        )
        .await?;
        Ok(LogStream {
            reader: Box::pin(reader),
            pod: pod.to_string(),
            bytes: 0,
        })
    }
}

/// An open log stream, read chunk by chunk: the caller decides when to stop.
pub struct LogStream {
    reader: std::pin::Pin<Box<dyn AsyncBufRead + Send>>,
    pod: String,
    bytes: u64,
}

impl LogStream {
    /// The next bytes of the log, `None` at its end; an error when the deadline passes or the
    /// stream breaks. Call [`LogStream::consume`] with the length before the next call.
    pub async fn next_chunk(&mut self, deadline: Instant) -> Result<Option<&[u8]>, ClusterError> {
        let bytes = self.bytes;
        let pod = &self.pod;
        match timeout_at(deadline, self.reader.fill_buf()).await {
            Err(_) => Err(ClusterError::Deadline {
                doing: format!("reading the log of {pod} ({bytes} bytes read)"),
            }),
            Ok(Err(e)) => Err(ClusterError::Stream { bytes, source: e }),
            Ok(Ok([])) => Ok(None),
            Ok(Ok(buf)) => Ok(Some(buf)),
        }
    }

    pub fn consume(&mut self, n: usize) {
        self.bytes += n as u64;
        AsyncBufRead::consume(self.reader.as_mut(), n);
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// One log request: which container instance, from when.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    /// Keep the stream open for new lines (watch mode).
    pub follow: bool,
    pub container: String,
    pub previous: bool,
    pub since: Option<DateTime<Utc>>,
    pub limit_bytes: Option<i64>,
}

/// `sinceTime` has second precision on the wire: round down so no line of the window is lost.
fn to_jiff(t: DateTime<Utc>) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_second(t.timestamp()).ok()
}

/// Runs `op` until it succeeds, fails for good, or `deadline` passes. Each attempt gets at most
/// `request_timeout` (kubectl's `--request-timeout`); an attempt that times out is retried.
async fn retry<T, F, Fut>(
    deadline: Instant,
    request_timeout: Option<Duration>,
    doing: &str,
    mut op: F,
) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClusterError>>,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt_deadline = request_timeout
            .map(|t| (Instant::now() + t).min(deadline))
            .unwrap_or(deadline);
        let attempt = match timeout_at(attempt_deadline, op()).await {
            Ok(r) => r,
            Err(_) if attempt_deadline < deadline => Err(ClusterError::RequestTimeout {
                doing: doing.to_string(),
                after: request_timeout.unwrap_or_default(),
            }),
            Err(_) => {
                return Err(ClusterError::Deadline {
                    doing: doing.to_string(),
                })
            }
        };
        match attempt {
            Ok(v) => return Ok(v),
            Err(e) => {
                let Some(retry_after) = e.retryable() else {
                    return Err(e);
                };
                let wait = retry_after
                    .map(|s| Duration::from_secs(u64::from(s)))
                    .unwrap_or(backoff);
                if Instant::now() + wait >= deadline {
                    return Err(e);
                }
                crate::debug::log(
                    4,
                    format_args!(
                        "{doing}: {}; retrying in {} ms",
                        crate::sanitize::neutralize(&e.to_string()),
                        wait.as_millis()
                    ),
                );
                sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Runs an exec plugin off the async threads (it may wait for a login).
async fn run_plugin(plugin: ExecPlugin, limit: Duration) -> Result<Credential, ClusterError> {
    match tokio::task::spawn_blocking(move || plugin.run(limit)).await {
        Ok(r) => r,
        Err(e) => Err(ClusterError::Credentials {
            detail: format!("the exec credential plugin did not finish: {e}"),
        }),
    }
}

/// A client over `base` with `credential` (a bearer token, or a client certificate).
fn build_client(
    base: &Config,
    credential: Option<&Credential>,
    server: &str,
) -> Result<Client, ClusterError> {
    use secrecy::ExposeSecret as _;
    let mut config = base.clone();
    match credential {
        Some(Credential::Token { token, .. }) => config.auth_info.token = Some(token.clone()),
        Some(Credential::Certificate {
            cert_pem, key_pem, ..
        }) => {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD;
            config.auth_info.client_certificate = None;
            config.auth_info.client_key = None;
            config.auth_info.client_certificate_data = Some(b64.encode(cert_pem));
            config.auth_info.client_key_data = Some(b64.encode(key_pem.expose_secret()).into());
        }
        None => {}
    }
    transport::client(&config).map_err(|e| classify(e, server, None))
}
