//! Interactive features through the binary: breakdowns, noise control, all namespaces, YAML.

use crate::common::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/falco-alerts.jsonl");

fn check(extra: &[&str]) -> Run {
    let mut args = vec![NS, "--logs", EXAMPLE, "--since-time", WINDOW];
    args.extend_from_slice(extra);
    run(&args, &[], None)
}

#[test]
fn group_by_rule_has_counts_worst_and_first_last_seen() {
    let r = check(&["--group-by", "rule", "-o", "json"]);
    let j = r.json();
    assert_eq!(j["group_by"], "rule");
    let groups = j["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 4, "{groups:?}");
    // Worst priority first.
    assert_eq!(groups[0]["key"], "K8s Secret Get Successfully");
    assert_eq!(groups[0]["worst"], "Error");
    assert_eq!(groups[0]["first_seen"], "2024-01-15T10:44:48Z");
    let text = check(&["--group-by", "rule"]);
    for want in ["By rule:", "FIRST SEEN", "Clear Log Activities"] {
        assert!(text.stdout.contains(want), "{want}: {text:?}");
    }
    for key in ["priority", "pod", "node", "container"] {
        let r = check(&["--group-by", key, "-o", "json"]);
        assert!(
            r.json()["groups"].as_array().is_some_and(|g| !g.is_empty()),
            "{key}"
        );
    }
    assert_eq!(check(&["--group-by", "color"]).code, 2);
}

#[test]
fn timeline_is_numbers_on_a_pipe() {
    let r = check(&[]);
    assert!(
        r.stdout
            .contains("Alerts per minute, 2024-01-15T10:30:00Z .. 2024-01-15T10:46:00Z"),
        "{r:?}"
    );
    assert!(!r.stdout.contains('▁') && !r.stdout.contains('█'));
    let j = check(&["-o", "json"]).json();
    let minutes = j["timeline"].as_array().expect("timeline");
    assert_eq!(minutes.len(), 17);
    let total: u64 = minutes.iter().filter_map(|m| m["count"].as_u64()).sum();
    assert_eq!(total, 4);
}

#[test]
fn ignored_alerts_are_counted_shown_and_never_block() {
    let r = check(&[
        "--ignore-rule",
        "Clear Log*",
        "--ignore-rule",
        "K8s Secret*",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["alert_count"], 4, "still counted");
    assert_eq!(j["ignored_count"], 2);
    assert_eq!(j["blocking_count"], 0);
    let ignored: Vec<&str> = j["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["ignored"] == true)
        .filter_map(|a| a["rule"].as_str())
        .collect();
    assert_eq!(
        ignored,
        ["Clear Log Activities", "K8s Secret Get Successfully"]
    );
    let t = check(&["--ignore-rule", "Clear Log*"]);
    assert!(
        t.stdout.contains("IGNORED") && t.stdout.contains("accepted noise"),
        "{t:?}"
    );
    assert_eq!(t.code, 1, "the other blocking alert still blocks");
}

#[test]
fn ignore_file_matches_rules_and_output_fields() {
    let dir = tempfile::tempdir().expect("dir");
    let f = dir.path().join("noise.yaml");
    std::fs::write(
        &f,
        "# accepted noise\n- rule: Clear Log Activities\n  output_fields:\n    k8s.pod.name: jobs-*\n  reason: log rotation job\n- rule: K8s Secret Get Successfully\n  output_fields:\n    ka.user.name: bob*\n",
    )
    .expect("write");
    let p = f.display().to_string();
    let j = check(&["--ignore-file", &p, "-o", "json"]).json();
    assert_eq!(j["ignored_count"], 1, "only the first entry matches: {j}");
    assert_eq!(j["blocking_count"], 1);
    std::fs::write(&f, "- rule: [unclosed\n").expect("write");
    let r = check(&["--ignore-file", &p]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("noise.yaml"), "{r:?}");
    let r = check(&["--ignore-file", "/nonexistent/noise.yaml"]);
    assert_eq!(r.code, 2);
}

#[test]
fn all_namespaces_table_sorted_by_worst_priority() {
    let r = run(
        &[
            "-A",
            "--logs",
            EXAMPLE,
            "--since-time",
            WINDOW,
            "-o",
            "json",
            "-s",
            "critical",
        ],
        &[],
        None,
    );
    let j = r.json();
    let rows = j["namespaces"].as_array().expect("namespaces");
    let names: Vec<&str> = rows
        .iter()
        .filter_map(|n| n["namespace"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ci",
            "default",
            "shadow-abc1234",
            "shadow-abc123",
            "shadow-abc12"
        ],
        "{rows:?}"
    );
    assert_eq!(rows[0]["worst"], "Alert");
    assert_eq!(j["namespace_filter"], "*");
    assert_eq!(r.code, 1, "blocks on any namespace: {r:?}");
    let t = run(
        &["-A", "--logs", EXAMPLE, "--since-time", WINDOW],
        &[],
        None,
    );
    assert!(
        t.stdout.contains("all namespaces") && t.stdout.contains("NAMESPACE"),
        "{t:?}"
    );
    assert_eq!(
        run(&["-A", NS, "--logs", EXAMPLE], &[], None).code,
        2,
        "-A takes no namespace"
    );
}

#[test]
fn yaml_output_is_the_same_document() {
    let y = check(&["-o", "yaml"]);
    let j = check(&["-o", "json"]).json();
    assert!(y.stdout.starts_with("tool: falco\n"), "{y:?}");
    assert!(y
        .stdout
        .contains(&format!("alert_count: {}", j["alert_count"])));
    assert!(y.stdout.contains("severity_threshold: WARNING"));
}

#[test]
fn wide_adds_node_and_container() {
    let r = check(&["-o", "wide"]);
    assert!(
        r.stdout.contains("node=") && r.stdout.contains("container="),
        "{r:?}"
    );
}

#[test]
fn watch_and_for_refuse_offline_input() {
    assert_eq!(check(&["--watch"]).code, 2);
    assert_eq!(check(&["--for", "1m"]).code, 2);
}

#[test]
fn timeline_is_a_sparkline_and_colored_on_a_terminal() {
    let Some((code, screen, _)) = run_in_pty(&[NS, "--logs", EXAMPLE, "--since-time", WINDOW])
    else {
        return;
    };
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("Alerts per minute"), "{screen}");
    assert!(screen.contains('█'), "sparkline: {screen}");
    assert!(screen.contains("\u{1b}["), "colors on a terminal: {screen}");
}

#[test]
fn yaml_on_a_terminal_neutralizes_bidi_and_on_a_pipe_keeps_the_data() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bidi.jsonl");
    let line = alert("2024-01-15T10:31:00.000000000Z", "Critical", "R", Some(NS))
        .replace("sh -c id", "sh -c \u{202e}di");
    std::fs::write(&path, format!("{line}\n")).expect("write");
    let p = path.display().to_string();
    let piped = run(
        &[NS, "--logs", &p, "--since-time", WINDOW, "-o", "yaml"],
        &[],
        None,
    );
    assert!(
        piped.stdout.contains('\u{202e}'),
        "exact data on a pipe: {piped:?}"
    );
    let Some((code, screen, _)) =
        run_in_pty(&[NS, "--logs", &p, "--since-time", WINDOW, "-o", "yaml"])
    else {
        return;
    };
    assert_eq!(code, 1, "{screen}");
    assert!(
        !screen.contains('\u{202e}') && screen.contains("\\u{202e}"),
        "{screen}"
    );
}
