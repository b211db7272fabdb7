//! Issue 5, the fault matrix: every fault the cluster side can throw at the binary ends in a named
//! outcome (skipped, incomplete or a normal verdict) with a reason that says what to do, within
//! `--timeout` + 5 s, and never leaks a credential to stdout or stderr.
//!
//! Every scenario runs the built binary against the local HTTPS fake API server, in JSON and in
//! text, without and with `--fail-closed`.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use chrono::{DateTime, Utc};
use fake_apiserver::*;
use serde_json::Value;

/// Printed by the failing exec credential plugin on stdout and stderr.
const EXEC_SECRET: &str = "SECRET-EXEC-TOKEN-123";
/// Wrong token of the kubeconfig's `bad-token` user: a credential too.
const BAD_TOKEN: &str = "wrong-token";
/// Time of the alerts these tests plant, inside the window (which starts at [`WINDOW`]).
const T: &str = "2024-01-15T10:31:00.000000000Z";

fn banner(at: DateTime<Utc>) -> (DateTime<Utc>, String) {
    (at, FALCO_BANNER.to_string())
}

/// A log line with an alert at `time` for `ns`.
fn line(time: &str, priority: &str, ns: &str) -> (DateTime<Utc>, String) {
    (
        kubelet(time),
        alert(time, priority, "Terminal shell in container", Some(ns)),
    )
}

/// Three healthy Falco pods; `falco-a` saw `priority` in the target namespace, the others saw
/// traffic of other namespaces only.
fn three_pods(priority: &str) -> Vec<FakePod> {
    vec![
        falco_pod("falco-a", "node-0", vec![line(T, priority, NS)]),
        falco_pod("falco-b", "node-1", vec![line(T, "Critical", "default")]),
        falco_pod("falco-c", "node-2", vec![line(T, "Error", "kube-system")]),
    ]
}

crate::common::served_env!();

/// The JSON run (fail-open), and what the other three runs agreed on.
struct Outcome {
    json: Value,
    open: Run,
}

impl Outcome {
    fn verdict(&self) -> &str {
        self.json["verdict"].as_str().unwrap_or("")
    }
    fn reason(&self) -> String {
        self.json["reason"].as_str().unwrap_or("").to_string()
    }
    fn pod(&self, name: &str) -> &Value {
        self.json["pods"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("pod {name} not reported: {}", self.json))
    }
}

/// Neither the fake's token nor any other credential may reach the output.
fn assert_no_secrets(r: &Run, what: &str) {
    for secret in [DEFAULT_TOKEN, EXEC_SECRET, BAD_TOKEN] {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{what}: {secret} leaked: {r:?}"
        );
    }
}

