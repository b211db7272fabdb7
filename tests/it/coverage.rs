//! The coverage ledger through the binary: every gap kind gives the same verdict from a one-shot
//! check and from a `--for` soak over the same cluster (one reader does both), and SIGINT /
//! SIGTERM end one-shot, soak and watch runs with their result.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use chrono::{DateTime, Utc};
use fake_apiserver::*;

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

/// A Notice alert for the namespace `ago` seconds before `t0` (kubelet line and JSON).
fn notice(t0: DateTime<Utc>, ago: i64) -> (DateTime<Utc>, String) {
    let time = rfc3339_nano(t0 - secs(ago));
    (
        kubelet(&time),
        alert(&time, "Notice", "Coverage probe", Some(NS)),
    )
}

/// A healthy Falco pod (running since long before the window) with one Notice alert.
fn healthy(name: &str, node: &str, t0: DateTime<Utc>) -> FakePod {
    falco_pod(name, node, vec![notice(t0, 30)])
}

/// A Falco pod whose only container is `container` (no sidecar, no init containers).
fn with_falco(name: &str, node: &str, container: FakeContainer) -> FakePod {
    FakePod::falco(name, node, LogSource::empty())
        .with_containers(vec![container])
        .with_init_containers(Vec::<String>::new())
}

/// One row of the table: a cluster with one gap, the source that has it, the kind.
struct Case {
    cluster: fn(DateTime<Utc>) -> FakeCluster,
    source: &'static str,
    kind: &'static str,
    extra: &'static [&'static str],
    /// Whether both modes read the same lines (not so when the gap is about time).
    same_counts: bool,
}

fn not_scheduled(t0: DateTime<Utc>) -> FakeCluster {
    let pending =
        FakePod::falco("falco-gap", None::<String>, LogSource::empty()).pending_unscheduled();
    FakeCluster::new(vec![healthy("falco-a", "node-0", t0), pending])
}

fn not_running(t0: DateTime<Utc>) -> FakeCluster {
    let crashing = FakeContainer::waiting("falco", "CrashLoopBackOff").with_restart_count(7);
    FakeCluster::new(vec![
        healthy("falco-a", "node-0", t0),
        with_falco("falco-gap", "node-1", crashing),
    ])
}

fn no_container_statuses(t0: DateTime<Utc>) -> FakeCluster {
    let starting = FakePod::falco("falco-gap", "node-1", LogSource::empty())
        .with_phase("Pending")
        .without_container_statuses();
    FakeCluster::new(vec![healthy("falco-a", "node-0", t0), starting])
}

fn instances_lost(t0: DateTime<Utc>) -> FakeCluster {
    let c = FakeContainer::running(
        "falco",
        t0 - secs(60),
        LogSource::lines(vec![notice(t0, 30)]),
    )
    .with_previous(
        Terminated::new(t0 - secs(120), t0 - secs(61), 1),
        LogSource::lines(vec![notice(t0, 90)]),
    )
    .with_restart_count(3);
    FakeCluster::new(vec![with_falco("falco-gap", "node-0", c)])
}

fn started_late(t0: DateTime<Utc>) -> FakeCluster {
    let banner = (t0 - secs(60), FALCO_BANNER.to_string());
    let c = FakeContainer::running(
        "falco",
        t0 - secs(60),
        LogSource::lines(vec![banner, notice(t0, 30)]),
    );
    FakeCluster::new(vec![
        healthy("falco-a", "node-0", t0),
        with_falco("falco-gap", "node-1", c),
    ])
}

fn rotated(t0: DateTime<Utc>) -> FakeCluster {
    // Running since 2024, but the file the API serves begins 30 s ago: the banner is gone.
    let c = FakeContainer::running(
        "falco",
        falco_started_at(),
        LogSource::lines(vec![notice(t0, 30)]),
    );
    FakeCluster::new(vec![with_falco("falco-gap", "node-0", c)])
}

fn unreadable(t0: DateTime<Utc>) -> FakeCluster {
    let mut faults = Faults::default();
    faults.log_status.insert("falco-gap".to_string(), 403);
    FakeCluster::new(vec![
        healthy("falco-a", "node-0", t0),
        healthy("falco-gap", "node-1", t0),
    ])
    .with_faults(faults)
}

