//! Follow mode end to end: `--for` (soak window), `--watch` (live alerts and status line), Ctrl-C,
//! new Falco pods picked up, broken streams — the built binary against the fake API server, whose
//! `follow=true` log streams send each line when its kubelet time comes. Logs are built with
//! times relative to now.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;
use chrono::{DateTime, Utc};
use fake_apiserver::*;

/// A JSON alert whose event happened at `t` (the kubelet writes it a moment later).
fn alert_at(t: DateTime<Utc>, priority: &str, rule: &str, ns: &str) -> (DateTime<Utc>, String) {
    let time = rfc3339_nano(t);
    (kubelet(&time), alert(&time, priority, rule, Some(ns)))
}

fn secs(s: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((s * 1000.0) as i64)
}

crate::common::served_env!();

impl Env {
    /// `NS --kubeconfig K --timeout 10s` and `extra`.
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![NS, "--kubeconfig", &self.kubeconfig, "--timeout", "10s"];
        args.extend_from_slice(extra);
        args
    }

    fn run(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        run(&self.args(extra), env, None)
    }
}

/// One line of output and when it arrived (since the child started).
#[derive(Debug)]
struct Timed {
    at: Duration,
    line: String,
}

/// A run whose output lines are time-stamped as they arrive.
struct Live {
    code: i32,
    stdout: Vec<Timed>,
    stderr: Vec<Timed>,
    elapsed: Duration,
}

impl Live {
    fn stdout_text(&self) -> String {
        self.stdout.iter().map(|t| t.line.as_str()).collect()
    }
    fn stderr_text(&self) -> String {
        self.stderr.iter().map(|t| t.line.as_str()).collect()
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "exit {} after {:?}\n--- stdout", self.code, self.elapsed)?;
        for t in &self.stdout {
            write!(f, "[{:>6.2}s] {}", t.at.as_secs_f64(), t.line)?;
        }
        writeln!(f, "--- stderr")?;
        for t in &self.stderr {
            write!(f, "[{:>6.2}s] {}", t.at.as_secs_f64(), t.line)?;
        }
        Ok(())
    }
}

fn reader(
    pipe: impl Read + Send + 'static,
    started: Instant,
) -> std::thread::JoinHandle<Vec<Timed>> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => out.push(Timed {
                    at: started.elapsed(),
                    line: String::from_utf8_lossy(&buf).into_owned(),
                }),
            }
        }
        out
    })
}

/// The binary with a clean environment (as [`crate::common::run`]), stdout and stderr piped.
fn command(args: &[&str], env: &[(&str, &str)], home: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AEGIS_") || k == "KUBECONFIG" || k == "NO_COLOR" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs the binary; when `interrupt_after` is given, sends it SIGINT then (`kill -INT`).
fn run_live(args: &[&str], env: &[(&str, &str)], interrupt_after: Option<Duration>) -> Live {
    let home = tempfile::tempdir().expect("home dir");
    let started = Instant::now();
    let mut child = command(args, env, home.path())
        .spawn()
        .expect("spawn binary");
    let out = reader(child.stdout.take().expect("stdout"), started);
    let err = reader(child.stderr.take().expect("stderr"), started);
    if let Some(after) = interrupt_after {
        std::thread::sleep(after);
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -INT failed");
    }
    // Never hang the test run: a child still alive after 20 s is killed (and the test fails).
    let (tx, rx) = mpsc::channel();
    let id = child.id();
    let guard = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
        }
    });
    let status = child.wait().expect("wait");
    let elapsed = started.elapsed();
    let _ = tx.send(());
    let _ = guard.join();
    Live {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed,
    }
}

fn assert_window_elapsed(elapsed: Duration, window: f64, what: &dyn std::fmt::Debug) {
    assert!(
        elapsed >= Duration::from_secs_f64(window - 0.3) && elapsed < Duration::from_secs(9),
        "expected to end after about {window}s, took {elapsed:?}: {what:?}"
    );
}

// ----------------------------------------------------------------------------- --for

