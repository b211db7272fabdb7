//! The fake API server (crates/fake-apiserver) looks like a real cluster to real `kubectl` and to
//! kube-rs: discovery, tables, selectors, log parameters, errors, auth, TLS and faults.
//!
//! The kubectl tests are skipped (with a notice) when `kubectl` is not on PATH.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use fake_apiserver::*;
use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

const FALCO_A_LOG: &str = "\
2024-01-15T09:59:58.101233000Z Mon Jan 15 09:59:58 2024: Falco version: 0.42.1 (x86_64)
2024-01-15T10:29:59.900000000Z {\"hostname\":\"node-0\",\"output\":\"10:29:59.899000000: Warning before the window\",\"priority\":\"Warning\",\"rule\":\"r1\",\"source\":\"syscall\",\"time\":\"2024-01-15T10:29:59.899000000Z\"}
2024-01-15T10:30:00.000731000Z {\"hostname\":\"node-0\",\"output\":\"10:30:00.000000000: Warning at the window start\",\"priority\":\"Warning\",\"rule\":\"r2\",\"source\":\"syscall\",\"time\":\"2024-01-15T10:30:00.000000000Z\"}
2024-01-15T10:30:00.600000000Z {\"hostname\":\"node-0\",\"output\":\"10:30:00.599000000: Notice half a second later\",\"priority\":\"Notice\",\"rule\":\"r3\",\"source\":\"syscall\",\"time\":\"2024-01-15T10:30:00.599000000Z\"}
2024-01-15T10:31:00.000000000Z {\"hostname\":\"node-0\",\"output\":\"10:30:59.999000000: Critical a minute later\",\"priority\":\"Critical\",\"rule\":\"r4\",\"source\":\"syscall\",\"time\":\"2024-01-15T10:30:59.999000000Z\"}
";

const NO_CONTAINER_MESSAGE: &str = "a container name must be specified for pod falco-a, choose one of: [falco falcoctl-artifact-follow] or one of the init containers: [falco-driver-loader falcoctl-artifact-install]";

fn falco_b_log() -> LogSource {
    LogSource::generated(15, ts("2024-01-15T10:00:00Z"), Duration::seconds(1), |i| {
        format!("falco-b line {i}").into_bytes()
    })
}

/// falco/falco-a (node-0), falco/falco-b (node-1), shop/web-1 (node-0).
fn kubectl_cluster() -> FakeCluster {
    FakeCluster::new(vec![
        FakePod::falco("falco-a", "node-0", FALCO_A_LOG),
        FakePod::falco("falco-b", "node-1", falco_b_log()),
        FakePod::new("web-1", "shop")
            .with_label("app", "web")
            .with_node("node-0")
            .with_container(FakeContainer::running(
                "web",
                ts("2024-01-15T08:00:00Z"),
                LogSource::at(ts("2024-01-15T10:00:00Z"), &["GET /"]),
            )),
    ])
}

// ------------------------------------------------------------------ kubectl

fn find_kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    /// None (after printing a notice) when kubectl is not installed.
    fn new(server: &FakeApiServer, test: &str) -> Option<Kubectl> {
        let Some(bin) = find_kubectl() else {
            eprintln!("NOTICE: kubectl not found on PATH; skipping {test}");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir for kubeconfig and HOME");
        let kubeconfig = server.write_kubeconfig(dir.path());
        Some(Kubectl {
            bin,
            kubeconfig,
            dir,
        })
    }

    fn run(&self, args: &[&str]) -> Out {
        let home = self.dir.path().join("home");
        let out = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--request-timeout=10s")
            .args(args)
            .env("HOME", &home)
            .env_remove("KUBECONFIG")
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .output()
            .expect("run kubectl");
        let out = Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!(
            "$ kubectl {}\n--- ok={} stdout:\n{}--- stderr:\n{}",
            args.join(" "),
            out.ok,
            out.stdout,
            out.stderr
        );
        out
    }

    fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert!(out.ok, "kubectl {args:?} failed: {}", out.stderr);
        out
    }

    fn fails(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert!(
            !out.ok,
            "kubectl {args:?} should fail; stdout: {}",
            out.stdout
        );
        out
    }
}

fn plain(text: &str) -> String {
    LogSource::from_text(text).to_plain_text()
}

#[test]
fn kubectl_get_pods_sees_a_cluster() {
    let server = FakeApiServer::start(kubectl_cluster());
    let Some(k) = Kubectl::new(&server, "kubectl_get_pods_sees_a_cluster") else {
        return;
    };

    let out = k.ok(&["get", "pods", "-n", "falco", "-l", "app=falco"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "header + 2 pods: {}", out.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    for (line, name) in lines[1..].iter().zip(["falco-a", "falco-b"]) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[..4], [name, "2/2", "Running", "0"], "{line}");
    }

    let out = k.ok(&["get", "pods", "-n", "falco"]);
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);

    let out = k.ok(&["get", "pods", "-A", "-o", "wide"]);
    assert!(out.stdout.contains("web-1"), "{}", out.stdout);
    assert!(out.stdout.contains("node-1"), "{}", out.stdout);

    let out = k.ok(&[
        "get",
        "pods",
        "-n",
        "falco",
        "-l",
        "app=falco",
        "-o",
        "json",
    ]);
    let list: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("kubectl -o json output");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(list["items"][0]["spec"]["nodeName"], "node-0");

    let out = k.ok(&["get", "pods", "-n", "no-such-namespace"]);
    assert!(
        out.stderr
            .contains("No resources found in no-such-namespace namespace."),
        "{}",
        out.stderr
    );

    // Everything kubectl needed was served: no refusals on the way.
    let reqs = server.requests();
    assert!(
        reqs.iter().all(|r| r.authorized && r.status == Some(200)),
        "{reqs:#?}"
    );
    let table = reqs
        .iter()
        .find(|r| r.param("labelSelector") == Some("app=falco"))
        .expect("a list with labelSelector=app=falco");
    assert!(
        table
            .accept
            .as_deref()
            .is_some_and(|a| a.contains("as=Table")),
        "{table:?}"
    );
}

#[test]
fn kubectl_logs_reads_like_a_cluster() {
    let server = FakeApiServer::start(kubectl_cluster());
    let Some(k) = Kubectl::new(&server, "kubectl_logs_reads_like_a_cluster") else {
        return;
    };

    let out = k.ok(&[
        "logs",
        "-n",
        "falco",
        "falco-a",
        "-c",
        "falco",
        "--timestamps",
    ]);
    assert_eq!(out.stdout, FALCO_A_LOG);

    // kubectl itself defaults to the first container (the API server would refuse: see below).
    let out = k.ok(&["logs", "-n", "falco", "falco-a"]);
    assert_eq!(out.stdout, plain(FALCO_A_LOG));
    assert!(
        out.stderr.contains(
            "Defaulted container \"falco\" out of: falco, falcoctl-artifact-follow, falco-driver-loader (init), falcoctl-artifact-install (init)"
        ),
        "{}",
        out.stderr
    );
    let out = k.fails(&["get", "--raw", "/api/v1/namespaces/falco/pods/falco-a/log"]);
    assert!(
        out.stderr.contains(&format!(
            "Error from server (BadRequest): {NO_CONTAINER_MESSAGE}"
        )),
        "{}",
        out.stderr
    );

    let out = k.ok(&[
        "logs",
        "-n",
        "falco",
        "falco-a",
        "-c",
        "falco",
        "--since-time=2024-01-15T10:30:00Z",
    ]);
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);

    let out = k.fails(&[
        "logs",
        "-n",
        "falco",
        "falco-a",
        "-c",
        "falco",
        "--previous",
    ]);
    assert!(
        out.stderr
            .contains("previous terminated container \"falco\" in pod \"falco-a\" not found"),
        "{}",
        out.stderr
    );

    let out = k.fails(&["logs", "-n", "falco", "falco-zzz", "-c", "falco"]);
    assert!(
        out.stderr.contains("pods \"falco-zzz\" not found"),
        "{}",
        out.stderr
    );

    // By selector, every line of every pod with --tail=-1 ...
    let out = k.ok(&[
        "logs",
        "-n",
        "falco",
        "-l",
        "app=falco",
        "--tail=-1",
        "-c",
        "falco",
    ]);
    let expected_all = format!("{}{}", plain(FALCO_A_LOG), falco_b_log().to_plain_text());
    let mut got: Vec<&str> = out.stdout.lines().collect();
    let mut want: Vec<&str> = expected_all.lines().collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);

    // ... but only the last 10 per pod without it (kubectl sends tailLines=10).
    server.clear_requests();
    let out = k.ok(&["logs", "-n", "falco", "-l", "app=falco", "-c", "falco"]);
    assert_eq!(out.stdout.lines().count(), 5 + 10, "{}", out.stdout);
    assert!(!out.stdout.contains("falco-b line 4\n"), "{}", out.stdout);
    let b = server.log_requests("falco-b");
    assert_eq!(b.len(), 1, "{b:#?}");
    assert_eq!(b[0].param("tailLines"), Some("10"));
    assert_eq!(b[0].param("container"), Some("falco"));
}

