//! The install path, for real on this host: the built binaries are packed by
//! `scripts/dist.sh --package-only` into the release archive, unpacked the way krew does it
//! (archive extracted, `files` moved into `store/falco-verify/<version>/`, a relative symlink
//! `bin/kubectl-falco_verify`), and then driven through the real `kubectl`: `plugin list`,
//! `--help`, a check on the Falco corpus, `man`, `completion`, and kubectl's plugin completion
//! (`kubectl __complete falco-verify ...`, which runs `kubectl_complete-falco_verify`).
//!
//! Without kubectl on PATH the kubectl parts print a notice and pass; without bash/tar they are
//! skipped the same way.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

const PLUGIN_BIN: &str = env!("CARGO_BIN_EXE_kubectl-falco_verify");
const HOOK_BIN: &str = env!("CARGO_BIN_EXE_kubectl_complete-falco_verify");
const WINDOW: &str = "2024-01-15T10:30:00Z";
const LEVELS: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
];

#[derive(Debug, Deserialize)]
struct Plugin {
    metadata: Metadata,
    spec: Spec,
}
#[derive(Debug, Deserialize)]
struct Metadata {
    name: String,
}
#[derive(Debug, Deserialize)]
struct Spec {
    version: String,
    platforms: Vec<Platform>,
}
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Platform {
    selector: Selector,
    uri: String,
    sha256: String,
    files: Vec<FileOp>,
    bin: String,
}
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Selector {
    match_labels: BTreeMap<String, String>,
}
#[derive(Debug, Deserialize)]
struct FileOp {
    from: String,
    to: String,
}

/// `--output` values, from the flag definition.
fn output_formats() -> Vec<String> {
    use clap::ValueEnum;
    falco_verify::args::OutputFormat::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|v| v.get_name().to_string())
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The host in Go's names, as krew's selectors see it.
fn go_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    (os, arch)
}

fn on_path(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(format!("{cmd}{}", std::env::consts::EXE_SUFFIX)))
        .find(|p| p.is_file())
}

