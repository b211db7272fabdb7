//! `--logs` in every shape people save Falco's output in, through the binary: the same alerts
//! give the same counts whatever the envelope, text alerts are dated by their own input (never by
//! the clock time of `--since-time`), and input that is not understood is never a silent pass.

use std::io::Write as _;
use std::path::PathBuf;

use crate::common::*;

/// One line of the fixture: the kubelet stamp, and what Falco wrote.
struct Line {
    stamp: &'static str,
    body: String,
}

/// Falco's own output for one pod: the banner, a JSON Warning and a text Notice and Error for
/// the namespace, a prefix trap (`shadow-abc1234`), and a text alert of the host.
fn falco_output() -> Vec<Line> {
    let l = |stamp, body: &str| Line {
        stamp,
        body: body.to_string(),
    };
    vec![
        l("2024-01-15T09:59:58.101233000Z", "Mon Jan 15 09:59:58 2024: Falco version: 0.42.1 (x86_64)"),
        Line {
            stamp: "2024-01-15T10:31:00.000731000Z",
            body: alert("2024-01-15T10:31:00.000000000Z", "Warning", "Clear Log Activities", Some(NS)),
        },
        l("2024-01-15T10:32:00.000731000Z", "10:32:00.000000000: Notice A shell was spawned in a container with an attached terminal | user=root k8s_pod_name=web-1 k8s_ns_name=shadow-abc123"),
        Line {
            stamp: "2024-01-15T10:32:30.000731000Z",
            body: alert("2024-01-15T10:32:30.000000000Z", "Critical", "Trap", Some("shadow-abc1234")),
        },
        l("2024-01-15T10:33:00.000731000Z", "10:33:00.000000000: Error File below /etc opened for writing | file=/etc/x k8s_pod_name=web-1 k8s_ns_name=shadow-abc123"),
        l("2024-01-15T10:34:00.000731000Z", "10:34:00.000000000: Critical Host shell | user=root k8s_pod_name=<NA> k8s_ns_name=<NA>"),
    ]
}

/// The counts every shape must give: Warning 1, Notice 1, Error 1, two blocking.
fn assert_counts(r: &Run, shape: &str) {
    let j = r.json();
    assert_eq!(r.code, 1, "{shape}: {r:?}");
    assert_eq!(j["verdict"], "blocked", "{shape}: {j}");
    let s = &j["summary"];
    assert_eq!(
        (
            s["warning"].as_u64(),
            s["notice"].as_u64(),
            s["error"].as_u64(),
            s["critical"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(0)),
        "{shape}: {j}"
    );
    assert_eq!(j["blocking_count"], 2, "{shape}: {j}");
    assert_eq!(j["incomplete"], false, "{shape}: gaps {}", j["pods"]);
    for a in j["alerts"].as_array().expect("alerts") {
        assert_eq!(a["dated"], true, "{shape}: {a}");
        assert!(
            a["time"]
                .as_str()
                .unwrap_or("")
                .starts_with("2024-01-15T10:3"),
            "{shape}: {a}"
        );
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).expect("create");
    f.write_all(text.as_bytes()).expect("write");
    p
}

fn check(path: &std::path::Path, extra: &[&str]) -> Run {
    let p = path.display().to_string();
    let mut args = vec![
        NS,
        "--logs",
        p.as_str(),
        "--since-time",
        WINDOW,
        "-o",
        "json",
        "--fail-closed",
    ];
    args.extend_from_slice(extra);
    run(&args, &[], None)
}

/// How a shape writes one line.
type Shape = fn(usize, &Line) -> String;

/// A pretty-printed JSON alert, as Falco's docs show them.
fn pretty(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) if body.starts_with('{') => serde_json::to_string_pretty(&v).expect("pretty"),
        _ => body.to_string(),
    }
}

fn stern_json(body: &str) -> String {
    // stern writes its fields in this order (Go struct order), message first.
    format!(
        r#"{{"message":{},"nodeName":"node-1","namespace":"falco","podName":"falco-a","containerName":"falco"}}"#,
        serde_json::Value::String(format!("{body}\n"))
    )
}

/// The stamp as journald / syslog print it.
fn short_iso(stamp: &str) -> String {
    format!("{}+0000", &stamp[..19])
}

fn classic(stamp: &str) -> String {
    // `Jan 15 10:31:00`
    format!("Jan {} {}", &stamp[8..10], &stamp[11..19])
}

