//! Was Falco watching? Node coverage (every node where the namespace ran has a Falco pod that
//! read it), alerts Falco could not label, container-name attribution and metrics snapshots,
//! through the binary against the fake API server (and offline for the unlabelled rule).

use crate::common::*;
use fake_apiserver::*;
use serde_json::Value;

served_env!();

impl Env {
    fn run(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &self.kubeconfig,
            "--timeout",
            "20s",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        run(&args, &[], None)
    }
}

/// A pod of the namespace running on `node` since `started`.
fn workload(name: &str, node: &str, started: &str) -> FakePod {
    FakePod::new(name, NS)
        .with_node(node)
        .with_container(FakeContainer::running(
            "app",
            ts(started),
            LogSource::empty(),
        ))
}

/// A Falco log: the start banner, then these lines at 10:36.
fn falco_log(lines: &[String]) -> LogSource {
    let t = "2024-01-15T10:36:00.000000000Z";
    let mut v = vec![(
        ts("2024-01-15T09:59:58.101233Z"),
        "Mon Jan 15 09:59:58 2024: Falco version: 0.42.1 (x86_64)".to_string(),
    )];
    v.extend(lines.iter().map(|l| (kubelet(t), l.clone())));
    LogSource::lines(v)
}

/// A Falco log with one alert of another namespace.
fn quiet_log() -> LogSource {
    let t = "2024-01-15T10:31:00.000000000Z";
    falco_log(&[alert(t, "Critical", "Other", Some("other-ns"))])
}