/// Falco output for namespace shadow-abc123: the bundled example, else the shared corpus.
fn corpus() -> Option<PathBuf> {
    [
        root().join("examples/falco-alerts.jsonl"),
        root().join("../shared/falco-corpus/json.log"),
        PathBuf::from("/work/shared/falco-corpus/json.log"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .or_else(|_| {
            Command::new("shasum")
                .args(["-a", "256"])
                .arg(path)
                .output()
        })
        .unwrap_or_else(|e| panic!("sha256sum: {e}"));
    let (stdout, _) = text(&out);
    stdout
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A krew-like install: the archive as `dist.sh --package-only` makes it, unpacked into
/// `<krew_root>/store/falco-verify/<version>/` and linked from `<krew_root>/bin`.
struct Installed {
    tmp: tempfile::TempDir,
    archive: PathBuf,
    store: PathBuf,
    bin_dir: PathBuf,
}

fn install() -> Option<Installed> {
    for tool in ["bash", "tar", "gzip"] {
        if on_path(tool).is_none() {
            eprintln!("NOTICE: {tool} not found; the install test is skipped");
            return None;
        }
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out_dir = tmp.path().join("dist");
    let out = Command::new("bash")
        .arg(root().join("scripts/dist.sh"))
        .args(["--package-only", PLUGIN_BIN])
        .arg(&out_dir)
        .env("DIST_GZIP_LEVEL", "1")
        .output()
        .unwrap_or_else(|e| panic!("scripts/dist.sh: {e}"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "dist.sh --package-only: {stderr}");
    let archive = PathBuf::from(stdout.lines().next().unwrap_or_default());
    let (os, arch) = go_platform();
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        archive.file_name().and_then(|f| f.to_str()),
        Some(format!("kubectl-falco-verify_{version}_{os}_{arch}.tar.gz").as_str())
    );

    // The sums agree: the archive, its .sha256 file and the rendered manifest.
    let sha = sha256_file(&archive);
    let sum_file = std::fs::read_to_string(format!("{}.sha256", archive.display()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sum_file.split_whitespace().next(), Some(sha.as_str()));
    let manifest: Plugin = serde_saphyr::from_str(
        &std::fs::read_to_string(out_dir.join("plugin.yaml")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("dist/plugin.yaml: {e}"));
    assert_eq!(manifest.spec.version, version);

    // krew: pick the platform whose selector matches this host.
    let platform = manifest
        .spec
        .platforms
        .iter()
        .find(|p| {
            p.selector.match_labels.get("os").map(String::as_str) == Some(os)
                && p.selector.match_labels.get("arch").map(String::as_str) == Some(arch)
        })
        .unwrap_or_else(|| panic!("no platform for {os}/{arch}"));
    assert_eq!(
        platform.sha256, sha,
        "the manifest carries the archive's sum"
    );
    assert!(platform
        .uri
        .ends_with(&format!("/{version}/{}", archive_name(&archive))));

    // krew: extract into a staging directory, move each `files` entry into the version's
    // install directory, then link bin/kubectl-falco_verify to the `bin` relatively.
    let staging = tmp.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap_or_else(|e| panic!("{e}"));
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&staging)
        .status()
        .unwrap_or_else(|e| panic!("tar: {e}"));
    assert!(untar.success());
    let krew_root = tmp.path().join("krew");
    let store = krew_root
        .join("store")
        .join(&manifest.metadata.name)
        .join(&manifest.spec.version);
    std::fs::create_dir_all(&store).unwrap_or_else(|e| panic!("{e}"));
    for op in &platform.files {
        let from = staging.join(&op.from);
        assert!(from.is_file(), "the archive has {}", op.from);
        let to = if op.to == "." {
            store.join(from.file_name().unwrap_or_default())
        } else {
            store.join(&op.to)
        };
        std::fs::rename(&from, &to).unwrap_or_else(|e| panic!("move {}: {e}", op.from));
    }
    assert!(
        store.join("LICENSE").is_file(),
        "the archive carries LICENSE"
    );
    let license = std::fs::read_to_string(store.join("LICENSE")).unwrap_or_default();
    assert!(license.contains("Apache License") && license.contains("Version 2.0"));
    let man = std::fs::read_to_string(store.join("kubectl-falco_verify.1")).unwrap_or_default();
    assert!(
        man.contains(".TH KUBECTL-FALCO_VERIFY 1"),
        "man page in the archive"
    );
    assert_eq!(manifest.metadata.name, "falco-verify");

    let bin_dir = krew_root.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap_or_else(|e| panic!("{e}"));
    let rel = Path::new("..")
        .join("store")
        .join(&manifest.metadata.name)
        .join(&manifest.spec.version);
    link(&rel.join(&platform.bin), &bin_dir.join(&platform.bin));
    // What krew/README.md tells users to do for kubectl's plugin completion.
    let hook = format!(
        "kubectl_complete-falco_verify{}",
        std::env::consts::EXE_SUFFIX
    );
    link(&rel.join(&hook), &bin_dir.join(&hook));
    Some(Installed {
        tmp,
        archive,
        store,
        bin_dir,
    })
}

fn archive_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap_or_else(|e| panic!("symlink {at:?}: {e}"));
}

#[cfg(not(unix))]
fn link(target: &Path, at: &Path) {
    let dir = at.parent().unwrap_or(Path::new("."));
    std::fs::copy(dir.join(target), at).unwrap_or_else(|e| panic!("copy {at:?}: {e}"));
}

/// PATH with the krew bin directory first.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).unwrap_or_else(|e| panic!("PATH: {e}"))
}

fn run(cmd: &Path, args: &[&str], bin_dir: &Path, kubeconfig: &Path) -> Output {
    Command::new(cmd)
        .args(args)
        .env("PATH", path_with(bin_dir))
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("AEGIS_SECURITY__FALCO_ENABLED")
        .env_remove("AEGIS_SECURITY__FALCO_SEVERITY")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", cmd.display()))
}

/// A kubeconfig whose cluster refuses connections at once.
fn dead_kubeconfig(dir: &Path) -> PathBuf {
    kubeconfig(dir, "https://127.0.0.1:1")
}

fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let body = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
         users:\n- name: u\n  user:\n    token: t\n\
         contexts:\n- name: kind-dev\n  context: {{cluster: c, user: u}}\n\
         - name: prod-eu\n  context: {{cluster: c, user: u}}\ncurrent-context: kind-dev\n"
    );
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("kubeconfig: {e}"));
    path
}

