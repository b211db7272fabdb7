//! `--canary`: a canary pod per node where the namespace ran, its alert awaited in that node's
//! Falco log, every outcome, and the pods deleted on every path (Ctrl-C and SIGTERM included),
//! through the binary against the fake API server and its Falco simulator.

use std::time::{Duration, Instant};

use crate::common::*;
use fake_apiserver::*;
use serde_json::Value;

served_env!();

fn banner_log() -> LogSource {
    LogSource::lines([(
        ts("2024-01-15T09:59:58.101233Z"),
        "Mon Jan 15 09:59:58 2024: Falco version: 0.42.1 (x86_64)".to_string(),
    )])
}

fn workload(name: &str, node: &str) -> FakePod {
    FakePod::new(name, NS)
        .with_node(node)
        .with_container(FakeContainer::running(
            "app",
            ts("2024-01-15T10:00:00Z"),
            LogSource::empty(),
        ))
}

/// Two nodes where the namespace runs, each with Falco; `sim` says how Falco reacts.
fn two_nodes(sim: CanarySim) -> Env {
    env_with(
        FakeCluster::new(vec![
            FakePod::falco("falco-a", "node-a", banner_log()),
            FakePod::falco("falco-b", "node-b", banner_log()),
            workload("web-a", "node-a"),
            workload("web-b", "node-b"),
        ])
        .with_canary(sim),
    )
}

impl Env {
    /// The check with `--canary` (and a canary timeout of 3 s unless `extra` sets one).
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &self.kubeconfig,
            "--canary",
        ];
        if !extra.contains(&"--canary-timeout") {
            a.extend_from_slice(&["--canary-timeout", "3s"]);
        }
        a.extend_from_slice(extra);
        a
    }

    fn json(&self, extra: &[&str]) -> (Run, Value) {
        let mut a = self.args(extra);
        a.extend_from_slice(&["-o", "json"]);
        let r = run(&a, &[], None);
        let j = r.json();
        (r, j)
    }

    /// Every canary created was deleted (DELETE answered), and nothing else was written.
    fn assert_cleaned_up(&self) -> usize {
        let reqs = self.server.requests();
        let posts = reqs
            .iter()
            .filter(|r| r.method == "POST" && r.status == Some(201))
            .count();
        let deletes: Vec<&RecordedRequest> = reqs.iter().filter(|r| r.method == "DELETE").collect();
        assert_eq!(deletes.len(), posts, "one delete per canary made: {reqs:?}");
        for d in deletes {
            assert_eq!(d.status, Some(200), "{d:?}");
            assert!(d.path.contains("/pods/falco-verify-canary-"), "{d:?}");
        }
        for r in &reqs {
            assert!(
                matches!(r.method.as_str(), "GET" | "POST" | "DELETE"),
                "{r:?}"
            );
            if r.method != "GET" {
                assert!(
                    r.path.starts_with(&format!("/api/v1/namespaces/{NS}/pods")),
                    "{r:?}"
                );
            }
        }
        posts
    }
}