#[test]
fn every_saved_shape_gives_the_same_counts() {
    let shapes: Vec<(&str, Shape)> = vec![
        ("Falco stdout / file_output / stern -o raw", |_, l| {
            l.body.clone()
        }),
        ("kubectl logs --timestamps", |_, l| {
            format!("{} {}", l.stamp, l.body)
        }),
        ("kubectl logs --prefix", |_, l| {
            format!("[pod/falco-a/falco] {}", l.body)
        }),
        ("kubectl logs --prefix --timestamps", |_, l| {
            format!("[pod/falco-a/falco] {} {}", l.stamp, l.body)
        }),
        ("stern", |_, l| format!("falco-a falco {}", l.body)),
        ("stern, coloured", |_, l| {
            format!(
                "\u{1b}[32mfalco-a\u{1b}[0m \u{1b}[32mfalco\u{1b}[0m {}",
                l.body
            )
        }),
        ("stern --timestamps", |_, l| {
            format!("falco-a falco {} {}", l.stamp, l.body)
        }),
        ("stern -o json", |_, l| stern_json(&l.body)),
        ("journalctl -u falco (short)", |_, l| {
            format!("{} node-1 falco[812]: {}", classic(l.stamp), l.body)
        }),
        ("journalctl -u falco -o short-iso", |_, l| {
            format!("{} node-1 falco[812]: {}", short_iso(l.stamp), l.body)
        }),
        ("syslog, RFC 3339 stamps", |_, l| {
            format!("{}+00:00 node-1 falco: {}", &l.stamp[..26], l.body)
        }),
        ("syslog, RFC 5424", |_, l| {
            format!("<134>1 {}Z node-1 falco 812 - - {}", &l.stamp[..23], l.body)
        }),
        ("syslog, RFC 3164 with priority", |_, l| {
            format!("<134>{} node-1 falco: {}", classic(l.stamp), l.body)
        }),
        ("pretty-printed JSON", |_, l| pretty(&l.body)),
        (
            "pretty-printed JSON, kubectl --timestamps on every line",
            |_, l| {
                pretty(&l.body)
                    .lines()
                    .map(|x| format!("{} {x}", l.stamp))
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        ),
        ("CRLF line ends", |_, l| format!("{}\r", l.body)),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (shape, f)) in shapes.iter().enumerate() {
        let text: String = falco_output()
            .iter()
            .enumerate()
            .map(|(n, l)| f(n, l) + "\n")
            .collect();
        let path = write(&dir, &format!("shape-{i}.log"), &text);
        let r = check(&path, &[]);
        assert_counts(&r, shape);
        if shape.contains("prefix") || shape.starts_with("stern") {
            let j = r.json();
            for a in j["alerts"].as_array().expect("alerts") {
                assert_eq!(
                    (a["pod"].as_str(), a["container"].as_str()),
                    (Some("falco-a"), Some("falco")),
                    "{shape}: {a}"
                );
            }
        }
    }
}

#[test]
fn several_pods_saved_with_prefix_keep_their_own_pod() {
    let mut text = String::new();
    for (pod, line) in [("falco-a", 1), ("falco-b", 2), ("falco-a", 4)] {
        let l = &falco_output()[line];
        text.push_str(&format!("[pod/{pod}/falco] {} {}\n", l.stamp, l.body));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "pods.log", &text);
    let r = check(&path, &["--group-by", "pod"]);
    let j = r.json();
    assert_eq!(j["alert_count"], 3, "{j}");
    let pods: Vec<&str> = j["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["pod"].as_str())
        .collect();
    assert_eq!(pods, ["falco-a", "falco-b", "falco-a"], "{j}");
}

#[test]
fn text_alerts_are_dated_by_their_input_not_by_the_clock_of_since_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Written after 12:00, no date anywhere: counted inside the window, flagged, said.
    let undated = "23:10:00.000000000: Warning A shell was spawned | k8s_ns_name=shadow-abc123\n";
    let path = write(&dir, "undated.log", undated);
    let p = path.display().to_string();
    let r = run(
        &[
            NS,
            "--logs",
            &p,
            "--since-time",
            "2015-01-01T00:00:00Z",
            "-o",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["undated_count"], 1, "{j}");
    assert_eq!(j["alerts"][0]["dated"], false, "{j}");
    assert_eq!(j["alerts"][0]["time"], serde_json::Value::Null, "{j}");
    assert!(r.stderr.contains("carried no date"), "{r:?}");
    // A dated line after the alert dates it (the banner of a restart, a JSON alert).
    let later = format!("{undated}Tue Jan 16 00:05:00 2024: Falco version: 0.42.1 (x86_64)\n");
    let path = write(&dir, "later.log", &later);
    let p = path.display().to_string();
    for (since, code) in [("2024-01-15T23:00:00Z", 1), ("2024-01-15T23:30:00Z", 0)] {
        let r = run(
            &[NS, "--logs", &p, "--since-time", since, "-o", "json"],
            &[],
            None,
        );
        assert_eq!(r.code, code, "{since}: {r:?}");
        let j = r.json();
        assert_eq!(j["undated_count"], 0, "{j}");
        if code == 1 {
            assert_eq!(
                j["alerts"][0]["time"], "2024-01-15T23:10:00.000000000Z",
                "{j}"
            );
        } else {
            assert_eq!(j["outside_window_count"], 1, "{j}");
        }
    }
}

#[test]
fn input_that_is_not_understood_is_never_a_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not Falco at all, from a pipe.
    let r = run(
        &[
            NS,
            "--logs",
            "-",
            "--since-time",
            WINDOW,
            "--fail-closed",
            "-o",
            "json",
        ],
        &[],
        Some(b"hello\n"),
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        r.json()["pods"][0]["gaps"][0]["kind"],
        "not_understood",
        "{r:?}"
    );
    // Empty: nothing read, said plainly.
    let path = write(&dir, "empty.log", "");
    let r = check(&path, &[]);
    assert_eq!(r.code, 3, "{r:?}");
    let gap = &r.json()["pods"][0]["gaps"][0];
    assert_eq!(gap["kind"], "not_understood", "{r:?}");
    assert!(
        gap["message"].as_str().unwrap_or("").contains("empty"),
        "{r:?}"
    );
    // Falco output with one line that names the namespace and is no Falco record: counted,
    // the first shown (neutralized on a terminal), incomplete. A longer name is no mention.
    let mut text: String = falco_output()
        .iter()
        .map(|l| format!("{}\n", l.body))
        .collect();
    text.push_str("sidecar: restarted workload in shadow-abc123 \u{1b}[2J after OOM\n");
    text.push_str("sidecar: nothing to do for shadow-abc1234\n");
    let path = write(&dir, "mention.log", &text);
    let r = check(&path, &["-s", "critical"]);
    assert_eq!(r.code, 3, "{r:?}");
    let j = r.json();
    assert_eq!(j["unparsed_mentions"], 1, "{j}");
    assert_eq!(j["pods"][0]["unparsed_mentions"], 1, "{j}");
    let message = j["pods"][0]["gaps"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        message.contains("restarted workload in shadow-abc123"),
        "{message}"
    );
    let text_view = run(
        &[
            NS,
            "--logs",
            &path.display().to_string(),
            "--since-time",
            WINDOW,
            "-s",
            "critical",
        ],
        &[],
        None,
    );
    assert!(!text_view.stdout.contains('\u{1b}'), "{text_view:?}");
}

#[test]
fn drop_notices_count_wherever_they_sit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "Mon Jan 15 10:40:00 2024: Falco internal: syscall event drop. 9 system calls dropped in last second.\n\
                10:41:00.000000000: Notice Shell | k8s_ns_name=other Falco internal: syscall event drop. 2 system calls dropped\n";
    let path = write(&dir, "drops.log", text);
    let r = check(&path, &[]);
    let j = r.json();
    assert_eq!(j["syscall_drops"], 2, "{j}");
    assert!(r.stderr.contains("syscall event drop"), "{r:?}");
}

