//! The HTTPS server: TLS, authentication, authorization (least privilege), routing, recording.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::kubeconfig::{self, KubeconfigSpec};
use super::logs::{self, LogStreamSpec};
use super::model::{Appended, FakeCluster, FakeContainer, FakePod};
use super::objects;
use super::selectors;
use super::tls;

type Body = UnsyncBoxBody<Bytes, io::Error>;

/// One request the fake API server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// URL path, e.g. `/api/v1/namespaces/falco/pods/falco-a/log`.
    pub path: String,
    /// Decoded query parameters (the last value wins when a key repeats).
    pub query: BTreeMap<String, String>,
    /// The query string as sent (still percent-encoded), without `?`.
    pub raw_query: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The request carried the right bearer token.
    pub authorized: bool,
    pub accept: Option<String>,
    pub user_agent: Option<String>,
    /// HTTP status answered; `None` while no answer was sent (hang faults, in flight).
    pub status: Option<u16>,
    /// `Impersonate-User`, `Impersonate-Group` (each), `Impersonate-Uid`.
    pub impersonate_user: Option<String>,
    pub impersonate_groups: Vec<String>,
    pub impersonate_uid: Option<String>,
    /// The connection presented a client certificate the CA signed.
    pub client_cert: bool,
}

impl RecordedRequest {
    pub fn has_authorization(&self) -> bool {
        self.authorization.is_some()
    }

    /// `Some(pod)` if this is a `/log` request.
    pub fn log_pod(&self) -> Option<&str> {
        let segs: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        match segs.as_slice() {
            ["api", "v1", "namespaces", _, "pods", pod, "log"] => Some(pod),
            _ => None,
        }
    }

    pub fn is_log(&self) -> bool {
        self.log_pod().is_some()
    }

    /// Query parameter value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

struct Shared {
    cluster: Arc<FakeCluster>,
    /// Pods created through the API, and the names of those deleted since.
    created: Mutex<Vec<FakePod>>,
    deleted: Mutex<Vec<String>>,
    /// Lines Falco pods wrote while the server ran (the canary simulator's).
    appended: Appended,
    started: std::time::Instant,
    server_address: String,
    requests: Mutex<Vec<RecordedRequest>>,
    list_failures_left: Mutex<Option<u32>>,
    log_failures_left: Mutex<BTreeMap<String, u32>>,
    resource_version: AtomicU64,
    audit_counter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock must not hide the request log from the test.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn record(&self, r: RecordedRequest) -> usize {
        let mut v = lock(&self.requests);
        v.push(r);
        v.len() - 1
    }

    fn set_status(&self, idx: usize, status: u16) {
        if let Some(r) = lock(&self.requests).get_mut(idx) {
            r.status = Some(status);
        }
    }