fn stream_broken(t0: DateTime<Utc>) -> FakeCluster {
    let mut faults = Faults::default();
    faults
        .log_reset_after_bytes
        .insert("falco-gap".to_string(), 40);
    FakeCluster::new(vec![
        healthy("falco-a", "node-0", t0),
        healthy("falco-gap", "node-1", t0),
    ])
    .with_faults(faults)
}

fn deadline(t0: DateTime<Utc>) -> FakeCluster {
    let lines: Vec<_> = (0..200).map(|i| notice(t0, 200 - i)).collect();
    let faults = Faults {
        slow_log_bytes_per_sec: Some(2_000),
        ..Faults::default()
    };
    FakeCluster::new(vec![falco_pod("falco-gap", "node-0", lines)]).with_faults(faults)
}

fn overlong_line(t0: DateTime<Utc>) -> FakeCluster {
    let time = rfc3339_nano(t0 - secs(20));
    let mut long = alert(&time, "Critical", "Too long", Some(NS));
    long.insert_str(1, &format!("\"padding\":\"{}\",", "x".repeat(2000)));
    FakeCluster::new(vec![falco_pod(
        "falco-gap",
        "node-0",
        vec![notice(t0, 30), (kubelet(&time), long)],
    )])
}

fn not_understood(t0: DateTime<Utc>) -> FakeCluster {
    let time = rfc3339_nano(t0 - secs(20));
    let full = alert(&time, "Critical", "Cut short", Some(NS));
    let truncated = full[..full.len() - 40].to_string();
    FakeCluster::new(vec![falco_pod(
        "falco-gap",
        "node-0",
        vec![notice(t0, 30), (kubelet(&time), truncated)],
    )])
}

/// Runs the check one-shot and as a 2 s soak over the same cluster; both must be INCOMPLETE
/// (exit 3 with --fail-closed) with the same alert counts and the gap on the same source.
fn same_verdict_one_shot_and_soak(case: Case) {
    let t0 = Utc::now();
    let e = serve((case.cluster)(t0));
    let base = [
        NS,
        "--kubeconfig",
        &e.kubeconfig,
        "--since",
        "5m",
        "--fail-closed",
        "-o",
        "json",
    ];
    let mut results = Vec::new();
    for mode in [
        &["--timeout", "3s"][..],
        &["--for", "2s", "--timeout", "10s"][..],
    ] {
        let args: Vec<&str> = base
            .iter()
            .copied()
            .chain(mode.iter().copied())
            .chain(case.extra.iter().copied())
            .collect();
        let r = run(&args, &[], None);
        let j = r.json();
        assert_eq!(j["verdict"], "incomplete", "{mode:?} {r:?}");
        assert_eq!(r.code, 3, "{mode:?} {r:?}");
        assert_eq!(j["incomplete"], true, "{mode:?} {r:?}");
        let pods = j["pods"].as_array().expect("pods");
        let gap_source = pods
            .iter()
            .find(|p| p["name"] == case.source)
            .unwrap_or_else(|| panic!("{mode:?}: no source {}: {r:?}", case.source));
        let kinds: Vec<&str> = gap_source["gaps"]
            .as_array()
            .expect("gaps")
            .iter()
            .filter_map(|g| g["kind"].as_str())
            .collect();
        assert!(kinds.contains(&case.kind), "{mode:?}: {kinds:?} {r:?}");
        assert!(gap_source["error"].is_string(), "{mode:?} {r:?}");
        for p in pods.iter().filter(|p| p["name"] != case.source) {
            assert_eq!(p["gaps"], serde_json::json!([]), "{mode:?} {r:?}");
            assert_eq!(p["error"], serde_json::Value::Null, "{mode:?} {r:?}");
        }
        assert!(
            r.stderr.contains("could NOT verify") && r.stderr.contains("failing closed"),
            "{r:?}"
        );
        results.push((j["summary"].clone(), j["blocking_count"].clone()));
    }
    if case.same_counts {
        assert_eq!(
            results[0], results[1],
            "one-shot and soak counted differently"
        );
    }
}