/// The verdict a Falco expert gives each file of `../shared/falco-wild` (real output as users
/// printed it), for each namespace in it: (file prefix, namespace, verdict at the default
/// threshold, alert count). Checked as saved, and with a kubelet stamp put before every line.
const WILD: &[(&str, &str, &str, u64)] = &[
    ("01", "default", "blocked", 4),
    ("02", "default", "passed", 4),
    ("02", "fission-function", "passed", 1),
    ("02", "openfaas-fn", "passed", 1),
    ("03", "falcoresponse", "passed", 1),
    ("04", "default", "blocked", 1),
    ("05", "default", "blocked", 2),
    ("07", "default", "passed", 2),
    ("08", "default", "passed", 2),
    ("09", "hello-app", "passed", 1),
    ("10", "falco", "passed", 1),
    ("11", "default", "passed", 1),
    ("15", "default", "blocked", 1),
    ("16", "kube-system", "blocked", 1),
    ("54", "default", "blocked", 1),
];

#[test]
#[cfg_attr(not(shared_material), ignore = "needs ../shared beside the repository")]
fn real_falco_output_gets_an_experts_verdict() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/falco-wild");
    let entries = std::fs::read_dir(&dir).expect("../shared/falco-wild");
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let tmp = tempfile::tempdir().expect("tempdir");
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let text = std::fs::read(&file).expect("read");
        let stamped: Vec<u8> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
            .flat_map(|(i, l)| {
                let mut v = format!("2025-06-01T12:00:00.{:09}Z ", i * 1000).into_bytes();
                v.extend_from_slice(l);
                v.push(b'\n');
                v
            })
            .collect();
        let stamped_path = tmp.path().join(&name);
        std::fs::write(&stamped_path, stamped).expect("write");
        let expected: Vec<_> = WILD.iter().filter(|w| name.starts_with(w.0)).collect();
        for path in [&file, &stamped_path] {
            let p = path.display().to_string();
            for (_, ns, verdict, count) in &expected {
                let r = run(
                    &[
                        ns,
                        "--logs",
                        &p,
                        "--since-time",
                        "2000-01-01T00:00:00Z",
                        "-o",
                        "json",
                    ],
                    &[],
                    None,
                );
                let j = r.json();
                assert_eq!(
                    (j["verdict"].as_str(), j["alert_count"].as_u64()),
                    (Some(*verdict), Some(*count)),
                    "{name} {ns} ({p}): {j}"
                );
            }
            // Every file is Falco output we understand: no gap for a namespace it does not name.
            let r = run(
                &[
                    NS,
                    "--logs",
                    &p,
                    "--since-time",
                    "2000-01-01T00:00:00Z",
                    "-o",
                    "json",
                    "--fail-closed",
                ],
                &[],
                None,
            );
            let j = r.json();
            assert_eq!(
                (j["verdict"].as_str(), r.code),
                (Some("passed"), 0),
                "{name} ({p}): {j}"
            );
        }
    }
}