impl Env {
    fn args<'a>(&'a self, timeout: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &self.kubeconfig,
            "--timeout",
            timeout,
        ];
        args.extend_from_slice(extra);
        args
    }

    /// Runs the check four ways (JSON and text, fail-open and fail-closed), all at once. Asserts
    /// that every run ended within `timeout` + 5 s, leaked no secret, that all four agree on
    /// the verdict, that the exit codes follow the contract, and that a verdict other than
    /// "passed" comes with the reason on stdout (text) and stderr.
    fn check(&self, timeout: &str, extra: &[&str]) -> Outcome {
        let limit = cli_duration(timeout) + Duration::from_secs(5);
        let variants: [(&[&str], &str); 4] = [
            (&["-o", "json"], "json"),
            (&["-o", "json", "--fail-closed"], "json --fail-closed"),
            (&["-o", "text"], "text"),
            (&["-o", "text", "--fail-closed"], "text --fail-closed"),
        ];
        let runs: Vec<(Run, &str)> = std::thread::scope(|s| {
            let handles: Vec<_> = variants
                .iter()
                .map(|(flags, what)| {
                    let mut args = self.args(timeout, extra);
                    args.extend_from_slice(flags);
                    s.spawn(move || (run(&args, &[], None), *what))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("run thread"))
                .collect()
        });
        for (r, what) in &runs {
            assert!(
                r.elapsed <= limit,
                "{what}: took {:?}, over --timeout {timeout} + 5s: {r:?}",
                r.elapsed
            );
            assert_no_secrets(r, what);
        }
        let mut runs = runs.into_iter().map(|(r, _)| r);
        let (open, closed, text_open, text_closed) = (
            runs.next().expect("json"),
            runs.next().expect("json closed"),
            runs.next().expect("text"),
            runs.next().expect("text closed"),
        );
        let json = open.json();
        let verdict = json["verdict"].as_str().unwrap_or("").to_string();
        assert_eq!(closed.json()["verdict"], verdict.as_str(), "{closed:?}");
        let (want_open, want_closed) = match verdict.as_str() {
            "passed" => (0, 0),
            "blocked" => (1, 1),
            "skipped" | "incomplete" => (0, 3),
            other => panic!("unknown verdict {other:?}: {open:?}"),
        };
        assert_eq!(open.code, want_open, "{open:?}");
        assert_eq!(json["exit_code"], want_open);
        assert_eq!(closed.code, want_closed, "{closed:?}");
        assert_eq!(text_open.code, want_open, "{text_open:?}");
        assert_eq!(text_closed.code, want_closed, "{text_closed:?}");
        let word = verdict.to_uppercase();
        assert!(text_open.stdout.contains(&word), "{text_open:?}");
        if verdict == "skipped" || verdict == "incomplete" {
            let reason = json["reason"].as_str().unwrap_or("");
            assert!(!reason.is_empty(), "{open:?}");
            assert_eq!(json["passed"], true);
            assert_eq!(closed.json()["passed"], false);
            assert!(
                text_open.stderr.contains("could NOT verify")
                    && text_open.stderr.contains("failing open"),
                "{text_open:?}"
            );
            assert!(
                text_closed.stderr.contains("failing closed (exit 3)"),
                "{text_closed:?}"
            );
            // The reason reaches a human in text mode, on stdout and stderr. Compare a prefix:
            // text output neutralizes quotes' neighbours, not quotes, so it is the same text.
            let head: String = reason.chars().take(40).collect();
            assert!(text_open.stdout.contains(&head), "{head}: {text_open:?}");
            assert!(text_open.stderr.contains(&head), "{head}: {text_open:?}");
        }
        Outcome { json, open }
    }
}

fn cli_duration(s: &str) -> Duration {
    falco_verify::args::parse_duration(s).expect("duration")
}

/// The requests for the window of `pod`'s log: `sinceTime` set. (A quiet log that begins after
/// the window start is followed by a small head read, without `sinceTime`, to tell rotation.)
fn window_reads(e: &Env, pod: &str) -> usize {
    e.server
        .log_requests(pod)
        .iter()
        .filter(|r| r.param("sinceTime").is_some())
        .count()
}

fn faults(f: impl FnOnce(&mut Faults)) -> Faults {
    let mut faults = Faults::default();
    f(&mut faults);
    faults
}

// ---------------------------------------------------------------- authentication, RBAC, TLS

#[test]
fn unauthorized_401_is_skipped_and_says_refresh_the_credentials() {
    let e = env_with(FakeCluster::new(three_pods("Critical")));
    let o = e.check("10s", &["--context", "bad-token"]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    let reason = o.reason();
    assert!(
        reason.contains("401") && reason.contains("credentials"),
        "{reason}"
    );
    assert!(reason.contains("refresh the token"), "{reason}");
    // The token was sent (and refused): the binary did not make it up or print it.
    let reqs = e.server.requests();
    assert!(reqs.iter().all(|r| !r.authorized && r.status == Some(401)));
}

#[test]
fn forbidden_403_on_the_pod_list_is_skipped_with_the_rbac_grant_to_add() {
    let e = env_with(
        FakeCluster::new(three_pods("Critical")).with_faults(faults(|f| {
            f.list_status = Some(403);
        })),
    );
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    assert!(
        o.reason().contains("Grant list on pods in namespace falco"),
        "{}",
        o.reason()
    );
    // Forbidden is not transient: no retry storm (one list per run, four runs).
    assert!(e.server.requests().len() <= 4, "{:?}", e.server.requests());
}

#[test]
fn forbidden_403_on_one_log_of_three_is_incomplete_and_names_the_pod() {
    let e = env_with(
        FakeCluster::new(three_pods("Notice")).with_faults(faults(|f| {
            f.log_status.insert("falco-b".into(), 403);
        })),
    );
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("1 of 3 Falco pod(s)"), "{reason}");
    assert!(reason.contains("falco-b"), "{reason}");
    assert!(reason.contains("Grant get on pods/log"), "{reason}");
    assert!(o.pod("falco-b")["error"].is_string());
    assert!(o.pod("falco-a")["error"].is_null());
    assert!(o.pod("falco-c")["error"].is_null());
    // What could be read still counts.
    assert_eq!(o.json["summary"]["notice"], 1);
    // An alert on a readable pod blocks whatever the unreadable one held.
    let e = env_with(
        FakeCluster::new(three_pods("Critical")).with_faults(faults(|f| {
            f.log_status.insert("falco-b".into(), 403);
        })),
    );
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "blocked", "{:?}", o.open);
    assert_eq!(o.json["incomplete"], true);
}

