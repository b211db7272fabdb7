//! Helpers shared by the black-box tests: run the built binary, build Falco lines.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_kubectl-falco_verify");
pub const NS: &str = "shadow-abc123";
pub const WINDOW: &str = "2024-01-15T10:30:00Z";
/// The `summary` keys of the eight Falco priorities, most severe first (the JSON contract).
pub const LEVELS: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
];

/// What one run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Variables of the host that would change how a test connects (its proxy, its kubeconfig).
pub const HOST_CONNECTION_VARS: [&str; 9] = [
    "KUBECONFIG",
    "NO_COLOR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

/// Runs the binary with a clean environment (no AEGIS_*, KUBECONFIG, NO_COLOR from the host).
pub fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    run_bin(BIN, args, env, stdin)
}

pub fn run_bin(bin: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AEGIS_")
            || k.starts_with("KUBERNETES_SERVICE_")
            || HOST_CONNECTION_VARS.contains(&k.as_str())
        {
            cmd.env_remove(k);
        }
    }
    // No ~/.kube/config of the machine may leak into a test.
    let home = tempfile::tempdir().expect("home dir");
    cmd.env("HOME", home.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn binary");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(input).expect("write stdin");
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// A Falco >= 0.39 JSON alert line (sorted keys) for a syscall event.
pub fn alert(time: &str, priority: &str, rule: &str, ns: Option<&str>) -> String {
    let hms = &time[11..29];
    let ns_field = ns.map_or("null".to_string(), |n| format!("\"{n}\""));
    let ns_text = ns.unwrap_or("<NA>");
    format!(
        r#"{{"hostname":"node-x","output":"{hms}: {priority} {rule} happened | user=root command=sh -c id container_id=3f5a9c2e1b7d k8s_pod_name=web-1 k8s_ns_name={ns_text}","output_fields":{{"container.id":"3f5a9c2e1b7d","evt.time":1705314600000000000,"k8s.ns.name":{ns_field},"k8s.pod.name":"web-1","proc.cmdline":"sh -c id"}},"priority":"{priority}","rule":"{rule}","source":"syscall","tags":["container"],"time":"{time}"}}"#
    )
}

/// A k8saudit JSON alert for `ka.target.namespace`.
pub fn audit_alert(time: &str, priority: &str, ns: &str) -> String {
    let hms = &time[11..29];
    format!(
        r#"{{"hostname":"node-x","output":"{hms}: {priority} K8s Secret Get Successfully (user=alice ns={ns} resource=secrets)","output_fields":{{"evt.time":1705314600000000000,"ka.target.namespace":"{ns}","ka.user.name":"alice"}},"priority":"{priority}","rule":"K8s Secret Get Successfully","source":"k8s_audit","tags":["k8s"],"time":"{time}"}}"#
    )
}

/// The kubelet time for a line printed at event `time`: a moment later.
pub fn kubelet(time: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(time)
        .expect("time")
        .with_timezone(&chrono::Utc)
        + chrono::Duration::microseconds(731)
}

/// Runs `command` under a pseudo-terminal (util-linux `script`): stdin, stdout and stderr of the
/// binary are the terminal. Returns the exit code and everything the terminal showed.
pub fn run_in_pty(args: &[&str]) -> Option<(i32, String, Duration)> {
    run_in_pty_sized(args, None)
}

/// [`run_in_pty`] on a terminal `cols` columns wide (as `stty cols` sets it).
pub fn run_in_pty_sized(args: &[&str], cols: Option<u16>) -> Option<(i32, String, Duration)> {
    if !std::path::Path::new("/usr/bin/script").exists() {
        eprintln!("notice: /usr/bin/script not found; pseudo-terminal test skipped");
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let line = match cols {
        Some(c) => format!("stty cols {c} rows 24; {line}"),
        None => line,
    };
    let home = tempfile::tempdir().expect("home dir");
    let mut cmd = Command::new("/usr/bin/script");
    cmd.args(["-qfec", &line, "/dev/null"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("AEGIS_")
            || k.starts_with("KUBERNETES_SERVICE_")
            || HOST_CONNECTION_VARS.contains(&k.as_str())
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home.path()).env("SHELL", "/bin/sh");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let out = cmd.output().expect("run script");
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        started.elapsed(),
    ))
}

/// Declares `Env`, a served fake cluster to which a test module adds its own ways of running
/// the binary (a local type, so that each module can), and `env_with` to start one.
macro_rules! served_env {
    () => {
        /// The served fake cluster, with this module's ways to run the binary against it.
        struct Env(fake_apiserver::Served);

        impl std::ops::Deref for Env {
            type Target = fake_apiserver::Served;
            fn deref(&self) -> &fake_apiserver::Served {
                &self.0
            }
        }

        fn env_with(cluster: fake_apiserver::FakeCluster) -> Env {
            Env(fake_apiserver::serve(cluster))
        }
    };
}
pub(crate) use served_env;