#[test]
fn a_json_record_that_never_closes_swallows_nothing_unseen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from("{\n  \"a\": [\n");
    for _ in 0..600 {
        text.push_str("  1,\n");
    }
    text.push_str(&alert(
        "2024-01-15T10:31:00.000000000Z",
        "Critical",
        "Hidden",
        Some(NS),
    ));
    text.push('\n');
    let path = write(&dir, "open.log", &text);
    let r = check(&path, &[]);
    assert_eq!(
        r.code, 1,
        "the alert after the unclosed record still counts: {r:?}"
    );
    // A new record at the start of a line ends a pretty-printed one early.
    let text = format!(
        "{{\n  \"priority\": \"Critical\",\n{}\n",
        alert(
            "2024-01-15T10:31:00.000000000Z",
            "Critical",
            "Next",
            Some(NS)
        )
    );
    let path = write(&dir, "cut.log", &text);
    let r = check(&path, &[]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn an_alert_whose_namespace_key_is_unknown_is_not_a_silent_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = r#"{"hostname":"n","output":"10:31:00.000000000: Critical Shell (pod=web-1)","output_fields":{"k8smeta.ns.name":"shadow-abc123","k8smeta.pod.name":"web-1"},"priority":"Critical","rule":"Shell","source":"syscall","time":"2024-01-15T10:31:00.000000000Z"}"#;
    let text = "10:32:00.000000000: Critical Shell (namespace=shadow-abc123 pod=web-1)";
    for (name, line) in [("unknown-key.json", json), ("unknown-token.log", text)] {
        let path = write(
            &dir,
            name,
            &format!("Mon Jan 15 10:00:00 2024: Falco version: 0.42.1\n{line}\n"),
        );
        let r = check(&path, &[]);
        assert_eq!(r.code, 3, "{name}: {r:?}");
        assert_eq!(r.json()["unparsed_mentions"], 1, "{name}: {r:?}");
    }
}

