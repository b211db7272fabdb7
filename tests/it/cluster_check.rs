//! The core check end to end: the built binary, a real kubeconfig, real TLS, the fake API server.

use crate::common::*;
use fake_apiserver::*;

fn one_alert_pod(time: &str, priority: &str, ns: Option<&str>) -> FakePod {
    falco_pod(
        "falco-a",
        "node-0",
        vec![(
            kubelet(time),
            alert(time, priority, "Terminal shell in container", ns),
        )],
    )
}

crate::common::served_env!();

impl Env {
    fn check(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &self.kubeconfig,
            "-o",
            "json",
            "--timeout",
            "10s",
        ];
        args.extend_from_slice(extra);
        run(&args, &[], None)
    }
}

#[test]
fn clean_pass_reads_every_pod_with_a_container_and_since_time() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let e = env_with(FakeCluster::new(vec![
        falco_pod(
            "falco-a",
            "node-0",
            vec![(kubelet(t), alert(t, "Critical", "R", Some("default")))],
        ),
        falco_pod(
            "falco-b",
            "node-1",
            vec![(kubelet(t), alert(t, "Notice", "R", Some("kube-system")))],
        ),
    ]));
    let r = e.check(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["passed"], true);
    assert_eq!(j["skipped"], false);
    assert_eq!(j["verdict"], "passed");
    assert_eq!(j["alert_count"], 0);
    assert_eq!(j["tool"], "falco");
    assert_eq!(j["namespace_filter"], NS);
    assert_eq!(j["falco_namespace"], "falco");
    assert_eq!(j["label_selector"], "app=falco");
    assert_eq!(j["since_timestamp"], "2024-01-15T10:30:00Z");
    assert_eq!(j["severity_threshold"], "WARNING");
    assert_eq!(j["raw_lines_count"], 2);
    assert_eq!(j["pods"].as_array().map(Vec::len), Some(2));
    assert_eq!(j["pods"][0]["container"], "falco");
    for key in LEVELS.iter().chain(&["other"]) {
        assert_eq!(j["summary"][key], 0, "{key}");
    }
    for pod in ["falco-a", "falco-b"] {
        // The window read; a log that begins after the window start is followed by a small
        // read of the file's head (limitBytes, no sinceTime) to tell quiet from rotated.
        let logs: Vec<_> = e
            .server
            .log_requests(pod)
            .into_iter()
            .filter(|r| r.param("limitBytes").is_none())
            .collect();
        assert_eq!(logs.len(), 1, "{pod}: {logs:?}");
        assert_eq!(logs[0].param("container"), Some("falco"));
        assert_eq!(logs[0].param("sinceTime"), Some("2024-01-15T10:30:00Z"));
        assert_eq!(logs[0].param("timestamps"), Some("true"));
        assert_eq!(logs[0].param("tailLines"), None);
    }
}

#[test]
fn every_level_blocks_at_and_passes_below_the_threshold() {
    let levels = [
        "Emergency",
        "Alert",
        "Critical",
        "Error",
        "Warning",
        "Notice",
        "Informational",
        "Debug",
    ];
    let t = "2024-01-15T10:31:00.000000000Z";
    for (i, level) in levels.iter().enumerate() {
        let e = env_with(FakeCluster::new(vec![one_alert_pod(t, level, Some(NS))]));
        // At the threshold: blocked.
        let r = e.check(&["--severity", &level.to_lowercase()]);
        assert_eq!(r.code, 1, "{level} at threshold: {r:?}");
        let j = r.json();
        assert_eq!(j["passed"], false);
        assert_eq!(j["blocking_count"], 1);
        assert_eq!(j["summary"][level.to_lowercase()], 1);
        assert_eq!(j["alerts"][0]["priority"], *level);
        // One level more severe than the alert: passes, still counted.
        if i > 0 {
            let r = e.check(&["-s", &levels[i - 1].to_uppercase()]);
            assert_eq!(r.code, 0, "{level} below {}: {r:?}", levels[i - 1]);
            assert_eq!(r.json()["alert_count"], 1);
            assert_eq!(r.json()["blocking_count"], 0);
        }
    }
}