#[test]
fn kubectl_is_refused_what_a_real_server_refuses() {
    let server = FakeApiServer::start(kubectl_cluster());
    let Some(k) = Kubectl::new(&server, "kubectl_is_refused_what_a_real_server_refuses") else {
        return;
    };

    let out = k.fails(&["get", "secrets"]);
    assert!(
        out.stderr.contains(
            "Error from server (Forbidden): secrets is forbidden: User \"test\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        out.stderr
    );

    let out = k.fails(&["delete", "pod", "-n", "falco", "falco-a"]);
    assert!(
        out.stderr.contains(
            "pods \"falco-a\" is forbidden: User \"test\" cannot delete resource \"pods\" in API group \"\" in the namespace \"falco\""
        ),
        "{}",
        out.stderr
    );

    let out = k.fails(&["--context", "bad-token", "get", "pods"]);
    assert!(
        out.stderr
            .contains("error: You must be logged in to the server (Unauthorized)"),
        "{}",
        out.stderr
    );
    let unauth: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| !r.authorized)
        .collect();
    assert!(!unauth.is_empty());
    assert!(unauth.iter().all(|r| r.status == Some(401)), "{unauth:#?}");
    assert!(unauth
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer wrong-token")));

    let out = k.fails(&["--context", "unreachable", "get", "pods"]);
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);

    let out = k.fails(&["--context", "wrong-ca", "get", "pods"]);
    assert!(
        out.stderr
            .contains("x509: certificate signed by unknown authority"),
        "{}",
        out.stderr
    );
}