fn gap_kinds(row: &Value) -> Vec<String> {
    row["gaps"]
        .as_array()
        .map(|g| {
            g.iter()
                .map(|g| g["kind"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn node_rows(j: &Value) -> Vec<(String, Vec<String>)> {
    j["node_coverage"]["nodes"]
        .as_array()
        .expect("node_coverage.nodes")
        .iter()
        .map(|n| (n["node"].as_str().unwrap_or("").to_string(), gap_kinds(n)))
        .collect()
}

#[test]
fn every_node_where_the_namespace_ran_needs_a_falco_pod_that_watched_it() {
    let cluster = FakeCluster::new(vec![
        FakePod::falco("falco-a", "node-a", quiet_log()),
        // Falco on node-late started after the workload there did.
        FakePod::falco("falco-late", "node-late", quiet_log()).map_container("falco", |c| {
            c.state = ContainerState::Running {
                started_at: ts("2024-01-15T10:40:00Z"),
            }
        }),
        workload("web-a", "node-a", "2024-01-15T10:00:00Z"),
        workload("web-late", "node-late", "2024-01-15T10:35:00Z"),
        workload("web-fargate", "fargate-ip-10-0-1-1", "2024-01-15T10:00:00Z"),
        workload("web-gpu", "node-gpu", "2024-01-15T10:00:00Z"),
        // A finished Job's pod still tells where it ran.
        FakePod::new("job-1", NS)
            .with_node("node-gpu")
            .with_phase("Succeeded")
            .with_container(
                FakeContainer::running("job", ts("2024-01-15T10:32:00Z"), LogSource::empty())
                    .with_state(ContainerState::Terminated {
                        started_at: ts("2024-01-15T10:32:00Z"),
                        finished_at: ts("2024-01-15T10:33:00Z"),
                        exit_code: 0,
                    }),
            ),
    ])
    // A pod that is gone, on a node that is gone: only the scheduler's Event is left.
    .with_event(FakeEvent::scheduled(
        NS,
        "web-old",
        "node-gone",
        ts("2024-01-15T10:20:00Z"),
    ))
    .with_nodes(vec![
        FakeNode::new("node-a"),
        FakeNode::new("node-late"),
        FakeNode::new("fargate-ip-10-0-1-1")
            .with_label("eks.amazonaws.com/compute-type", "fargate"),
        FakeNode::new("node-gpu").with_taint("nvidia.com/gpu", "present", "NoSchedule"),
    ]);
    let e = env_with(cluster);
    let r = e.run(&[]);
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    assert_eq!(r.code, 0, "fail-open: {r:?}");
    assert_eq!(j["node_coverage"]["mode"], "nodes");
    assert_eq!(j["node_coverage"]["mapped"], true);
    let rows = node_rows(&j);
    let kinds = |n: &str| {
        rows.iter()
            .find(|(name, _)| name == n)
            .map(|(_, k)| k.clone())
            .unwrap_or_else(|| panic!("node {n} not mapped: {rows:?}"))
    };
    assert_eq!(kinds("node-a"), Vec::<String>::new());
    assert_eq!(kinds("fargate-ip-10-0-1-1"), ["no_falco_pod"]);
    assert_eq!(kinds("node-gpu"), ["no_falco_pod"]);
    assert_eq!(kinds("node-gone"), ["no_falco_pod"]);
    assert!(kinds("node-late").contains(&"started_late".to_string()));
    let stdout = &r.stdout;
    for want in [
        "serverless node (EKS Fargate)",
        "nvidia.com/gpu=present:NoSchedule",
        "node node-gone no longer exists",
        "after pods of shadow-abc123 ran there",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    let gpu = j["node_coverage"]["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["node"] == "node-gpu"))
        .expect("node-gpu");
    assert_eq!(
        gpu["namespace_pods"],
        serde_json::json!(["job-1", "web-gpu"])
    );
    assert_eq!(gpu["falco_pod"], Value::Null);
    assert_eq!(gpu["covered"], false);
    // The same in every view: a testcase per node in JUnit, a row in text.
    let junit = run(
        &[
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &e.kubeconfig,
            "-o",
            "junit",
        ],
        &[],
        None,
    );
    assert!(
        junit
            .stdout
            .contains(r#"classname="falco.nodes" name="node-gpu""#),
        "{junit:?}"
    );
    assert!(junit
        .stdout
        .contains(r#"<testcase classname="falco.nodes" name="node-a"/>"#));
    let text = run(
        &[
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &e.kubeconfig,
            "--fail-closed",
        ],
        &[],
        None,
    );
    assert_eq!(text.code, 3, "{text:?}");
    assert!(
        text.stdout
            .contains("Nodes where shadow-abc123 ran (1/5 watched):"),
        "{text:?}"
    );
    assert!(
        text.stdout
            .contains("Falco did not watch every node where namespace shadow-abc123 ran"),
        "{text:?}"
    );
}

#[test]
fn a_pass_says_on_how_many_nodes_falco_watched() {
    let e = env_with(FakeCluster::new(vec![
        FakePod::falco("falco-a", "node-a", quiet_log()),
        FakePod::falco("falco-b", "node-b", quiet_log()),
        workload("web-a", "node-a", "2024-01-15T10:00:00Z"),
    ]));
    let args = [NS, "--since-time", WINDOW, "--kubeconfig", &e.kubeconfig];
    let r = run(&args, &[], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("Nodes where shadow-abc123 ran (1/1 watched):"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(
            "PASSED: Falco watched shadow-abc123 on 1 node(s); no Falco alert at or above WARNING"
        ),
        "{r:?}"
    );
}

#[test]
fn a_map_that_cannot_be_made_is_a_gap_and_can_be_turned_off() {
    let mut faults = Faults::default();
    faults.forbidden_lists.insert(format!("events/{NS}"));
    let e = env_with(
        FakeCluster::new(vec![
            FakePod::falco("falco-a", "node-a", quiet_log()),
            workload("web-a", "node-a", "2024-01-15T10:00:00Z"),
        ])
        .with_faults(faults),
    );
    let r = e.run(&[]);
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    let gaps = &j["node_coverage"]["gaps"];
    assert_eq!(gaps[0]["kind"], "coverage_unmapped", "{r:?}");
    let msg = gaps[0]["message"].as_str().unwrap_or("");
    assert!(msg.contains("--verb=list --resource=pods,events"), "{msg}");
    assert!(msg.contains("--node-coverage=false"), "{msg}");
    // Turned off: the Falco pods alone decide, and the result says so.
    let r = e.run(&["--node-coverage=false"]);
    let j = r.json();
    assert_eq!(j["verdict"], "passed", "{r:?}");
    assert_eq!(j["node_coverage"]["mode"], "off");
    let text = run(
        &[
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &e.kubeconfig,
            "--node-coverage=false",
        ],
        &[],
        None,
    );
    assert!(text.stdout.contains("Falco pods only"), "{text:?}");
    // A typo in the value is the user's mistake: exit 2, no request.
    let before = e.server.requests().len();
    let typo = e.run(&["--node-coverage=flase"]);
    assert_eq!(typo.code, 2, "{typo:?}");
    assert_eq!(e.server.requests().len(), before);
}

#[test]
fn nodes_of_namespace_reads_nodes_where_it_ran_earlier_in_the_window() {
    let t = "2024-01-15T10:36:00.000000000Z";
    let old_node_log = falco_log(&[alert(t, "Critical", "Shell", Some(NS))]);
    let e = env_with(
        FakeCluster::new(vec![
            FakePod::falco("falco-a", "node-a", quiet_log()),
            FakePod::falco("falco-b", "node-b", old_node_log),
            FakePod::falco("falco-c", "node-c", quiet_log()),
            workload("web-a", "node-a", "2024-01-15T10:40:00Z"),
        ])
        // web-0 ran on node-b earlier in the window and is gone.
        .with_event(FakeEvent::scheduled(
            NS,
            "web-0",
            "node-b",
            ts("2024-01-15T10:35:00Z"),
        )),
    );
    let r = e.run(&["--nodes-of-namespace"]);
    let j = r.json();
    assert_eq!(j["verdict"], "blocked", "{r:?}");
    let read: Vec<&str> = j["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(read, ["falco-a", "falco-b"], "{r:?}");
}

/// A JSON alert about a container whose namespace Falco did not resolve.
fn unlabelled(time: &str, priority: &str, container_name: &str) -> String {
    format!(
        r#"{{"hostname":"node-x","output":"{}: {priority} Shell spawned | container_id=3f5a9c2e1b7d container_name={container_name} k8s_ns=<NA> k8s_pod_name=<NA>","output_fields":{{"container.id":"3f5a9c2e1b7d","container.name":"{container_name}","evt.time":1705314600000000000,"k8s.ns.name":null,"k8s.pod.name":null}},"priority":"{priority}","rule":"Terminal shell in container","source":"syscall","tags":["container"],"time":"{time}"}}"#,
        &time[11..29]
    )
}

#[test]
fn unlabelled_alerts_where_the_namespace_ran_are_never_a_pass() {
    let t = "2024-01-15T10:36:00.000000000Z";
    let log = |line: String| falco_log(&[line]);
    let e = env_with(FakeCluster::new(vec![
        FakePod::falco("falco-a", "node-a", log(unlabelled(t, "Warning", "web"))),
        // node-b: the namespace never ran there; its unlabelled alert is only a note.
        FakePod::falco("falco-b", "node-b", log(unlabelled(t, "Critical", "db"))),
        workload("web-a", "node-a", "2024-01-15T10:00:00Z"),
    ]));
    let r = e.run(&[]);
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    assert_eq!(j["alert_count"], 0);
    let pod = |n: &str| {
        j["pods"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == n))
            .cloned()
            .expect("pod")
    };
    assert_eq!(gap_kinds(&pod("falco-a")), ["unlabelled_alerts"]);
    assert_eq!(gap_kinds(&pod("falco-b")), Vec::<String>::new());
    let msg = pod("falco-a")["gaps"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        msg.contains("1 container alert(s) at or above WARNING on node node-a"),
        "{msg}"
    );
    assert!(r.stderr.contains("where it did not run"), "{r:?}");
    // Below the threshold they do not stop a pass.
    let r = e.run(&["--severity", "critical", "--nodes-of-namespace"]);
    assert_eq!(r.json()["verdict"], "passed", "{r:?}");
}

#[test]
fn a_dockershim_container_name_attributes_the_alert_to_its_namespace() {
    let t = "2024-01-15T10:36:00.000000000Z";
    let name = format!("k8s_web_web-7d4b9c_{NS}_9305548e-a115-4db7-80b6-5419ade24ff0_0");
    let sibling = format!("k8s_web_web-7d4b9c_{NS}4_9305548e-a115-4db7-80b6-5419ade24ff0_0");
    let text = format!(
        "{}: Warning Sensitive file opened for reading (file=/etc/shadow command=cat /etc/shadow container_id=38e44b926166 container_name={name} k8s_ns=<NA> k8s_pod_name=<NA>)",
        &t[11..29]
    );
    let dir = tempfile::tempdir().expect("tmp");
    let json_file = dir.path().join("json.log");
    let text_file = dir.path().join("text.log");
    std::fs::write(
        &json_file,
        format!(
            "{}\n{}\n",
            unlabelled(t, "Critical", &name),
            unlabelled(t, "Critical", &sibling)
        ),
    )
    .expect("write");
    std::fs::write(
        &text_file,
        format!(
            "{}{text}\n",
            kubelet(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true) + " "
        ),
    )
    .expect("write");
    for (file, want) in [(&json_file, "Critical"), (&text_file, "Warning")] {
        let f = file.display().to_string();
        let r = run(
            &[NS, "--since-time", WINDOW, "--logs", &f, "-o", "json"],
            &[],
            None,
        );
        let j = r.json();
        assert_eq!(j["verdict"], "blocked", "{r:?}");
        assert_eq!(
            j["alert_count"], 1,
            "the sibling's container is not ours: {r:?}"
        );
        let a = &j["alerts"][0];
        assert_eq!(a["priority"], want);
        assert_eq!(a["attributed_by"], "container_name");
        assert_eq!(a["namespace"], NS);
        assert_eq!(a["workload"]["pod"], "web-7d4b9c");
        assert_eq!(a["workload"]["container"], "web");
    }
}

#[test]
fn offline_an_unlabelled_container_alert_is_a_gap_and_metrics_are_understood() {
    let t = "2024-01-15T10:36:00.000000000Z";
    let metrics_file = r#"{"output_fields":{"evt.time":1705314960000000000,"falco.hostname":"node-a","falco.version":"0.35.1","scap.n_drops":12,"scap.n_drops_perc":0.5},"sample":3}"#;
    let metrics_alert = r#"{"hostname":"node-a","output":"Falco metrics snapshot","output_fields":{"evt.time":1705314970000000000,"falco.version":"0.40.0","scap.n_drops":0,"scap.n_drops_perc":0.0},"priority":"Informational","rule":"Falco internal: metrics snapshot","source":"internal","time":"2024-01-15T10:36:10.000000000Z"}"#;
    let dir = tempfile::tempdir().expect("tmp");
    let quiet = dir.path().join("quiet.log");
    let noisy = dir.path().join("unlabelled.log");
    std::fs::write(
        &quiet,
        format!(
            "{metrics_file}\n{metrics_alert}\n{}\n",
            alert(t, "Critical", "Other", Some("other-ns"))
        ),
    )
    .expect("write");
    std::fs::write(&noisy, format!("{}\n", unlabelled(t, "Error", "web"))).expect("write");
    let q = quiet.display().to_string();
    let r = run(
        &[NS, "--since-time", WINDOW, "--logs", &q, "-o", "json"],
        &[],
        None,
    );
    let j = r.json();
    assert_eq!(j["verdict"], "passed", "{r:?}");
    assert_eq!(j["node_coverage"]["mode"], "offline");
    let m = &j["pods"][0]["falco_metrics"];
    assert_eq!(m["n_drops"], 0, "the later snapshot: {r:?}");
    assert_eq!(m["time"], "2024-01-15T10:36:10Z");
    let n = noisy.display().to_string();
    let r = run(
        &[NS, "--since-time", WINDOW, "--logs", &n, "-o", "json"],
        &[],
        None,
    );
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    assert_eq!(gap_kinds(&j["pods"][0]), ["unlabelled_alerts"]);
}

/// A soak maps the nodes again at its end: a pod of the namespace scheduled while it ran, on a
/// node without Falco, is a gap.
#[test]
fn a_soak_maps_again_at_its_end() {
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(800);
    let e = env_with(FakeCluster::new(vec![
        FakePod::falco("falco-a", "node-a", quiet_log()),
        workload("web-a", "node-a", "2024-01-15T10:00:00Z"),
        workload("web-new", "node-new", "2024-01-15T10:00:00Z").appearing_at(soon),
    ]));
    let r = e.run(&["--for", "2s"]);
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    let rows = node_rows(&j);
    assert_eq!(
        rows,
        [
            ("node-a".to_string(), Vec::<String>::new()),
            ("node-new".to_string(), vec!["no_falco_pod".to_string()])
        ],
        "{r:?}"
    );
}

/// Completion reaches the cluster the way the check does: `--server` and `--token` with no
/// kubeconfig at all list the namespaces of that server; a namespace list that is refused
/// gives no candidate.
#[test]
fn completion_connects_as_the_check_does() {
    let e = env_with(FakeCluster::new(vec![
        FakePod::falco("falco-a", "node-a", quiet_log()),
        workload("web-a", "node-a", "2024-01-15T10:00:00Z"),
    ]));
    let url = e.server.url();
    let ca = e.dir.path().join("ca.crt");
    std::fs::write(&ca, e.server.ca_pem()).expect("ca");
    let ca = ca.display().to_string();
    let r = run(
        &[
            "__complete",
            "--server",
            &url,
            "--token",
            DEFAULT_TOKEN,
            "--certificate-authority",
            &ca,
            "",
        ],
        &[],
        None,
    );
    let words: Vec<&str> = r.stdout.lines().filter(|l| !l.starts_with(':')).collect();
    assert_eq!(words, ["falco", NS], "{r:?}");
    // The same through the kubeconfig, as `kubectl falco-verify --context fake <TAB>`.
    let r = run(
        &["__complete", "--kubeconfig", &e.kubeconfig, "sha"],
        &[],
        None,
    );
    assert_eq!(r.stdout.lines().next(), Some(NS), "{r:?}");
}
