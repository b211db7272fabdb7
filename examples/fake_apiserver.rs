//! Standalone fake Kubernetes API server serving Falco pods, for benchmarks and manual sessions
//! with real `kubectl` or `kubectl falco-verify`.
//!
//! ```text
//! cargo run --example fake_apiserver -- --kubeconfig /tmp/x/kubeconfig \
//!     [--pods 3] [--lines 1000] [--step-ms 100] [--namespace shadow-abc123] [--match-every 100] \
//!     [--start 2024-01-15T10:00:00Z] [--corpus DIR] [--slow-bytes-per-sec N] [--until-stdin-closes]
//! ```
//!
//! Writes the kubeconfig (context `fake`, plus `unreachable`, `wrong-ca`, `bad-token`), prints
//! `READY https://127.0.0.1:PORT` on stdout, then serves until SIGTERM / ctrl-c (or, with
//! `--until-stdin-closes`, until stdin reaches EOF).
//!
//! Generated mode: pods `falco-0..` on nodes `node-0..` in namespace `falco` (label
//! `app=falco`), each `falco` container logging `--lines` JSON alerts (about 1 KB each), line `i`
//! written at `start + i * step`. Every `--match-every`-th line (0-based i with i % N == N-1, so
//! never a line written at `start`) is a Warning alert for `--namespace`; the others are for other namespaces (including prefix traps such as
//! `<namespace>4`) at all priorities.
//!
//! Where the namespace ran, and how Falco sees a canary (`--canary`):
//! `--workloads N` puts a running pod of `--namespace` on each of the first N Falco nodes;
//! `--workload-on NODE` one on a node without Falco (repeatable; `fargate-*` names are Fargate
//! nodes, `gpu-*` names tainted); `--gone-on NODE` leaves only a Scheduled Event of a pod that
//! is gone, on a node that is gone; `--canary-blind NODE`, `--canary-unlabelled NODE`,
//! `--canary-text NODE` (repeatable) make that node's Falco miss the canary, leave it
//! unlabelled, or write text; `--canary-refuse MESSAGE` refuses every pod (403);
//! `--canary-image-pull-fails`; `--forbid LIST` answers 403 to a list (`events/NS`, `nodes`).
//!
//! Corpus mode (`--corpus DIR`, e.g. examples/demo): pod `falco-json` (node-0)
//! serves `json.log` and pod `falco-text` (node-1) serves `text.log` with the kubelet times of
//! `text.kubelet-timestamps.log`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use fake_apiserver::{FakeApiServer, FakeCluster, FakePod, LogSource};

struct Args {
    kubeconfig: PathBuf,
    pods: u64,
    lines: u64,
    step_ms: i64,
    corpus: Option<PathBuf>,
    namespace: String,
    match_every: u64,
    start: DateTime<Utc>,
    slow: Option<u64>,
    until_stdin_closes: bool,
    workloads: u64,
    workload_on: Vec<String>,
    gone_on: Vec<String>,
    canary: fake_apiserver::CanarySim,
    forbid: Vec<String>,
    /// `--rotate-token-every SECS` with `--token-file PATH`: a short-lived token, rotated.
    rotate_every: Option<u64>,
    token_file: Option<PathBuf>,
}