#[test]
fn kubectl_rejects_a_certificate_for_another_name() {
    let server = FakeApiServer::start(FakeCluster::new(vec![]).with_faults(Faults {
        tls_wrong_name: true,
        ..Faults::default()
    }));
    let Some(k) = Kubectl::new(&server, "kubectl_rejects_a_certificate_for_another_name") else {
        return;
    };
    let out = k.fails(&["get", "pods"]);
    // Go words it so for an IP address: the certificate only names wrong.example.invalid.
    assert!(
        out.stderr.contains(
            "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"
        ),
        "{}",
        out.stderr
    );
}

// ------------------------------------------------------------------ kube-rs

async fn kube_client(kubeconfig: &Path, retry: bool) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config from kubeconfig");
    config.default_retry = retry;
    config.read_timeout = Some(StdDuration::from_secs(10));
    Client::try_from(config).expect("kube client")
}

async fn read_log(pods: &Api<Pod>, name: &str, lp: &LogParams) -> Result<String, String> {
    let mut stream = pods.log_stream(name, lp).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    stream
        .read_to_end(&mut buf)
        .await
        .map_err(|e| format!("reading body after {} bytes: {e}", buf.len()))?;
    Ok(String::from_utf8(buf).expect("UTF-8 log"))
}

fn api_status(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API Status error, got {other:?}"),
    }
}

fn falco(lp: LogParams) -> LogParams {
    LogParams {
        container: Some("falco".to_string()),
        ..lp
    }
}