/// Candidate words of cobra-style completion output, and its directive line.
fn candidates(stdout: &str) -> (Vec<String>, String) {
    let mut lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    let directive = lines.pop().unwrap_or_default().to_string();
    let words = lines
        .iter()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect();
    (words, directive)
}

#[test]
fn installs_like_krew_and_runs_through_kubectl() {
    let Some(inst) = install() else { return };
    let kc = dead_kubeconfig(inst.tmp.path());
    let plugin = inst.bin_dir.join("kubectl-falco_verify");

    // The linked binary works on its own and carries the build's commit.
    let version = run(&plugin, &["--version"], &inst.bin_dir, &kc);
    let (stdout, _) = text(&version);
    assert!(version.status.success());
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
    assert!(
        stdout.contains('(') && stdout.contains(')'),
        "commit in --version: {stdout}"
    );
    // The hook as installed finds the plugin next to itself, whether run from the store or
    // through its link in the bin directory.
    for hook in [
        inst.store.join("kubectl_complete-falco_verify"),
        inst.bin_dir.join("kubectl_complete-falco_verify"),
    ] {
        let out = Command::new(&hook)
            .args(["--out"])
            .env("PATH", "/nonexistent")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", hook.display()));
        assert_eq!(
            candidates(&text(&out).0).0,
            ["--output"],
            "{}",
            hook.display()
        );
    }
    let size = std::fs::metadata(&inst.archive)
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!("archive {} ({size} bytes)", inst.archive.display());

    let Some(kubectl) = on_path("kubectl") else {
        eprintln!(
            "NOTICE: kubectl not found on PATH; the kubectl part of the install test is skipped"
        );
        return;
    };

    let list = run(&kubectl, &["plugin", "list"], &inst.bin_dir, &kc);
    let (stdout, stderr) = text(&list);
    let linked = inst.bin_dir.join("kubectl-falco_verify");
    assert!(
        stdout.contains(&linked.display().to_string()),
        "kubectl plugin list shows {}: {stdout}{stderr}",
        linked.display()
    );
    // Ours is first on PATH: kubectl would name it as the one overshadowing any other copy.
    let ours = linked.display().to_string();
    for line in stderr.lines().filter(|l| l.contains(&ours)) {
        assert!(!line.contains("not executable"), "{line}");
        assert!(!line.contains(&format!("{ours} is overshadowed")), "{line}");
    }

    let help = run(&kubectl, &["falco-verify", "--help"], &inst.bin_dir, &kc);
    let (stdout, stderr) = text(&help);
    assert!(help.status.success(), "{stderr}");
    assert!(stdout.contains("Usage: kubectl falco-verify"), "{stdout}");

    let corpus = corpus().unwrap_or_else(|| panic!("no Falco corpus: examples/falco-alerts.jsonl"));
    let corpus = corpus.to_string_lossy().into_owned();
    let blocked = run(
        &kubectl,
        &[
            "falco-verify",
            "shadow-abc123",
            "--since-time",
            WINDOW,
            "--logs",
            &corpus,
        ],
        &inst.bin_dir,
        &kc,
    );
    let (stdout, stderr) = text(&blocked);
    assert_eq!(
        blocked.status.code(),
        Some(1),
        "blocked through kubectl: {stdout}{stderr}"
    );
    assert!(stdout.contains("BLOCKED"), "{stdout}");
    let clean = run(
        &kubectl,
        &[
            "falco-verify",
            "shadow-abc123",
            "--since-time",
            WINDOW,
            "--logs",
            &corpus,
            "-s",
            "critical",
            "-o",
            "json",
        ],
        &inst.bin_dir,
        &kc,
    );
    let (stdout, stderr) = text(&clean);
    assert_eq!(clean.status.code(), Some(0), "{stdout}{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(json.is_object());

    let man = run(&kubectl, &["falco-verify", "man"], &inst.bin_dir, &kc);
    let (stdout, _) = text(&man);
    assert!(
        man.status.success() && stdout.contains(".SH SYNOPSIS"),
        "{stdout}"
    );

    // kubectl's own completion of the plugin, through kubectl_complete-falco_verify.
    let complete = |words: &[&str]| {
        let mut args = vec!["__complete", "falco-verify"];
        args.extend_from_slice(words);
        let out = run(&kubectl, &args, &inst.bin_dir, &kc);
        assert!(
            out.status.success(),
            "kubectl __complete {words:?}: {:?}",
            text(&out)
        );
        candidates(&text(&out).0)
    };
    let (words, directive) = complete(&["--sev"]);
    assert_eq!(words, ["--severity"]);
    assert_eq!(directive, ":4");
    let (words, directive) = complete(&["--severity", ""]);
    assert_eq!(words, LEVELS);
    assert_eq!(directive, ":4");
    let (words, _) = complete(&["shadow-abc123", "--output", ""]);
    assert_eq!(words, output_formats());
    let (words, _) = complete(&["--context", ""]);
    assert_eq!(words, ["kind-dev", "prod-eu"], "contexts of KUBECONFIG");
    // The cluster refuses: no namespaces, no error, no file names.
    let (words, directive) = complete(&[""]);
    assert!(words.is_empty(), "{words:?}");
    assert_eq!(directive, ":4");
}

#[test]
fn completion_hook_answers_like_cobra() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kc = dead_kubeconfig(tmp.path());
    let hook = Path::new(HOOK_BIN);
    let complete = |words: &[&str]| {
        let out = run(hook, words, tmp.path(), &kc);
        assert!(out.status.success(), "{words:?}: {:?}", text(&out));
        candidates(&text(&out).0)
    };
    assert_eq!(
        complete(&["--sev"]),
        (vec!["--severity".to_string()], ":4".to_string())
    );
    assert_eq!(complete(&["--severity", ""]).0, LEVELS);
    assert_eq!(complete(&["-s", "cr"]).0, ["critical"]);
    assert_eq!(
        complete(&["--color="]).0,
        ["--color=auto", "--color=always", "--color=never"]
    );
    assert_eq!(complete(&["--output", "j"]).0, ["json", "junit"]);
    assert_eq!(complete(&["--output", ""]).0, output_formats());
    assert_eq!(
        complete(&["--logs", ""]),
        (vec![], ":0".to_string()),
        "file names"
    );
    let (flags, _) = complete(&["ns", "--"]);
    for f in [
        "--since",
        "--since-time",
        "--falco-namespace",
        "--context",
        "--logs",
        "--help",
    ] {
        assert!(flags.iter().any(|w| w == f), "{f} in {flags:?}");
    }
    // A shell's description column is tab-separated.
    let out = run(hook, &["--fail"], tmp.path(), &kc);
    assert!(
        text(&out).0.starts_with("--fail-closed\t"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn completion_scripts_for_shells() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = Command::new(PLUGIN_BIN)
            .args(["completion", shell])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{shell}: {stderr}");
        assert!(stdout.contains("kubectl-falco_verify"), "{shell}");
        assert!(
            stdout.contains("--severity") || stdout.contains("severity"),
            "{shell}"
        );
    }
    let bad = Command::new(PLUGIN_BIN)
        .args(["completion", "tcsh"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bad.status.code(), Some(2));
    // bash accepts the script and registers it for the executable.
    if on_path("bash").is_some() {
        let out = Command::new("bash")
            .args([
                "-c",
                &format!(
                    "source <('{PLUGIN_BIN}' completion bash) && complete -p kubectl-falco_verify"
                ),
            ])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains("kubectl-falco_verify"), "{stdout}");
    }
}

/// A loopback API server (plain HTTP) that answers every request with `body`, or never answers.
fn api_server(body: Option<&'static str>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("{e}"));
    let handle = std::thread::spawn(move || {
        let mut requests = Vec::new();
        let mut held = Vec::new();
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until && requests.len() < 4 {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            requests.push(head.lines().next().unwrap_or_default().to_string());
            match body {
                Some(body) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                None => held.push(stream),
            }
        }
        requests
    });
    (format!("http://{addr}"), handle)
}

const NAMESPACES: &str = r#"{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadataList","metadata":{"resourceVersion":"1"},"items":[{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":{"name":"default"}},{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":{"name":"falco"}},{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":{"name":"shadow-abc123"}}]}"#;

#[test]
fn completion_lists_namespaces_from_the_cluster() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (server, handle) = api_server(Some(NAMESPACES));
    let kc = kubeconfig(tmp.path(), &server);
    let out = run(Path::new(HOOK_BIN), &["sh"], tmp.path(), &kc);
    let (words, directive) = candidates(&text(&out).0);
    assert_eq!(words, ["shadow-abc123"], "{:?}", text(&out));
    assert_eq!(directive, ":4");
    let out = run(
        Path::new(HOOK_BIN),
        &["ns1", "--falco-namespace", ""],
        tmp.path(),
        &kc,
    );
    assert_eq!(
        candidates(&text(&out).0).0,
        ["default", "falco", "shadow-abc123"]
    );
    drop(handle);
}