#[test]
fn for_window_counts_alerts_that_arrive_during_it_and_not_before() {
    let t0 = Utc::now();
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![
            // Before the window (the check starts after t0): not counted.
            alert_at(t0 - secs(5.0), "Critical", "Before the window", NS),
            // Logged 1 s into the window: followed live and counted.
            alert_at(t0 + secs(1.0), "Warning", "During the window", NS),
            // After the window: not seen.
            alert_at(t0 + secs(6.0), "Critical", "After the window", NS),
        ],
    )]));
    let r = e.run(&["--for", "3s", "-o", "json"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_window_elapsed(r.elapsed, 3.0, &r);
    let j = r.json();
    assert_eq!(j["verdict"], "blocked", "{r:?}");
    assert_eq!(j["passed"], false);
    assert_eq!(j["incomplete"], false, "{r:?}");
    assert_eq!(j["alert_count"], 1, "{r:?}");
    assert_eq!(j["blocking_count"], 1);
    assert_eq!(j["summary"]["warning"], 1);
    assert_eq!(j["summary"]["critical"], 0);
    assert_eq!(j["alerts"][0]["rule"], "During the window");
    assert_eq!(j["alerts"][0]["pod"], "falco-a");
    assert_eq!(j["pods"][0]["error"], serde_json::Value::Null, "{r:?}");
    // The window starts when the check does.
    let since = ts(j["since_timestamp"].as_str().expect("since_timestamp"));
    assert!(
        since >= t0 - secs(1.0) && since <= t0 + secs(1.0),
        "{since} vs {t0}"
    );
    // One followed log read per pod, from the window start.
    let logs = e.server.log_requests("falco-a");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].param("follow"), Some("true"));
    assert_eq!(logs[0].param("container"), Some("falco"));
    assert_eq!(logs[0].param("timestamps"), Some("true"));
    assert!(logs[0].param("sinceTime").is_some(), "{logs:?}");
}

#[test]
fn for_window_with_only_a_below_threshold_alert_passes() {
    let t0 = Utc::now();
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![
            alert_at(t0 + secs(1.0), "Notice", "Below the threshold", NS),
            alert_at(t0 + secs(1.2), "Critical", "Other namespace", "default"),
        ],
    )]));
    let r = e.run(&["--for", "3s", "-o", "json"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_window_elapsed(r.elapsed, 3.0, &r);
    let j = r.json();
    assert_eq!(j["verdict"], "passed", "{r:?}");
    assert_eq!(j["passed"], true);
    assert_eq!(j["alert_count"], 1, "{r:?}");
    assert_eq!(j["blocking_count"], 0);
    assert_eq!(j["summary"]["notice"], 1);
    assert_eq!(j["alerts"][0]["blocking"], false);
}

#[test]
fn for_window_with_an_earlier_since_time_counts_earlier_lines_of_that_window() {
    let t0 = Utc::now();
    let since = (t0 - secs(10.0)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![
            alert_at(t0 - secs(30.0), "Critical", "Before since-time", NS),
            alert_at(t0 - secs(5.0), "Error", "Between since-time and now", NS),
            alert_at(t0 + secs(1.0), "Notice", "During the soak", NS),
        ],
    )]));
    let r = e.run(&["--for", "2s", "--since-time", &since, "-o", "json"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_window_elapsed(r.elapsed, 2.0, &r);
    let j = r.json();
    assert_eq!(j["since_timestamp"], since.as_str());
    assert_eq!(j["alert_count"], 2, "{r:?}");
    assert_eq!(j["blocking_count"], 1, "{r:?}");
    assert_eq!(j["summary"]["critical"], 0);
    assert_eq!(j["summary"]["error"], 1);
    assert_eq!(j["summary"]["notice"], 1);
    let rules: Vec<&str> = j["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["rule"].as_str())
        .collect();
    assert!(rules.contains(&"Between since-time and now"), "{rules:?}");
    assert!(rules.contains(&"During the soak"), "{rules:?}");
    let logs = e.server.log_requests("falco-a");
    assert_eq!(logs[0].param("sinceTime"), Some(since.as_str()), "{logs:?}");
}

// ----------------------------------------------------------------------------- --watch

#[test]
fn watch_on_a_pipe_prints_each_alert_as_it_arrives_then_the_verdict_without_escapes() {
    let t0 = Utc::now();
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![
            alert_at(t0 + secs(1.0), "Error", "First live alert", NS),
            alert_at(t0 + secs(1.5), "Notice", "Second live alert", NS),
            alert_at(t0 + secs(1.6), "Critical", "Other namespace", "default"),
        ],
    )]));
    let r = run_live(
        &e.args(&["--watch", "--for", "3s", "-o", "text"]),
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_window_elapsed(r.elapsed, 3.0, &r);
    let out = r.stdout_text();
    let first = r
        .stdout
        .iter()
        .position(|t| t.line.contains("First live alert"))
        .unwrap_or_else(|| panic!("first alert not printed: {r:?}"));
    let second = r
        .stdout
        .iter()
        .position(|t| t.line.contains("Second live alert"))
        .unwrap_or_else(|| panic!("second alert not printed: {r:?}"));
    let verdict = r
        .stdout
        .iter()
        .position(|t| t.line.starts_with("BLOCKED: "))
        .unwrap_or_else(|| panic!("no verdict line: {r:?}"));
    assert!(first < second && second < verdict, "{r:?}");
    // Printed live: about 1 s after the start, well before the window ended.
    let printed = r.stdout[first].at;
    assert!(
        printed < r.elapsed.saturating_sub(Duration::from_millis(800)),
        "the alert was printed at {printed:?}, the run ended at {:?}: {r:?}",
        r.elapsed
    );
    assert!(r.stdout[first].line.contains("ERROR"), "{r:?}");
    assert!(r.stdout[first].line.contains("[falco-a]"), "{r:?}");
    assert!(!out.contains("Other namespace"), "{r:?}");
    // The final summary follows the live lines.
    assert!(out.contains("1/1 Falco pod(s) read"), "{r:?}");
    assert!(
        r.stdout[verdict]
            .line
            .contains("1 Falco alert(s) at or above WARNING"),
        "{r:?}"
    );
    // A pipe is not a terminal: no status line, no colors, no escapes at all.
    let err = r.stderr_text();
    assert!(!out.contains('\x1b') && !err.contains('\x1b'), "{r:?}");
    assert!(!err.contains("watching"), "{r:?}");
    // The window ending is not a pod ending.
    assert!(!out.contains("ended"), "{r:?}");
}