macro_rules! gap_cases {
    ($($name:ident: $cluster:ident, $source:expr, $kind:expr, $extra:expr;)*) => {$(
        #[test]
        fn $name() {
            same_verdict_one_shot_and_soak(Case {
                cluster: $cluster,
                source: $source,
                kind: $kind,
                extra: $extra,
                same_counts: stringify!($name) != "gap_deadline",
            });
        }
    )*};
}

gap_cases! {
    gap_not_scheduled: not_scheduled, "falco-gap", "not_scheduled", &[];
    gap_not_running: not_running, "falco-gap", "not_running", &[];
    gap_no_container_statuses: no_container_statuses, "falco-gap", "not_running", &[];
    gap_instances_lost: instances_lost, "falco-gap", "instances_lost", &[];
    gap_started_late: started_late, "falco-gap", "started_late", &[];
    gap_rotated: rotated, "falco-gap", "rotated", &[];
    gap_unreadable: unreadable, "falco-gap", "unreadable", &[];
    gap_stream_broken: stream_broken, "falco-gap", "stream_broken", &[];
    gap_deadline: deadline, "falco-gap", "deadline", &[];
    gap_overlong_line: overlong_line, "falco-gap", "overlong_line", &["--max-line-bytes", "1024"];
    gap_not_understood: not_understood, "falco-gap", "not_understood", &[];
}

#[test]
fn the_http_status_of_an_unreadable_log_is_in_its_gap() {
    let e = serve(unreadable(Utc::now()));
    let r = run(
        &[
            NS,
            "--kubeconfig",
            &e.kubeconfig,
            "--since",
            "5m",
            "-o",
            "json",
        ],
        &[],
        None,
    );
    // Fail-open: incomplete still exits 0, loudly.
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    let gap = &j["pods"][1]["gaps"][0];
    assert_eq!(gap["kind"], "unreadable", "{j}");
    assert!(
        gap["message"].as_str().unwrap_or("").contains("HTTP 403"),
        "{j}"
    );
}

// ------------------------------------------------------------------------------- signals

/// Starts the binary with piped output; `stdin_open` keeps its stdin a pipe that never ends.
fn spawn(args: &[&str], stdin_open: bool) -> (Child, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("home");
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("HOME", home.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("AEGIS_") || k == "KUBECONFIG" || k == "NO_COLOR" {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(if stdin_open {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    (cmd.spawn().expect("spawn"), home)
}

/// Sends `signal` after `after`, then waits (at most 15 s) for the run's end.
fn signal_after(mut child: Child, signal: &str, after: Duration) -> (Run, Duration) {
    std::thread::sleep(after);
    let sent_at = Instant::now();
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let id = child.id();
    let (done, ended) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        // Never hang the test run: a child still alive after 15 s is killed (and the test fails).
        if ended.recv_timeout(Duration::from_secs(15)).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
        }
    });
    // Stdin stays open until the run has ended: its end must come from the signal.
    let stdin = child.stdin.take();
    let out = child.wait_with_output().expect("wait");
    let took = sent_at.elapsed();
    drop(stdin);
    let _ = done.send(());
    let _ = guard.join();
    (
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: took,
        },
        took,
    )
}

