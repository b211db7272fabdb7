//! A local HTTPS fake of the Kubernetes API server, for black-box tests of
//! `kubectl-falco_verify` (and of real `kubectl`) over real TLS with a real kubeconfig.
//!
//! ```ignore
//! use fake_apiserver::*;
//!
//! let server = FakeApiServer::start(FakeCluster::new(vec![
//!     FakePod::falco("falco-a", "node-0", LogSource::from_text("2024-01-15T10:30:00.000731000Z hello\n")),
//! ]));
//! let dir = tempfile::tempdir().expect("tempdir");
//! let kubeconfig = server.write_kubeconfig(dir.path());
//! ```
//!
//! Only these routes are served (everything else is 403 Forbidden, every route needs the
//! bearer token or answers 401): `GET /version`, `/api`, `/api/v1`, `/apis`, pod list
//! (namespaced and `/api/v1/pods`, with label and field selectors), pod get, pod log, event
//! list (namespaced, `reason` and `involvedObject.kind` field selectors), node list.

pub mod kubeconfig;
pub mod logs;
pub mod model;
pub mod objects;
pub mod proxy;
pub mod selectors;
pub mod server;
pub mod timefmt;
pub mod tls;

pub use model::{
    falco_started_at, Appended, CanarySim, ContainerState, FakeCluster, FakeContainer, FakeEvent,
    FakeNode, FakePod, Faults, IntoNode, LogSource, Terminated, DEFAULT_TOKEN,
};
pub use proxy::FakeProxy;
pub use server::{FakeApiServer, RecordedRequest};
pub use timefmt::rfc3339_nano;

/// Parses an RFC3339 time; panics with a message on bad input (test convenience).
pub fn ts(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad RFC3339 time {s:?}: {e}"))
        .with_timezone(&chrono::Utc)
}

/// The line Falco prints first when it starts (a log without it looks rotated).
pub const FALCO_BANNER: &str = "Mon Jan 15 09:59:58 2024: Falco version: 0.42.1 (x86_64)";

/// A Falco pod whose log starts with the banner at container start, then `lines`.
pub fn falco_pod(
    name: &str,
    node: &str,
    lines: Vec<(chrono::DateTime<chrono::Utc>, String)>,
) -> FakePod {
    let mut all = vec![(falco_started_at(), FALCO_BANNER.to_string())];
    all.extend(lines);
    FakePod::falco(name, node, LogSource::lines(all))
}

/// A running fake API server with a kubeconfig for it in a temporary directory.
pub struct Served {
    pub server: FakeApiServer,
    pub kubeconfig: String,
    /// Holds the kubeconfig (and anything else a test puts there) until dropped.
    pub dir: tempfile::TempDir,
}

/// Starts the fake API server for `cluster` and writes its kubeconfig.
pub fn serve(cluster: FakeCluster) -> Served {
    let server = FakeApiServer::start(cluster);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = server.write_kubeconfig(dir.path()).display().to_string();
    Served {
        server,
        kubeconfig,
        dir,
    }
}