#[test]
fn stdin_given_twice_is_a_usage_error() {
    let r = run(&[NS, "--logs", "-", "--logs", "-"], &[], Some(b""));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("more than once"), "{r:?}");
}

/// Writes `parts` to the binary's stdin one by one, with a pause between them, so that the
/// reader gets them as separate reads.
fn run_with_stdin_parts(args: &[&str], parts: &[&[u8]]) -> (i32, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    for p in parts {
        stdin.write_all(p).expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The same bytes give the same verdict however they arrive: an over-long line whose only
/// namespace token is a sibling's, cut right after `shadow-abc123`, is not the namespace's;
/// and the namespace's own token cut anywhere still is.
#[test]
fn an_over_long_line_cut_inside_a_token_gives_the_same_verdict() {
    let filler = "z".repeat(1500);
    let args = [
        NS,
        "--since-time",
        WINDOW,
        "--logs",
        "-",
        "--max-line-bytes",
        "1024",
        "-o",
        "json",
    ];
    for (ns, want) in [("shadow-abc1234", "passed"), (NS, "incomplete")] {
        let line = format!(
            "2024-01-15T09:59:58.101233000Z Mon Jan 15 09:59:58 2024: Falco version: 0.42.1 (x86_64)\n2024-01-15T10:36:00.000731000Z 10:36:00.000000000: Critical Shell | command=sh {filler} k8s_ns={ns} k8s_pod_name=web\n"
        );
        let bytes = line.as_bytes();
        let cut = line.find("shadow-abc123").expect("token") + NS.len();
        let (code, whole) = run_with_stdin_parts(&args, &[bytes]);
        let whole: serde_json::Value = serde_json::from_str(&whole).expect("json");
        assert_eq!(
            (code, whole["verdict"].as_str()),
            (0, Some(want)),
            "{ns} whole: {whole}"
        );
        for at in [cut, cut - 4, cut + 1] {
            let (_, split) = run_with_stdin_parts(&args, &[&bytes[..at], &bytes[at..]]);
            let split: serde_json::Value = serde_json::from_str(&split).expect("json");
            assert_eq!(
                split["verdict"], whole["verdict"],
                "{ns} cut at {at}: {split}"
            );
            assert_eq!(
                split["pods"][0]["gaps"], whole["pods"][0]["gaps"],
                "{ns} cut at {at}"
            );
        }
    }
}

/// The user's mistakes with inputs and arguments exit 2 before any work, with a message that
/// says what to do: a directory, a device or a FIFO nobody writes to as `--logs`, no namespace,
/// a day as a duration, a flag after `--`.
#[test]
fn input_and_argument_mistakes_are_usage_errors_that_say_what_to_do() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().display().to_string();
    let fifo = dir.path().join("falco.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "mkfifo");
    let fifo = fifo.display().to_string();
    let cases: [(Vec<&str>, &[&str]); 6] = [
        (
            vec![NS, "--since", "10m", "--logs", &d],
            &["is a directory", "/*.log"],
        ),
        (
            vec![NS, "--since", "10m", "--logs", "/dev/zero"],
            &["is a device", "- for standard input"],
        ),
        (
            vec![NS, "--since", "10m", "--logs", &fifo],
            &["is a FIFO", "within 10s"],
        ),
        (vec![], &["NAMESPACE", "-n NAMESPACE", "-A"]),
        (vec![NS, "--since", "1d"], &["ns, us, ms, s, m or h", "24h"]),
        (
            vec!["--", "man", "--since", "10m"],
            &["flags must come before `--`", "--since 10m -- man"],
        ),
    ];
    for (args, wants) in cases {
        let r = run(&args, &[], None);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {r:?}");
        for want in wants {
            assert!(
                r.stderr.contains(want),
                "{args:?} should say {want:?}: {r:?}"
            );
        }
    }
}

/// A FIFO whose writer comes is read whole (the check waits for it, and keeps it open).
#[test]
fn a_fifo_with_a_writer_is_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let fifo = dir.path().join("falco.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success()));
    let log = alert("2024-01-15T10:31:00.000000000Z", "Critical", "R", Some(NS));
    let f = fifo.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(f, format!("{log}\n")).expect("write the fifo");
    });
    let p = fifo.display().to_string();
    let r = run(
        &[NS, "--since-time", "2024-01-15T10:30:00Z", "--logs", &p],
        &[],
        None,
    );
    writer.join().expect("writer");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("BLOCKED: 1"), "{r:?}");
}