#[test]
fn tls_certificate_for_another_name_is_skipped_with_a_tls_reason() {
    let e = env_with(
        FakeCluster::new(three_pods("Critical")).with_faults(faults(|f| f.tls_wrong_name = true)),
    );
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("TLS handshake with"), "{reason}");
    assert!(reason.contains("certificate"), "{reason}");
    assert!(
        e.server.requests().is_empty(),
        "nothing sent over a bad TLS session"
    );
}

#[test]
fn tls_ca_mismatch_is_skipped_with_a_tls_reason() {
    let e = env_with(FakeCluster::new(three_pods("Critical")));
    let o = e.check("10s", &["--context", "wrong-ca"]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("TLS handshake with"), "{reason}");
    assert!(reason.contains("certificate-authority-data"), "{reason}");
    assert!(
        e.server.requests().is_empty(),
        "nothing sent over a bad TLS session"
    );
}

#[test]
fn unreachable_server_is_skipped_and_says_check_the_context() {
    let e = env_with(FakeCluster::new(three_pods("Critical")));
    let o = e.check("5s", &["--context", "unreachable"]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("cannot reach the API server"), "{reason}");
    assert!(reason.contains("Check the context"), "{reason}");
}

/// A kubeconfig user whose exec plugin prints a token-looking string and fails.
fn failing_exec_plugin(dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("get-token.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho '{{\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{EXEC_SECRET}\"}}}}'\necho \"{EXEC_SECRET}\"\necho \"error: the login expired; run cloud-login\" >&2\nexit 1\n"
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

#[test]
fn failing_exec_credential_plugin_is_skipped_without_echoing_its_output() {
    let server = FakeApiServer::start(FakeCluster::new(three_pods("Critical")));
    let dir = tempfile::tempdir().expect("tempdir");
    let script = failing_exec_plugin(dir.path());
    // Secrets in the plugin's arguments and environment must not be echoed either.
    let user = format!(
        "exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: {}\n  args: [\"--token\", \"{EXEC_SECRET}\"]\n  env:\n  - name: API_KEY\n    value: {EXEC_SECRET}\n  interactiveMode: Never\n",
        script.display()
    );
    let kubeconfig = server
        .write_kubeconfig_with_user(dir.path(), &user)
        .display()
        .to_string();
    let e = Env(Served {
        server,
        dir,
        kubeconfig,
    });
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    // What the plugin says on stderr is for the user, as kubectl shows it.
    assert!(
        o.open
            .stderr
            .contains("error: the login expired; run cloud-login"),
        "{:?}",
        o.open
    );
    let reason = o.reason();
    assert!(
        reason.contains("credentials could not be obtained"),
        "{reason}"
    );
    assert!(
        reason.contains("exec credential command exited"),
        "{reason}"
    );
    // The plugin's output never reached the server either.
    assert!(
        e.server.requests().iter().all(|r| r
            .authorization
            .as_deref()
            .is_none_or(|a| !a.contains(EXEC_SECRET))),
        "{:?}",
        e.server.requests()
    );
}

// ---------------------------------------------------------------- what the list returns

#[test]
fn falco_namespace_without_falco_is_skipped_and_says_where_to_look() {
    let e = env_with(FakeCluster::new(three_pods("Critical")));
    let o = e.check("10s", &["--falco-namespace", "falco-system"]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("no Falco pods"), "{reason}");
    assert!(reason.contains("Is Falco installed?"), "{reason}");
    assert!(reason.contains("--falco-namespace"), "{reason}");
}

#[test]
fn pod_deleted_between_list_and_log_404_is_incomplete() {
    let e = env_with(
        FakeCluster::new(three_pods("Notice")).with_faults(faults(|f| {
            f.log_status.insert("falco-c".into(), 404);
        })),
    );
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("falco-c"), "{reason}");
    assert!(reason.contains("404"), "{reason}");
    assert!(reason.contains("run the check again"), "{reason}");
    // 404 is final: asked once per run.
    assert_eq!(e.server.log_requests("falco-c").len(), 4);
}

#[test]
fn pending_falco_pod_is_incomplete_and_says_it_is_not_running() {
    let pending =
        FakePod::falco("falco-p", None::<String>, LogSource::empty()).pending_unscheduled();
    let mut pods = three_pods("Notice");
    pods.push(pending);
    let e = env_with(FakeCluster::new(pods));
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("falco-p"), "{reason}");
    assert!(reason.contains("not scheduled on any node"), "{reason}");
    assert!(reason.contains("kubectl describe pod"), "{reason}");
    assert_eq!(o.json["summary"]["notice"], 1);
}