#[test]
fn watch_with_json_output_prints_live_alerts_on_stderr_and_one_json_object() {
    let t0 = Utc::now();
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![alert_at(t0 + secs(0.8), "Warning", "Live on stderr", NS)],
    )]));
    let r = run_live(
        &e.args(&["--watch", "--for", "2s", "-o", "json"]),
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    let live = r
        .stderr
        .iter()
        .find(|t| t.line.contains("Live on stderr"))
        .unwrap_or_else(|| panic!("no live alert on stderr: {r:?}"));
    assert!(
        live.at < r.elapsed.saturating_sub(Duration::from_millis(500)),
        "{r:?}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&r.stdout_text()).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(j["blocking_count"], 1);
}

#[test]
fn watch_on_a_terminal_keeps_a_colored_status_line_then_gives_the_verdict() {
    let t0 = Utc::now();
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![alert_at(
            t0 + secs(1.0),
            "Critical",
            "Seen on a terminal",
            NS,
        )],
    )]));
    let Some((code, screen, elapsed)) =
        run_in_pty(&e.args(&["--watch", "--for", "3s", "--color", "auto", "-o", "text"]))
    else {
        return;
    };
    let shown = format!("exit {code} after {elapsed:?}:\n{screen:?}");
    assert_eq!(code, 1, "{shown}");
    assert_window_elapsed(elapsed, 3.0, &shown);
    // The status line, redrawn in place.
    assert!(screen.contains("watching 1 Falco pod(s)"), "{shown}");
    assert!(screen.contains("\r\x1b[2K"), "{shown}");
    // After the alert the status line counts it.
    let status_with_alert = screen
        .split("\r\x1b[2K")
        .any(|s| s.contains("watching 1 Falco pod(s)") && s.contains("1 blocking (>= WARNING)"));
    assert!(status_with_alert, "{shown}");
    // Colors: SGR sequences (red bold for CRITICAL and BLOCKED).
    assert!(
        screen.contains("\x1b[1m") || screen.contains("\x1b[31"),
        "{shown}"
    );
    // The live alert, then the verdict; the status line is cleared before the verdict.
    let alert_at_ = screen.find("Seen on a terminal").expect("live alert");
    let verdict_at = screen.rfind("BLOCKED").expect("verdict");
    assert!(alert_at_ < verdict_at, "{shown}");
    let tail = &screen[verdict_at..];
    assert!(!tail.contains("watching"), "{shown}");
    // The window ending is not a pod ending.
    assert!(!screen.contains("ended"), "{shown}");
    assert!(
        screen.contains("1 Falco alert(s) at or above WARNING"),
        "{shown}"
    );
}