const USAGE: &str =
    "usage: fake_apiserver --kubeconfig PATH [--pods N] [--lines N] [--step-ms MS] \
[--corpus DIR] [--namespace NS] [--match-every N] [--start RFC3339] [--slow-bytes-per-sec N] \
[--until-stdin-closes] [--rotate-token-every SECS --token-file PATH]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        kubeconfig: PathBuf::new(),
        pods: 3,
        lines: 1000,
        step_ms: 100,
        corpus: None,
        namespace: "shadow-abc123".to_string(),
        match_every: 100,
        start: fake_apiserver::ts("2024-01-15T10:00:00Z"),
        slow: None,
        until_stdin_closes: false,
        workloads: 0,
        workload_on: Vec::new(),
        gone_on: Vec::new(),
        canary: fake_apiserver::CanarySim::default(),
        forbid: Vec::new(),
        rotate_every: None,
        token_file: None,
    };
    let mut have_kubeconfig = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let num = |name: &str, v: String| -> Result<u64, String> {
            v.parse::<u64>().map_err(|e| format!("{name}: {v:?}: {e}"))
        };
        match flag.as_str() {
            "--kubeconfig" => {
                args.kubeconfig = PathBuf::from(value("--kubeconfig")?);
                have_kubeconfig = true;
            }
            "--pods" => args.pods = num("--pods", value("--pods")?)?,
            "--lines" => args.lines = num("--lines", value("--lines")?)?,
            "--step-ms" => args.step_ms = num("--step-ms", value("--step-ms")?)? as i64,
            "--corpus" => args.corpus = Some(PathBuf::from(value("--corpus")?)),
            "--namespace" => args.namespace = value("--namespace")?,
            "--match-every" => args.match_every = num("--match-every", value("--match-every")?)?,
            "--start" => {
                let v = value("--start")?;
                args.start = DateTime::parse_from_rfc3339(&v)
                    .map_err(|e| format!("--start: {v:?}: {e}"))?
                    .with_timezone(&Utc);
            }
            "--slow-bytes-per-sec" => {
                args.slow = Some(num("--slow-bytes-per-sec", value("--slow-bytes-per-sec")?)?)
            }
            "--until-stdin-closes" => args.until_stdin_closes = true,
            "--workloads" => args.workloads = num("--workloads", value("--workloads")?)?,
            "--workload-on" => args.workload_on.push(value("--workload-on")?),
            "--gone-on" => args.gone_on.push(value("--gone-on")?),
            "--canary-blind" => {
                args.canary.blind_nodes.insert(value("--canary-blind")?);
            }
            "--canary-unlabelled" => {
                args.canary
                    .unresolved_nodes
                    .insert(value("--canary-unlabelled")?);
            }
            "--canary-text" => {
                args.canary.text_nodes.insert(value("--canary-text")?);
            }
            "--canary-refuse" => args.canary.refuse = Some((403, value("--canary-refuse")?)),
            "--canary-image-pull-fails" => args.canary.image_pull_fails = true,
            "--forbid" => args.forbid.push(value("--forbid")?),
            "--rotate-token-every" => {
                args.rotate_every =
                    Some(num("--rotate-token-every", value("--rotate-token-every")?)?)
            }
            "--token-file" => args.token_file = Some(PathBuf::from(value("--token-file")?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.rotate_every.is_some() != args.token_file.is_some() {
        return Err(format!(
            "--rotate-token-every and --token-file go together\n{USAGE}"
        ));
    }
    if !have_kubeconfig {
        return Err(format!("--kubeconfig is required\n{USAGE}"));
    }
    Ok(args)
}

// ------------------------------------------------------------------ generated logs

const OTHER_NAMESPACES: &[&str] = &["default", "kube-system", "monitoring", "payments", "ci"];
const PRIORITIES: &[&str] = &[
    "Notice",
    "Informational",
    "Error",
    "Critical",
    "Debug",
    "Alert",
    "Warning",
    "Emergency",
];
/// (rule, output description, tags)
const RULES: &[(&str, &str, &str)] = &[
    (
        "Terminal shell in container",
        "A shell was spawned in a container with an attached terminal",
        r#"["T1059","container","maturity_stable","mitre_execution","shell"]"#,
    ),
    (
        "Read sensitive file untrusted",
        "Sensitive file opened for reading by non-trusted program",
        r#"["T1555","container","filesystem","host","maturity_stable","mitre_credential_access"]"#,
    ),
    (
        "Contact K8S API Server From Container",
        "Unexpected connection to K8s API Server from container",
        r#"["T1565","container","k8s","maturity_stable","mitre_discovery","network"]"#,
    ),
    (
        "Drop and execute new binary in container",
        "Executing binary not part of base image",
        r#"["TA0003","container","maturity_stable","mitre_persistence","process"]"#,
    ),
];
const PROCESSES: &[(&str, &str, &str)] = &[
    ("bash", "/usr/bin/bash", "bash -il"),
    ("cat", "/bin/cat", "cat /etc/shadow"),
    (
        "python3",
        "/usr/bin/python3.11",
        "python3 /app/sync.py --once",
    ),
    ("curl", "/usr/bin/curl", "curl -s https://10.96.0.1:443/api"),
    ("sh", "/bin/sh", "sh -c id"),
];

fn push_hms_nanos(out: &mut String, t: DateTime<Utc>) {
    out.push_str(&t.format("%H:%M:%S%.9f").to_string());
}

/// One Falco 0.39+ JSON alert (sorted keys), about 1 KB.
fn alert_line(
    i: u64,
    written: DateTime<Utc>,
    host: &str,
    target_ns: &str,
    match_every: u64,
) -> Vec<u8> {
    let evt = written - Duration::microseconds(250);
    let trap = format!("{target_ns}4");
    let (ns, priority): (&str, &str) = if match_every > 0 && i % match_every == match_every - 1 {
        (target_ns, "Warning")
    } else {
        let k = (i % 7) as usize;
        let ns = if k < OTHER_NAMESPACES.len() {
            OTHER_NAMESPACES[k]
        } else if k == 5 {
            trap.as_str()
        } else {
            "argocd"
        };
        (ns, PRIORITIES[((i / 7) % PRIORITIES.len() as u64) as usize])
    };
    let (rule, desc, tags) = RULES[(i % RULES.len() as u64) as usize];
    let (proc_name, exepath, cmdline) = PROCESSES[((i / 3) % PROCESSES.len() as u64) as usize];
    let cid = format!(
        "{:012x}",
        (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16) & 0xffff_ffff_ffff
    );
    let pod = format!("web-{:x}-{:05}", (i / 1000) % 0xfffff, i % 100_000);
    let evt_ns = evt.timestamp_nanos_opt().unwrap_or(0);
    let mut o = String::with_capacity(1200);
    o.push_str("{\"hostname\":\"");
    o.push_str(host);
    o.push_str("\",\"output\":\"");
    push_hms_nanos(&mut o, evt);
    o.push_str(": ");
    o.push_str(priority);
    o.push(' ');
    o.push_str(desc);
    o.push_str(" | evt_type=execve user=root user_uid=0 user_loginuid=-1 process=");
    o.push_str(proc_name);
    o.push_str(" proc_exepath=");
    o.push_str(exepath);
    o.push_str(" parent=runc command=");
    o.push_str(cmdline);
    o.push_str(" terminal=34816 exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER container_id=");
    o.push_str(&cid);
    o.push_str(" container_name=web container_image_repository=ghcr.io/acme/storefront container_image_tag=2.8.1 k8s_pod_name=");
    o.push_str(&pod);
    o.push_str(" k8s_ns_name=");
    o.push_str(ns);
    o.push_str("\",\"output_fields\":{\"container.id\":\"");
    o.push_str(&cid);
    o.push_str("\",\"container.image.repository\":\"ghcr.io/acme/storefront\",\"container.image.tag\":\"2.8.1\",\"container.name\":\"web\",\"evt.arg.flags\":\"EXE_WRITABLE|EXE_LOWER_LAYER\",\"evt.time\":");
    o.push_str(&evt_ns.to_string());
    o.push_str(",\"evt.type\":\"execve\",\"k8s.ns.name\":\"");
    o.push_str(ns);
    o.push_str("\",\"k8s.pod.name\":\"");
    o.push_str(&pod);
    o.push_str("\",\"proc.cmdline\":\"");
    o.push_str(cmdline);
    o.push_str("\",\"proc.exepath\":\"");
    o.push_str(exepath);
    o.push_str("\",\"proc.name\":\"");
    o.push_str(proc_name);
    o.push_str("\",\"proc.pname\":\"runc\",\"proc.tty\":34816,\"user.loginuid\":-1,\"user.name\":\"root\",\"user.uid\":0},\"priority\":\"");
    o.push_str(priority);
    o.push_str("\",\"rule\":\"");
    o.push_str(rule);
    o.push_str("\",\"source\":\"syscall\",\"tags\":");
    o.push_str(tags);
    o.push_str(",\"time\":\"");
    o.push_str(&fake_apiserver::rfc3339_nano(evt));
    o.push_str("\"}");
    o.into_bytes()
}

fn generated_cluster(a: &Args) -> FakeCluster {
    let step = Duration::milliseconds(a.step_ms);
    let pods = (0..a.pods)
        .map(|p| {
            let host = format!("node-{p}");
            let ns = a.namespace.clone();
            let every = a.match_every;
            let start = a.start;
            let line_host = host.clone();
            let log = LogSource::generated(a.lines, start, step, move |i| {
                let written = start + Duration::milliseconds(step.num_milliseconds() * i as i64);
                alert_line(i, written, &line_host, &ns, every)
            });
            FakePod::falco(format!("falco-{p}"), host, log)
        })
        .collect();
    FakeCluster::new(pods)
}

// ------------------------------------------------------------------ corpus

/// Kubelet write times for a log without them: the Falco time of the line (JSON `time`, the
/// logger prefix) plus 200 µs, never earlier than the previous line + 1 µs.
fn json_corpus(text: &str) -> LogSource {
    let mut prev = fake_apiserver::ts("2024-01-15T09:59:58.100000Z");
    let mut lines = Vec::new();
    for line in text.lines() {
        let parsed = json_time(line).or_else(|| logger_time(line));
        let t = match parsed {
            Some(t) => (t + Duration::microseconds(200)).max(prev + Duration::microseconds(1)),
            None => prev + Duration::microseconds(1),
        };
        prev = t;
        lines.push((t, line.as_bytes().to_vec()));
    }
    LogSource::Lines(lines)
}

fn json_time(line: &str) -> Option<DateTime<Utc>> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let t = v.get("time")?.as_str()?;
    Some(DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc))
}