fn canary_nodes(j: &Value) -> Vec<(String, String)> {
    j["canary"]["nodes"]
        .as_array()
        .expect("canary.nodes")
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap_or("-").to_string(),
                n["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_canary_seen_on_every_node_proves_falco_watched_and_is_never_counted() {
    let mut sim = CanarySim::default();
    sim.text_nodes.insert("node-b".to_string());
    let e = two_nodes(sim);
    let (r, j) = e.json(&[]);
    assert_eq!(j["verdict"], "passed", "{r:?}");
    assert_eq!(
        canary_nodes(&j),
        [
            ("node-a".into(), "seen".into()),
            ("node-b".into(), "seen".into())
        ]
    );
    assert_eq!(
        j["alert_count"], 0,
        "a canary alert is expected, never counted"
    );
    assert_eq!(
        j["canary_alerts"].as_array().map(Vec::len),
        Some(2),
        "{r:?}"
    );
    let node = &j["canary"]["nodes"][0];
    assert!(
        node["latency_ms"].as_u64().is_some_and(|l| l >= 300),
        "{node}"
    );
    assert_eq!(node["falco_pod"], "falco-a");
    assert!(node["pod"]
        .as_str()
        .is_some_and(|p| p.starts_with("falco-verify-canary-")));
    assert_eq!(j["canary"]["rule"], "Create Symlink Over Sensitive Files");
    assert_eq!(j["node_coverage"]["nodes"][0]["canary"], "seen");
    assert_eq!(e.assert_cleaned_up(), 2);
    // The pod made is what PodSecurity `restricted` admits, labelled, pinned to its node.
    let text = run(&e.args(&[]), &[], None);
    assert!(
        text.stdout
            .contains("PASSED: Falco watched shadow-abc123 on 2 node(s) (canary seen on 2/2)"),
        "{text:?}"
    );
}

#[test]
fn every_canary_outcome_is_a_gap_with_a_reason() {
    // A blind node: Falco reports nothing.
    let mut sim = CanarySim::default();
    sim.blind_nodes.insert("node-b".to_string());
    sim.unresolved_nodes.insert("node-a".to_string());
    let e = two_nodes(sim);
    let (r, j) = e.json(&[]);
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    assert_eq!(
        canary_nodes(&j),
        [
            ("node-a".into(), "seen_unlabelled".into()),
            ("node-b".into(), "not_seen".into())
        ]
    );
    let kinds: Vec<&str> = j["node_coverage"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["gaps"][0]["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["canary_unlabelled", "canary_not_seen"]);
    // The unlabelled canary alert is the canary's (its nonce is this run's), not an
    // unlabelled alert of the namespace.
    let pod_a = j["pods"].as_array().and_then(|p| p.first()).expect("pod");
    assert_eq!(pod_a["gaps"], serde_json::json!([]), "{r:?}");
    e.assert_cleaned_up();

    // Refused by admission: not run, with the API's reason.
    let sim = CanarySim {
        refuse: Some((
            403,
            "pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": seccompProfile (pod or container \"canary\" must set securityContext.seccompProfile.type)".to_string(),
        )),
        ..CanarySim::default()
    };
    let e = two_nodes(sim);
    let (r, j) = e.json(&[]);
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    assert_eq!(j["canary"]["nodes"][0]["outcome"], "not_run");
    let msg = j["canary"]["nodes"][0]["message"].as_str().unwrap_or("");
    assert!(msg.contains("violates PodSecurity"), "{msg}");
    assert_eq!(e.assert_cleaned_up(), 0);

    // The image cannot be pulled.
    let sim = CanarySim {
        image_pull_fails: true,
        ..CanarySim::default()
    };
    let e = two_nodes(sim);
    let (r, j) = e.json(&[]);
    assert_eq!(j["canary"]["nodes"][0]["outcome"], "not_run", "{r:?}");
    let msg = j["canary"]["nodes"][0]["message"].as_str().unwrap_or("");
    assert!(msg.contains("ErrImagePull"), "{msg}");
    assert_eq!(e.assert_cleaned_up(), 2);
}

#[test]
fn with_no_pod_yet_one_canary_goes_where_the_scheduler_puts_it() {
    let e = env_with(FakeCluster::new(vec![FakePod::falco(
        "falco-a",
        "node-a",
        banner_log(),
    )]));
    let (r, j) = e.json(&[]);
    assert_eq!(j["verdict"], "passed", "{r:?}");
    assert_eq!(canary_nodes(&j), [("node-a".into(), "seen".into())]);
    let post = e
        .server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a canary was made");
    assert_eq!(post.status, Some(201));
}

#[test]
fn canary_flags_that_cannot_work_are_usage_errors() {
    let e = two_nodes(CanarySim::default());
    for extra in [
        &["--node-coverage=false"][..],
        &["--canary-timeout", "soon"][..],
        &["--canary-command", "touch /tmp/x"],
    ] {
        let r = run(&e.args(extra), &[], None);
        assert_eq!(r.code, 2, "{extra:?}: {r:?}");
    }
    assert!(
        e.server.requests().is_empty(),
        "no request for a usage error"
    );
}

/// Ctrl-C or SIGTERM while the canaries wait: the pods made are deleted before the exit.
#[test]
fn a_signal_while_waiting_still_deletes_every_canary() {
    for signal in ["-INT", "-TERM"] {
        let mut sim = CanarySim::default();
        sim.blind_nodes.insert("node-a".to_string());
        sim.blind_nodes.insert("node-b".to_string());
        let e = two_nodes(sim);
        let args = e.args(&["--canary-timeout", "60s", "-o", "json"]);
        let child = std::process::Command::new(BIN)
            .args(&args)
            .env_remove("KUBECONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let started = Instant::now();
        while e
            .server
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.status.is_some())
            .count()
            < 2
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no canary made"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        let killed = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let out = child.wait_with_output().expect("wait");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{signal}: bounded"
        );
        let j: Value = serde_json::from_slice(&out.stdout).expect("a result after the signal");
        assert_eq!(j["verdict"], "incomplete", "{signal}");
        let msg = j["canary"]["nodes"][0]["message"].as_str().unwrap_or("");
        assert!(msg.contains("stopped by a signal"), "{signal}: {msg}");
        assert_eq!(e.assert_cleaned_up(), 2, "{signal}");
    }
}

/// An earlier run's canary alert in the window (a re-run of the gate) is listed, not counted;
/// a pod merely named like a canary is a normal alert.
#[test]
fn an_earlier_canary_is_recognised_only_by_its_own_nonce_in_its_path() {
    let t = "2024-01-15T10:36:00.000000000Z";
    let earlier = "falco-verify-canary-0a1b2c3d-0";
    let canary_alert = |pod: &str, link: &str| {
        format!(
            r#"{{"hostname":"node-a","output":"10:36:00.000000000: Warning Symlinks created over sensitive files (target=/etc/shadow linkpath={link} container_id=5d1c0f3e9a2b k8s_ns={NS} k8s_pod_name={pod})","output_fields":{{"container.id":"5d1c0f3e9a2b","evt.time":1705314960000000000,"k8s.ns.name":"{NS}","k8s.pod.name":"{pod}"}},"priority":"Warning","rule":"Create Symlink Over Sensitive Files","source":"syscall","tags":["container"],"time":"{t}"}}"#
        )
    };
    let dir = tempfile::tempdir().expect("tmp");
    let ok = dir.path().join("earlier.log");
    std::fs::write(
        &ok,
        format!("{}\n", canary_alert(earlier, &format!("/tmp/{earlier}"))),
    )
    .expect("write");
    let forged = dir.path().join("forged.log");
    std::fs::write(&forged, format!("{}\n", canary_alert(earlier, "/tmp/x"))).expect("write");
    let run_on = |p: &std::path::Path| {
        let f = p.display().to_string();
        run(
            &[NS, "--since-time", WINDOW, "--logs", &f, "-o", "json"],
            &[],
            None,
        )
        .json()
    };
    let j = run_on(&ok);
    assert_eq!(j["verdict"], "passed", "{j}");
    assert_eq!(j["canary_alerts"][0]["nonce"], "0a1b2c3d");
    let j = run_on(&forged);
    assert_eq!(j["verdict"], "blocked", "{j}");
    assert_eq!(j["alert_count"], 1);
}

/// A `--for` soak proves Falco watched at both ends: one canary round at its start, one at its end.
#[test]
fn a_soak_runs_a_canary_round_at_its_start_and_its_end() {
    let e = two_nodes(CanarySim::default());
    let (r, j) = e.json(&["--for", "2s"]);
    assert_eq!(j["verdict"], "passed", "{r:?}");
    let rounds: Vec<(String, String)> = j["canary"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["round"].as_str().unwrap_or("").to_string(),
                n["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        rounds,
        [
            ("start".into(), "seen".into()),
            ("start".into(), "seen".into()),
            ("end".into(), "seen".into()),
            ("end".into(), "seen".into())
        ],
        "{r:?}"
    );
    assert_eq!(e.assert_cleaned_up(), 4);
}

/// Every refusal the API can give a canary is `not_run` with the API's own words; a Falco that
/// reports later than the canary timeout is `not_seen`.
#[test]
fn refusals_and_late_reports_are_said_with_their_reason() {
    let cases: [(CanarySim, &str, &str); 3] = [
        (
            CanarySim {
                refuse: Some((403, "pods is forbidden: User \"ci\" cannot create resource \"pods\" in API group \"\" in the namespace \"shadow-abc123\"".to_string())),
                ..CanarySim::default()
            },
            "not_run",
            "cannot create resource",
        ),
        (
            CanarySim {
                refuse: Some((422, "Pod \"falco-verify-canary\" is invalid: exceeded quota: compute-resources".to_string())),
                ..CanarySim::default()
            },
            "not_run",
            "exceeded quota",
        ),
        (
            CanarySim {
                delay: Duration::from_secs(10),
                ..CanarySim::default()
            },
            "not_seen",
            "within 2s",
        ),
    ];
    for (sim, outcome, says) in cases {
        let e = two_nodes(sim);
        let (r, j) = e.json(&["--canary-timeout", "2s"]);
        assert_eq!(j["verdict"], "incomplete", "{r:?}");
        let node = &j["canary"]["nodes"][0];
        assert_eq!(node["outcome"], outcome, "{r:?}");
        let msg = node["message"].as_str().unwrap_or("");
        assert!(msg.contains(says), "{msg}");
        e.assert_cleaned_up();
    }
}
