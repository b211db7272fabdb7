//! What can go wrong talking to the cluster: one documented variant per cause, each keeping
//! the error it came from where that is safe to keep, and each saying what to do next. The
//! cause is classified from types (kube's error variants, HTTP status, rustls and `io`
//! errors), never from message text; the text is rendered once, at the edge.

use std::error::Error as StdError;
use std::time::Duration;

use crate::verdict::{Gap, GapKind, Skip};

/// Everything that can go wrong talking to the cluster, each with what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig, flags or in-cluster files do not make a usable configuration.
    #[error("cannot load the cluster configuration: {detail}. Point --kubeconfig or KUBECONFIG at a valid kubeconfig, or pick a context with --context")]
    Config { detail: String },
    /// 401: the credentials were refused.
    #[error("the API server at {server} rejected the credentials (401 Unauthorized). Log in again or refresh the token of your kubeconfig user")]
    Unauthorized { server: String },
    /// 403 to a request whose verb and resource are known: the Role to grant is named.
    #[error("forbidden: {message}. Grant {verb} on {resource} in namespace {namespace} (see the Role in the README)")]
    Forbidden {
        message: String,
        verb: &'static str,
        resource: &'static str,
        namespace: String,
    },
    /// No connection: DNS, refused, reset, a proxy that failed.
    #[error("cannot reach the API server at {server}: {}. Check the context (--context), the network and that the cluster is up", last_cause(.source))]
    Unreachable {
        server: String,
        #[source]
        source: kube::Error,
    },
    /// The TLS handshake failed: the certificate does not match the CA or the name.
    #[error("TLS handshake with {server} failed: {}. The kubeconfig's certificate-authority-data or server address does not match the API server's certificate", last_cause(.source))]
    Tls {
        server: String,
        #[source]
        source: kube::Error,
    },
    /// The credential plugin or token file failed. Its cause is not kept: the plugin's command
    /// line and output may hold secrets; the detail says only what is safe.
    #[error("the kubeconfig user's credentials could not be obtained: {detail}. Run the user's exec command (or check its token file) by hand to see why")]
    Credentials { detail: String },
    /// `--timeout` passed.
    #[error("the --timeout deadline passed while {doing}. Raise --timeout, or check the API server's latency")]
    Deadline { doing: String },
    /// One attempt outlived `--request-timeout` (it is retried within `--timeout`).
    #[error("no answer while {doing} within --request-timeout {}s (retried until --timeout). Raise --request-timeout, or check the API server's latency", .after.as_secs_f64())]
    RequestTimeout { doing: String, after: Duration },
    /// Any other answer of the API server, as its Status said it.
    #[error("the API server answered {code} {reason}: {message}{}", api_hint(*.code))]
    Api {
        code: u16,
        reason: String,
        message: String,
        retry_after: Option<u32>,
    },
    /// A followed log was asked for and never answered before the run stopped.
    #[error("the log request for pod {pod} got no answer before watching stopped. Check the kubelet on that pod's node (kubectl logs may hang too)")]
    NoAnswer { pod: String },
    /// A log stream broke mid-way.
    #[error("the log stream broke after {bytes} bytes: {source}. The connection to the API server was cut; run the check again")]
    Stream {
        bytes: u64,
        #[source]
        source: std::io::Error,
    },
}

/// What to do about an API answer [`ClusterError::Api`] carries.
fn api_hint(code: u16) -> &'static str {
    match code {
        400 => ". Check the Falco pod's state with kubectl describe pod",
        404 => ". It is gone (a pod deleted after it was listed, e.g. by a rollout): run the check again",
        429 | 500 | 502 | 503 | 504 => ". It was retried within --timeout: check the API server's health, raise --timeout or run the check again later",
        _ => "",
    }
}

impl ClusterError {
    /// `Some(Retry-After)` when the request may be tried again.
    pub(super) fn retryable(&self) -> Option<Option<u32>> {
        match self {
            ClusterError::Api {
                code: 429 | 500 | 502 | 503 | 504,
                retry_after,
                ..
            } => Some(*retry_after),
            ClusterError::RequestTimeout { .. } => Some(None),
            _ => None,
        }
    }