fn crash_looping(name: &str, node: &str, previous: Vec<(DateTime<Utc>, String)>) -> FakePod {
    let terminated = Terminated::new(ts("2024-01-15T10:32:00Z"), ts("2024-01-15T10:33:00Z"), 1);
    FakePod::falco(name, node, LogSource::empty()).map_container("falco", |c| {
        *c = FakeContainer::waiting("falco", "CrashLoopBackOff")
            .with_previous(terminated, LogSource::lines(previous))
            .with_restart_count(4);
    })
}

#[test]
fn crash_looping_falco_is_incomplete_and_its_last_log_still_counts() {
    let prev = |p: &str| {
        vec![
            banner(ts("2024-01-15T10:32:00.1Z")),
            line("2024-01-15T10:32:30.000000000Z", p, NS),
        ]
    };
    let e = env_with(FakeCluster::new(vec![
        falco_pod("falco-a", "node-0", vec![line(T, "Critical", "default")]),
        crash_looping("falco-b", "node-1", prev("Notice")),
    ]));
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("falco-b"), "{reason}");
    assert!(reason.contains("CrashLoopBackOff"), "{reason}");
    assert_eq!(o.json["summary"]["notice"], 1, "{}", o.json);
    assert_eq!(o.json["alerts"][0]["pod"], "falco-b");
    // A blocking alert in the crashed instance's log blocks.
    let e = env_with(FakeCluster::new(vec![crash_looping(
        "falco-b",
        "node-1",
        prev("Error"),
    )]));
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "blocked", "{:?}", o.open);
    assert_eq!(o.json["incomplete"], true);
}

#[test]
fn restart_inside_the_window_reads_the_previous_instance() {
    let started = ts("2024-01-15T10:40:00Z");
    let pod = FakePod::falco("falco-r", "node-0", LogSource::lines(vec![banner(started)]))
        .map_container("falco", |c| {
            c.state = ContainerState::Running {
                started_at: started,
            }
        })
        .with_falco_previous(
            Terminated::new(falco_started_at(), ts("2024-01-15T10:39:00Z"), 137),
            LogSource::lines(vec![
                banner(falco_started_at()),
                line("2024-01-15T10:35:00.000000000Z", "Warning", NS),
            ]),
        );
    let e = env_with(FakeCluster::new(vec![pod]));
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "blocked", "{:?}", o.open);
    assert_eq!(o.json["summary"]["warning"], 1);
    assert_eq!(o.pod("falco-r")["previous_read"], true);
    assert!(o.pod("falco-r")["error"].is_null(), "{}", o.json);
    let logs = e.server.log_requests("falco-r");
    assert!(logs.iter().any(|r| r.param("previous") == Some("true")));
    assert!(logs.iter().any(|r| r.param("previous") != Some("true")));
}

#[test]
fn two_restarts_inside_the_window_are_incomplete() {
    let started = ts("2024-01-15T10:40:00Z");
    let pod = FakePod::falco("falco-r", "node-0", LogSource::lines(vec![banner(started)]))
        .map_container("falco", |c| {
            c.state = ContainerState::Running {
                started_at: started,
            }
        })
        .with_falco_previous(
            Terminated::new(ts("2024-01-15T10:35:00Z"), ts("2024-01-15T10:39:00Z"), 137),
            LogSource::lines(vec![banner(ts("2024-01-15T10:35:00Z"))]),
        )
        .map_container("falco", |c| c.restart_count = 2);
    let e = env_with(FakeCluster::new(vec![pod]));
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("falco-r"), "{reason}");
    assert!(reason.contains("restarted 2 times"), "{reason}");
    assert_eq!(o.pod("falco-r")["previous_read"], true);
}

