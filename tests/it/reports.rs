//! CI-native results through the binary: JUnit (validated against the schema Jenkins uses),
//! Markdown, `--report` files, GitHub annotations and job summary with hostile alert text, the
//! JSON result's new facts, the workload behind each alert, and ignoring text alerts by title.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use fake_apiserver::*;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo");

/// An alert whose text is hostile: terminal escapes, XML and Markdown markup, a forged
/// workflow command, GitHub's escape characters.
fn hostile_alert(time: &str, rule: &str) -> String {
    let output = format!(
        "{}: Critical {rule} \u{1b}]0;owned\u{7}\u{1b}[2J <script>&amp;]]> | x%0A::error::forged\n::warning::forged too | k8s_pod_name=web-1 k8s_ns_name={NS}",
        &time[11..29]
    );
    serde_json::json!({
        "hostname": "node-x",
        "output": output,
        "output_fields": {
            "k8s.ns.name": NS,
            "k8s.pod.name": "web-1",
            "container.name": "app|<b>",
            "container.image.repository": "ghcr.io/acme/app",
            "container.image.tag": "1.0"
        },
        "priority": "Critical",
        "rule": rule,
        "source": "syscall",
        "time": time,
    })
    .to_string()
}

fn hostile_log(dir: &Path, n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let t = format!("2024-01-15T10:31:{:02}.000000000Z", i % 60);
        text.push_str(&hostile_alert(&t, "Shell: in, container % 100"));
        text.push('\n');
    }
    let p = dir.join("hostile.log");
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

/// Jenkins' JUnit schema, beside the repository (not copied into it).
fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/schemas/junit-10.xsd")
}

