//! Issue 5, untrusted input: Falco's output is shaped by whatever runs in a watched container.
//! Terminal escapes must not reach a terminal, lines of any size and malformed records must not
//! crash the check or make an alert disappear silently.

use std::io::Write as _;

use crate::common::*;
use fake_apiserver::*;
use serde_json::{json, Value};

const T: &str = "2024-01-15T10:31:00.000000000Z";

/// Everything a process can put in its command line to attack a terminal.
const EVIL: &str = concat!(
    "clear\u{1b}[2J",
    " title\u{1b}]0;pwned-title\u{7}",
    " bell\u{7}",
    " back\u{8}\u{8}",
    " cr\rover",
    " rtl\u{202e}lave\u{202c}",
    " nul\u{0}",
    " csi8\u{9b}31m",
    " del\u{7f}",
    " zw\u{200b}",
    " iso\u{2066}x\u{2069}",
    " red\u{1b}[31mred\u{1b}[0m",
    " tab\tend"
);

fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}' | '\u{feff}')
}

/// Removes the SGR color sequences the binary itself writes with `--color always`.
fn strip_own_colors(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\u{1b}[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let n = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[n..].starts_with('m') {
            rest = &after[n + 1..];
        } else {
            // Not a color: keep it, the assertion below reports it.
            out.push_str("\u{1b}[");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Text for a terminal: no control character but newline, no bidi or invisible character.
fn assert_terminal_safe(text: &str, what: &str) {
    for (i, c) in text.char_indices() {
        assert!(
            !((c.is_control() && c != '\n') || is_bidi_or_invisible(c)),
            "{what}: raw {c:?} at byte {i}: {:?}",
            &text[i.saturating_sub(60)..(i + 20).min(text.len())]
        );
    }
}

/// A JSON alert whose output, rule, hostname and fields carry `evil`.
fn evil_json_alert(ns: &str, priority: &str, evil: &str) -> String {
    let hms = &T[11..29];
    json!({
        "hostname": format!("node-{evil}"),
        "output": format!("{hms}: {priority} Terminal shell {evil} | user=root command=sh -c {evil} k8s_ns_name={ns}"),
        "output_fields": {"k8s.ns.name": ns, "proc.cmdline": format!("sh -c {evil}")},
        "priority": priority,
        "rule": format!("Terminal shell {evil}"),
        "source": "syscall",
        "time": T,
    })
    .to_string()
}

/// A text alert whose message carries `evil` raw, as Falco prints text output.
fn evil_text_alert(ns: &str, evil: &str) -> String {
    format!(
        "10:32:00.000000000: Error Shell spawned {evil} | command=sh -c {evil} k8s_ns_name={ns}"
    )
}

fn write_log(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create log");
    f.write_all(bytes).expect("write log");
    path.display().to_string()
}

fn check_logs(path: &str, extra: &[&str]) -> Run {
    let mut args = vec![NS, "--logs", path, "--since-time", WINDOW];
    args.extend_from_slice(extra);
    run(&args, &[], None)
}

fn evil_log() -> Vec<u8> {
    let mut log = String::new();
    log.push_str(&evil_json_alert(NS, "Critical", EVIL));
    log.push('\n');
    log.push_str(&evil_text_alert(NS, EVIL));
    log.push('\n');
    log.into_bytes()
}

fn assert_evil_text_output(r: &Run, color: bool, what: &str) {
    assert_eq!(r.code, 1, "{what}: {r:?}");
    let stdout = if color {
        assert!(r.stdout.contains("\u{1b}[31m"), "{what}: colored: {r:?}");
        strip_own_colors(&r.stdout)
    } else {
        r.stdout.clone()
    };
    assert_terminal_safe(&stdout, &format!("{what} stdout"));
    assert_terminal_safe(&strip_own_colors(&r.stderr), &format!("{what} stderr"));
    // Shown as visible escapes, not dropped.
    for shown in [
        "\\x1b[2J",
        "\\x1b]0;pwned-title\\x07",
        "\\x08\\x08",
        "\\r",
        "\\u{202e}",
        "\\x00",
        "\\x9b31m",
        "\\x1b[31mred",
    ] {
        assert!(stdout.contains(shown), "{what}: {shown} missing: {r:?}");
    }
    assert!(stdout.contains("BLOCKED"), "{what}: {r:?}");
}

#[test]
fn terminal_escapes_in_alerts_are_neutralized_in_text_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), "evil.log", &evil_log());
    assert_evil_text_output(&check_logs(&path, &[]), false, "text");
    assert_evil_text_output(&check_logs(&path, &["--color", "always"]), true, "color");
    assert_evil_text_output(
        &check_logs(&path, &["-o", "wide", "--color", "always"]),
        true,
        "wide",
    );
    let data = evil_log();
    let r = run(
        &[NS, "--logs", "-", "--since-time", WINDOW],
        &[],
        Some(&data),
    );
    assert_evil_text_output(&r, false, "stdin");
}

