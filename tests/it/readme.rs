//! The README's examples are run and compared with what they show, so the page cannot drift
//! from the tool (trycmd's idea, with the example fake API server for the cluster sessions).
//!
//! What is run:
//! - every ```` ```console ```` block: each `$ COMMAND` line, its output the lines up to the next
//!   `$ ` (stderr, then stdout). `kubectl falco-verify ARGS` and `cargo run --release -- ARGS`
//!   run the built binary with ARGS; `echo $?` prints the exit code of the command before.
//! - a ```` ```json ````, ```` ```xml ````, ```` ```markdown ```` or ```` ```text ```` block
//!   with a `<!-- readme-test: run COMMAND -->` line before it: the command's stdout.
//!
//! Directives, as HTML comments on the lines just before a block (invisible on the page):
//! `<!-- readme-test: server ARGS -->` serves the example fake API server with ARGS and points
//! `KUBECONFIG` at it; `<!-- readme-test: varies KEY -->` (JSON) takes any value of KEY.
//!
//! Matching: a line `...` stands for any lines; `...` inside a line for any text. In JSON an
//! object with a `"...": "..."` key may have more keys, an array element `"..."` any
//! elements (anywhere in it), and a string with `...` in it is a pattern. Only what must vary is normalised, on
//! both sides: the current time (a time stamp after 2024), the window's length in the header,
//! a canary's nonce and latency, the server's port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use regex::Regex;
use serde_json::Value;

use crate::common::BIN;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// One block of the README that shows output.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    body: Vec<String>,
    server: Option<String>,
    run: Option<String>,
    varies: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut directives: Vec<String> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let t = line.trim();
        if let Some(d) = t
            .strip_prefix("<!-- readme-test:")
            .and_then(|d| d.strip_suffix("-->"))
        {
            directives.push(d.trim().to_string());
            continue;
        }
        let Some(lang) = t.strip_prefix("```") else {
            if !t.is_empty() {
                directives.clear();
            }
            continue;
        };
        let mut body = Vec::new();
        for (_, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push(l.to_string());
        }
        // A block inside a list item is indented: its text is not.
        let indent = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let body = body
            .into_iter()
            .map(|l| l.get(indent..).unwrap_or("").to_string())
            .collect();
        let take = |key: &str| {
            directives
                .iter()
                .filter_map(|d| d.strip_prefix(key).map(|v| v.trim().to_string()))
                .collect::<Vec<_>>()
        };
        out.push(Block {
            line: i + 1,
            lang: lang.trim().to_string(),
            body,
            server: take("server").into_iter().next(),
            run: take("run").into_iter().next(),
            varies: take("varies"),
        });
        directives.clear();
    }
    out
}