#[test]
fn rotated_log_is_incomplete() {
    // Running since 09:59:58, but the current file begins at 10:50: the kubelet rotated the
    // older part (10:30-10:50 of the window) away.
    let lines = vec![
        line("2024-01-15T10:50:00.000000000Z", "Notice", "default"),
        line("2024-01-15T10:51:00.000000000Z", "Notice", "default"),
    ];
    let e = env_with(FakeCluster::new(vec![FakePod::falco(
        "falco-a",
        "node-0",
        LogSource::lines(lines),
    )]));
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("rotated"), "{reason}");
    assert!(reason.contains("falco-a"), "{reason}");
}

// ---------------------------------------------------------------- transient server errors

#[test]
fn persistent_500_on_a_log_is_retried_then_incomplete() {
    let e = env_with(
        FakeCluster::new(three_pods("Notice")).with_faults(faults(|f| {
            f.log_status.insert("falco-a".into(), 500);
        })),
    );
    let o = e.check("3s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("falco-a"), "{reason}");
    assert!(reason.contains("500"), "{reason}");
    assert!(reason.contains("--timeout"), "{reason}");
    // Four runs, each retried several times before the deadline.
    let n = e.server.log_requests("falco-a").len();
    assert!(n >= 4 * 3, "{n} log requests");
    assert!(
        o.open.elapsed >= Duration::from_millis(1000),
        "{:?}",
        o.open.elapsed
    );
}

#[test]
fn persistent_503_on_the_list_is_retried_then_skipped() {
    let e = env_with(
        FakeCluster::new(three_pods("Notice")).with_faults(faults(|f| f.list_status = Some(503))),
    );
    let o = e.check("3s", &[]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("503"), "{reason}");
    assert!(reason.contains("--timeout"), "{reason}");
    let lists = e.server.requests().iter().filter(|r| !r.is_log()).count();
    assert!(lists >= 4 * 3, "{lists} list requests");
}

#[test]
fn persistent_503_on_a_log_is_retried_then_incomplete() {
    let e = env_with(
        FakeCluster::new(three_pods("Notice")).with_faults(faults(|f| {
            f.log_status.insert("falco-c".into(), 503);
        })),
    );
    let o = e.check("3s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    assert!(o.reason().contains("falco-c"), "{}", o.reason());
    assert!(e.server.log_requests("falco-c").len() >= 4 * 3);
}

#[test]
fn a_503_once_is_retried_and_the_verdict_is_normal() {
    // One failure per route in total: the first of the four runs sees it.
    let f = || {
        faults(|f| {
            f.list_fail_times = Some((503, 1, None));
            f.log_fail_times.insert("falco-a".into(), (503, 1, None));
        })
    };
    let e = env_with(FakeCluster::new(three_pods("Critical")).with_faults(f()));
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "blocked", "{:?}", o.open);
    assert_eq!(o.json["incomplete"], false);
    assert_eq!(window_reads(&e, "falco-a"), 5);
    let e = env_with(FakeCluster::new(three_pods("Notice")).with_faults(f()));
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "passed", "{:?}", o.open);
}

#[test]
fn rate_limited_429_honours_retry_after() {
    let e = env_with(
        FakeCluster::new(three_pods("Notice")).with_faults(faults(|f| {
            // Each of the four runs meets one 429 on the list and then one on falco-b's log.
            f.list_fail_times = Some((429, 4, Some(1)));
            f.log_fail_times.insert("falco-b".into(), (429, 4, Some(2)));
        })),
    );
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "passed", "{:?}", o.open);
    assert!(
        o.open.elapsed >= Duration::from_secs(3),
        "Retry-After (1 s, then 2 s) honoured: {:?}",
        o.open.elapsed
    );
    assert_eq!(window_reads(&e, "falco-b"), 8);
}

/// API priority and fairness answers 429 with text/plain and the wait only in the header.
#[test]
fn priority_and_fairness_429_text_waits_as_the_header_says() {
    let e = env_with(
        FakeCluster::new(three_pods("Notice")).with_faults(faults(|f| {
            // Each of the four runs meets one.
            f.list_fail_times = Some((429, 4, Some(2)));
            f.fail_as_text = true;
        })),
    );
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "passed", "{:?}", o.open);
    assert!(
        o.open.elapsed >= Duration::from_secs(2),
        "Retry-After: 2 honoured, not the 0.2 s backoff: {:?}",
        o.open.elapsed
    );
    let lists = e
        .server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/falco/pods")
        .count();
    assert_eq!(lists, 8, "per run: one 429, one retry");
}