    /// The coverage gap this error leaves in a log that was to be read.
    pub fn gap(&self, which: &str) -> Gap {
        let kind = match self {
            ClusterError::Deadline { .. } => GapKind::Deadline,
            ClusterError::Stream { .. } => GapKind::StreamBroken,
            _ => GapKind::Unreadable,
        };
        let status = match self {
            ClusterError::Api { code, .. } => format!("HTTP {code}: "),
            ClusterError::Forbidden { .. } => "HTTP 403: ".to_string(),
            ClusterError::Unauthorized { .. } => "HTTP 401: ".to_string(),
            _ => String::new(),
        };
        Gap::new(kind, format!("{which}: {status}{self}"))
    }
}

impl From<ClusterError> for Skip {
    fn from(e: ClusterError) -> Self {
        Skip::Cluster(Box::new(e))
    }
}

fn chain<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// The innermost cause's message: what actually failed (refused, unknown host, bad
/// certificate), without the layers of "error trying to connect" around it.
fn last_cause(e: &kube::Error) -> String {
    let root: &(dyn StdError + 'static) = e;
    chain(root)
        .last()
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// Whether a cause is the TLS layer's: a rustls error, also inside the `io::Error`s the
/// connector wraps it in (an `io::Error` shows its inner error but does not give it as its
/// source), or kube's own TLS error.
fn is_tls(cause: &(dyn StdError + 'static)) -> bool {
    if cause.is::<rustls::Error>() || cause.is::<kube::client::RustlsTlsError>() {
        return true;
    }
    let mut io = cause.downcast_ref::<std::io::Error>();
    while let Some(inner) = io.and_then(std::io::Error::get_ref) {
        if inner.is::<rustls::Error>() {
            return true;
        }
        io = inner.downcast_ref::<std::io::Error>();
    }
    false
}

/// Maps a kube error to what it means for us. Exec plugin output is never copied into the
/// message: it may hold a token.
pub(super) fn classify(
    e: kube::Error,
    server: &str,
    what: Option<(&'static str, &'static str, &str)>,
) -> ClusterError {
    if let kube::Error::Api(status) = &e {
        let retry_after = status
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0);
        return match (status.code, what) {
            (401, _) => ClusterError::Unauthorized {
                server: server.to_string(),
            },
            (403, Some((verb, resource, ns))) => ClusterError::Forbidden {
                message: status.message.clone(),
                verb,
                resource,
                namespace: ns.to_string(),
            },
            _ => ClusterError::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
                retry_after,
            },
        };
    }
    let root: &(dyn StdError + 'static) = &e;
    for cause in chain(root) {
        if let Some(auth) = cause.downcast_ref::<kube::client::AuthError>() {
            let detail = match auth {
                // `cmd` is the Debug form of the command: its arguments and environment may hold
                // secrets. The exit status is all that is said.
                kube::client::AuthError::AuthExecRun { out, .. } => {
                    format!("the exec credential command exited with {}", out.status)
                }
                kube::client::AuthError::AuthExecStart(io) => {
                    format!("exec command could not start: {io}")
                }
                kube::client::AuthError::AuthExecParse(_) => {
                    "the exec command's output is not an ExecCredential".to_string()
                }
                kube::client::AuthError::ReadTokenFile(_, path) => {
                    format!("cannot read token file {}", path.display())
                }
                other => {
                    // Only the fixed part of the message, before any embedded value.
                    let s = other.to_string();
                    s.split(':')
                        .next()
                        .unwrap_or("authentication failed")
                        .to_string()
                }
            };
            return ClusterError::Credentials { detail };
        }
    }
    let server = server.to_string();
    if chain(root).any(is_tls) {
        return ClusterError::Tls { server, source: e };
    }
    ClusterError::Unreachable { server, source: e }
}