#[test]
fn completion_gives_up_on_a_silent_cluster() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (server, _handle) = api_server(None);
    let kc = kubeconfig(tmp.path(), &server);
    let started = Instant::now();
    let out = run(Path::new(HOOK_BIN), &[""], tmp.path(), &kc);
    let took = started.elapsed();
    assert!(out.status.success());
    assert_eq!(candidates(&text(&out).0), (vec![], ":4".to_string()));
    assert!(
        took < Duration::from_millis(4500),
        "completion waited {took:?}"
    );
}

/// The GitHub Action's steps and the GitLab job's script, run locally by scripts/try-ci.sh
/// against the example fake API server, as a pipeline would run them.
#[test]
fn ci_recipes_run_locally() {
    let bin = std::path::Path::new(crate::common::BIN);
    let server = bin
        .parent()
        .map(|d| d.join("examples").join("fake_apiserver"))
        .filter(|p| p.exists());
    let Some(server) = server else {
        eprintln!("notice: examples/fake_apiserver not built; CI recipe check skipped");
        return;
    };
    let out = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/try-ci.sh"))
        .env("TRY_CI_BIN", crate::common::BIN)
        .env("TRY_CI_SERVER", &server)
        .env("DIST_GZIP_LEVEL", "1")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("run scripts/try-ci.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/try-ci.sh:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("GitHub Action: blocked (exit 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("GitLab job: blocked (exit 1)"), "{stdout}");
}

/// The CI workflow runs .ci/run; the action is a composite one with the documented inputs.
#[test]
fn workflows_and_action_are_wired() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ci: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join(".github/workflows/ci.yml")).expect("ci.yml"),
    )
    .expect("ci.yml is YAML");
    let steps = ci["jobs"]["ci"]["steps"].as_array().expect("steps");
    assert!(steps.iter().any(|s| s["run"] == ".ci/run"), "{steps:?}");
    let action: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("action.yml")).expect("action.yml"),
    )
    .expect("action.yml is YAML");
    assert_eq!(action["runs"]["using"], "composite");
    for input in [
        "namespace",
        "since-time",
        "severity",
        "fail-closed",
        "version",
        "args",
    ] {
        assert!(action["inputs"][input].is_object(), "input {input}");
    }
    assert!(
        action["inputs"]["version"]["default"]
            .as_str()
            .is_some_and(|v| v == format!("v{}", env!("CARGO_PKG_VERSION"))),
        "pinned to this version"
    );
    let gitlab = std::fs::read_to_string(root.join("ci/gitlab-ci.yml")).expect("gitlab-ci.yml");
    let gitlab: serde_json::Value = serde_saphyr::from_str(&gitlab).expect("YAML");
    assert_eq!(
        gitlab["falco-verify"]["artifacts"]["reports"]["junit"],
        "falco-verify-reports/falco-verify.xml"
    );
}