fn logger_time(line: &str) -> Option<DateTime<Utc>> {
    // "Mon Jan 15 09:59:58 2024: ..." or "2024/01/15 10:20:14 [k8saudit] ..."
    if let Some(prefix) = line.get(..24) {
        if let Ok(t) = NaiveDateTime::parse_from_str(prefix, "%a %b %d %H:%M:%S %Y") {
            return Some(t.and_utc());
        }
    }
    let prefix = line.get(..19)?;
    NaiveDateTime::parse_from_str(prefix, "%Y/%m/%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

fn corpus_cluster(dir: &Path) -> Result<FakeCluster, String> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let json = json_corpus(&read("json.log")?);
    let text_plain = read("text.log")?;
    let kubelet = LogSource::from_text(&read("text.kubelet-timestamps.log")?);
    if kubelet.len() != text_plain.lines().count() as u64 {
        return Err("text.log and text.kubelet-timestamps.log differ in line count".to_string());
    }
    Ok(FakeCluster::new(vec![
        FakePod::falco("falco-json", "node-0", json),
        FakePod::falco("falco-text", "node-1", kubelet),
    ]))
}

// ------------------------------------------------------------------ where the namespace ran

fn place_workloads(cluster: &mut FakeCluster, args: &Args) {
    use fake_apiserver::{FakeContainer, FakeEvent, FakeNode};
    let falco_nodes: Vec<String> = cluster.pods.iter().filter_map(|p| p.node.clone()).collect();
    let started = args.start - Duration::minutes(30);
    let mut add = |node: &str, i: usize| {
        cluster.pods.push(
            FakePod::new(format!("web-{i}"), args.namespace.clone())
                .with_node(node)
                .with_container(FakeContainer::running("web", started, LogSource::empty())),
        );
    };
    let mut i = 0;
    for node in falco_nodes.iter().take(args.workloads as usize) {
        add(node, i);
        i += 1;
    }
    for node in &args.workload_on {
        add(node, i);
        i += 1;
    }
    for (k, node) in args.gone_on.iter().enumerate() {
        cluster.events.push(FakeEvent::scheduled(
            &args.namespace,
            &format!("job-{k}"),
            node,
            args.start + Duration::minutes(1),
        ));
    }
    if !args.workload_on.is_empty() || !args.gone_on.is_empty() {
        let mut nodes: Vec<FakeNode> = falco_nodes.iter().map(FakeNode::new).collect();
        for n in &args.workload_on {
            let mut node = FakeNode::new(n);
            if n.starts_with("fargate-") {
                node = node.with_label("eks.amazonaws.com/compute-type", "fargate");
            }
            if n.starts_with("gpu-") {
                node = node.with_taint("nvidia.com/gpu", "present", "NoSchedule");
            }
            nodes.push(node);
        }
        cluster.nodes = Some(nodes);
    }
    cluster.canary = args.canary.clone();
    cluster.faults.forbidden_lists = args.forbid.iter().cloned().collect();
}

// ------------------------------------------------------------------ main

fn write_kubeconfig(
    server: &FakeApiServer,
    path: &Path,
    token_file: Option<&Path>,
) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let written = match token_file {
        Some(f) => server.write_kubeconfig_with_user(&dir, &format!("tokenFile: {}", f.display())),
        None => server.write_kubeconfig(&dir),
    };
    if written != path {
        std::fs::rename(&written, path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Writes the token to `file` now and whenever it rotates (a little before the old one is
/// revoked, as a kubelet refreshes a projected token), on a thread of its own.
fn rotate_token_file(server: &FakeApiServer, file: &Path) -> Result<(), String> {
    let token_now = server.token_clock();
    let mut last = token_now();
    write_token(file, &last)?;
    let file = file.to_path_buf();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = token_now();
        if now != last {
            match write_token(&file, &now) {
                Ok(()) => eprintln!("fake_apiserver: token rotated in {}", file.display()),
                Err(e) => eprintln!("fake_apiserver: token file: {e}"),
            }
            last = now;
        }
    });
    Ok(())
}

/// Replaces the token file in one rename, as the kubelet's atomic writer does: never half a token.
fn write_token(file: &Path, token: &str) -> Result<(), String> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{token}\n"))
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| format!("{}: {e}", file.display()))
}