fn kube_cluster() -> FakeCluster {
    let crashed = Terminated::new(ts("2024-01-15T10:00:00Z"), ts("2024-01-15T10:20:00Z"), 1);
    kubectl_cluster()
        .with_pod(
            FakePod::falco("falco-crash", "node-2", LogSource::empty()).falco_crash_looping(
                crashed,
                LogSource::at(ts("2024-01-15T10:19:59Z"), &["last words"]),
                4,
            ),
        )
        .with_pod(
            FakePod::falco("falco-pending", None::<String>, LogSource::empty())
                .pending_unscheduled(),
        )
        .with_pod(
            FakePod::falco("falco-helm", "node-3", LogSource::empty()).with_labels([
                ("app.kubernetes.io/name", "falco"),
                ("app.kubernetes.io/instance", "falco"),
            ]),
        )
}

#[tokio::test]
async fn kube_rs_lists_and_reads_logs() {
    let server = FakeApiServer::start(kube_cluster());
    let dir = tempfile::tempdir().expect("tempdir");
    let client = kube_client(&server.write_kubeconfig(dir.path()), true).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "falco");

    // list: selectors, realistic objects
    let names = |l: &kube::core::ObjectList<Pod>| -> Vec<String> {
        l.items
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect()
    };
    let list = pods
        .list(&ListParams::default().labels("app=falco"))
        .await
        .expect("list app=falco");
    assert_eq!(
        names(&list),
        ["falco-a", "falco-b", "falco-crash", "falco-pending"]
    );
    let a = &list.items[0];
    let status = a.status.as_ref().expect("status");
    let cs = status
        .container_statuses
        .as_ref()
        .expect("containerStatuses");
    assert_eq!(cs[0].name, "falco");
    assert!(cs[0]
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .is_some());
    assert_eq!(
        a.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some("node-0")
    );
    let crash = &list.items[2];
    let cs = &crash
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .expect("statuses")[0];
    assert_eq!(cs.restart_count, 4);
    assert_eq!(
        cs.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref()),
        Some("CrashLoopBackOff")
    );
    assert_eq!(
        cs.last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code),
        Some(1)
    );

    let helm = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=falco"))
        .await
        .expect("list helm labels");
    assert_eq!(names(&helm), ["falco-helm"]);
    let not_a = pods
        .list(
            &ListParams::default()
                .labels("app=falco,app!=nothing")
                .fields("metadata.name!=falco-a"),
        )
        .await
        .expect("list with != selectors");
    assert_eq!(names(&not_a), ["falco-b", "falco-crash", "falco-pending"]);
    let none = Api::<Pod>::namespaced(client.clone(), "does-not-exist")
        .list(&ListParams::default())
        .await
        .expect("list in a missing namespace is an empty list");
    assert!(none.items.is_empty());
    let on_node0 = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields("spec.nodeName=node-0"))
        .await
        .expect("list all namespaces by node");
    assert_eq!(names(&on_node0), ["falco-a", "web-1"]);
    let pod = pods.get("falco-b").await.expect("get falco-b");
    assert_eq!(pod.metadata.namespace.as_deref(), Some("falco"));

    // log parameters
    let all = read_log(&pods, "falco-a", &falco(LogParams::default()))
        .await
        .expect("log");
    assert_eq!(all, plain(FALCO_A_LOG));
    let stamped = read_log(
        &pods,
        "falco-a",
        &falco(LogParams {
            timestamps: true,
            ..LogParams::default()
        }),
    )
    .await
    .expect("log with timestamps");
    assert_eq!(stamped, FALCO_A_LOG);
    // sinceTime is second precision: 10:30:00.4 arrives as 10:30:00 (kube-rs rounds it).
    let since: jiff::Timestamp = "2024-01-15T10:30:00.4Z".parse().expect("jiff timestamp");
    let lp = falco(LogParams {
        since_time: Some(since),
        timestamps: true,
        ..LogParams::default()
    });
    let got = read_log(&pods, "falco-a", &lp).await.expect("log since");
    let want: String = FALCO_A_LOG
        .lines()
        .skip(2)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(got, want);
    let sent = server.log_requests("falco-a");
    assert_eq!(
        sent.last().and_then(|r| r.param("sinceTime")),
        Some("2024-01-15T10:30:00Z")
    );
    let got = read_log(
        &pods,
        "falco-a",
        &falco(LogParams {
            limit_bytes: Some(50),
            ..LogParams::default()
        }),
    )
    .await
    .expect("log limitBytes");
    assert_eq!(got.as_bytes(), &plain(FALCO_A_LOG).as_bytes()[..50]);
    let got = read_log(
        &pods,
        "falco-b",
        &falco(LogParams {
            tail_lines: Some(2),
            ..LogParams::default()
        }),
    )
    .await
    .expect("log tailLines");
    assert_eq!(got, "falco-b line 13\nfalco-b line 14\n");
    let got = read_log(
        &pods,
        "falco-b",
        &falco(LogParams {
            since_seconds: Some(60),
            ..LogParams::default()
        }),
    )
    .await
    .expect("log sinceSeconds");
    assert_eq!(got, "", "all of falco-b's lines are older than a minute");

    // previous / crash loop
    let prev = read_log(
        &pods,
        "falco-crash",
        &falco(LogParams {
            previous: true,
            ..LogParams::default()
        }),
    )
    .await
    .expect("previous log");
    assert_eq!(prev, "last words\n");
    let current = read_log(&pods, "falco-crash", &falco(LogParams::default()))
        .await
        .expect("crash-looping container serves its last instance");
    assert_eq!(current, "last words\n");

    // errors, as a real API server words them
    let err = |r: Result<String, String>| r.expect_err("should be refused");
    let e = pods
        .log_stream("falco-a", &LogParams::default())
        .await
        .map(|_| ())
        .expect_err("no container");
    let s = api_status(e);
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (400, "BadRequest", NO_CONTAINER_MESSAGE)
    );
    let e = err(read_log(
        &pods,
        "falco-a",
        &falco(LogParams {
            previous: true,
            ..LogParams::default()
        }),
    )
    .await);
    assert!(
        e.contains("previous terminated container \"falco\" in pod \"falco-a\" not found"),
        "{e}"
    );
    let e = err(read_log(&pods, "falco-pending", &falco(LogParams::default())).await);
    assert!(
        e.contains(
            "container \"falco\" in pod \"falco-pending\" is waiting to start: ContainerCreating"
        ),
        "{e}"
    );
    let lp = LogParams {
        container: Some("nope".to_string()),
        ..LogParams::default()
    };
    let e = err(read_log(&pods, "falco-a", &lp).await);
    assert!(
        e.contains("container nope is not valid for pod falco-a"),
        "{e}"
    );
    let e = pods
        .log_stream("missing", &falco(LogParams::default()))
        .await
        .map(|_| ())
        .expect_err("404");
    let s = api_status(e);
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (404, "NotFound", "pods \"missing\" not found")
    );
    let init = read_log(
        &pods,
        "falco-a",
        &LogParams {
            container: Some("falco-driver-loader".to_string()),
            ..LogParams::default()
        },
    )
    .await
    .expect("init container log");
    assert_eq!(init, "");
}