#[test]
fn terminal_escapes_survive_json_output_escaped_and_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), "evil.log", &evil_log());
    let r = check_logs(&path, &["-o", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    // Valid JSON, and no raw C0 control character: JSON escapes them.
    let j: Value = r.json();
    for (i, c) in r.stdout.char_indices() {
        assert!(!(c < ' ' && c != '\n'), "raw {c:?} at {i}");
    }
    assert_eq!(j["alert_count"], 2);
    let alerts = j["alerts"].as_array().expect("alerts");
    let json_alert = alerts
        .iter()
        .find(|a| a["priority"] == "Critical")
        .expect("json alert");
    // The exact text, every byte preserved.
    assert_eq!(json_alert["rule"], format!("Terminal shell {EVIL}"));
    assert_eq!(json_alert["hostname"], format!("node-{EVIL}"));
    assert_eq!(
        json_alert["output_fields"]["proc.cmdline"],
        format!("sh -c {EVIL}")
    );
    assert!(json_alert["output"]
        .as_str()
        .is_some_and(|o| o.contains(EVIL)));
    let text_alert = alerts
        .iter()
        .find(|a| a["priority"] == "Error")
        .expect("text alert");
    assert!(
        text_alert["output"]
            .as_str()
            .is_some_and(|o| o.contains(EVIL)),
        "{text_alert}"
    );
    assert_terminal_safe(&r.stderr, "json stderr");
}

#[test]
fn terminal_escapes_from_the_api_server_are_neutralized_too() {
    let lines = vec![
        (kubelet(T), evil_json_alert(NS, "Critical", EVIL)),
        (
            kubelet("2024-01-15T10:32:00.000000000Z"),
            evil_text_alert(NS, EVIL),
        ),
    ];
    let server = FakeApiServer::start(FakeCluster::new(vec![FakePod::falco(
        "falco-a",
        "node-0",
        LogSource::lines(lines),
    )]));
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = server.write_kubeconfig(dir.path()).display().to_string();
    let base = [
        NS,
        "--since-time",
        WINDOW,
        "--kubeconfig",
        kubeconfig.as_str(),
    ];
    let r = run(&base, &[], None);
    assert_evil_text_output(&r, false, "api text");
    let mut color = base.to_vec();
    color.extend(["--color", "always"]);
    assert_evil_text_output(&run(&color, &[], None), true, "api color");
    let mut as_json = base.to_vec();
    as_json.extend(["-o", "json"]);
    let r = run(&as_json, &[], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.json()["alerts"][0]["rule"],
        format!("Terminal shell {EVIL}")
    );
}

#[test]
fn raw_control_bytes_inside_a_json_line_do_not_hide_the_alert() {
    // Not what Falco's encoder writes, but a log line is not under our control: raw ESC, BEL and
    // NUL bytes inside a JSON string make it invalid JSON.
    let line = alert(T, "Critical", "Terminal shell", Some(NS))
        .replace("sh -c id", "sh -c \u{1b}]0;x\u{7}id\u{0}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), "raw.log", format!("{line}\n").as_bytes());
    let r = check_logs(&path, &["-o", "json"]);
    assert_ne!(r.json()["verdict"], "passed", "{r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    let r = check_logs(&path, &[]);
    assert_terminal_safe(&r.stdout, "stdout");
}

// ---------------------------------------------------------------- lines of any size

const MIB: usize = 1024 * 1024;

/// A Falco JSON alert with a command line of `size` bytes. Falco sorts the keys: `output`
/// (which ends with `k8s_ns_name=`) and `output_fields` come after the long command line, so the
/// namespace is only named far beyond the first MiB.
fn huge_alert(ns: &str, priority: &str, size: usize) -> String {
    let filler = "A".repeat(size);
    let hms = &T[11..29];
    format!(
        r#"{{"hostname":"node-x","output":"{hms}: {priority} Long command | command=sh -c {filler} k8s_ns_name={ns}","output_fields":{{"k8s.ns.name":"{ns}","proc.cmdline":"sh -c {filler}"}},"priority":"{priority}","rule":"Long command","source":"syscall","time":"{T}"}}"#
    )
}

#[test]
fn a_5_mib_line_for_another_namespace_is_counted_skipped_and_reported() {
    let mut log = huge_alert("default", "Critical", 5 * MIB / 2);
    log.push('\n');
    log.push_str(&alert(T, "Notice", "R", Some(NS)));
    log.push('\n');
    assert!(log.len() > 5 * MIB);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), "big.log", log.as_bytes());
    let r = check_logs(&path, &["-o", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["verdict"], "passed", "{j}");
    assert_eq!(j["raw_lines_count"], 2);
    assert_eq!(j["summary"]["notice"], 1);
    assert!(
        r.stderr.contains("longer than the line limit"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--max-line-bytes"), "{}", r.stderr);
}

#[test]
fn a_5_mib_line_that_names_the_namespace_makes_the_check_incomplete() {
    let log = format!("{}\n", huge_alert(NS, "Critical", 5 * MIB / 2));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), "big.log", log.as_bytes());
    let r = check_logs(&path, &["-o", "json"]);
    assert_eq!(r.code, 0, "fail-open: {}", r.stderr);
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{}", r.stderr);
    let reason = j["reason"].as_str().unwrap_or("");
    assert!(reason.contains("over-long line"), "{reason}");
    assert!(reason.contains("--max-line-bytes"), "{reason}");
    assert_eq!(check_logs(&path, &["--fail-closed"]).code, 3);
    // The namespace right at the start of the line (text output, `k8s_ns_name=` first) too.
    let text = format!(
        "10:31:00.000000000: Critical Long k8s_ns_name={NS} command={}\n",
        "B".repeat(5 * MIB)
    );
    let path2 = write_log(dir.path(), "big-text.log", text.as_bytes());
    let r = check_logs(&path2, &["-o", "json"]);
    assert_eq!(r.json()["verdict"], "incomplete", "{r:?}");
    // Raising the limit reads it: the alert blocks.
    let r = check_logs(
        &path,
        &["-o", "json", "--max-line-bytes", &(8 * MIB).to_string()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.json()["summary"]["critical"], 1);
    assert!(
        !r.stderr.contains("longer than the line limit"),
        "{}",
        r.stderr
    );
    // Standard input takes the same path.
    let r = run(
        &[NS, "--logs", "-", "--since-time", WINDOW, "-o", "json"],
        &[],
        Some(log.as_bytes()),
    );
    assert_eq!(r.json()["verdict"], "incomplete", "{}", r.stderr);
}

#[test]
fn a_5_mib_line_from_the_api_server_makes_the_check_incomplete() {
    let lines = vec![
        (
            falco_started_at(),
            "Mon Jan 15 09:59:58 2024: Falco version: 0.42.1 (x86_64)".to_string(),
        ),
        (kubelet(T), huge_alert(NS, "Critical", 5 * MIB / 2)),
        (
            kubelet("2024-01-15T10:32:00.000000000Z"),
            alert("2024-01-15T10:32:00.000000000Z", "Notice", "R", Some(NS)),
        ),
    ];
    let server = FakeApiServer::start(FakeCluster::new(vec![FakePod::falco(
        "falco-a",
        "node-0",
        LogSource::lines(lines),
    )]));
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = server.write_kubeconfig(dir.path()).display().to_string();
    let args = [
        NS,
        "--since-time",
        WINDOW,
        "--kubeconfig",
        kubeconfig.as_str(),
        "-o",
        "json",
    ];
    let r = run(&args, &[], None);
    let j = r.json();
    assert_eq!(j["verdict"], "incomplete", "{}", r.stderr);
    assert!(
        j["pods"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("over-long")),
        "{j}"
    );
    assert_eq!(j["summary"]["notice"], 1);
    let mut raised = args.to_vec();
    let limit = (8 * MIB).to_string();
    raised.extend(["--max-line-bytes", limit.as_str()]);
    let r = run(&raised, &[], None);
    assert_eq!(r.code, 1, "{}", r.stderr);
}

// ---------------------------------------------------------------- malformed records

#[test]
fn invalid_utf8_inside_an_alert_keeps_the_alert() {
    let mut log = Vec::new();
    let json = alert(T, "Critical", "Terminal shell", Some(NS));
    let (head, tail) = json.split_at(json.find("sh -c id").expect("cmdline"));
    log.extend_from_slice(head.as_bytes());
    log.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
    log.extend_from_slice(tail.as_bytes());
    log.push(b'\n');
    log.extend_from_slice(b"10:32:00.000000000: Error Shell \xff\xfe spawned | k8s_ns_name=");
    log.extend_from_slice(NS.as_bytes());
    log.push(b'\n');
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), "utf8.log", &log);
    let r = check_logs(&path, &["-o", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["summary"]["critical"], 1, "{j}");
    assert_eq!(j["summary"]["error"], 1, "{j}");
    assert!(j["alerts"][0]["output"]
        .as_str()
        .is_some_and(|o| o.contains('\u{fffd}')));
    let r = check_logs(&path, &[]);
    assert_eq!(r.code, 1);
    assert_terminal_safe(&r.stdout, "stdout");
}

#[test]
fn deeply_nested_json_does_not_crash_and_later_alerts_count() {
    let mut log = String::new();
    log.push_str(&"[".repeat(100_000));
    log.push('\n');
    log.push_str(&"{\"a\":".repeat(100_000));
    log.push('\n');
    // Nested and naming the namespace: parsed, refused, reported.
    log.push_str(&format!(
        "{{\"priority\":\"Critical\",\"rule\":\"R\",\"output\":\"k8s_ns_name={NS}\",\"x\":{}",
        "[".repeat(100_000)
    ));
    log.push('\n');
    log.push_str(&format!("{}\n", "{".repeat(100_000)));
    log.push_str(&alert(T, "Warning", "R", Some(NS)));
    log.push('\n');
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), "nested.log", log.as_bytes());
    let r = check_logs(&path, &["-o", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["raw_lines_count"], 5);
    assert_eq!(j["summary"]["warning"], 1);
    // The refused alert is a gap in the file's coverage, named in the report.
    let gaps = &j["pods"][0]["gaps"];
    assert_eq!(gaps[0]["kind"], "not_understood", "{j}");
    assert!(
        gaps[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("malformed, truncated"),
        "{j}"
    );
}

#[test]
fn odd_fields_count_as_other_are_listed_and_block() {
    let base = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v: serde_json::Map<String, Value> =
            serde_json::from_str(&alert(T, "Critical", "R", Some(NS))).expect("alert json");
        f(&mut v);
        Value::Object(v).to_string()
    };
    let lines = [
        // Priority as a number.
        base(&|v| {
            v.insert("priority".into(), json!(7));
            v.insert("rule".into(), json!("Numeric priority"));
        }),
        // A priority Falco does not define.
        base(&|v| {
            v.insert("priority".into(), json!("Severe"));
            v.insert("rule".into(), json!("Unknown priority"));
        }),
        // Wrong types elsewhere: time as a number (evt.time stands in), rule as an object,
        // hostname as an array, output_fields as a string (the output text stands in).
        base(&|v| {
            v.insert("priority".into(), json!("Emergency"));
            v.insert("time".into(), json!(12345));
            v.insert("rule".into(), json!({"x": 1}));
            v.insert("hostname".into(), json!([1, 2]));
            v.insert("output_fields".into(), json!("k8s.ns.name"));
        }),
        // Priority null.
        base(&|v| {
            v.insert("priority".into(), Value::Null);
            v.insert("rule".into(), json!("Null priority"));
        }),
    ];
    let mut log = lines.join("\n");
    // Duplicate keys: the last one wins, as in every JSON library Falco's consumers use.
    log.push('\n');
    log.push_str(&alert(T, "Debug", "Duplicate keys", Some("default")).replacen(
        "\"priority\":\"Debug\"",
        &format!("\"priority\":\"Debug\",\"priority\":\"Alert\",\"output_fields\":{{\"k8s.ns.name\":\"default\"}},\"output_fields\":{{\"k8s.ns.name\":\"{NS}\"}}"),
        1,
    ));
    log.push('\n');
    // A text alert with a priority Falco does not define.
    log.push_str(&format!(
        "10:33:00.000000000: Severe Odd text | k8s_ns_name={NS}\n"
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), "odd.log", log.as_bytes());
    // Even with the most severe threshold, an unknown priority blocks.
    let r = check_logs(&path, &["-o", "json", "-s", "emergency"]);
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["summary"]["other"], 4, "{}", j["summary"]);
    assert_eq!(j["summary"]["emergency"], 1, "{}", j["summary"]);
    assert_eq!(j["summary"]["alert"], 1, "{}", j["summary"]);
    assert_eq!(j["alert_count"], 6);
    assert_eq!(j["blocking_count"], 5);
    let alerts = j["alerts"].as_array().expect("alerts");
    let listed: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a["priority"].as_str())
        .collect();
    for p in ["7", "Severe", "null"] {
        assert!(listed.contains(&p), "{p} listed in {listed:?}");
    }
    for a in alerts.iter().filter(|a| a["priority"] != "Alert") {
        assert_eq!(a["blocking"], true, "{a}");
    }
    let r = check_logs(&path, &["-s", "emergency", "--color", "always"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("OTHER"), "{r:?}");
    assert!(r.stdout.contains("SEVERE"), "{r:?}");
}