fn wait_for_signal() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fake_apiserver: runtime: {e}");
            return;
        }
    };
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    });
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let cluster = match &args.corpus {
        Some(dir) => match corpus_cluster(dir) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("fake_apiserver: {e}");
                return ExitCode::from(2);
            }
        },
        None => generated_cluster(&args),
    };
    let mut cluster = cluster;
    cluster.faults.slow_log_bytes_per_sec = args.slow;
    cluster.faults.token_period = args.rotate_every.map(std::time::Duration::from_secs);
    place_workloads(&mut cluster, &args);
    let summary: Vec<String> = cluster
        .pods
        .iter()
        .map(|p| {
            format!(
                "{}/{} ({} lines)",
                p.namespace,
                p.name,
                p.container("falco").map_or(0, |c| c.log.len())
            )
        })
        .collect();
    let server = FakeApiServer::start(cluster);
    if let Err(e) = write_kubeconfig(&server, &args.kubeconfig, args.token_file.as_deref()) {
        eprintln!("fake_apiserver: kubeconfig: {e}");
        return ExitCode::from(1);
    }
    if let Some(file) = &args.token_file {
        if let Err(e) = rotate_token_file(&server, file) {
            eprintln!("fake_apiserver: token file: {e}");
            return ExitCode::from(1);
        }
    }
    eprintln!("fake_apiserver: serving {}", summary.join(", "));
    if args.corpus.is_none() && args.match_every > 0 {
        eprintln!(
            "fake_apiserver: each pod has {} Warning alerts for namespace {} (0-based lines i % {} == {}), line i written at {} + i*{}ms, its Falco time 250us earlier",
            args.lines / args.match_every,
            args.namespace,
            args.match_every,
            args.match_every - 1,
            fake_apiserver::rfc3339_nano(args.start),
            args.step_ms
        );
    }
    eprintln!("fake_apiserver: kubeconfig {}", args.kubeconfig.display());
    let mut out = std::io::stdout().lock();
    if writeln!(out, "READY {}", server.url())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    drop(out);
    if args.until_stdin_closes {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    } else {
        wait_for_signal();
    }
    let requests = server.requests();
    let refused = requests.iter().filter(|r| r.status == Some(401)).count();
    eprintln!(
        "fake_apiserver: {} requests answered, {refused} of them 401 (token refused)",
        requests.len()
    );
    drop(server);
    ExitCode::SUCCESS
}