#[tokio::test]
async fn kube_rs_sees_faults() {
    let mut faults = Faults::default();
    faults
        .log_fail_times
        .insert("falco-a".to_string(), (429, 2, Some(1)));
    faults.log_status.insert("falco-b".to_string(), 403);
    faults
        .log_reset_after_bytes
        .insert("web-1".to_string(), 100);
    faults.list_fail_times = Some((503, 1, None));
    let mut cluster = kubectl_cluster().with_faults(faults);
    cluster.pods[2] = cluster.pods[2]
        .clone()
        .with_container(FakeContainer::running(
            "sidecar",
            ts("2024-01-15T08:00:00Z"),
            LogSource::generated(
                1000,
                ts("2024-01-15T10:00:00Z"),
                Duration::milliseconds(1),
                |i| format!("{i:08}").into_bytes(),
            ),
        ));
    let server = FakeApiServer::start(cluster);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = server.write_kubeconfig(dir.path());
    let no_retry = kube_client(&kubeconfig, false).await;
    let retrying = kube_client(&kubeconfig, true).await;

    // 503 then success on the list (kube-rs retries 503 by default)
    let list = Api::<Pod>::namespaced(retrying.clone(), "falco")
        .list(&ListParams::default())
        .await
        .expect("list after a 503");
    assert_eq!(list.items.len(), 2);

    // 429 with Retry-After: the Status carries details.retryAfterSeconds ...
    let pods: Api<Pod> = Api::namespaced(no_retry, "falco");
    let e = pods
        .log_stream("falco-a", &falco(LogParams::default()))
        .await
        .map(|_| ())
        .expect_err("429");
    let s = api_status(e);
    assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(s.details.map(|d| d.retry_after_seconds), Some(1));
    // ... and the header: kube-rs waits the second it asks for, then succeeds.
    let pods: Api<Pod> = Api::namespaced(retrying.clone(), "falco");
    let started = Instant::now();
    let log = read_log(&pods, "falco-a", &falco(LogParams::default()))
        .await
        .expect("log after 429s");
    assert_eq!(log, plain(FALCO_A_LOG));
    assert!(
        started.elapsed() >= StdDuration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let statuses: Vec<Option<u16>> = server
        .log_requests("falco-a")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(429), Some(429), Some(200)]);

    // 403 on one pod's log
    let e = pods
        .log_stream("falco-b", &falco(LogParams::default()))
        .await
        .map(|_| ())
        .expect_err("403");
    let s = api_status(e);
    assert_eq!(s.code, 403);
    assert_eq!(
        s.message,
        "pods \"falco-b\" is forbidden: User \"test\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"falco\""
    );

    // connection reset after 100 bytes
    let shop: Api<Pod> = Api::namespaced(retrying, "shop");
    let lp = LogParams {
        container: Some("sidecar".to_string()),
        ..LogParams::default()
    };
    let e = read_log(&shop, "web-1", &lp)
        .await
        .expect_err("the body is cut");
    assert!(e.starts_with("reading body after 100 bytes: "), "{e}");
    eprintln!("reset seen by kube-rs as: {e}");

    // the requests were recorded with what matters
    let reqs = server.requests();
    assert!(reqs.iter().all(|r| r.authorized && r.method == "GET"));
    let first = &server.log_requests("falco-a")[0];
    assert_eq!(first.param("container"), Some("falco"));
    assert_eq!(
        first.authorization.as_deref(),
        Some(format!("Bearer {DEFAULT_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn kube_rs_times_out_on_hangs_and_slow_logs_are_slow() {
    let mut faults = Faults {
        slow_log_bytes_per_sec: Some(4000),
        ..Faults::default()
    };
    faults.hang_log.insert("falco-b".to_string());
    let mut cluster = FakeCluster::new(vec![
        FakePod::falco(
            "falco-a",
            "node-0",
            LogSource::generated(100, ts("2024-01-15T10:00:00Z"), Duration::seconds(1), |i| {
                format!("{i:019}").into_bytes() // 20 bytes a line: 2000 bytes
            }),
        ),
        FakePod::falco("falco-b", "node-1", falco_b_log()),
    ]);
    cluster.faults = faults;
    let server = FakeApiServer::start(cluster);
    let dir = tempfile::tempdir().expect("tempdir");
    let client = kube_client(&server.write_kubeconfig(dir.path()), true).await;
    let pods: Api<Pod> = Api::namespaced(client, "falco");

    let started = Instant::now();
    let log = read_log(&pods, "falco-a", &falco(LogParams::default()))
        .await
        .expect("slow log");
    assert_eq!(log.len(), 2000);
    let took = started.elapsed();
    assert!(
        took >= StdDuration::from_millis(400),
        "2000 bytes at 4000 B/s took {took:?}"
    );

    let hung = tokio::time::timeout(
        StdDuration::from_millis(500),
        read_log(&pods, "falco-b", &falco(LogParams::default())),
    )
    .await;
    assert!(hung.is_err(), "a hung /log must not answer: {hung:?}");
    let b = server.log_requests("falco-b");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].status, None);
}

#[test]
fn requests_are_recorded_with_decoded_queries() {
    // A pure check of the recorder, no client library involved.
    let q = fake_apiserver::server::parse_query(
        "labelSelector=app%3Dfalco%2Ctier+in+%28a%2Cb%29&limit=500",
    );
    let want: BTreeMap<String, String> = [
        (
            "labelSelector".to_string(),
            "app=falco,tier in (a,b)".to_string(),
        ),
        ("limit".to_string(), "500".to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(q, want);
}