#[test]
fn prefix_trap_other_namespaces_and_host_events_do_not_count() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let lines = vec![
        (
            kubelet(t),
            alert(t, "Emergency", "R", Some("shadow-abc1234")),
        ),
        (kubelet(t), alert(t, "Emergency", "R", Some("shadow-abc12"))),
        (kubelet(t), alert(t, "Emergency", "R", None)),
        (
            kubelet(t),
            alert(
                t,
                "Emergency",
                "kubectl -n shadow-abc123 exec",
                Some("default"),
            ),
        ),
    ];
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a", "node-0", lines,
    )]));
    let r = e.check(&["-s", "debug"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["alert_count"], 0);
}

#[test]
fn k8saudit_alerts_count_by_target_namespace() {
    let t = "2024-01-15T10:44:48.390127765Z";
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![
            (kubelet(t), audit_alert(t, "Error", NS)),
            (kubelet(t), audit_alert(t, "Error", "other")),
        ],
    )]));
    let r = e.check(&["-s", "error"]);
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["alert_count"], 1);
    assert_eq!(j["alerts"][0]["source"], "k8s_audit");
    assert_eq!(j["alerts"][0]["output_fields"]["ka.target.namespace"], NS);
}

#[test]
fn out_of_window_alerts_the_server_still_returns_are_ignored() {
    // The API's sinceTime has second precision and uses the kubelet's time: a line written at
    // 10:30:00.0007 carries an event of 10:29:59.999999999, before the window.
    let before = "2024-01-15T10:29:59.999999999Z";
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![(kubelet(before), alert(before, "Critical", "R", Some(NS)))],
    )]));
    let r = e.check(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["alert_count"], 0);
    assert_eq!(j["outside_window_count"], 1);
    assert_eq!(j["raw_lines_count"], 1, "the server did return the line");
}

#[test]
fn three_pods_with_alerts_spread_are_all_counted() {
    let mk = |name: &str, node: &str, prios: &[&str]| {
        let lines = prios
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let t = format!("2024-01-15T10:4{i}:00.000000000Z");
                (kubelet(&t), alert(&t, p, "R", Some(NS)))
            })
            .collect();
        falco_pod(name, node, lines)
    };
    let e = env_with(FakeCluster::new(vec![
        mk("falco-a", "node-0", &["Notice", "Warning"]),
        mk("falco-b", "node-1", &["Error"]),
        mk("falco-c", "node-2", &["Debug", "Critical", "Notice"]),
    ]));
    let r = e.check(&[]);
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["alert_count"], 6);
    assert_eq!(j["blocking_count"], 3);
    assert_eq!(j["summary"]["notice"], 2);
    let pods: Vec<&str> = j["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["pod"].as_str())
        .collect();
    for p in ["falco-a", "falco-b", "falco-c"] {
        assert!(pods.contains(&p), "{p} in {pods:?}");
    }
}