    fn rv(&self) -> u64 {
        self.resource_version.fetch_add(1, Ordering::Relaxed)
    }
}

/// A local HTTPS fake of the Kubernetes API server. Serves until dropped.
pub struct FakeApiServer {
    addr: SocketAddr,
    ca_pem: String,
    other_ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    prefix: String,
    token: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Generates a CA and server certificate, binds `127.0.0.1:0` and serves `cluster` from a
    /// tokio runtime on a background thread.
    pub fn start(cluster: FakeCluster) -> FakeApiServer {
        let pki = tls::make_pki(cluster.faults.tls_wrong_name);
        let other_ca_pem = tls::unrelated_ca_pem();
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("fake apiserver: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("fake apiserver: set_nonblocking");
        let addr = listener.local_addr().expect("fake apiserver: local_addr");
        let token = cluster.token.clone();
        let prefix = cluster.path_prefix.clone().unwrap_or_default();
        let shared = Arc::new(Shared {
            list_failures_left: Mutex::new(cluster.faults.list_fail_times.map(|(_, n, _)| n)),
            log_failures_left: Mutex::new(
                cluster
                    .faults
                    .log_fail_times
                    .iter()
                    .map(|(pod, (_, n, _))| (pod.clone(), *n))
                    .collect(),
            ),
            cluster: Arc::new(cluster),
            created: Mutex::new(Vec::new()),
            deleted: Mutex::new(Vec::new()),
            appended: Appended::default(),
            started: std::time::Instant::now(),
            server_address: addr.to_string(),
            requests: Mutex::new(Vec::new()),
            resource_version: AtomicU64::new(48_213),
            audit_counter: AtomicU64::new(1),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fake-apiserver-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-apiserver-worker")
                    .enable_all()
                    .build()
                    .expect("fake apiserver: tokio runtime");
                rt.block_on(accept_loop(listener, acceptor, thread_shared, rx));
                rt.shutdown_timeout(std::time::Duration::from_millis(200));
            })
            .expect("fake apiserver: spawn thread");
        FakeApiServer {
            addr,
            ca_pem: pki.ca_pem,
            other_ca_pem,
            client_cert_pem: pki.client_cert_pem,
            client_key_pem: pki.client_key_pem,
            prefix,
            token,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT`, with the path prefix when there is one.
    pub fn url(&self) -> String {
        format!("https://{}{}", self.addr, self.prefix)
    }

    /// The server under a name only a proxy resolves: `https://kubernetes.proxied.test:PORT`.
    pub fn proxied_url(&self) -> String {
        format!(
            "https://{}:{}{}",
            tls::PROXIED_HOST,
            self.addr.port(),
            self.prefix
        )
    }

    /// PEM of a client certificate the server accepts instead of a token.
    pub fn client_cert_pem(&self) -> String {
        self.client_cert_pem.clone()
    }

    /// PEM of the client certificate's key.
    pub fn client_key_pem(&self) -> String {
        self.client_key_pem.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    pub fn token(&self) -> String {
        self.token.clone()
    }

    /// Writes `dir/kubeconfig` and returns its path. Contexts: `fake` (current; the right CA
    /// and token), `unreachable` (`https://127.0.0.1:1`), `wrong-ca` (an unrelated CA),
    /// `bad-token` (token `wrong-token`).
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let user = format!("token: {}", kubeconfig::yaml_str(&self.token));
        self.write_kubeconfig_with_user(dir, &user)
    }

    /// Same as [`FakeApiServer::write_kubeconfig`], but the body of the `user:` entry used by
    /// `fake`, `unreachable` and `wrong-ca` is `user_yaml` (unindented YAML, e.g. an `exec:`
    /// block).
    pub fn write_kubeconfig_with_user(&self, dir: &Path, user_yaml: &str) -> PathBuf {
        let url = self.url();
        kubeconfig::write(
            dir,
            &KubeconfigSpec {
                url: &url,
                ca_pem: &self.ca_pem,
                other_ca_pem: &self.other_ca_pem,
                user_yaml,
            },
        )
    }

    /// The token to write out at any time, for a thread of its own: with
    /// [`crate::Faults::token_period`], the one that is (or is about to be) current; else the
    /// cluster's token.
    pub fn token_clock(&self) -> impl Fn() -> String + Send + 'static {
        let shared = self.shared.clone();
        move || {
            let ahead = match shared.cluster.faults.token_period {
                Some(p) => crate::model::TOKEN_OVERLAP.min(p) / 2,
                None => std::time::Duration::ZERO,
            };
            rotated_token(&shared.cluster, shared.started.elapsed() + ahead)
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The `/log` requests for pod `pod` (any namespace).
    pub fn log_requests(&self, pod: &str) -> Vec<RecordedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.log_pod() == Some(pod))
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener =
        tokio::net::TcpListener::from_std(listener).expect("fake apiserver: tokio listener");
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    tokio::spawn(serve_connection(tcp, acceptor.clone(), Arc::clone(&shared)));
                }
                Err(e) => {
                    eprintln!("fake apiserver: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// The TLS stream, closed with a TCP RST when `abort` is set.
struct ConnIo {
    inner: TlsStream<TcpStream>,
    abort: Arc<AtomicBool>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.abort.load(Ordering::SeqCst) {
            let _ = self.inner.get_ref().0.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.abort.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.abort.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.abort.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn serve_connection(
    tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp))
        .await
    {
        Ok(Ok(s)) => s,
        _ => return, // handshake failed (e.g. client rejected our certificate) or timed out
    };
    let client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|c| !c.is_empty());
    let abort = Arc::new(AtomicBool::new(false));
    let io = ConnIo {
        inner: tls,
        abort: Arc::clone(&abort),
    };
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        let abort = Arc::clone(&abort);
        async move { Ok::<_, Infallible>(handle(shared, abort, client_cert, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(raw: &str) -> BTreeMap<String, String> {
    raw.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn is_bearer(authorization: Option<&str>, token: &str) -> bool {
    let Some(a) = authorization else { return false };
    let mut parts = a.trim().splitn(2, ' ');
    let (Some(scheme), Some(value)) = (parts.next(), parts.next()) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && value.trim() == token
}

async fn handle(
    shared: Arc<Shared>,
    abort: Arc<AtomicBool>,
    client_cert: bool,
    req: Request<Incoming>,
) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let full_path = req.uri().path().to_string();
    let prefix = shared.cluster.path_prefix.as_deref().unwrap_or("");
    let path = match full_path.strip_prefix(prefix) {
        Some(p) if p.starts_with('/') || prefix.is_empty() => p.to_string(),
        // Outside the prefix nothing is served (a client that dropped it gets 404).
        _ => format!("/__outside_prefix__{full_path}"),
    };
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let query = parse_query(&raw_query);
    let authorization = header(&req, "authorization");
    let elapsed = shared.started.elapsed();
    let token = match &shared.cluster.faults.token_rotation {
        Some((after, new)) if elapsed >= *after => new.clone(),
        _ => rotated_token(&shared.cluster, elapsed),
    };
    let next = shared.cluster.faults.token_period.map(|p| {
        rotated_token(
            &shared.cluster,
            elapsed + crate::model::TOKEN_OVERLAP.min(p),
        )
    });
    let authorized = is_bearer(authorization.as_deref(), &token)
        || next.is_some_and(|n| is_bearer(authorization.as_deref(), &n))
        || client_cert;
    let accept = header(&req, "accept");
    let idx = shared.record(RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        raw_query,
        authorization,
        authorized,
        accept: accept.clone(),
        user_agent: header(&req, "user-agent"),
        status: None,
        impersonate_user: header(&req, "impersonate-user"),
        impersonate_groups: req
            .headers()
            .get_all("impersonate-group")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect(),
        impersonate_uid: header(&req, "impersonate-uid"),
        client_cert,
    });
    if shared.cluster.faults.hang_all {
        std::future::pending::<()>().await;
    }
    let body = if method == "POST" {
        req.into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default()
    } else {
        Bytes::new()
    };
    let resp = if authorized {
        match (method.as_str(), path_segments(&path).as_slice()) {
            ("POST", ["api", "v1", "namespaces", ns, "pods"]) => create_pod(&shared, ns, &body),
            ("DELETE", ["api", "v1", "namespaces", ns, "pods", name]) => {
                delete_pod(&shared, ns, name, &path)
            }
            _ => route(&shared, &abort, &method, &path, &query, accept.as_deref()).await,
        }
    } else {
        json_response(&shared, 401, &objects::unauthorized(), None)
    };
    shared.set_status(idx, resp.status().as_u16());
    resp
}

fn path_segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

impl Shared {
    /// Every pod that exists now: the cluster's and those created, less those deleted.
    fn pods_now(&self) -> Vec<FakePod> {
        let now = Utc::now();
        let deleted = lock(&self.deleted).clone();
        self.cluster
            .pods
            .iter()
            .chain(lock(&self.created).iter())
            .filter(|p| p.exists_at(now) && !deleted.contains(&p.name))
            .cloned()
            .collect()
    }
}

/// `POST .../pods`: the admission answers the cluster's [`CanarySim`] asks for, else the pod is
/// created on its node (or one the scheduler picks) and that node's Falco may see it.
fn create_pod(shared: &Arc<Shared>, ns: &str, body: &[u8]) -> Response<Body> {
    let sim = &shared.cluster.canary;
    if let Some((code, msg)) = &sim.refuse {
        let details = json!({"kind": "pods"});
        return status_response(shared, *code, msg, Some(details));
    }
    let Ok(spec) = serde_json::from_slice::<Value>(body) else {
        return status_response(shared, 400, "the request body is not a Pod object", None);
    };
    let name = spec["metadata"]["name"].as_str().unwrap_or("").to_string();
    if name.is_empty() {
        return status_response(
            shared,
            422,
            "Pod \"\" is invalid: metadata.name: Required value",
            None,
        );
    }
    if shared
        .pods_now()
        .iter()
        .any(|p| p.namespace == ns && p.name == name)
    {
        return status_response(shared, 409, &format!("pods {name:?} already exists"), None);
    }
    let falco_nodes: Vec<String> = shared
        .cluster
        .pods
        .iter()
        .filter(|p| p.labels.get("app").is_some_and(|v| v == "falco"))
        .filter_map(|p| p.node.clone())
        .collect();
    let node = spec["spec"]["nodeName"]
        .as_str()
        .map(str::to_string)
        .or_else(|| sim.schedule_to.clone())
        .or_else(|| falco_nodes.first().cloned());
    let now = Utc::now();
    let labels: BTreeMap<String, String> = spec["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let container = if sim.image_pull_fails {
        FakeContainer::waiting("canary", "ErrImagePull")
    } else {
        FakeContainer::running("canary", now, crate::LogSource::empty())
    };
    let pod = FakePod::new(name.clone(), ns)
        .with_labels(labels)
        .with_node(node.clone())
        .with_phase(if sim.image_pull_fails {
            "Pending"
        } else {
            "Running"
        })
        .appearing_at(now - chrono::Duration::seconds(1))
        .with_container(container);
    let answer = objects::pod(&pod, shared.rv());
    lock(&shared.created).push(pod);
    let command = spec["spec"]["containers"][0]["command"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    if let (false, Some(node)) = (sim.image_pull_fails, node) {
        falco_sees(shared, ns, &name, &node, &command);
    }
    json_response(shared, 201, &answer, None)
}

/// The Falco of `node` reports a symlink over /etc/shadow made by the pod's command.
fn falco_sees(shared: &Arc<Shared>, ns: &str, pod: &str, node: &str, command: &str) {
    let sim = &shared.cluster.canary;
    let Some(falco) = shared.cluster.pods.iter().find(|p| {
        p.node.as_deref() == Some(node) && p.labels.get("app").is_some_and(|v| v == "falco")
    }) else {
        return;
    };
    let Some(at) = command.find("ln -s /etc/shadow ") else {
        return;
    };
    if sim.blind_nodes.contains(node) {
        return;
    }
    let link: String = command[at + "ln -s /etc/shadow ".len()..]
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .replace("$FALCO_VERIFY_CANARY", pod);
    let when = Utc::now() + chrono::Duration::from_std(sim.delay).unwrap_or_default();
    let hms = when.format("%H:%M:%S%.9f");
    let unresolved = sim.unresolved_nodes.contains(node);
    let (ns_text, pod_text) = if unresolved {
        ("<NA>", "<NA>")
    } else {
        (ns, pod)
    };
    let output = format!(
        "{hms}: Warning Symlinks created over sensitive files (target=/etc/shadow linkpath={link} evt_type=symlinkat user=<NA> user_uid=65534 user_loginuid=-1 process=ln proc_exepath=/bin/ln parent=sh command=ln -s /etc/shadow {link} terminal=0 container_id=5d1c0f3e9a2b container_name=canary k8s_ns={ns_text} k8s_pod_name={pod_text})"
    );
    let line = if sim.text_nodes.contains(node) {
        output
    } else {
        let field = |v: &str| if unresolved { Value::Null } else { json!(v) };
        json!({
            "hostname": node,
            "output": output,
            "output_fields": {
                "container.id": "5d1c0f3e9a2b",
                "container.name": "canary",
                "evt.arg.linkpath": link,
                "evt.arg.target": "/etc/shadow",
                "evt.time": when.timestamp_nanos_opt().unwrap_or_default(),
                "evt.type": "symlinkat",
                "k8s.ns.name": field(ns),
                "k8s.pod.name": field(pod),
                "proc.cmdline": format!("ln -s /etc/shadow {link}"),
                "user.uid": 65534,
            },
            "priority": "Warning",
            "rule": "Create Symlink Over Sensitive Files",
            "source": "syscall",
            "tags": ["T1555", "container", "filesystem", "host", "maturity_stable", "mitre_credential_access"],
            "time": crate::timefmt::rfc3339_nano(when),
        })
        .to_string()
    };
    lock(&shared.appended)
        .entry(falco.name.clone())
        .or_default()
        .push((when, line.into_bytes()));
}

/// `DELETE .../pods/NAME`: the test user may delete the pods it created through the API (as
/// the canary's RBAC allows), and no other.
fn delete_pod(shared: &Arc<Shared>, ns: &str, name: &str, path: &str) -> Response<Body> {
    let created = lock(&shared.created)
        .iter()
        .any(|p| p.namespace == ns && p.name == name);
    if !created {
        return forbidden(shared, "DELETE", path, &BTreeMap::new());
    }
    if lock(&shared.deleted).iter().any(|d| d == name) {
        return not_found(shared, name);
    }
    lock(&shared.deleted).push(name.to_string());
    json_response(
        shared,
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        None,
    )
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn json_response(
    shared: &Shared,
    code: u16,
    body: &Value,
    retry_after: Option<u32>,
) -> Response<Body> {
    json_response_typed(shared, code, body, retry_after, "application/json")
}

fn json_response_typed(
    shared: &Shared,
    code: u16,
    body: &Value,
    retry_after: Option<u32>,
    content_type: &str,
) -> Response<Body> {
    let bytes = serde_json::to_vec(body).expect("serialise JSON");
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    if let Ok(v) = HeaderValue::from_str(&objects::uid(&format!(
        "audit-{}",
        shared.audit_counter.fetch_add(1, Ordering::Relaxed)
    ))) {
        h.insert("audit-id", v);
    }
    if let Some(r) = retry_after {
        h.insert("retry-after", HeaderValue::from(r));
    }
    resp
}

/// A fault as API priority and fairness answers it: text/plain, the wait in the header only.
fn text_fault(shared: &Shared, code: u16, retry_after: Option<u32>) -> Response<Body> {
    let mut resp = json_response_typed(
        shared,
        code,
        &Value::Null,
        retry_after,
        "text/plain; charset=utf-8",
    );
    *resp.body_mut() = full(b"Too many requests, please try again later.\n".to_vec());
    resp
}

fn status_response(
    shared: &Shared,
    code: u16,
    message: &str,
    details: Option<Value>,
) -> Response<Body> {
    json_response(
        shared,
        code,
        &objects::status(code, objects::reason_for(code), message, details),
        None,
    )
}

fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
    })
}

const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn truthy(v: Option<&String>) -> bool {
    matches!(
        v.map(String::as_str),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}

/// 403 for anything outside the allowed routes, worded like the real authorizer.
fn forbidden(
    shared: &Shared,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest): (&str, &[&str]) = match segs.as_slice() {
        ["api", _v, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", g, _v, rest @ ..] if !rest.is_empty() => (g, rest),
        _ => {
            let verb = method.to_ascii_lowercase();
            let msg = format!(
                "forbidden: User {:?} cannot {verb} path {path:?}",
                objects::USER
            );
            return status_response(shared, 403, &msg, Some(json!({})));
        }
    };
    let (resource, name, namespace): (String, &str, Option<&str>) = match rest {
        ["namespaces"] => ("namespaces".to_string(), "", None),
        ["namespaces", name] => ("namespaces".to_string(), name, None),
        ["namespaces", ns, res] => (res.to_string(), "", Some(ns)),
        ["namespaces", ns, res, name] => (res.to_string(), name, Some(ns)),
        ["namespaces", ns, res, name, sub, ..] => (format!("{res}/{sub}"), name, Some(ns)),
        [res] => (res.to_string(), "", None),
        [res, name] => (res.to_string(), name, None),
        [res, name, sub, ..] => (format!("{res}/{sub}"), name, None),
        [] => (String::new(), "", None),
    };
    let watch = truthy(query.get("watch"));
    let verb = match method {
        "GET" | "HEAD" if watch => "watch".to_string(),
        "GET" | "HEAD" if name.is_empty() => "list".to_string(),
        "GET" | "HEAD" => "get".to_string(),
        "POST" => "create".to_string(),
        "PUT" => "update".to_string(),
        "PATCH" => "patch".to_string(),
        "DELETE" if name.is_empty() => "deletecollection".to_string(),
        "DELETE" => "delete".to_string(),
        other => other.to_ascii_lowercase(),
    };
    let msg = objects::forbidden_message_group(&verb, &resource, group, name, namespace);
    let base = resource.split('/').next().unwrap_or("").to_string();
    let mut details = json!({ "kind": base });
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    status_response(shared, 403, &msg, Some(details))
}

async fn route(
    shared: &Arc<Shared>,
    abort: &Arc<AtomicBool>,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    accept: Option<&str>,
) -> Response<Body> {
    if method != "GET" {
        return forbidden(shared, method, path, query);
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => json_response(shared, 200, &objects::version(), None),
        ["api"] => json_response(
            shared,
            200,
            &objects::api_versions(&shared.server_address),
            None,
        ),
        ["api", "v1"] => json_response(shared, 200, &objects::core_v1_resources(), None),
        ["apis"] => json_response(shared, 200, &objects::api_group_list(), None),
        ["api", "v1", "pods"] => list_pods(shared, None, path, query, accept),
        ["api", "v1", "namespaces", ns, "pods"] => list_pods(shared, Some(ns), path, query, accept),
        ["api", "v1", "namespaces", ns, "pods", name] => {
            if truthy(query.get("watch")) {
                return forbidden(shared, method, path, query);
            }
            get_pod(shared, ns, name, accept)
        }
        ["api", "v1", "namespaces", ns, "pods", name, "log"] => {
            get_log(shared, abort, ns, name, query).await
        }
        ["api", "v1", "namespaces", ns, "events"] => list_events(shared, ns, path, query),
        ["api", "v1", "namespaces"] if !listing_forbidden(shared, "namespaces") => {
            let names: std::collections::BTreeSet<String> =
                shared.pods_now().into_iter().map(|p| p.namespace).collect();
            let items: Vec<Value> = names
                .iter()
                .map(|n| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": n, "uid": objects::uid(&format!("ns/{n}"))}}))
                .collect();
            // Names only, as a metadata list (what completion asks for).
            let list = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": shared.rv().to_string()}, "items": items});
            json_response(shared, 200, &list, None)
        }
        ["api", "v1", "nodes"] => {
            if truthy(query.get("watch")) || listing_forbidden(shared, "nodes") {
                return forbidden(shared, method, path, query);
            }
            let nodes = shared.cluster.node_objects();
            json_response(shared, 200, &objects::node_list(&nodes, shared.rv()), None)
        }
        _ => forbidden(shared, method, path, query),
    }
}

fn listing_forbidden(shared: &Shared, key: &str) -> bool {
    shared.cluster.faults.forbidden_lists.contains(key)
}

fn list_events(
    shared: &Shared,
    namespace: &str,
    path: &str,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    if truthy(query.get("watch")) || listing_forbidden(shared, &format!("events/{namespace}")) {
        return forbidden(shared, "GET", path, query);
    }
    // The field selectors Events support that matter here; others are refused as the API does.
    let mut wanted: Vec<(String, String)> = Vec::new();
    for term in query
        .get("fieldSelector")
        .map_or("", String::as_str)
        .split(',')
        .filter(|t| !t.is_empty())
    {
        let Some((k, v)) = term.split_once('=') else {
            return status_response(
                shared,
                400,
                &format!("invalid field selector {term:?}"),
                None,
            );
        };
        let k = k.trim_end_matches('=');
        if !matches!(k, "reason" | "involvedObject.kind" | "involvedObject.name") {
            return status_response(
                shared,
                400,
                &format!("field label not supported: {k}"),
                None,
            );
        }
        wanted.push((k.to_string(), v.to_string()));
    }
    let events = shared.cluster.events.iter().filter(|e| {
        e.namespace == namespace
            && wanted.iter().all(|(k, v)| match k.as_str() {
                "reason" => &e.reason == v,
                "involvedObject.kind" => v == "Pod",
                _ => &e.pod == v,
            })
    });
    json_response(shared, 200, &objects::event_list(events, shared.rv()), None)
}

fn fail_counter_hit(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

fn list_pods(
    shared: &Shared,
    namespace: Option<&str>,
    path: &str,
    query: &BTreeMap<String, String>,
    accept: Option<&str>,
) -> Response<Body> {
    let key = format!("pods/{}", namespace.unwrap_or(""));
    if truthy(query.get("watch")) || listing_forbidden(shared, &key) {
        return forbidden(shared, "GET", path, query);
    }
    let faults = &shared.cluster.faults;
    if let Some(code) = faults.list_status {
        let body = objects::fault_status(code, "list", "pods", "pods", "", namespace, None);
        return json_response(shared, code, &body, None);
    }
    if let Some((code, _, retry)) = faults.list_fail_times {
        let hit = lock(&shared.list_failures_left)
            .as_mut()
            .is_some_and(fail_counter_hit);
        if hit {
            if faults.fail_as_text {
                return text_fault(shared, code, retry);
            }
            let body = objects::fault_status(code, "list", "pods", "pods", "", namespace, retry);
            return json_response(shared, code, &body, retry);
        }
    }
    let labels = match selectors::parse_label_selector(
        query.get("labelSelector").map_or("", String::as_str),
    ) {
        Ok(l) => l,
        Err(msg) => return status_response(shared, 400, &msg, None),
    };
    let fields = match selectors::parse_field_selector(
        query.get("fieldSelector").map_or("", String::as_str),
    ) {
        Ok(f) => f,
        Err(msg) => return status_response(shared, 400, &msg, None),
    };
    let all = shared.pods_now();
    let pods = all.iter().filter(|p| {
        namespace.is_none_or(|ns| p.namespace == ns)
            && labels.iter().all(|r| r.matches(&p.labels))
            && fields.iter().all(|f| f.matches(p))
    });
    let rv = shared.rv();
    if wants_table(accept) {
        let table = objects::pod_table(pods, rv, Utc::now());
        return json_response_typed(shared, 200, &table, None, TABLE_CONTENT_TYPE);
    }
    // Pages (`limit`, `continue`), as the API server serves a chunked list: the token is opaque
    // to clients; here it is the offset of the next page.
    let offset = match query.get("continue") {
        None => 0,
        Some(_) if faults.continue_expired => {
            let msg = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.";
            return status_response(shared, 410, msg, None);
        }
        Some(t) => match t
            .strip_prefix("offset-")
            .and_then(|o| o.parse::<usize>().ok())
        {
            Some(o) => o,
            None => return status_response(shared, 400, "invalid continue token", None),
        },
    };
    let matched: Vec<&FakePod> = pods.collect();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let start = offset.min(matched.len());
    let (page, next) = match limit {
        Some(l) if start + l < matched.len() => (
            &matched[start..start + l],
            Some(format!("offset-{}", start + l)),
        ),
        _ => (&matched[start..], None),
    };
    let mut list = objects::pod_list(page.iter().copied(), rv);
    if let Some(next) = next {
        list["metadata"]["continue"] = json!(next);
        list["metadata"]["remainingItemCount"] = json!(matched.len() - start - page.len());
    }
    json_response(shared, 200, &list, None)
}

fn not_found(shared: &Shared, name: &str) -> Response<Body> {
    status_response(
        shared,
        404,
        &format!("pods {name:?} not found"),
        Some(json!({"name": name, "kind": "pods"})),
    )
}

fn get_pod(shared: &Shared, ns: &str, name: &str, accept: Option<&str>) -> Response<Body> {
    let all = shared.pods_now();
    let Some(pod) = all.iter().find(|p| p.namespace == ns && p.name == name) else {
        return not_found(shared, name);
    };
    let rv = shared.rv();
    if wants_table(accept) {
        let table = objects::pod_table(std::iter::once(pod), rv, Utc::now());
        json_response_typed(shared, 200, &table, None, TABLE_CONTENT_TYPE)
    } else {
        json_response(shared, 200, &objects::pod(pod, rv), None)
    }
}

async fn get_log(
    shared: &Arc<Shared>,
    abort: &Arc<AtomicBool>,
    ns: &str,
    name: &str,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let faults = &shared.cluster.faults;
    if faults.hang_log.contains(name) {
        std::future::pending::<()>().await;
    }
    if let Some(code) = faults.log_status.get(name) {
        let body = objects::fault_status(*code, "get", "pods/log", "pods", name, Some(ns), None);
        return json_response(shared, *code, &body, None);
    }
    if let Some((code, _, retry)) = faults.log_fail_times.get(name) {
        let hit = lock(&shared.log_failures_left)
            .get_mut(name)
            .is_some_and(fail_counter_hit);
        if hit {
            if faults.fail_as_text {
                return text_fault(shared, *code, *retry);
            }
            let body =
                objects::fault_status(*code, "get", "pods/log", "pods", name, Some(ns), *retry);
            return json_response(shared, *code, &body, *retry);
        }
    }
    let Some(pod_index) = shared
        .cluster
        .pods
        .iter()
        .position(|p| p.namespace == ns && p.name == name && p.exists_at(Utc::now()))
    else {
        return not_found(shared, name);
    };
    let pod = &shared.cluster.pods[pod_index];
    let params = match logs::parse_params(query, name, Utc::now()) {
        Ok(p) => p,
        Err((code, msg)) => return status_response(shared, code, &msg, None),
    };
    let choice = match logs::choose(pod, &params) {
        Ok(c) => c,
        Err((code, msg)) => return status_response(shared, code, &msg, None),
    };
    let stream = logs::log_stream(LogStreamSpec {
        cluster: Arc::clone(&shared.cluster),
        pod: pod_index,
        choice,
        params,
        reset_after: faults.log_reset_after_bytes.get(name).copied(),
        bytes_per_sec: faults.slow_log_bytes_per_sec,
        abort: Arc::clone(abort),
        appended: Some((Arc::clone(&shared.appended), name.to_string())),
    });
    let body = StreamBody::new(stream.map(|r| r.map(Frame::data))).boxed_unsync();
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}

/// The token accepted `elapsed` after the start under [`crate::Faults::token_period`].
fn rotated_token(cluster: &FakeCluster, elapsed: std::time::Duration) -> String {
    match cluster.faults.token_period {
        Some(p) if !p.is_zero() && elapsed >= p => {
            format!("{}-{}", cluster.token, elapsed.as_nanos() / p.as_nanos())
        }
        _ => cluster.token.clone(),
    }
}