/// Words of a command line, as a POSIX shell splits them (quotes; no expansions).
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The example fake API server, serving until dropped.
struct Server {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(args: &str) -> Server {
        // Built by `cargo test` beside the test binary (target/<profile>/examples).
        let exe = std::env::current_exe().expect("test binary path");
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("examples").join("fake_apiserver"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| {
                panic!("the example fake API server is not built: run `cargo build --examples` (plain `cargo test` builds it)")
            });
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(bin)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--until-stdin-closes")
            .args(words(args))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the example fake API server");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("read READY");
        assert!(ready.starts_with("READY"), "fake server said {ready:?}");
        Server {
            child,
            kubeconfig,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Output of one command: exit code, stdout, stderr.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a README command line with the built binary; `None` for a command this harness does not
/// know (a README block showing it is an error).
fn run(line: &str, server: Option<&Server>) -> Option<Ran> {
    let w = words(line);
    let args: &[String] = match w.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["kubectl", "falco-verify", ..] => &w[2..],
        ["cargo", "run", "--release", "--", ..] => &w[4..],
        _ => return None,
    };
    let home = tempfile::tempdir().expect("home dir");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AEGIS_")
            || k.starts_with("KUBERNETES_SERVICE_")
            || k.starts_with("GITHUB_")
            || crate::common::HOST_CONNECTION_VARS.contains(&k.as_str())
            || ["COLUMNS", "TERM", "CI"].contains(&k.as_str())
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home.path());
    if let Some(s) = server {
        cmd.env("KUBECONFIG", &s.kubeconfig);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run the binary");
    Some(Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Replaces what must vary from run to run, on both sides of a comparison.
fn normalise(s: &str) -> String {
    let rules: [(&str, &str); 6] = [
        (
            r"20(2[5-9]|[3-9][0-9])-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
            "[NOW]",
        ),
        (
            r"since (\S+) \(([0-9]+ min|[0-9]+ h [0-9]+ min|[0-9]+ days)\)",
            "since $1 ([SPAN])",
        ),
        (
            r"falco-verify-canary-[0-9a-f]{8}",
            "falco-verify-canary-[NONCE]",
        ),
        (r"Canary [0-9a-f]{8} ", "Canary [NONCE] "),
        (r" in [0-9]+ ms", " in [N] ms"),
        (r"127\.0\.0\.1:[0-9]+", "127.0.0.1:[PORT]"),
    ];
    let mut s = s.to_string();
    for (pattern, with) in rules {
        let re = Regex::new(pattern).expect("pattern");
        s = re.replace_all(&s, with).into_owned();
    }
    s
}

/// A line with `...` in it as a pattern: the parts in order, the first at the start and the last
/// at the end.
fn line_matches(expected: &str, actual: &str) -> bool {
    let (expected, actual) = (expected.trim_end(), actual.trim_end());
    if !expected.contains("...") {
        return expected == actual;
    }
    let parts: Vec<&str> = expected.split("...").collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    if !rest.ends_with(last) {
        return false;
    }
    rest = &rest[..rest.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// The lines match, a line `...` standing for any lines.
fn lines_match(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e.trim() == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(e, a) && lines_match(rest, more)),
    }
}

/// JSON `actual` has what `expected` shows (see the module's rules); the first difference.
/// An object with a `"...": "..."` key may have more keys; an array element `"..."` stands for
/// any elements.
fn json_matches(
    expected: &Value,
    actual: &Value,
    at: &str,
    varies: &[String],
) -> Result<(), String> {
    let wild = Value::String("...".into());
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let open = e.get("...") == Some(&wild);
            for (k, ev) in e.iter().filter(|(k, _)| k.as_str() != "...") {
                let Some(av) = a.get(k) else {
                    return Err(format!("{at}.{k}: missing"));
                };
                if !varies.contains(k) {
                    json_matches(ev, av, &format!("{at}.{k}"), varies)?;
                }
            }
            if let (false, Some(extra)) = (open, a.keys().find(|k| !e.contains_key(*k))) {
                return Err(format!("{at}.{extra}: not shown in the README"));
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if elements_match(e, a, at, varies) {
                Ok(())
            } else {
                // Element by element, for a message that points at the difference.
                for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                    if ev != &wild {
                        json_matches(ev, av, &format!("{at}[{i}]"), varies)?;
                    }
                }
                Err(format!(
                    "{at}: {} element(s) do not match the README's {}",
                    a.len(),
                    e.len()
                ))
            }
        }
        (Value::String(e), Value::String(a)) if line_matches(e, a) => Ok(()),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{at}: README {e}, tool {a}")),
    }
}

/// The elements match in order, an element `"..."` standing for any elements.
fn elements_match(expected: &[Value], actual: &[Value], at: &str, varies: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((Value::String(w), rest)) if w == "..." => {
            (0..=actual.len()).any(|skip| elements_match(rest, &actual[skip..], at, varies))
        }
        Some((e, rest)) => actual.split_first().is_some_and(|(a, more)| {
            json_matches(e, a, at, varies).is_ok() && elements_match(rest, more, at, varies)
        }),
    }
}

fn compare(block: &Block, expected: &str, actual: &str) -> Result<(), String> {
    let (expected, actual) = (normalise(expected), normalise(actual));
    if block.lang == "json" {
        let e: Value = serde_json::from_str(&expected)
            .map_err(|e| format!("the README's JSON does not parse: {e}"))?;
        let a: Value = serde_json::from_str(&actual)
            .map_err(|e| format!("the tool's JSON does not parse: {e}"))?;
        return json_matches(&e, &a, "$", &block.varies);
    }
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    if lines_match(&e, &a) {
        return Ok(());
    }
    // The first line from which the rest cannot match: where to look.
    let i = (0..e.len())
        .find(|&i| e[i].trim() != "..." && !a.iter().any(|l| line_matches(e[i], l)))
        .map_or(String::new(), |i| {
            format!("first README line not printed: {:?}\n", e[i])
        });
    Err(format!("{i}the tool printed:\n{actual}"))
}

/// Checks one block; the reason it fails.
fn check(block: &Block) -> Result<(), String> {
    let server = block.server.as_deref().map(Server::start);
    if block.lang == "console" {
        let mut last: Option<i32> = None;
        let mut i = 0;
        while i < block.body.len() {
            let Some(cmd) = block.body[i].strip_prefix("$ ") else {
                return Err(format!(
                    "line {:?} is not after a `$ ` command",
                    block.body[i]
                ));
            };
            let end = (i + 1..block.body.len())
                .find(|&j| block.body[j].starts_with("$ "))
                .unwrap_or(block.body.len());
            let expected = block.body[i + 1..end].join("\n");
            let printed = if cmd.trim() == "echo $?" {
                let code = last.ok_or("`echo $?` before any command")?;
                format!("{code}\n")
            } else {
                let ran = run(cmd, server.as_ref())
                    .ok_or_else(|| format!("`{cmd}`: not a command the README test runs"))?;
                last = Some(ran.code);
                format!("{}{}", ran.stderr, ran.stdout)
            };
            compare(block, &expected, &printed).map_err(|e| format!("`{cmd}`: {e}"))?;
            i = end;
        }
        return Ok(());
    }
    let Some(cmd) = &block.run else {
        return Ok(());
    };
    let ran = run(cmd, server.as_ref())
        .ok_or_else(|| format!("`{cmd}`: not a command the README test runs"))?;
    compare(block, &block.body.join("\n"), &ran.stdout).map_err(|e| format!("`{cmd}`: {e}"))
}

#[test]
fn the_readme_shows_what_the_tool_prints() {
    let text = std::fs::read_to_string(README).expect("README.md");
    let blocks = blocks(&text);
    let tested: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.lang == "console" || b.run.is_some())
        .collect();
    assert!(
        tested.len() >= 8,
        "only {} README blocks are tested",
        tested.len()
    );
    let failures: Vec<String> = tested
        .iter()
        .filter_map(|b| {
            check(b)
                .err()
                .map(|e| format!("README.md line {} ({}): {e}", b.line, b.lang))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_matcher_fails_on_a_difference() {
    // The harness itself: a test that cannot fail proves nothing.
    assert!(lines_match(&["a", "...", "d"], &["a", "b", "c", "d"]));
    assert!(!lines_match(&["a", "...", "d"], &["a", "b", "c"]));
    assert!(line_matches("x ... z", "x y z"));
    assert!(!line_matches("x ... z", "x y"));
    assert!(!lines_match(&["BLOCKED: 2"], &["BLOCKED: 3"]));
    let e: Value = serde_json::json!({"a": 1, "b": ["x", "..."], "...": "..."});
    assert!(json_matches(
        &e,
        &serde_json::json!({"a": 1, "b": ["x", "y"], "c": 0}),
        "$",
        &[]
    )
    .is_ok());
    assert!(json_matches(&e, &serde_json::json!({"a": 2, "b": ["x"]}), "$", &[]).is_err());
    let closed: Value = serde_json::json!({"a": 1});
    assert!(json_matches(&closed, &serde_json::json!({"a": 1, "c": 0}), "$", &[]).is_err());
    assert_eq!(
        normalise("since 2024-01-15T10:30:00Z (1056 days), until 2026-12-06T21:51:14.5Z"),
        "since 2024-01-15T10:30:00Z ([SPAN]), until [NOW]"
    );
    assert_eq!(words(r#"a "b c" 'd' e"#), ["a", "b c", "d", "e"]);
}