#[test]
fn retry_after_beyond_the_deadline_gives_up_at_once_with_a_reason() {
    let e = env_with(
        FakeCluster::new(three_pods("Notice")).with_faults(faults(|f| {
            f.list_fail_times = Some((429, 100, Some(60)));
        })),
    );
    let o = e.check("3s", &[]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    assert!(o.reason().contains("429"), "{}", o.reason());
    assert!(
        o.open.elapsed < Duration::from_secs(3),
        "{:?}",
        o.open.elapsed
    );
}

// ---------------------------------------------------------------- broken and stuck streams

/// `n` filler lines of another namespace after `first`, all inside the window.
fn long_log(first: Vec<(DateTime<Utc>, String)>, n: usize) -> Vec<(DateTime<Utc>, String)> {
    let mut lines = first;
    for i in 0..n {
        let t = format!("2024-01-15T10:4{}:{:02}.000000000Z", i / 60 % 10, i % 60);
        lines.push(line(&t, "Notice", "default"));
    }
    lines
}

fn kubelet_bytes(lines: &[(DateTime<Utc>, String)]) -> usize {
    lines.iter().map(|(_, l)| 31 + l.len() + 1).sum()
}

#[test]
fn connection_reset_mid_log_is_incomplete_never_passed() {
    let lines = long_log(vec![], 200);
    let at = kubelet_bytes(&lines[..50]) + 17;
    let e = env_with(
        FakeCluster::new(vec![
            FakePod::falco("falco-a", "node-0", LogSource::lines(lines.clone())),
            falco_pod("falco-b", "node-1", vec![]),
        ])
        .with_faults(faults(|f| {
            f.log_reset_after_bytes.insert("falco-a".into(), at);
        })),
    );
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("falco-a"), "{reason}");
    assert!(reason.contains("log stream broke"), "{reason}");
    assert!(reason.contains("run the check again"), "{reason}");
    let read = o.pod("falco-a")["lines_read"].as_u64().unwrap_or(0);
    assert!(
        (1..200).contains(&read),
        "{read} lines read before the reset"
    );
}

#[test]
fn connection_reset_after_an_alert_still_blocks() {
    let lines = long_log(vec![line(T, "Error", NS)], 200);
    let at = kubelet_bytes(&lines[..20]);
    let e = env_with(
        FakeCluster::new(vec![FakePod::falco(
            "falco-a",
            "node-0",
            LogSource::lines(lines),
        )])
        .with_faults(faults(|f| {
            f.log_reset_after_bytes.insert("falco-a".into(), at);
        })),
    );
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "blocked", "{:?}", o.open);
    assert_eq!(o.json["incomplete"], true);
    assert_eq!(o.json["summary"]["error"], 1);
    assert!(o.pod("falco-a")["error"]
        .as_str()
        .is_some_and(|e| e.contains("log stream broke")));
}

#[test]
fn server_that_never_answers_is_skipped_at_the_deadline() {
    let e = env_with(
        FakeCluster::new(three_pods("Critical")).with_faults(faults(|f| f.hang_all = true)),
    );
    let o = e.check("2s", &[]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("deadline"), "{reason}");
    assert!(reason.contains("Raise --timeout"), "{reason}");
    assert!(
        o.open.elapsed >= Duration::from_millis(1900),
        "{:?}",
        o.open.elapsed
    );
}