#[test]
fn container_choice_uses_annotation_or_only_container_and_flag() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let line = vec![(kubelet(t), alert(t, "Critical", "R", Some(NS)))];
    let annotated = FakePod::new("falco-x", "falco")
        .with_label("app", "falco")
        .with_node("node-0")
        .with_annotation("kubectl.kubernetes.io/default-container", "engine")
        .with_containers(vec![
            FakeContainer::running("sidecar", falco_started_at(), LogSource::empty()),
            FakeContainer::running("engine", falco_started_at(), LogSource::lines(line.clone())),
        ]);
    let e = env_with(FakeCluster::new(vec![annotated]));
    let r = e.check(&[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        e.server.log_requests("falco-x")[0].param("container"),
        Some("engine")
    );
    // --container wins; a name the pod lacks is reported for that pod.
    let r = e.check(&["-c", "sidecar"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = e.check(&["-c", "nope", "--fail-closed"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.json()["pods"][0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("nope"));
}

#[test]
fn chart_label_fallback_is_used_and_said() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let pod = one_alert_pod(t, "Warning", Some(NS)).with_labels([
        ("app.kubernetes.io/name", "falco"),
        ("app.kubernetes.io/instance", "falco"),
    ]);
    let e = env_with(FakeCluster::new(vec![pod]));
    let r = e.check(&[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["label_selector"], "app.kubernetes.io/name=falco");
    assert!(r.stderr.contains("app.kubernetes.io/name=falco"), "{r:?}");
    // An explicit selector gets no fallback.
    let r = e.check(&["-l", "app=falco"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["skipped"], true);
}

#[test]
fn no_falco_is_skipped_fail_open_or_exit_3_fail_closed() {
    let e = env_with(FakeCluster::new(vec![]));
    let r = e.check(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(
        (j["skipped"].as_bool(), j["verdict"].as_str()),
        (Some(true), Some("skipped"))
    );
    assert!(
        j["reason"].as_str().unwrap_or("").contains("no Falco pods"),
        "{j}"
    );
    assert!(r.stderr.contains("could NOT verify"), "{r:?}");
    let r = e.check(&["--fail-closed"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.json()["passed"], false);
}

#[test]
fn forbidden_pod_list_is_skipped_with_rbac_hint() {
    let e = env_with(
        FakeCluster::new(vec![one_alert_pod(
            "2024-01-15T10:31:00.000000000Z",
            "Warning",
            Some(NS),
        )])
        .with_faults(Faults {
            list_status: Some(403),
            ..Faults::default()
        }),
    );
    let r = e.check(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let reason = r.json()["reason"].as_str().unwrap_or("").to_string();
    assert!(
        reason.contains("Grant list on pods in namespace falco"),
        "{reason}"
    );
    assert_eq!(e.check(&["--fail-closed"]).code, 3);
}

#[test]
fn forbidden_log_on_one_pod_is_incomplete_but_alerts_elsewhere_block() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let mut faults = Faults::default();
    faults.log_status.insert("falco-b".into(), 403);
    let clean = |n: &str, node: &str| {
        falco_pod(
            n,
            node,
            vec![(kubelet(t), alert(t, "Critical", "R", Some("default")))],
        )
    };
    let e = env_with(
        FakeCluster::new(vec![clean("falco-a", "node-0"), clean("falco-b", "node-1")])
            .with_faults(faults.clone()),
    );
    let r = e.check(&[]);
    assert_eq!(r.code, 0, "fail-open: {r:?}");
    let j = r.json();
    assert_eq!(j["incomplete"], true);
    assert_eq!(j["verdict"], "incomplete");
    assert!(
        j["reason"].as_str().unwrap_or("").contains("pods/log"),
        "{j}"
    );
    assert_eq!(e.check(&["--fail-closed"]).code, 3);
    // With an alert on the readable pod, the verdict is blocked whatever --fail-closed says.
    let e = env_with(
        FakeCluster::new(vec![
            falco_pod(
                "falco-a",
                "node-0",
                vec![(kubelet(t), alert(t, "Critical", "R", Some(NS)))],
            ),
            clean("falco-b", "node-1"),
        ])
        .with_faults(faults),
    );
    let r = e.check(&["--fail-closed"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["incomplete"], true);
}

#[test]
fn pending_falco_pod_is_incomplete() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let pending =
        FakePod::falco("falco-p", None::<String>, LogSource::empty()).pending_unscheduled();
    let e = env_with(FakeCluster::new(vec![
        one_alert_pod(t, "Notice", Some(NS)),
        pending,
    ]));
    let r = e.check(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["incomplete"], true, "{j}");
    let pods = j["pods"].as_array().expect("pods");
    let p = pods
        .iter()
        .find(|p| p["name"] == "falco-p")
        .expect("pending pod reported");
    assert_eq!(p["gaps"][0]["kind"], "not_scheduled", "{p}");
    assert!(
        p["error"]
            .as_str()
            .unwrap_or("")
            .contains("not scheduled on any node"),
        "{p}"
    );
}

#[test]
fn rate_limited_then_ok_is_retried_with_retry_after() {
    let mut faults = Faults::default();
    faults
        .log_fail_times
        .insert("falco-a".into(), (429, 1, Some(1)));
    faults.list_fail_times = Some((503, 1, None));
    let e = env_with(
        FakeCluster::new(vec![one_alert_pod(
            "2024-01-15T10:31:00.000000000Z",
            "Error",
            Some(NS),
        )])
        .with_faults(faults),
    );
    let r = e.check(&[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.elapsed >= std::time::Duration::from_millis(900),
        "Retry-After honoured: {:?}",
        r.elapsed
    );
    let window_reads = e
        .server
        .log_requests("falco-a")
        .into_iter()
        .filter(|r| r.param("sinceTime").is_some())
        .count();
    assert_eq!(window_reads, 2, "one 429, one retry");
}

#[test]
fn unreachable_context_is_skipped_quickly() {
    let e = env_with(FakeCluster::new(vec![]));
    let r = e.check(&["--context", "unreachable"]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["skipped"], true);
    assert!(
        j["reason"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach the API server"),
        "{j}"
    );
    assert!(r.elapsed < std::time::Duration::from_secs(12));
    assert!(
        j["stderr"]
            .as_str()
            .unwrap_or("")
            .contains("could NOT verify"),
        "the notice is in the result too: {j}"
    );
    assert_eq!(
        e.check(&["--context", "unreachable", "--fail-closed"]).code,
        3
    );
}

#[test]
fn disabled_by_env_makes_no_request_even_fail_closed() {
    let e = env_with(FakeCluster::new(vec![one_alert_pod(
        "2024-01-15T10:31:00.000000000Z",
        "Emergency",
        Some(NS),
    )]));
    let args = [
        NS,
        "--kubeconfig",
        e.kubeconfig.as_str(),
        "-o",
        "json",
        "--fail-closed",
    ];
    let r = run(&args, &[("AEGIS_SECURITY__FALCO_ENABLED", "false")], None);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["skipped"], true);
    assert!(
        j["reason"].as_str().unwrap_or("").starts_with("disabled"),
        "{j}"
    );
    assert!(e.server.requests().is_empty(), "{:?}", e.server.requests());
    assert!(
        r.stderr.contains("disabled, nothing was checked") && !r.stderr.contains("exit 3"),
        "{r:?}"
    );
}

/// A bad `AEGIS_SECURITY__*` value is a usage error naming the variable, before any request;
/// an unknown `AEGIS_SECURITY__FALCO_*` name is said (it does nothing).
#[test]
fn bad_environment_values_are_usage_errors_naming_the_variable() {
    let e = env_with(FakeCluster::new(vec![one_alert_pod(
        "2024-01-15T10:31:00.000000000Z",
        "Emergency",
        Some(NS),
    )]));
    let args = [
        NS,
        "--since-time",
        WINDOW,
        "--kubeconfig",
        e.kubeconfig.as_str(),
    ];
    let cases = [
        ("AEGIS_SECURITY__FALCO_ENABLED", "maybe"),
        ("AEGIS_SECURITY__FALCO_SEVERITY", "loud"),
        ("AEGIS_SECURITY__FALCO_NAMESPACE", "Falco_NS"),
        ("AEGIS_SECURITY__FALCO_LABEL_SELECTOR", "app==="),
    ];
    for (var, value) in cases {
        let r = run(&args, &[(var, value)], None);
        assert_eq!(r.code, 2, "{var}={value}: {r:?}");
        assert!(r.stderr.contains(var), "{var}: names the variable: {r:?}");
        assert!(e.server.requests().is_empty(), "{var}: no request");
    }
    let r = run(&args, &[("AEGIS_SECURITY__FALCO_ENABLE", "false")], None);
    assert_eq!(
        r.code, 1,
        "a typo'd kill switch does not switch the gate off: {r:?}"
    );
    assert!(
        r.stderr
            .contains("AEGIS_SECURITY__FALCO_ENABLE is not a variable this tool reads"),
        "{r:?}"
    );
}

/// An ignore file entry that does not parse is named (its number and text).
#[test]
fn ignore_file_errors_name_the_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("ignore.yaml");
    std::fs::write(&f, "- rule: Known noise\n- rul: Typo here\n").expect("write");
    let r = run(
        &[
            NS,
            "--logs",
            "/dev/null",
            "--ignore-file",
            f.to_str().expect("utf-8"),
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("entry 2") && r.stderr.contains("Typo here"),
        "{r:?}"
    );
}

#[test]
fn env_sets_defaults_and_flags_win() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let e = env_with(FakeCluster::new(vec![
        one_alert_pod(t, "Error", Some(NS)).in_namespace("security")
    ]));
    let args = [
        NS,
        "--since-time",
        WINDOW,
        "--kubeconfig",
        e.kubeconfig.as_str(),
        "-o",
        "json",
    ];
    let env = [
        ("AEGIS_SECURITY__FALCO_NAMESPACE", "security"),
        ("AEGIS_SECURITY__FALCO_SEVERITY", "CRITICAL"),
    ];
    let r = run(&args, &env, None);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["severity_threshold"], "CRITICAL");
    assert_eq!(r.json()["alert_count"], 1);
    let mut with_flag = args.to_vec();
    with_flag.extend(["-s", "error"]);
    assert_eq!(run(&with_flag, &env, None).code, 1);
    let r = run(
        &args,
        &[("AEGIS_SECURITY__FALCO_LABEL_SELECTOR", "app=nothing")],
        None,
    );
    assert_eq!(r.json()["label_selector"], "app=nothing");
}

#[test]
fn usage_errors_exit_2_without_any_request() {
    let e = env_with(FakeCluster::new(vec![]));
    let k = e.kubeconfig.as_str();
    for args in [
        vec!["Shadow_ABC", "--kubeconfig", k],
        vec![NS, "--kubeconfig", k, "--severity", "loud"],
        vec![NS, "--kubeconfig", k, "--since", "10"],
        vec![NS, "--kubeconfig", k, "--since-time", "yesterday"],
        vec![NS, "--kubeconfig", k, "--bogus"],
        vec![NS, "--kubeconfig", k, "-o", "xml"],
        vec![
            NS,
            "--kubeconfig",
            k,
            "--since-time",
            "2099-01-01T00:00:00Z",
        ],
        vec![NS, "--kubeconfig", k, "--since", "3000000000h"],
        vec![NS, "--kubeconfig", k, "--for", "3000000000h"],
        vec![NS, "--logs", "/nonexistent/falco.log"],
        vec!["--kubeconfig", k],
    ] {
        let r = run(&args, &[], None);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}");
    }
    let r = run(
        &[NS, "--kubeconfig", k],
        &[("AEGIS_SECURITY__FALCO_SEVERITY", "loud")],
        None,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(e.server.requests().is_empty());
}

#[test]
fn text_output_has_table_blocking_list_and_verdict() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let e = env_with(FakeCluster::new(vec![one_alert_pod(
        t,
        "Critical",
        Some(NS),
    )]));
    let r = run(
        &[NS, "--since-time", WINDOW, "--kubeconfig", &e.kubeconfig],
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    for want in [
        "CRITICAL",
        "Blocking alerts (1)",
        "Terminal shell in container",
        "falco-a",
        "BLOCKED",
    ] {
        assert!(r.stdout.contains(want), "{want}: {r:?}");
    }
    assert!(!r.stdout.contains('\u{1b}'), "no color on a pipe");
    let r = run(
        &[
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &e.kubeconfig,
            "--color",
            "always",
        ],
        &[],
        None,
    );
    assert!(r.stdout.contains("\u{1b}[31m"), "{r:?}");
    let r = run(
        &[
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &e.kubeconfig,
            "--color",
            "auto",
        ],
        &[("NO_COLOR", "1")],
        None,
    );
    assert!(!r.stdout.contains('\u{1b}'));
}

/// examples/demo is the Falco corpus of ../shared, unchanged: the counts the checks expect are
/// EXPECTED.md's.
#[test]
#[cfg_attr(not(shared_material), ignore = "needs ../shared beside the repository")]
fn the_bundled_demo_is_the_shared_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in ["json.log", "text.log", "text.kubelet-timestamps.log"] {
        let ours = std::fs::read(root.join("examples/demo").join(f)).expect("demo");
        let shared = std::fs::read(root.join("../shared/falco-corpus").join(f)).expect("corpus");
        assert!(
            ours == shared,
            "examples/demo/{f} differs from ../shared/falco-corpus/{f}"
        );
    }
}

/// The three corpus shapes served by the fake API server, with EXPECTED.md's counts (the
/// corpus is bundled as examples/demo).
#[test]
fn corpus_through_the_api_matches_expected_counts() {
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo"));
    let json = std::fs::read_to_string(dir.join("json.log")).expect("json.log");
    // json.log has no kubelet times: give each line its event time (monotonic, like a writer).
    let mut last = ts("2024-01-15T09:59:58Z");
    let mut lines = Vec::new();
    for l in json.lines() {
        let t = serde_json::from_str::<serde_json::Value>(l)
            .ok()
            .and_then(|v| v["time"].as_str().map(ts))
            .unwrap_or(last);
        last = last.max(t + chrono::Duration::microseconds(500));
        lines.push((last, l.to_string()));
    }
    let text = std::fs::read_to_string(dir.join("text.kubelet-timestamps.log")).expect("text log");
    let e = env_with(FakeCluster::new(vec![
        FakePod::falco("falco-json", "node-0", LogSource::lines(lines)),
        FakePod::falco("falco-text", "node-1", LogSource::from_text(&text)),
    ]));
    let r = e.check(&["-s", "warning"]);
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    // json: E1 W3 N4 I2 D1; text: E1 W3 N3 I1 D1.
    let want = [
        ("emergency", 0),
        ("alert", 0),
        ("critical", 0),
        ("error", 2),
        ("warning", 6),
        ("notice", 7),
        ("informational", 3),
        ("debug", 2),
    ];
    for (k, n) in want {
        assert_eq!(j["summary"][k], n, "{k}: {}", j["summary"]);
    }
    assert_eq!(e.check(&["-s", "error"]).code, 1);
    assert_eq!(e.check(&["-s", "critical"]).code, 0);
}

#[test]
fn logs_files_and_stdin_work_offline() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/falco-alerts.jsonl");
    let r = run(
        &[NS, "--logs", example, "--since-time", WINDOW, "-o", "json"],
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(
        (j["blocking_count"].as_u64(), j["alert_count"].as_u64()),
        (Some(2), Some(4)),
        "{j}"
    );
    let data = std::fs::read(example).expect("example");
    let r = run(
        &[NS, "--logs", "-", "--since-time", WINDOW, "-o", "json"],
        &[],
        Some(&data),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["alert_count"], 4);
    // Two inputs add up.
    let r = run(
        &[
            NS,
            "--logs",
            example,
            "--logs",
            example,
            "--since-time",
            WINDOW,
            "-o",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(r.json()["alert_count"], 8);
    // The demo logs are the Falco corpus (../shared/falco-corpus), bundled: this always runs.
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo"));
    for (file, counts) in [
        ("json.log", [0, 0, 0, 1, 3, 4, 2, 1]),
        ("text.log", [0, 0, 0, 1, 3, 3, 1, 1]),
        ("text.kubelet-timestamps.log", [0, 0, 0, 1, 3, 3, 1, 1]),
    ] {
        let path = dir.join(file).display().to_string();
        let r = run(
            &[NS, "--logs", &path, "--since-time", WINDOW, "-o", "json"],
            &[],
            None,
        );
        let j = r.json();
        for (k, n) in LEVELS.iter().zip(counts) {
            assert_eq!(j["summary"][k], n, "{file} {k}");
        }
        assert_eq!(r.code, 1);
        let crit = run(
            &[
                NS,
                "--logs",
                &path,
                "--since-time",
                WINDOW,
                "-s",
                "critical",
            ],
            &[],
            None,
        );
        assert_eq!(crit.code, 0, "{file}: {crit:?}");
        let err = run(
            &[NS, "--logs", &path, "--since-time", WINDOW, "-s", "error"],
            &[],
            None,
        );
        assert_eq!(err.code, 1, "{file}");
    }
}

#[test]
fn nodes_of_namespace_reads_only_falco_pods_on_those_nodes_and_says_so() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let line = |p: &str| vec![(kubelet(t), alert(t, p, "R", Some(NS)))];
    let workload = FakePod::new("web-1", NS).with_node("node-1");
    let e = env_with(FakeCluster::new(vec![
        falco_pod("falco-a", "node-0", line("Critical")),
        falco_pod("falco-b", "node-1", line("Notice")),
        falco_pod("falco-c", "node-2", line("Critical")),
        workload,
    ]));
    let r = e.check(&["--nodes-of-namespace"]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["alert_count"], 1);
    assert_eq!(j["pods"].as_array().map(Vec::len), Some(1));
    let scope = j["scope"].as_str().unwrap_or("");
    assert!(
        scope.contains("1 of 3") && scope.contains("node-1") && scope.contains("2 skipped"),
        "{scope}"
    );
    assert!(e.server.log_requests("falco-a").is_empty());
    // Without the flag every pod is read.
    assert_eq!(e.check(&[]).code, 1);
}

#[test]
fn progress_shows_on_a_terminal_and_never_on_a_pipe() {
    // Slow logs keep the check busy long enough for the progress line to be drawn.
    let t = "2024-01-15T10:31:00.000000000Z";
    let lines: Vec<_> = (0..40)
        .map(|_| (kubelet(t), alert(t, "Notice", "R", Some("other"))))
        .collect();
    let e = env_with(
        FakeCluster::new(vec![
            falco_pod("falco-a", "node-0", lines.clone()),
            falco_pod("falco-b", "node-1", lines),
        ])
        .with_faults(Faults {
            slow_log_bytes_per_sec: Some(40_000),
            ..Faults::default()
        }),
    );
    let piped = e.check(&[]);
    assert_eq!(piped.code, 0, "{piped:?}");
    assert!(!piped.stderr.contains("reading Falco logs"), "{piped:?}");
    let Some((code, screen, _)) =
        run_in_pty(&[NS, "--since-time", WINDOW, "--kubeconfig", &e.kubeconfig])
    else {
        return;
    };
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("reading Falco logs:") && screen.contains("pod(s)"),
        "{screen}"
    );
    assert!(screen.contains("PASSED"), "{screen}");
}

#[test]
fn a_falco_pod_started_after_the_window_start_is_incomplete() {
    let t = "2024-01-15T10:45:00.000000000Z";
    let started = ts("2024-01-15T10:40:00Z");
    let mut pod = falco_pod(
        "falco-new",
        "node-0",
        vec![(kubelet(t), alert(t, "Notice", "R", Some(NS)))],
    );
    pod.containers[0].state = ContainerState::Running {
        started_at: started,
    };
    let e = env_with(FakeCluster::new(vec![pod]));
    let r = e.check(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{j}");
    assert!(
        j["pods"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("after the window start"),
        "{j}"
    );
    assert_eq!(j["alert_count"], 1, "what was read still counts");
}

#[test]
fn an_empty_current_log_of_a_long_running_falco_means_rotated() {
    let e = env_with(FakeCluster::new(vec![FakePod::falco(
        "falco-a",
        "node-0",
        LogSource::empty(),
    )]));
    let r = e.check(&["--fail-closed"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.json()["pods"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("rotated"),
        "{r:?}"
    );
}

#[test]
fn blocking_alerts_are_listed_first_when_the_list_is_bounded() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let u = "2024-01-15T10:32:00.000000000Z";
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![
            (kubelet(t), alert(t, "Emergency", "Noisy rule", Some(NS))),
            (kubelet(u), alert(u, "Warning", "Real rule", Some(NS))),
        ],
    )]));
    let r = e.check(&["--max-alerts", "1", "--ignore-rule", "Noisy*"]);
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["alerts"][0]["rule"], "Real rule", "{j}");
    assert_eq!(j["alerts_omitted"], 1);
    let text = run(
        &[
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &e.kubeconfig,
            "--max-alerts",
            "1",
            "--ignore-rule",
            "Noisy*",
        ],
        &[],
        None,
    );
    assert!(
        text.stdout
            .contains("1 more alert(s) counted but not listed"),
        "{text:?}"
    );
}

#[test]
fn a_kubeconfig_or_context_typo_is_a_usage_error_before_any_request() {
    let e = env_with(FakeCluster::new(vec![one_alert_pod(
        "2024-01-15T10:31:00.000000000Z",
        "Critical",
        Some(NS),
    )]));
    let missing = format!("{}.typo", e.kubeconfig);
    let garbage = e.dir.path().join("garbage.yaml");
    std::fs::write(&garbage, "apiVersion: v1\nclusters: [[[\n").expect("write");
    let garbage = garbage.display().to_string();
    for (args, says) in [
        (vec!["--kubeconfig", missing.as_str()], "no such file"),
        (vec!["--kubeconfig", garbage.as_str()], "does not parse"),
        (
            vec!["--kubeconfig", e.kubeconfig.as_str(), "--context", "fkae"],
            "it has: bad-token, fake, unreachable, wrong-ca",
        ),
        (
            vec!["--kubeconfig", e.kubeconfig.as_str(), "-l", "app=fal co"],
            "not a label value",
        ),
        (
            vec!["--kubeconfig", e.kubeconfig.as_str(), "-l", "app in falco"],
            "a set needs parentheses",
        ),
    ] {
        let mut all = vec![NS, "--since-time", WINDOW, "--fail-closed"];
        all.extend(args.iter().copied());
        let r = run(&all, &[], None);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {r:?}");
    }
    assert!(
        e.server.log_requests("falco-a").is_empty(),
        "a usage error asked the server"
    );
    // KUBECONFIG lists skip missing files, as kubectl does; a context typo there is caught too.
    let list = format!("{missing}:{}", e.kubeconfig);
    let r = run(
        &[NS, "--since-time", WINDOW, "-o", "json"],
        &[("KUBECONFIG", &list)],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    let asked = e.server.log_requests("falco-a").len();
    assert!(asked > 0);
    let r = run(
        &[NS, "--since-time", WINDOW, "--context", "nope"],
        &[("KUBECONFIG", &list)],
        None,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(e.server.log_requests("falco-a").len(), asked);
}

#[test]
fn kubectl_style_namespace_flag_priority_alias_and_go_durations() {
    let e = env_with(FakeCluster::new(vec![one_alert_pod(
        "2024-01-15T10:31:00.000000000Z",
        "Error",
        Some(NS),
    )]));
    let kc = e.kubeconfig.as_str();
    // -n names the namespace like the positional argument; --priority is --severity.
    let r = run(
        &[
            "-n",
            NS,
            "--kubeconfig",
            kc,
            "--since-time",
            WINDOW,
            "--priority",
            "error",
            "-o",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["namespace_filter"], NS);
    let r = run(
        &[
            "-n",
            NS,
            "--kubeconfig",
            kc,
            "--since-time",
            WINDOW,
            "--priority",
            "critical",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    // Both, agreeing, is fine; differing is the user's mistake.
    let r = run(
        &[NS, "-n", NS, "--kubeconfig", kc, "--since-time", WINDOW],
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    let r = run(
        &[
            NS,
            "-n",
            "shadow-other",
            "--kubeconfig",
            kc,
            "--since-time",
            WINDOW,
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("differs"), "{r:?}");
    // Go durations with fractions, as kubectl takes them.
    for since in ["1.5h", "90s", "2h45m"] {
        let r = run(
            &[NS, "--kubeconfig", kc, "--since", since, "-o", "json"],
            &[],
            None,
        );
        assert_ne!(r.code, 2, "{since}: {r:?}");
    }
}

#[test]
fn help_and_man_page_carry_examples_environment_and_exit_status() {
    let help = run(&["--help"], &[], None);
    assert_eq!(help.code, 0, "{help:?}");
    let man = run(&["man"], &[], None);
    assert_eq!(man.code, 0, "{man:?}");
    for section in ["EXAMPLES", "ENVIRONMENT", "EXIT STATUS"] {
        assert!(
            help.stdout.contains(&format!("{section}:")),
            "--help lacks {section}"
        );
        assert!(
            man.stdout.contains(&format!(".SH \"{section}\"")),
            "man lacks {section}"
        );
    }
    assert!(help.stdout.contains("AEGIS_SECURITY__FALCO_ENABLED"));
    assert!(man.stdout.contains("AEGIS_SECURITY__FALCO_ENABLED"));
}

/// The Falco pods are listed in pages of 500 (`limit`, `continue`), as kubectl lists with its
/// default `--chunk-size`; an expired continue token (410) falls back to one whole list, as
/// client-go's pager does. Every pod is read either way.
#[test]
fn pods_are_listed_in_pages_as_kubectl_lists_them() {
    let t = "2024-01-15T10:31:00.000000000Z";
    let pods = || -> Vec<FakePod> {
        (0..1001)
            .map(|i| {
                falco_pod(
                    &format!("falco-{i}"),
                    &format!("node-{i}"),
                    vec![(kubelet(t), alert(t, "Notice", "R", Some(NS)))],
                )
            })
            .collect()
    };
    for expired in [false, true] {
        let e = env_with(FakeCluster::new(pods()).with_faults(Faults {
            continue_expired: expired,
            ..Faults::default()
        }));
        let r = e.check(&["--node-coverage=false"]);
        assert_eq!(r.code, 0, "expired={expired}: {}", r.stderr);
        let j = r.json();
        assert_eq!(
            j["pods"].as_array().map(Vec::len),
            Some(1001),
            "expired={expired}"
        );
        assert_eq!(j["alert_count"], 1001, "expired={expired}");
        let lists: Vec<(Option<String>, Option<String>)> = e
            .server
            .requests()
            .into_iter()
            .filter(|q| q.method == "GET" && q.path == "/api/v1/namespaces/falco/pods")
            .map(|q| {
                (
                    q.query.get("limit").cloned(),
                    q.query.get("continue").cloned(),
                )
            })
            .collect();
        let want: Vec<(Option<String>, Option<String>)> = if expired {
            vec![
                (Some("500".into()), None),
                (Some("500".into()), Some("offset-500".into())),
                (None, None),
            ]
        } else {
            vec![
                (Some("500".into()), None),
                (Some("500".into()), Some("offset-500".into())),
                (Some("500".into()), Some("offset-1000".into())),
            ]
        };
        assert_eq!(lists, want, "expired={expired}");
    }
}