/// In an 80- (and a 50-) column terminal: the header first, every redraw of the status line
/// narrower than the terminal (no stale wrapped lines), alerts marked BLOCKS or below, and the
/// final summary without the alerts already streamed.
#[test]
fn watch_fits_the_terminal_and_ends_with_the_summary_only() {
    for cols in [80u16, 50] {
        let t0 = Utc::now();
        let e = env_with(FakeCluster::new(vec![
            falco_pod(
                "falco-a",
                "node-0",
                vec![
                    alert_at(t0 + secs(0.5), "Critical", "Blocking one", NS),
                    alert_at(t0 + secs(0.6), "Notice", "Quiet one", NS),
                ],
            ),
            falco_pod("falco-b", "node-1", vec![]),
        ]));
        let Some((code, screen, _)) = run_in_pty_sized(
            &e.args(&["--watch", "--for", "2s", "--color", "never"]),
            Some(cols),
        ) else {
            return;
        };
        let shown = format!("{cols} columns, exit {code}:\n{screen}");
        assert_eq!(code, 1, "{shown}");
        let header =
            screen.find("Watching Falco alerts for namespace shadow-abc123 at or above WARNING");
        let first_alert = screen.find("Blocking one");
        assert!(
            header.is_some() && header < first_alert,
            "header first: {shown}"
        );
        for redraw in screen
            .split("\r\x1b[2K")
            .filter(|s| s.starts_with("watching"))
        {
            let status = redraw.lines().next().unwrap_or("");
            assert!(
                status.chars().count() < usize::from(cols),
                "status {:?} is {} columns in a {cols}-column terminal",
                status,
                status.chars().count()
            );
        }
        assert!(screen.contains("BLOCKS  "), "{shown}");
        assert!(
            screen
                .split("\r\x1b[2K")
                .any(|l| l.starts_with("below   ") && l.contains("Quiet one")),
            "{shown}"
        );
        assert_eq!(
            screen.matches("Blocking one  [falco-a]").count(),
            1,
            "not reprinted: {shown}"
        );
        assert!(
            screen.contains("1 blocking alert(s), shown above"),
            "{shown}"
        );
    }
}

#[test]
fn watch_with_color_never_on_a_terminal_still_shows_the_status_line_without_color() {
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![],
    )]));
    let Some((code, screen, _)) =
        run_in_pty(&e.args(&["--watch", "--for", "2s", "--color", "never"]))
    else {
        return;
    };
    assert_eq!(code, 0, "{screen:?}");
    assert!(screen.contains("watching 1 Falco pod(s)"), "{screen:?}");
    // Only line clearing, no SGR (color) sequence.
    assert!(
        !screen.contains("\x1b[1m") && !screen.contains("m\x1b"),
        "{screen:?}"
    );
    let without_clears = screen.replace("\r\x1b[2K", "");
    assert!(!without_clears.contains('\x1b'), "{screen:?}");
    assert!(screen.contains("PASSED"), "{screen:?}");
}

// ----------------------------------------------------------------------------- Ctrl-C

#[test]
fn ctrl_c_ends_watch_with_the_verdict_blocked_and_notes_an_ended_pod() {
    let t0 = Utc::now();
    let stopped = FakeContainer::running("falco", falco_started_at(), LogSource::empty())
        .with_state(ContainerState::Terminated {
            started_at: falco_started_at(),
            finished_at: t0 - secs(60.0),
            exit_code: 0,
        });
    let e = env_with(FakeCluster::new(vec![
        falco_pod(
            "falco-a",
            "node-0",
            vec![alert_at(t0 + secs(0.5), "Error", "Before Ctrl-C", NS)],
        ),
        falco_pod("falco-b", "node-1", vec![])
            .with_containers(vec![stopped])
            .with_init_containers(Vec::<String>::new()),
    ]));
    let r = run_live(
        &e.args(&["--watch", "-o", "text"]),
        &[],
        Some(Duration::from_secs(2)),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(8), "{r:?}");
    let out = r.stdout_text();
    let alert = out.find("Before Ctrl-C").unwrap_or_else(|| panic!("{r:?}"));
    let ended = out
        .find("-- Falco pod falco-b ended")
        .unwrap_or_else(|| panic!("the ended pod is not noted: {r:?}"));
    let verdict = out.rfind("BLOCKED: ").unwrap_or_else(|| panic!("{r:?}"));
    assert!(alert < verdict && ended < verdict, "{r:?}");
    // Stopping is not the other pod's log ending.
    assert!(!out.contains("falco-a ended"), "{r:?}");
    // The final report lists the pod whose log ended early.
    assert!(out.contains("Falco pods (coverage):"), "{r:?}");
    assert!(out.contains("falco-b"), "{r:?}");
    assert!(out.contains("1/2 Falco pod(s) read"), "{r:?}");
}