/// A gap says where to look: the file and line of the first record not understood.
#[test]
fn a_gap_names_the_line_to_look_at() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("falco.log");
    let t = "2024-01-15T10:36:00.000000000Z";
    std::fs::write(
        &f,
        format!(
            "{}\n{}\n{{\"priority\":\"Critical\",\"rule\":\"R\",\"output_fields\":{{\"k8s.ns.name\":\"{NS}\"}},}}\n",
            alert(t, "Notice", "A", Some("other")),
            alert(t, "Notice", "B", Some("other"))
        ),
    )
    .expect("write");
    let p = f.display().to_string();
    let r = run(
        &[NS, "--since-time", WINDOW, "--logs", &p, "-o", "json"],
        &[],
        None,
    );
    let j = r.json();
    let msg = j["pods"][0]["gaps"][0]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains(&format!("the first ends at line 3 of {p}")),
        "{msg}"
    );
}

/// Falco's k8saudit rules on Namespace objects print the namespace created or deleted as `ns=`:
/// understood in both output formats, said, and not counted (the pipeline creates its shadow
/// namespace itself); an alert naming the namespace as `ka.target.namespace` still counts.
#[test]
fn namespace_object_rules_are_understood_and_not_counted() {
    let text = "2024-01-15T10:39:05.331010000Z 10:39:05.330581127: Warning Disallowed namespace created (user=mallory@example.com ns=shadow-abc123 resource=namespaces)\n";
    let json = r#"{"hostname":"h","output":"10:39:06.000000000: Warning Disallowed namespace created (user=mallory@example.com ns=shadow-abc123 resource=namespaces)","output_fields":{"ka.target.name":"shadow-abc123","ka.target.resource":"namespaces","ka.user.name":"mallory@example.com"},"priority":"Warning","rule":"Create Disallowed Namespace","source":"k8s_audit","tags":["k8s"],"time":"2024-01-15T10:39:06.000000000Z"}"#;
    let dir = tempfile::tempdir().expect("tmp");
    for (name, body) in [
        ("text.log", text.to_string()),
        ("json.log", format!("{json}\n")),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, body).expect("write");
        let p = f.display().to_string();
        let r = run(
            &[
                NS,
                "--since-time",
                "2024-01-15T10:30:00Z",
                "--logs",
                &p,
                "-o",
                "json",
            ],
            &[],
            None,
        );
        assert_eq!(r.code, 0, "{name}: {r:?}");
        let v = r.json();
        assert_eq!(v["verdict"], "passed", "{name}: {r:?}");
        assert_eq!(v["alert_count"], 0, "{name}");
        assert_eq!(v["pods"][0]["gaps"], serde_json::json!([]), "{name}: {r:?}");
        assert!(
            r.stderr.contains(
                "1 k8s audit alert(s) are about the Namespace object shadow-abc123 itself"
            ),
            "{name}: {r:?}"
        );
    }
}

/// `-v 4` lists every place that was not understood, with its line; the gap names the first.
#[test]
fn verbose_lists_every_line_not_understood() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("falco.log");
    let cut = format!(
        r#"{{"output":"x","priority":"Critical","rule":"R","output_fields":{{"k8s.ns.name":"{NS}"}},}}"#
    );
    let ok = alert("2024-01-15T10:31:00.000000000Z", "Notice", "R", Some(NS));
    std::fs::write(&f, format!("{ok}\n{cut}\n{ok}\n{cut}\n{cut}\n")).expect("write");
    let p = f.display().to_string();
    let r = run(
        &[
            NS,
            "--since-time",
            "2024-01-15T10:30:00Z",
            "--logs",
            &p,
            "-v",
            "4",
        ],
        &[],
        None,
    );
    let listed: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("not_understood (malformed JSON)"))
        .collect();
    assert_eq!(listed.len(), 3, "{r:?}");
    for (l, line) in listed.iter().zip([2, 4, 5]) {
        assert!(l.contains(&format!("at line {line} of {p}")), "{l}");
    }
    assert!(
        r.stdout
            .contains(&format!("the first ends at line 2 of {p}")),
        "{r:?}"
    );
    let quiet = run(
        &[NS, "--since-time", "2024-01-15T10:30:00Z", "--logs", &p],
        &[],
        None,
    );
    assert!(
        !quiet.stderr.contains("not_understood (malformed JSON)"),
        "{quiet:?}"
    );
}