#[test]
fn a_forged_namespace_token_in_a_command_line_does_not_move_an_alert() {
    // A host process (no Kubernetes keys in output_fields) prints our namespace's tokens: the
    // alert is Falco's about the host, not about the shadow namespace. A real alert of the
    // namespace's own workload in another namespace carries its own fields and is not ours.
    let forged = r#"{"hostname":"node-x","output":"10:31:00.000000000: Critical Shell run (cmdline=sh -c 'echo k8s_ns=shadow-abc123 k8s_ns_name=shadow-abc123')","output_fields":{"container.id":"host","proc.cmdline":"sh -c 'echo k8s_ns=shadow-abc123 k8s_ns_name=shadow-abc123'"},"priority":"Critical","rule":"Run shell untrusted","source":"syscall","time":"2024-01-15T10:31:00.000000000Z"}"#;
    let elsewhere = r#"{"hostname":"node-x","output":"10:32:00.000000000: Critical Shell (k8s_ns_name=shadow-abc123)","output_fields":{"k8s.ns.name":"other","proc.cmdline":"sh -c 'k8s_ns_name=shadow-abc123'"},"priority":"Critical","rule":"Run shell untrusted","source":"syscall","time":"2024-01-15T10:32:00.000000000Z"}"#;
    let log = format!(
        "{forged}\n{elsewhere}\n{}\n",
        alert(T, "Notice", "Ours", Some(NS))
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), "forged.log", log.as_bytes());
    let r = check_logs(&path, &["-o", "json", "--fail-closed"]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["verdict"], "passed", "{j}");
    assert_eq!(j["alert_count"], 1, "{j}");
    assert_eq!(j["summary"]["critical"], 0, "{j}");
}