/// Validates `xml` with `xmllint --schema`; panics with its message when it does not.
fn assert_schema_valid(xml: &str, what: &str) {
    let xsd = schema();
    assert!(xsd.exists(), "../shared/schemas/junit-10.xsd vanished");
    if Command::new("xmllint").arg("--version").output().is_err() {
        // .ci/run installs it: in CI a missing xmllint is a broken setup, not a skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but xmllint is missing (Debian: libxml2-utils)"
        );
        eprintln!("notice: xmllint not found (Debian: libxml2-utils); schema validation skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("report.xml");
    std::fs::write(&f, xml).expect("write");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(&f)
        .output()
        .expect("xmllint");
    assert!(
        out.status.success(),
        "{what}: JUnit does not validate: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Our own reading of the rules Jenkins' JUnit schema states, so that every clone checks them:
/// `testsuites` holds `testsuite`s; a `testsuite` has `name`, `tests`, `failures` and `errors`,
/// its `properties` (each `property` with `name` and `value`) before its `testcase`s; a
/// `testcase` has a `name` and holds only `skipped`, `error`, `failure`, `system-out` and
/// `system-err`; and the counts add up, per suite and over all suites.
fn assert_junit_structure(xml: &str, what: &str) {
    let doc = roxmltree::Document::parse(xml)
        .unwrap_or_else(|e| panic!("{what}: not well-formed XML: {e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites", "{what}: root element");
    let count = |n: roxmltree::Node, attr: &str| -> u64 {
        n.attribute(attr)
            .unwrap_or_else(|| panic!("{what}: <{}> has no {attr}", n.tag_name().name()))
            .parse()
            .unwrap_or_else(|_| panic!("{what}: {attr} is not a count"))
    };
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for suite in root.children().filter(roxmltree::Node::is_element) {
        assert_eq!(
            suite.tag_name().name(),
            "testsuite",
            "{what}: in <testsuites>"
        );
        assert!(suite.attribute("name").is_some(), "{what}: testsuite name");
        let mut seen_case = false;
        let (mut n, mut failed, mut errored, mut skipped) = (0, 0, 0, 0);
        for child in suite.children().filter(roxmltree::Node::is_element) {
            match child.tag_name().name() {
                "properties" => {
                    assert!(!seen_case, "{what}: properties after a testcase");
                    for p in child.children().filter(roxmltree::Node::is_element) {
                        assert_eq!(p.tag_name().name(), "property", "{what}");
                        assert!(
                            p.attribute("name").is_some() && p.attribute("value").is_some(),
                            "{what}: property needs name and value"
                        );
                    }
                }
                "testcase" => {
                    seen_case = true;
                    n += 1;
                    assert!(child.attribute("name").is_some(), "{what}: testcase name");
                    let kinds: Vec<&str> = child
                        .children()
                        .filter(roxmltree::Node::is_element)
                        .map(|c| c.tag_name().name())
                        .collect();
                    for k in &kinds {
                        assert!(
                            ["skipped", "error", "failure", "system-out", "system-err"].contains(k),
                            "{what}: <{k}> in a testcase"
                        );
                    }
                    failed += u64::from(kinds.contains(&"failure"));
                    errored += u64::from(kinds.contains(&"error"));
                    skipped += u64::from(kinds.contains(&"skipped"));
                }
                "system-out" | "system-err" => {}
                other => panic!("{what}: <{other}> in a testsuite"),
            }
        }
        assert_eq!(count(suite, "tests"), n, "{what}: tests");
        assert_eq!(count(suite, "failures"), failed, "{what}: failures");
        assert_eq!(count(suite, "errors"), errored, "{what}: errors");
        if suite.attribute("skipped").is_some() {
            assert_eq!(count(suite, "skipped"), skipped, "{what}: skipped");
        }
        tests += n;
        failures += failed;
        errors += errored;
    }
    for (attr, total) in [("tests", tests), ("failures", failures), ("errors", errors)] {
        if root.attribute(attr).is_some() {
            assert_eq!(count(root, attr), total, "{what}: testsuites {attr}");
        }
    }
}

/// The structure always; the schema too where `../shared` is (it is in CI).
fn assert_valid_junit(xml: &str, what: &str) {
    assert_junit_structure(xml, what);
    if cfg!(shared_material) {
        assert_schema_valid(xml, what);
    }
}

#[test]
fn the_structure_check_fails_on_a_broken_report() {
    // A check that cannot fail proves nothing: counts that do not add up, a missing name.
    let good = r#"<testsuites tests="1" failures="1" errors="0"><testsuite name="s" tests="1" failures="1" errors="0"><properties><property name="a" value="b"/></properties><testcase name="c"><failure message="m">x</failure></testcase></testsuite></testsuites>"#;
    assert_junit_structure(good, "good");
    for bad in [
        good.replace(
            r#"tests="1" failures="1" errors="0"><properties"#,
            r#"tests="2" failures="1" errors="0"><properties"#,
        ),
        good.replace(r#"<testcase name="c">"#, "<testcase>"),
        good.replace(
            r#"<property name="a" value="b"/>"#,
            r#"<property name="a"/>"#,
        ),
        good.replace("<failure", "<oops")
            .replace("</failure>", "</oops>"),
    ] {
        let r = std::panic::catch_unwind(|| assert_junit_structure(&bad, "bad"));
        assert!(r.is_err(), "accepted: {bad}");
    }
}

/// The reports validate against the schema Jenkins uses (the XSD is beside the repository, not
/// in it): ignored where `../shared` is absent, never passed without it.
#[test]
#[cfg_attr(not(shared_material), ignore = "needs ../shared beside the repository")]
fn junit_validates_against_jenkins_schema() {
    assert!(
        Command::new("xmllint").arg("--version").output().is_ok(),
        "xmllint is needed to validate against the schema (Debian: libxml2-utils)"
    );
    let example = |f: &str| format!("{}/examples/{f}", env!("CARGO_MANIFEST_DIR"));
    for (ns, file, what) in [
        (NS, "falco-alerts.jsonl", "blocked"),
        (NS, "falco-gaps.jsonl", "incomplete"),
        ("other-ns", "falco-alerts.jsonl", "passed"),
    ] {
        let path = example(file);
        let r = run(
            &[ns, "--logs", &path, "--since-time", WINDOW, "-o", "junit"],
            &[],
            None,
        );
        assert_schema_valid(&r.stdout, what);
    }
}

#[test]
fn junit_validates_in_every_verdict_and_neutralizes_hostile_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hostile = hostile_log(dir.path(), 3);
    // BLOCKED, offline, hostile text.
    let r = run(
        &[
            NS,
            "--logs",
            &hostile,
            "--since-time",
            WINDOW,
            "-o",
            "junit",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_valid_junit(&r.stdout, "blocked");
    assert!(
        !r.stdout.contains('\u{1b}') && !r.stdout.contains('\u{7}'),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("<script>") && r.stdout.contains("&lt;script&gt;"));
    assert!(r
        .stdout
        .contains(r#"<testcase classname="falco.rules" name="Shell: in, container % 100">"#));
    assert!(r
        .stdout
        .contains(r#"message="3 alert(s), 3 blocking (at or above WARNING), worst Critical""#));
    // PASSED: nothing blocks; a coverage test case per source, no failure.
    let quiet = dir.path().join("quiet.log");
    std::fs::write(
        &quiet,
        format!(
            "{}\n",
            alert(
                "2024-01-15T10:31:00.000000000Z",
                "Notice",
                "Quiet",
                Some(NS)
            )
        ),
    )
    .expect("write");
    let r = run(
        &[
            NS,
            "--logs",
            quiet.to_str().expect("utf-8"),
            "--since-time",
            WINDOW,
            "-o",
            "junit",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_valid_junit(&r.stdout, "passed");
    assert!(
        r.stdout.contains(r#"failures="0" errors="0""#),
        "{}",
        r.stdout
    );
    // SKIPPED: the API server is not there.
    let server = FakeApiServer::start(FakeCluster::new(vec![]));
    let kc = server.write_kubeconfig(dir.path()).display().to_string();
    let r = run(
        &[
            NS,
            "--kubeconfig",
            &kc,
            "--context",
            "unreachable",
            "--timeout",
            "3s",
            "-o",
            "junit",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_valid_junit(&r.stdout, "skipped");
    assert!(r.stdout.contains("<skipped message="), "{}", r.stdout);
    // INCOMPLETE: one source has a gap.
    let r = run(
        &[
            NS,
            "--logs",
            &format!("{DEMO}/json.log"),
            "--since-time",
            "2024-01-15T10:00:00Z",
            "-s",
            "emergency",
            "--ignore-rule",
            "*",
            "-o",
            "junit",
        ],
        &[],
        None,
    );
    assert_valid_junit(&r.stdout, "incomplete");
    assert!(
        r.stdout.contains(r#"<error type="CoverageGap""#),
        "{}",
        r.stdout
    );
}

#[test]
fn reports_are_written_beside_the_main_output_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hostile = hostile_log(dir.path(), 2);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("dir");
    let p = |n: &str| out.join(n).display().to_string();
    let r = run(
        &[
            NS,
            "--logs",
            &hostile,
            "--since-time",
            WINDOW,
            "--report",
            &format!("json={}", p("r.json")),
            "--report",
            &format!("yaml={}", p("r.yaml")),
            "--report",
            &format!("junit={}", p("r.xml")),
            "--report",
            &format!("markdown={}", p("r.md")),
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("BLOCKED"),
        "the human view stays on stdout: {r:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("r.json")).expect("json report"))
            .expect("JSON");
    assert_eq!(json["verdict"], "blocked");
    assert_eq!(json["blocking_count"], 2);
    let yaml = std::fs::read_to_string(p("r.yaml")).expect("yaml report");
    assert!(yaml.contains("verdict: blocked"), "{yaml}");
    assert_valid_junit(
        &std::fs::read_to_string(p("r.xml")).expect("junit report"),
        "report file",
    );
    let md = std::fs::read_to_string(p("r.md")).expect("markdown report");
    assert!(md.contains("Falco check: BLOCKED"), "{md}");
    assert!(
        md.contains("app\\|\\<b\\>"),
        "a cell cannot break the table: {md}"
    );
    assert!(!md.contains('\u{1b}'));
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["r.json", "r.md", "r.xml", "r.yaml"],
        "no temporary file is left"
    );
    // -o markdown prints the same as the report.
    let r = run(
        &[
            NS,
            "--logs",
            &hostile,
            "--since-time",
            WINDOW,
            "-o",
            "markdown",
        ],
        &[],
        None,
    );
    assert!(r.stdout.starts_with("### ❌ Falco check: BLOCKED"), "{r:?}");
}

#[test]
fn an_unwritable_report_path_is_a_usage_error_before_any_request() {
    let server = FakeApiServer::start(FakeCluster::new(vec![]));
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = server.write_kubeconfig(dir.path()).display().to_string();
    for bad in [
        "junit=/nonexistent-dir/r.xml",
        "html=r.html",
        "junit=",
        "r.xml",
    ] {
        let r = run(&[NS, "--kubeconfig", &kc, "--report", bad], &[], None);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        assert!(r.stderr.contains("--report"), "{bad}: {r:?}");
    }
    let d = dir.path().display().to_string();
    let r = run(
        &[NS, "--kubeconfig", &kc, "--report", &format!("json={d}")],
        &[],
        None,
    );
    assert_eq!(r.code, 2, "a directory: {r:?}");
    assert!(server.requests().is_empty(), "no request");
}

#[test]
fn github_annotations_and_summary_survive_hostile_text_and_keep_json_one_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hostile = hostile_log(dir.path(), 14);
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").expect("write");
    let s = summary.display().to_string();
    let gh = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", s.as_str()),
    ];
    let r = run(
        &[NS, "--logs", &hostile, "--since-time", WINDOW, "-o", "json"],
        &gh,
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["blocking_count"], 14, "stdout is one JSON object");
    let commands: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("::")).collect();
    let errors: Vec<&&str> = commands
        .iter()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(
        errors.len(),
        11,
        "10 alerts, then one line for the rest: {commands:#?}"
    );
    assert!(
        errors[10].contains("4 more blocking alert(s)"),
        "{}",
        errors[10]
    );
    for e in &errors[..10] {
        // Properties escape ':' and ','; the message escapes '%'; no forged command line.
        assert!(
            e.starts_with("::error title=Falco Critical%3A Shell%3A in%2C container %25 100::"),
            "{e}"
        );
        assert!(
            e.contains("x%250A::error::forged\\n::warning::forged too"),
            "{e}"
        );
        assert!(!e.contains('\u{1b}'));
    }
    assert!(!r
        .stderr
        .lines()
        .any(|l| l.starts_with("::error::forged") || l.starts_with("::warning::forged")));
    assert!(commands
        .iter()
        .any(|l| l.starts_with("::notice title=Falco check BLOCKED::")));
    let md = std::fs::read_to_string(&summary).expect("summary");
    assert!(
        md.starts_with("earlier step\n### ❌ Falco check: BLOCKED"),
        "appended: {md}"
    );
    assert!(md.contains("| **Critical** | 14 |"), "{md}");
    // Text output: the commands follow the text on stdout.
    let r = run(&[NS, "--logs", &hostile, "--since-time", WINDOW], &gh, None);
    assert!(
        r.stdout.lines().any(|l| l.starts_with("::error title=")),
        "{r:?}"
    );
    // never / always.
    let r = run(
        &[
            NS,
            "--logs",
            &hostile,
            "--since-time",
            WINDOW,
            "--annotations",
            "never",
        ],
        &gh,
        None,
    );
    // The runner takes a line as a command when it starts with `::` after leading spaces: the
    // forged ones inside alert text never do.
    let commands = |text: &str| {
        text.lines()
            .filter(|l| l.trim_start().starts_with("::"))
            .count()
    };
    assert_eq!(commands(&r.stdout) + commands(&r.stderr), 0, "{r:?}");
    let r = run(
        &[
            NS,
            "--logs",
            &hostile,
            "--since-time",
            WINDOW,
            "--annotations",
            "always",
            "-o",
            "json",
        ],
        &[],
        None,
    );
    assert!(r.stderr.contains("::error title="), "{r:?}");
    // Gaps are warnings.
    let r = run(
        &[
            NS,
            "--logs",
            &format!("{DEMO}/json.log"),
            "--since-time",
            "2024-01-15T10:00:00Z",
            "-o",
            "json",
        ],
        &[("GITHUB_ACTIONS", "true")],
        None,
    );
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("::warning title=Falco coverage gap%3A not_understood::")),
        "{r:?}"
    );
}

#[test]
fn json_result_names_window_end_cluster_tool_and_falco_versions() {
    let server = FakeApiServer::start(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![(
            kubelet("2024-01-15T10:31:00.000000000Z"),
            alert(
                "2024-01-15T10:31:00.000000000Z",
                "Notice",
                "Quiet",
                Some(NS),
            ),
        )],
    )]));
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = server.write_kubeconfig(dir.path()).display().to_string();
    let r = run(
        &[
            NS,
            "--kubeconfig",
            &kc,
            "--since-time",
            WINDOW,
            "-o",
            "json",
        ],
        &[],
        None,
    );
    let j = r.json();
    assert_eq!(j["context"], "fake", "{j}");
    assert_eq!(j["server"], server.url());
    assert_eq!(j["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(j["falco_versions"], serde_json::json!(["0.42.1"]));
    assert_eq!(
        j["pods"][0]["falco_versions"],
        serde_json::json!(["0.42.1"])
    );
    assert!(j["window_end"].as_str().is_some_and(|t| t > "2024"), "{j}");
    let w = &j["alerts"][0]["workload"];
    assert_eq!(w["pod"], "web-1");
    assert_eq!(w["namespace"], NS);
}

/// `--group-by` keys mean what a user means, on JSON and on text output alike.
#[test]
fn group_by_workload_keys_on_json_and_text_output() {
    for file in ["json.log", "text.log"] {
        let path = format!("{DEMO}/{file}");
        let groups = |key: &str| -> Vec<(String, u64)> {
            let r = run(
                &[
                    NS,
                    "--logs",
                    &path,
                    "--since-time",
                    "2024-01-15T10:00:00Z",
                    "--group-by",
                    key,
                    "-o",
                    "json",
                ],
                &[],
                None,
            );
            r.json()["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .map(|g| {
                    (
                        g["key"].as_str().unwrap_or("").to_string(),
                        g["count"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        };
        let has = |key: &str, want: &str| {
            let g = groups(key);
            assert!(
                g.iter().any(|(k, n)| k == want && *n > 0),
                "{file} --group-by {key}: {g:?}"
            );
        };
        has("pod", "storefront-6c9d8b7f4-qx2lp");
        has("pod", "jobs-5f7b9c6d8-r8wz4");
        has("container", "web");
        has("image", "ghcr.io/acme/storefront:2.8.1");
        has("image", "ghcr.io/acme/jobs:1.4.0");
        has("falco-pod", &path);
        let total: u64 = groups("pod").iter().map(|(_, n)| n).sum();
        let by_rule: u64 = groups("rule").iter().map(|(_, n)| n).sum();
        assert_eq!(total, by_rule, "{file}: every alert in one group");
    }
}

/// Falco's text output has no rule names: `--ignore-rule` also matches a title, `title:` in an
/// ignore file does, and a rule-only list that misses text alerts says so.
#[test]
fn text_alerts_are_ignored_by_title() {
    let path = format!("{DEMO}/text.log");
    let base = [
        NS,
        "--logs",
        path.as_str(),
        "--since-time",
        "2024-01-15T10:00:00Z",
        "-o",
        "json",
    ];
    let ignored = |extra: &[&str]| {
        let r = run(&[&base[..], extra].concat(), &[], None);
        (r.json()["ignored_count"].as_u64().unwrap_or(0), r.stderr)
    };
    let (n, stderr) = ignored(&["--ignore-rule", "Clear Log Activities"]);
    assert_eq!(n, 0);
    assert!(
        stderr.contains("text alert(s) for namespace shadow-abc123 matched no ignore entry"),
        "{stderr}"
    );
    let (n, _) = ignored(&["--ignore-rule", "Log files were tampered"]);
    assert_eq!(n, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("ignore.yaml");
    std::fs::write(
        &f,
        "- rule: Clear Log Activities\n  title: Log files were tampered\n",
    )
    .expect("write");
    let (n, _) = ignored(&["--ignore-file", f.to_str().expect("utf-8")]);
    assert_eq!(n, 1);
    let json = format!("{DEMO}/json.log");
    let r = run(
        &[
            NS,
            "--logs",
            &json,
            "--since-time",
            "2024-01-15T10:00:00Z",
            "-o",
            "json",
            "--ignore-file",
            f.to_str().expect("utf-8"),
        ],
        &[],
        None,
    );
    assert!(
        !r.stderr.contains("matched no ignore entry"),
        "JSON alerts have rule names: {r:?}"
    );
}

/// CI always has `../shared` beside the clone: a run without it would pass checks that did not
/// run. (Elsewhere those checks are reported as ignored.)
#[test]
fn shared_material_is_present_in_ci() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci || cfg!(shared_material),
        "CI=true but ../shared (falco-corpus, falco-wild, schemas) is not beside the repository: the checks that need it would not run"
    );
}