/// An over-long line that mentions the namespace is a gap that names its line.
#[test]
fn an_overlong_line_gap_names_its_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("falco.log");
    let long = format!(
        "2024-01-15T10:31:00.000000000Z 10:31:00.000000000: Critical Shell | cmdline={} k8s_ns={NS}",
        "a".repeat(2000)
    );
    let ok = alert("2024-01-15T10:31:00.000000000Z", "Notice", "R", Some(NS));
    std::fs::write(&f, format!("{ok}\n{long}\n")).expect("write");
    let p = f.display().to_string();
    let r = run(
        &[
            NS,
            "--since-time",
            "2024-01-15T10:30:00Z",
            "--logs",
            &p,
            "--max-line-bytes",
            "1024",
            "-o",
            "json",
        ],
        &[],
        None,
    );
    let gaps = r.json()["pods"][0]["gaps"].to_string();
    assert!(gaps.contains("overlong_line"), "{r:?}");
    assert!(
        gaps.contains(&format!("the first ends at line 2 of {p}")),
        "{gaps}"
    );
}

/// A large file is decoded in two halves at once (cut at a line, on two cores); what it says
/// must be what one pass over the same bytes says (stdin is always read in one pass): the same
/// counts, alerts, gaps and line numbers, whether the second half could be joined or had to be
/// decoded again (a cut inside a record spread over lines).
#[test]
fn a_large_file_read_in_halves_says_what_one_pass_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    // (name, block, size in MiB, whether the cut falls inside a record spread over lines)
    let cases: [(&str, &[u8], usize, bool); 3] = [
        (
            "json",
            include_bytes!("../../examples/demo/json.log"),
            65,
            false,
        ),
        (
            "text",
            include_bytes!("../../examples/demo/text.log"),
            65,
            false,
        ),
        (
            "kubelet",
            include_bytes!("../../examples/demo/text.kubelet-timestamps.log"),
            70,
            true,
        ),
    ];
    for (name, block, mib, refused) in cases {
        let copies = mib * 1024 * 1024 / block.len() + 1;
        let bytes = block.repeat(copies);
        let path = dir.path().join(format!("{name}.log"));
        std::fs::write(&path, &bytes).expect("write");
        let p = path.display().to_string();
        let args = |input: &'static str| -> Vec<String> {
            [
                NS,
                "--logs",
                input,
                "--since-time",
                WINDOW,
                "-o",
                "json",
                "-v",
                "4",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        let mut file_args = args("-");
        file_args[2] = p.clone();
        let file_args: Vec<&str> = file_args.iter().map(String::as_str).collect();
        let halves = run(&file_args, &[], None);
        let stdin_args = args("-");
        let stdin_args: Vec<&str> = stdin_args.iter().map(String::as_str).collect();
        let one_pass = run(&stdin_args, &[], Some(&bytes));
        // Alerts name their input as given (`-`); reports name stdin `(stdin)`.
        let comparable = |r: &Run| {
            let mut j = r.json();
            for a in j["alerts"].as_array_mut().expect("alerts") {
                if a["pod"] == p.as_str() {
                    a["pod"] = "-".into();
                }
            }
            let mut j: serde_json::Value =
                serde_json::from_str(&j.to_string().replace(&p, "(stdin)")).expect("json");
            for k in ["since_minutes", "window_end"] {
                j.as_object_mut().expect("object").remove(k);
            }
            j
        };
        let (a, b) = (comparable(&halves), comparable(&one_pass));
        let differ: Vec<&String> = a
            .as_object()
            .expect("object")
            .iter()
            .filter(|(k, v)| b.get(k.as_str()) != Some(v))
            .map(|(k, _)| k)
            .collect();
        assert!(differ.is_empty(), "{name}: {differ:?} differ");
        assert_eq!(halves.code, one_pass.code, "{name}");
        assert!(
            comparable(&halves)["alert_count"].as_u64() > Some(1000),
            "{name}"
        );
        if two_cores {
            assert!(
                halves.stderr.contains("in two halves at once"),
                "{name}: {}",
                halves.stderr
            );
            assert_eq!(
                halves.stderr.contains("decoding it again"),
                refused,
                "{name}: {}",
                halves.stderr
            );
        }
    }
}