fn assert_stopped_early(r: &Run, code: i32) {
    assert_eq!(r.code, code, "{r:?}");
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    let kinds: Vec<String> = j["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .flat_map(|p| p["gaps"].as_array().cloned().unwrap_or_default())
        .filter_map(|g| g["kind"].as_str().map(str::to_string))
        .collect();
    assert!(
        kinds.iter().any(|k| k == "stopped_early"),
        "{kinds:?} {r:?}"
    );
}

#[test]
fn a_signal_during_a_one_shot_read_gives_the_result_of_what_was_read() {
    for (signal, fail_closed, code) in [("INT", true, 3), ("TERM", true, 3), ("TERM", false, 0)] {
        let e = serve(deadline(Utc::now()));
        let mut args = vec![
            NS,
            "--kubeconfig",
            &e.kubeconfig,
            "--since",
            "5m",
            "--timeout",
            "60s",
            "-o",
            "json",
        ];
        if fail_closed {
            args.push("--fail-closed");
        }
        let (child, _home) = spawn(&args, false);
        let (r, took) = signal_after(child, signal, Duration::from_millis(1500));
        assert!(took < Duration::from_secs(5), "took {took:?}: {r:?}");
        assert_stopped_early(&r, code);
        // What was read before the signal is counted.
        assert!(
            r.json()["summary"]["notice"].as_u64().unwrap_or(0) > 0,
            "{r:?}"
        );
    }
}

#[test]
fn a_signal_during_a_soak_is_incomplete_not_passed() {
    for signal in ["INT", "TERM"] {
        let t0 = Utc::now();
        let e = serve(FakeCluster::new(vec![healthy("falco-a", "node-0", t0)]));
        let args = [
            NS,
            "--kubeconfig",
            &e.kubeconfig,
            "--for",
            "30s",
            "--fail-closed",
            "-o",
            "json",
        ];
        let (child, _home) = spawn(&args, false);
        let (r, took) = signal_after(child, signal, Duration::from_millis(1500));
        assert!(took < Duration::from_secs(5), "took {took:?}: {r:?}");
        assert_stopped_early(&r, 3);
        assert_eq!(
            r.stdout.matches("\"tool\"").count(),
            1,
            "one JSON object: {r:?}"
        );
    }
}

#[test]
fn a_signal_after_a_blocking_alert_still_blocks() {
    let t0 = Utc::now();
    let time = rfc3339_nano(t0 - secs(10));
    let e = serve(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![(
            kubelet(&time),
            alert(&time, "Critical", "Seen before the stop", Some(NS)),
        )],
    )]));
    let args = [
        NS,
        "--kubeconfig",
        &e.kubeconfig,
        "--since",
        "1m",
        "--for",
        "30s",
        "-o",
        "json",
    ];
    let (child, _home) = spawn(&args, false);
    let (r, _) = signal_after(child, "TERM", Duration::from_millis(1500));
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["verdict"], "blocked", "{r:?}");
}

#[test]
fn sigterm_ends_a_watch_as_its_window_end() {
    let t0 = Utc::now();
    let e = serve(FakeCluster::new(vec![healthy("falco-a", "node-0", t0)]));
    let args = [
        NS,
        "--kubeconfig",
        &e.kubeconfig,
        "--since",
        "1m",
        "--watch",
        "--fail-closed",
        "-o",
        "json",
    ];
    let (child, _home) = spawn(&args, false);
    let (r, took) = signal_after(child, "TERM", Duration::from_millis(1500));
    assert!(took < Duration::from_secs(5), "took {took:?}: {r:?}");
    // An open-ended watch is over when it is stopped: what it followed is covered.
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["verdict"], "passed", "{r:?}");
    assert_eq!(j["summary"]["notice"], 1, "{r:?}");
}

#[test]
fn a_signal_while_stdin_is_still_open_is_stopped_early() {
    let (mut child, _home) = spawn(
        &[
            NS,
            "--logs",
            "-",
            "--since",
            "1h",
            "--fail-closed",
            "-o",
            "json",
        ],
        true,
    );
    let time = rfc3339_nano(Utc::now() - secs(60));
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{}", alert(&time, "Notice", "From a pipe", Some(NS))).expect("write");
        stdin.flush().expect("flush");
    }
    let (r, took) = signal_after(child, "INT", Duration::from_millis(800));
    assert!(took < Duration::from_secs(5), "took {took:?}: {r:?}");
    assert_stopped_early(&r, 3);
    assert_eq!(r.json()["summary"]["notice"], 1, "{r:?}");
}

#[test]
fn a_watch_stopped_before_its_logs_were_opened_is_not_passed() {
    // Listing the pods is slow (two 429s, Retry-After 1 s); the stop comes before any log was
    // opened: nothing of the window was read, whatever ended the watch.
    let faults = Faults {
        list_fail_times: Some((429, 2, Some(1))),
        ..Faults::default()
    };
    let t0 = Utc::now();
    let e = serve(FakeCluster::new(vec![healthy("falco-a", "node-0", t0)]).with_faults(faults));
    let args = [
        NS,
        "--kubeconfig",
        &e.kubeconfig,
        "--since",
        "5m",
        "--watch",
        "--fail-closed",
        "-o",
        "json",
    ];
    let (child, _home) = spawn(&args, false);
    let (r, took) = signal_after(child, "TERM", Duration::from_millis(500));
    assert!(took < Duration::from_secs(8), "took {took:?}: {r:?}");
    assert_stopped_early(&r, 3);
}