#[test]
fn log_that_never_answers_is_incomplete_at_the_deadline() {
    let e = env_with(
        FakeCluster::new(three_pods("Notice")).with_faults(faults(|f| {
            f.hang_log.insert("falco-c".into());
        })),
    );
    let o = e.check("2s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    let reason = o.reason();
    assert!(reason.contains("falco-c"), "{reason}");
    assert!(reason.contains("deadline"), "{reason}");
    assert_eq!(o.json["summary"]["notice"], 1, "the other pods were read");
    // A blocking alert found elsewhere is not held back by the stuck pod.
    let e = env_with(
        FakeCluster::new(three_pods("Alert")).with_faults(faults(|f| {
            f.hang_log.insert("falco-c".into());
        })),
    );
    let o = e.check("2s", &[]);
    assert_eq!(o.verdict(), "blocked", "{:?}", o.open);
}

#[test]
fn slow_log_is_cut_at_the_deadline_and_incomplete() {
    let lines = long_log(vec![], 300);
    let e = env_with(
        FakeCluster::new(vec![FakePod::falco(
            "falco-a",
            "node-0",
            LogSource::lines(lines),
        )])
        .with_faults(faults(|f| f.slow_log_bytes_per_sec = Some(4096))),
    );
    let o = e.check("2s", &[]);
    assert_eq!(o.verdict(), "incomplete", "{:?}", o.open);
    assert!(o.reason().contains("deadline"), "{}", o.reason());
}

// ---------------------------------------------------------------- least privilege

#[test]
fn a_normal_run_only_lists_falco_pods_and_reads_their_logs() {
    // --node-coverage=false: the Falco pods and their logs, nothing else.
    let e = env_with(FakeCluster::new(three_pods("Critical")));
    let o = e.check("10s", &["--node-coverage=false"]);
    assert_eq!(o.verdict(), "blocked", "{:?}", o.open);
    only_reads(&e, &[]);
    // By default the namespace's pods, its Scheduled Events and the Node objects are listed too.
    let e = env_with(FakeCluster::new(three_pods("Critical")));
    let o = e.check("10s", &[]);
    assert_eq!(o.verdict(), "blocked", "{:?}", o.open);
    let map = [
        format!("/api/v1/namespaces/{NS}/pods"),
        format!("/api/v1/namespaces/{NS}/events"),
        "/api/v1/nodes".to_string(),
    ];
    only_reads(&e, &map);
    let events: Vec<_> = e
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/events"))
        .collect();
    assert_eq!(events.len(), 4, "one per run");
    for r in events {
        assert_eq!(
            r.param("fieldSelector"),
            Some("reason=Scheduled,involvedObject.kind=Pod")
        );
    }
}

/// Every request is a GET of the Falco pod list, a Falco pod's log, or one of `map` (once per
/// run each).
fn only_reads(e: &Env, map: &[String]) {
    let reqs = e.server.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(r.method, "GET", "{r:?}");
        let allowed = r.path == "/api/v1/namespaces/falco/pods"
            || map.contains(&r.path)
            || ["falco-a", "falco-b", "falco-c"]
                .iter()
                .any(|p| r.path == format!("/api/v1/namespaces/falco/pods/{p}/log"));
        assert!(allowed, "unexpected request {r:?}");
        assert_eq!(r.status, Some(200), "{r:?}");
        assert!(r.authorized);
        assert_ne!(r.param("watch"), Some("true"), "{r:?}");
        assert_ne!(r.param("follow"), Some("true"), "{r:?}");
    }
    // Per run: one list (and the map's), and for each pod one read of the window plus at most
    // one head read (at most 4 KiB) to tell a rotated log from a quiet one.
    assert_eq!(
        reqs.iter().filter(|r| !r.is_log()).count(),
        4 * (1 + map.len())
    );
    for p in ["falco-a", "falco-b", "falco-c"] {
        assert_eq!(window_reads(e, p), 4, "{p}");
        let heads: Vec<_> = e
            .server
            .log_requests(p)
            .into_iter()
            .filter(|r| r.param("sinceTime").is_none())
            .collect();
        assert!(heads.len() <= 4, "{p}: {heads:?}");
        assert!(heads.iter().all(|r| r.param("limitBytes") == Some("4096")));
    }
}

#[test]
fn hanging_exec_credential_plugin_is_bounded_by_the_timeout() {
    use std::os::unix::fs::PermissionsExt;
    let server = FakeApiServer::start(FakeCluster::new(three_pods("Critical")));
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("login.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 30\n").expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let user = format!(
        "exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: {}\n  interactiveMode: Never\n",
        script.display()
    );
    let kubeconfig = server
        .write_kubeconfig_with_user(dir.path(), &user)
        .display()
        .to_string();
    let e = Env(Served {
        server,
        dir,
        kubeconfig,
    });
    // check() asserts each run ends within --timeout + 5 s.
    let o = e.check("2s", &[]);
    assert_eq!(o.verdict(), "skipped", "{:?}", o.open);
    assert!(o.reason().contains("credential plugin"), "{}", o.reason());
}