#[test]
fn ctrl_c_ends_a_quiet_watch_with_passed() {
    let t0 = Utc::now();
    let e = env_with(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![alert_at(t0 + secs(0.5), "Debug", "Below the threshold", NS)],
    )]));
    let r = run_live(
        &e.args(&["--watch", "-o", "json"]),
        &[],
        Some(Duration::from_secs(2)),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(8), "{r:?}");
    let j: serde_json::Value =
        serde_json::from_str(&r.stdout_text()).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(j["verdict"], "passed", "{r:?}");
    assert_eq!(j["incomplete"], false, "{r:?}");
    assert_eq!(j["alert_count"], 1);
    assert_eq!(j["pods"][0]["error"], serde_json::Value::Null, "{r:?}");
    assert!(r.stderr_text().contains("Below the threshold"), "{r:?}");
}

// ----------------------------------------------------------------------------- new pods

#[test]
fn a_falco_pod_that_appears_during_the_window_is_followed_and_its_alert_counted() {
    let t0 = Utc::now();
    let e = env_with(FakeCluster::new(vec![
        falco_pod("falco-a", "node-0", vec![]),
        falco_pod(
            "falco-new",
            "node-1",
            vec![alert_at(t0 + secs(2.0), "Error", "On the new node", NS)],
        )
        .appearing_at(t0 + secs(1.0)),
    ]));
    let r = run_live(
        &e.args(&[
            "--watch",
            "--for",
            "4s",
            "-o",
            "json",
            "--relist-every",
            "250ms",
        ]),
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_window_elapsed(r.elapsed, 4.0, &r);
    let j: serde_json::Value =
        serde_json::from_str(&r.stdout_text()).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(j["blocking_count"], 1, "{r:?}");
    assert_eq!(j["alerts"][0]["pod"], "falco-new");
    assert_eq!(j["alerts"][0]["node"], "node-1");
    let pods: Vec<&str> = j["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(pods, ["falco-a", "falco-new"], "{r:?}");
    assert_eq!(j["incomplete"], false, "{r:?}");
    // Printed live too (stderr, as stdout holds the JSON).
    assert!(r.stderr_text().contains("On the new node"), "{r:?}");
    // Read from the window start, like the pods there from the beginning.
    let a = e.server.log_requests("falco-a");
    let new = e.server.log_requests("falco-new");
    // One followed stream (plus, as in a one-shot check, the rotation probe of the file's head,
    // since its first line came after the window start).
    let followed: Vec<_> = new
        .iter()
        .filter(|r| r.param("follow") == Some("true"))
        .collect();
    assert_eq!(followed.len(), 1, "{new:?}");
    assert!(
        new.iter()
            .all(|r| r.param("follow") == Some("true") || r.param("limitBytes").is_some()),
        "{new:?}"
    );
    assert_eq!(new[0].param("sinceTime"), a[0].param("sinceTime"));
    // It was listed repeatedly, and only picked up once it existed.
    let lists = e
        .server
        .requests()
        .iter()
        .filter(|q| q.path == "/api/v1/namespaces/falco/pods")
        .count();
    assert!(lists >= 3, "re-listed {lists} time(s)");
}

#[test]
fn without_relisting_soon_enough_a_late_pod_is_not_seen() {
    // The default re-list period (10 s) is longer than this window: only the first pod counts.
    let t0 = Utc::now();
    let e = env_with(FakeCluster::new(vec![
        falco_pod("falco-a", "node-0", vec![]),
        falco_pod(
            "falco-new",
            "node-1",
            vec![alert_at(t0 + secs(1.0), "Error", "Unseen", NS)],
        )
        .appearing_at(t0 + secs(0.5)),
    ]));
    let r = e.run(&["--for", "2s", "-o", "json"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["pods"].as_array().map(Vec::len), Some(1), "{r:?}");
    assert!(e.server.log_requests("falco-new").is_empty());
}

// ----------------------------------------------------------------------------- broken streams

fn resetting_cluster(priority: &str) -> (FakeCluster, DateTime<Utc>) {
    let t0 = Utc::now();
    let mut faults = Faults::default();
    // More bytes than the log holds: the stream breaks once its lines are sent.
    faults
        .log_reset_after_bytes
        .insert("falco-a".to_string(), 1 << 20);
    let cluster = FakeCluster::new(vec![
        falco_pod(
            "falco-a",
            "node-0",
            vec![alert_at(t0 + secs(0.5), priority, "Before the break", NS)],
        ),
        falco_pod("falco-b", "node-1", vec![]),
    ])
    .with_faults(faults);
    (cluster, t0)
}

#[test]
fn a_broken_stream_makes_the_watch_incomplete_and_fail_closed_exits_3() {
    let (cluster, _) = resetting_cluster("Notice");
    let e = env_with(cluster);
    let r = run_live(
        &e.args(&["--watch", "--for", "3s", "-o", "json"]),
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_window_elapsed(r.elapsed, 3.0, &r);
    let j: serde_json::Value =
        serde_json::from_str(&r.stdout_text()).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    assert_eq!(j["incomplete"], true);
    assert_eq!(j["passed"], true);
    assert_eq!(j["alert_count"], 1, "what was read still counts: {r:?}");
    let a = &j["pods"][0];
    assert_eq!(a["name"], "falco-a");
    let why = a["error"].as_str().unwrap_or_else(|| panic!("{r:?}"));
    assert!(why.contains("broke"), "{why}");
    assert_eq!(j["pods"][1]["error"], serde_json::Value::Null, "{r:?}");
    // Noted live, and loudly at the end.
    let err = r.stderr_text();
    assert!(err.contains("Falco pod falco-a ended"), "{r:?}");
    assert!(err.contains("could NOT verify"), "{r:?}");

    let (cluster, _) = resetting_cluster("Notice");
    let e = env_with(cluster);
    let r = e.run(
        &["--watch", "--for", "2s", "--fail-closed", "-o", "json"],
        &[],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.json()["verdict"], "incomplete");
}

#[test]
fn a_broken_stream_after_a_blocking_alert_is_still_blocked() {
    let (cluster, _) = resetting_cluster("Critical");
    let e = env_with(cluster);
    let r = e.run(
        &["--watch", "--for", "2s", "--fail-closed", "-o", "json"],
        &[],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["verdict"], "blocked", "{r:?}");
    assert_eq!(j["incomplete"], true, "{r:?}");
    assert_eq!(j["blocking_count"], 1);
}

#[test]
fn log_requests_that_never_answer_make_the_watch_incomplete_without_waiting() {
    let mut faults = Faults::default();
    faults.hang_log.insert("falco-b".to_string());
    faults.hang_log.insert("falco-c".to_string());
    let e = env_with(
        FakeCluster::new(vec![
            falco_pod("falco-a", "node-0", vec![]),
            falco_pod("falco-b", "node-1", vec![]),
            falco_pod("falco-c", "node-2", vec![]),
        ])
        .with_faults(faults),
    );
    let r = e.run(&["--for", "1s", "-o", "json"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    // 1 s window; the stuck log requests are given up at once when watching stops.
    assert!(
        r.elapsed < Duration::from_millis(4500),
        "took {:?}: {r:?}",
        r.elapsed
    );
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{r:?}");
    let errors: Vec<(&str, Option<&str>)> = j["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .map(|p| (p["name"].as_str().unwrap_or(""), p["error"].as_str()))
        .collect();
    assert_eq!(errors[0], ("falco-a", None), "{r:?}");
    for (name, error) in &errors[1..] {
        assert!(
            error.is_some_and(|e| e.contains("got no answer")),
            "{name}: {error:?}"
        );
    }
}

#[test]
fn a_restart_inside_the_watched_window_reads_the_previous_instance_too() {
    let t0 = Utc::now();
    let since = (t0 - secs(20.0)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let restarted = t0 - secs(5.0);
    let mut pod = falco_pod(
        "falco-a",
        "node-0",
        vec![alert_at(t0 - secs(4.0), "Notice", "After the restart", NS)],
    )
    .with_falco_previous(
        Terminated::new(falco_started_at(), restarted, 1),
        LogSource::lines(vec![alert_at(
            t0 - secs(10.0),
            "Critical",
            "Before the restart",
            NS,
        )]),
    );
    pod.containers[0].state = ContainerState::Running {
        started_at: restarted,
    };
    let e = env_with(FakeCluster::new(vec![pod]));
    let r = e.run(&["--for", "1s", "--since-time", &since, "-o", "json"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["alert_count"], 2, "{r:?}");
    assert_eq!(j["summary"]["critical"], 1);
    assert_eq!(j["pods"][0]["previous_read"], true);
    assert_eq!(j["incomplete"], false, "{r:?}");
}
