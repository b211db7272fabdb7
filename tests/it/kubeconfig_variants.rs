//! Kubeconfig variants side by side: real kubectl and the plugin against the same fake API
//! server with the same kubeconfig, flags and environment. Whatever kubectl accepts, the plugin
//! must accept with the same meaning; what kubectl refuses, the plugin must not pass: a
//! connection the plugin cannot make where kubectl can is a fail-open exit 0 that checked nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use fake_apiserver::kubeconfig::{base64, yaml_str};
use fake_apiserver::*;

fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
}

/// `kubectl get pods -n falco` with these arguments and environment: (worked, stderr).
fn kubectl_run(
    bin: &Path,
    env: &[(String, String)],
    args: &[String],
    home: &Path,
) -> (bool, String) {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .args(["get", "pods", "-n", "falco"])
        .env("HOME", home)
        .stdin(Stdio::null());
    for k in HOST_CONNECTION_VARS {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A kubeconfig with one context `main` for `server`, CA `ca_pem`, and a user.
fn kubeconfig_for(server: &str, ca_pem: &str, cluster_extra: &str, user_yaml: &str) -> String {
    let user: String = user_yaml.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: v1
kind: Config
current-context: main
clusters:
- name: main
  cluster:
    server: {}
    certificate-authority-data: {}
{cluster_extra}contexts:
- name: main
  context:
    cluster: main
    user: main
users:
- name: main
  user:
{}",
        yaml_str(server),
        base64(ca_pem.as_bytes()),
        if user.is_empty() {
            "    {}\n".to_string()
        } else {
            user
        }
    )
}

/// An exec credential plugin: records each KUBERNETES_EXEC_INFO it gets (one line per run) in
/// `log`, says a login hint on stderr, prints a token.
fn exec_plugin(dir: &Path, log: &Path, token: &str) -> PathBuf {
    let script = dir.join("credential-plugin.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$KUBERNETES_EXEC_INFO\" >> {}\necho 'hint: run cloud-login first' >&2\nprintf '%s' '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}'\n",
            log.display()
        ),
    )
    .expect("write plugin");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    script
}

fn exec_user(script: &Path, mode: &str) -> String {
    format!(
        "exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: {}\n  interactiveMode: {mode}\n",
        yaml_str(&script.display().to_string())
    )
}

/// What a variant must do, for kubectl and the plugin alike.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Both read the Falco pods: the plugin sees the alert (exit 1).
    Works,
    /// Both refuse: the plugin does not pass (exit 3 with --fail-closed, or 2).
    Refused,
}

struct Variant {
    name: &'static str,
    /// Arguments for both (kubeconfig and kubectl's flags).
    args: Vec<String>,
    env: Vec<(String, String)>,
    expect: Expect,
}

fn v(name: &'static str, args: &[&str], env: &[(&str, &str)], expect: Expect) -> Variant {
    Variant {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        expect,
    }
}

fn one_alert_cluster() -> FakeCluster {
    FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![(
            kubelet("2024-01-15T10:31:00.000000000Z"),
            alert(
                "2024-01-15T10:31:00.000000000Z",
                "Critical",
                "Shell",
                Some(NS),
            ),
        )],
    )])
}

/// Runs every variant with kubectl and with the plugin; returns the table of outcomes.
fn side_by_side(variants: &[Variant], home: &Path) -> Vec<String> {
    let kubectl = kubectl();
    if kubectl.is_none() {
        eprintln!("notice: kubectl not found on PATH; only the plugin's side is checked");
    }
    let mut table = Vec::new();
    for variant in variants {
        let kubectl_outcome = kubectl.as_ref().map(|bin| {
            let (ok, stderr) = kubectl_run(bin, &variant.env, &variant.args, home);
            assert_eq!(
                ok,
                variant.expect == Expect::Works,
                "kubectl on {}: expected {:?}; stderr: {stderr}",
                variant.name,
                variant.expect
            );
            ok
        });
        let mut args = vec![NS, "--since-time", WINDOW, "--fail-closed", "-o", "json"];
        args.extend(variant.args.iter().map(String::as_str));
        let env: Vec<(&str, &str)> = variant
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = run(&args, &env, None);
        match variant.expect {
            Expect::Works => {
                assert_eq!(
                    r.code, 1,
                    "{}: the plugin must see the alert as kubectl sees the pods: {r:?}",
                    variant.name
                );
                assert_eq!(r.json()["verdict"], "blocked", "{}: {r:?}", variant.name);
            }
            Expect::Refused => assert!(
                r.code == 3 || r.code == 2,
                "{}: refused by kubectl, so the plugin must not pass: {r:?}",
                variant.name
            ),
        }
        table.push(format!(
            "| {} | {} | {} |",
            variant.name,
            match kubectl_outcome {
                Some(true) => "works",
                Some(false) => "refused",
                None => "(no kubectl)",
            },
            match r.code {
                1 => "works".to_string(),
                c => format!("refused (exit {c})"),
            }
        ));
    }
    table
}

#[test]
fn kubeconfig_variants_behave_as_kubectl_does() {
    let server = FakeApiServer::start(one_alert_cluster());
    let prefixed = FakeApiServer::start(FakeCluster {
        path_prefix: Some("/k8s/clusters/c-7x2k".to_string()),
        ..one_alert_cluster()
    });
    let proxy = FakeProxy::start(server.addr());
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let home = d.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let token_user = format!("token: {}\n", yaml_str(DEFAULT_TOKEN));
    let good = server.write_kubeconfig(d).display().to_string();
    let token_file = write("token", &format!("{DEFAULT_TOKEN}\n"));
    let with_token_file = write(
        "token-file.yaml",
        &kubeconfig_for(
            &server.url(),
            &server.ca_pem(),
            "",
            &format!("tokenFile: {token_file}\n"),
        ),
    );
    let empty_context = write(
        "empty-context.yaml",
        "apiVersion: v1\nkind: Config\ncurrent-context: \"\"\nclusters: []\ncontexts: []\nusers: []\n",
    );
    let missing = d.join("missing.yaml").display().to_string();
    let cert_user = format!(
        "client-certificate-data: {}\nclient-key-data: {}\n",
        base64(server.client_cert_pem().as_bytes()),
        base64(server.client_key_pem().as_bytes())
    );
    let with_cert = write(
        "client-cert.yaml",
        &kubeconfig_for(&server.url(), &server.ca_pem(), "", &cert_user),
    );
    let cert_file = write("client.crt", &server.client_cert_pem());
    let key_file = write("client.key", &server.client_key_pem());
    let ca_file = write("ca.crt", &server.ca_pem());
    let no_user = write(
        "no-user.yaml",
        &kubeconfig_for(&server.url(), &server.ca_pem(), "", ""),
    );
    let with_prefix = write(
        "prefix.yaml",
        &kubeconfig_for(&prefixed.url(), &prefixed.ca_pem(), "", &token_user),
    );
    let proxied = write(
        "proxied.yaml",
        &kubeconfig_for(&server.proxied_url(), &server.ca_pem(), "", &token_user),
    );
    let proxy_url = write(
        "proxy-url.yaml",
        &kubeconfig_for(
            &server.proxied_url(),
            &server.ca_pem(),
            &format!("    proxy-url: {}\n", yaml_str(&proxy.url())),
            &token_user,
        ),
    );
    let tls_name = write(
        "tls-server-name.yaml",
        &kubeconfig_for(
            &server.url(),
            &server.ca_pem(),
            "    tls-server-name: kubernetes.proxied.test\n",
            &token_user,
        ),
    );
    let exec_log = d.join("exec-info.log");
    let plugin = exec_plugin(d, &exec_log, DEFAULT_TOKEN);
    let exec_never = write(
        "exec-never.yaml",
        &kubeconfig_for(
            &server.url(),
            &server.ca_pem(),
            "",
            &exec_user(&plugin, "Never"),
        ),
    );
    let exec_if_available = write(
        "exec-ifavailable.yaml",
        &kubeconfig_for(
            &server.url(),
            &server.ca_pem(),
            "",
            &exec_user(&plugin, "IfAvailable"),
        ),
    );
    let exec_always = write(
        "exec-always.yaml",
        &kubeconfig_for(
            &server.url(),
            &server.ca_pem(),
            "",
            &exec_user(&plugin, "Always"),
        ),
    );
    let p = proxy.url();
    let k = |f: &str| -> Vec<String> { vec!["--kubeconfig".to_string(), f.to_string()] };
    use Expect::*;
    let mut variants = vec![
        v("--kubeconfig FILE", &[], &[], Works),
        v(
            "KUBECONFIG=FILE",
            &[],
            &[("KUBECONFIG", good.as_str())],
            Works,
        ),
        v("tokenFile ending in a newline", &[], &[], Works),
        v(
            "KUBECONFIG=missing:good",
            &[],
            &[("KUBECONFIG", format!("{missing}:{good}").as_str())],
            Works,
        ),
        v(
            "KUBECONFIG=a:b, a has current-context \"\"",
            &[],
            &[("KUBECONFIG", format!("{empty_context}:{good}").as_str())],
            Works,
        ),
        v(
            "client certificate in the kubeconfig (no token)",
            &[],
            &[],
            Works,
        ),
        v(
            "--client-certificate/--client-key files, user {}",
            &[],
            &[],
            Works,
        ),
        v(
            "server URL with a path prefix (/k8s/clusters/ID)",
            &[],
            &[],
            Works,
        ),
        v(
            "HTTPS_PROXY, server only the proxy resolves",
            &[],
            &[("HTTPS_PROXY", p.as_str())],
            Works,
        ),
        v(
            "https_proxy (lower case)",
            &[],
            &[("https_proxy", p.as_str())],
            Works,
        ),
        v(
            "HTTPS_PROXY without a scheme (host:port)",
            &[],
            &[("HTTPS_PROXY", p.trim_start_matches("http://"))],
            Works,
        ),
        v(
            "HTTPS_PROXY + NO_PROXY=.proxied.test (no proxy: the name resolves nowhere)",
            &[],
            &[("HTTPS_PROXY", p.as_str()), ("NO_PROXY", ".proxied.test")],
            Refused,
        ),
        v(
            "HTTPS_PROXY, server on 127.0.0.1 (loopback is never proxied)",
            &[],
            &[("HTTPS_PROXY", "http://127.0.0.1:1")],
            Works,
        ),
        v("cluster proxy-url", &[], &[], Works),
        v("cluster tls-server-name", &[], &[], Works),
        v(
            "--server --token --certificate-authority, no kubeconfig",
            &[],
            &[],
            Works,
        ),
        v(
            "--context wrong-ca --insecure-skip-tls-verify",
            &[],
            &[],
            Works,
        ),
        v("--context bad-token --token GOOD", &[], &[], Works),
        v(
            "--context bad-token --user (the good context's user)",
            &[],
            &[],
            Works,
        ),
        v("--cluster unreachable (context fake)", &[], &[], Refused),
        v("--tls-server-name with --server", &[], &[], Works),
        v("--request-timeout 5s", &[], &[], Works),
        v("--request-timeout 0", &[], &[], Works),
        v("exec plugin, interactiveMode Never", &[], &[], Works),
        v(
            "exec plugin, interactiveMode IfAvailable, stdin not a terminal",
            &[],
            &[],
            Works,
        ),
        v(
            "exec plugin, interactiveMode Always, stdin not a terminal",
            &[],
            &[],
            Refused,
        ),
    ];
    // Arguments per variant, in the order above.
    let args: Vec<Vec<String>> = vec![
        k(&good),
        vec![],
        k(&with_token_file),
        vec![],
        vec![],
        k(&with_cert),
        [
            k(&no_user),
            vec![
                "--client-certificate".into(),
                cert_file.clone(),
                "--client-key".into(),
                key_file.clone(),
            ],
        ]
        .concat(),
        k(&with_prefix),
        k(&proxied),
        k(&proxied),
        k(&proxied),
        k(&proxied),
        k(&good),
        k(&proxy_url),
        k(&tls_name),
        vec![
            "--server".into(),
            server.url(),
            "--token".into(),
            DEFAULT_TOKEN.into(),
            "--certificate-authority".into(),
            ca_file.clone(),
        ],
        [
            k(&good),
            vec![
                "--context".into(),
                "wrong-ca".into(),
                "--insecure-skip-tls-verify".into(),
            ],
        ]
        .concat(),
        [
            k(&good),
            vec![
                "--context".into(),
                "bad-token".into(),
                "--token".into(),
                DEFAULT_TOKEN.into(),
            ],
        ]
        .concat(),
        [
            k(&good),
            vec![
                "--context".into(),
                "bad-token".into(),
                "--user".into(),
                "fake-user".into(),
            ],
        ]
        .concat(),
        [k(&good), vec!["--cluster".into(), "unreachable".into()]].concat(),
        [
            k(&good),
            vec![
                "--server".into(),
                format!("https://127.0.0.1:{}", server.addr().port()),
                "--tls-server-name".into(),
                "kubernetes.proxied.test".into(),
            ],
        ]
        .concat(),
        [k(&good), vec!["--request-timeout".into(), "5s".into()]].concat(),
        [k(&good), vec!["--request-timeout".into(), "0".into()]].concat(),
        k(&exec_never),
        k(&exec_if_available),
        k(&exec_always),
    ];
    assert_eq!(args.len(), variants.len());
    for (variant, a) in variants.iter_mut().zip(args) {
        variant.args.extend(a);
    }
    let table = side_by_side(&variants, &home);
    // The proxy carried the proxied variants, to the name in the kubeconfig.
    let want = format!("kubernetes.proxied.test:{}", server.addr().port());
    assert!(
        proxy.connects().iter().any(|c| c == &want),
        "CONNECT {want} expected, saw {:?}",
        proxy.connects()
    );
    // The exec plugin was told it is not interactive (stdin is not a terminal).
    let infos = std::fs::read_to_string(&exec_log).unwrap_or_default();
    assert!(!infos.is_empty(), "the exec plugin never ran");
    for line in infos.lines().filter(|l| !l.trim().is_empty()) {
        let info: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("exec info {line:?} ({e}) in {infos:?}"));
        assert_eq!(info["spec"]["interactive"], false, "{line}");
        assert_eq!(info["kind"], "ExecCredential");
    }
    println!(
        "| variant | kubectl | plugin |\n|---|---|---|\n{}",
        table.join("\n")
    );
}

/// The exec plugin's stderr (a login hint) reaches the user, as kubectl shows it; it runs once
/// per check, however many pods are read.
#[test]
fn exec_plugin_stderr_is_shown_and_it_runs_once() {
    let pods: Vec<FakePod> = (0..6)
        .map(|i| falco_pod(&format!("falco-{i}"), &format!("node-{i}"), vec![]))
        .collect();
    let server = FakeApiServer::start(FakeCluster::new(pods));
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("exec.log");
    let plugin = exec_plugin(dir.path(), &log, DEFAULT_TOKEN);
    let kubeconfig = dir.path().join("exec.yaml");
    std::fs::write(
        &kubeconfig,
        kubeconfig_for(
            &server.url(),
            &server.ca_pem(),
            "",
            &exec_user(&plugin, "Never"),
        ),
    )
    .expect("write");
    let kc = kubeconfig.display().to_string();
    let r = run(
        &[
            NS,
            "--since-time",
            WINDOW,
            "--fail-closed",
            "--kubeconfig",
            &kc,
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("hint: run cloud-login first"), "{r:?}");
    let runs = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(runs, 1, "one credential per run");
    if let Some(bin) = kubectl() {
        let (ok, stderr) = kubectl_run(&bin, &[], &["--kubeconfig".to_string(), kc], dir.path());
        assert!(
            ok && stderr.contains("hint: run cloud-login first"),
            "kubectl: {stderr}"
        );
    }
}

/// `--as`, `--as-group` (twice) and `--as-uid` reach the API server as kubectl sends them.
#[test]
fn impersonation_headers_match_kubectl() {
    let server = FakeApiServer::start(one_alert_cluster());
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = server.write_kubeconfig(dir.path()).display().to_string();
    let flags = [
        "--as",
        "system:serviceaccount:ci:deployer",
        "--as-group",
        "ci",
        "--as-group",
        "deployers",
        "--as-uid",
        "42",
    ];
    let r = run(
        &[
            &[NS, "--since-time", WINDOW, "--kubeconfig", &kc][..],
            &flags[..],
        ]
        .concat(),
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    let seen = |reqs: Vec<RecordedRequest>| {
        let r = reqs
            .into_iter()
            .find(|r| r.path.ends_with("/pods"))
            .expect("a pod list");
        (r.impersonate_user, r.impersonate_groups, r.impersonate_uid)
    };
    let ours = seen(server.requests());
    assert_eq!(
        ours,
        (
            Some("system:serviceaccount:ci:deployer".to_string()),
            vec!["ci".to_string(), "deployers".to_string()],
            Some("42".to_string())
        )
    );
    if let Some(bin) = kubectl() {
        server.clear_requests();
        let mut args = vec!["--kubeconfig".to_string(), kc.clone()];
        args.extend(flags.iter().map(|s| s.to_string()));
        let (ok, stderr) = kubectl_run(&bin, &[], &args, dir.path());
        assert!(ok, "kubectl: {stderr}");
        assert_eq!(seen(server.requests()), ours, "kubectl sends the same");
    }
}

/// The user's own mistakes in kubectl's flags are usage errors: exit 2, no request.
#[test]
fn connection_flag_mistakes_are_usage_errors() {
    let server = FakeApiServer::start(one_alert_cluster());
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = server.write_kubeconfig(dir.path()).display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--cluster", "nope"],
            "--cluster nope is not in the kubeconfig; it has: fake",
        ),
        (
            &["--user", "nope"],
            "--user nope is not in the kubeconfig; it has:",
        ),
        (&["--server", "not a url"], "--server"),
        (
            &["--certificate-authority", "/nonexistent/ca.crt"],
            "cannot read --certificate-authority",
        ),
        (
            &[
                "--client-certificate",
                "/nonexistent/c.crt",
                "--client-key",
                "/nonexistent/c.key",
            ],
            "cannot read --client-certificate",
        ),
        (&["--request-timeout", "soon"], "invalid duration"),
        (&["-v", "loud"], "invalid value"),
    ];
    for (flags, want) in cases {
        server.clear_requests();
        let r = run(
            &[
                &[NS, "--since-time", WINDOW, "--kubeconfig", &kc][..],
                flags,
            ]
            .concat(),
            &[],
            None,
        );
        assert_eq!(r.code, 2, "{flags:?}: {r:?}");
        assert!(r.stderr.contains(want), "{flags:?}: want {want:?} in {r:?}");
        assert!(server.requests().is_empty(), "{flags:?}: no request");
    }
}

/// kubectl never rejects its generic flags; with --logs they are accepted and said to be unused
/// (once, in the warnings: `-o json` stays one object).
#[test]
fn connection_flags_with_logs_are_accepted_and_said_unused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("f.log");
    std::fs::write(
        &log,
        format!(
            "{}\n",
            alert(
                "2024-01-15T10:31:00.000000000Z",
                "Notice",
                "Shell",
                Some(NS)
            )
        ),
    )
    .expect("write");
    let l = log.display().to_string();
    let r = run(
        &[
            NS,
            "--logs",
            &l,
            "--since-time",
            WINDOW,
            "--context",
            "prod",
            "--server",
            "https://x",
            "--as",
            "a",
            "-o",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let said: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("not used"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {r:?}");
    assert!(
        said[0].contains("--context, --server, --as not used"),
        "{said:?}"
    );
    assert!(
        r.json()["stderr"]
            .as_str()
            .is_some_and(|s| s.contains("not used")),
        "{r:?}"
    );
}

/// `-v 6` logs every request with its status and time on stderr, and never the token.
#[test]
fn verbose_log_shows_requests_not_secrets() {
    let server = FakeApiServer::start(one_alert_cluster());
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = server.write_kubeconfig(dir.path()).display().to_string();
    let r = run(
        &[
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &kc,
            "-v",
            "6",
            "-o",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("GET /api/v1/namespaces/falco/pods"),
        "{r:?}"
    );
    assert!(r.stderr.contains("200 OK in"), "{r:?}");
    assert!(r.stderr.contains("proxy: none"), "{r:?}");
    assert!(r.stderr.contains("coverage of falco-a: "), "{r:?}");
    assert!(
        !r.stderr.contains(DEFAULT_TOKEN),
        "the token must never be logged"
    );
    let _ = r.json();
    let quiet = run(
        &[NS, "--since-time", WINDOW, "--kubeconfig", &kc],
        &[],
        None,
    );
    assert!(!quiet.stderr.contains("GET /api"), "{quiet:?}");
}

/// Writes `dir/NAME.sh` (executable) with `body`, and `dir/NAME.yaml`, a kubeconfig for
/// `server` whose user runs it with `interactiveMode: Never`; returns the kubeconfig's path.
fn exec_kubeconfig(server: &FakeApiServer, dir: &Path, name: &str, body: &str) -> String {
    let script = dir.join(format!("{name}.sh"));
    std::fs::write(&script, body).expect("write plugin");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let kc = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &kc,
        kubeconfig_for(
            &server.url(),
            &server.ca_pem(),
            "",
            &exec_user(&script, "Never"),
        ),
    )
    .expect("write kubeconfig");
    kc.display().to_string()
}

/// A credential that outlives the run is fetched once; one that expires during it is fetched
/// again when it expires (not before every request).
#[test]
fn exec_credential_is_fetched_again_only_when_it_expires() {
    let server = FakeApiServer::start(FakeCluster::new(vec![falco_pod(
        "falco-a",
        "node-0",
        vec![],
    )]));
    let dir = tempfile::tempdir().expect("tempdir");
    let run_with = |expires_in: &str, extra: &[&str]| -> usize {
        let log = dir.path().join(format!("runs-{expires_in}.log"));
        let kc = exec_kubeconfig(
            &server,
            dir.path(),
            &format!("plugin-{expires_in}"),
            &format!(
                "#!/bin/sh\necho run >> {}\nexp=$(date -u -d '+{expires_in} seconds' +%Y-%m-%dT%H:%M:%SZ)\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{DEFAULT_TOKEN}\",\"expirationTimestamp\":\"%s\"}}}}' \"$exp\"\n",
                log.display()
            ),
        );
        let mut args = vec![NS, "--kubeconfig", kc.as_str(), "-o", "json"];
        args.extend_from_slice(extra);
        let r = run(&args, &[], None);
        assert!(r.code == 0, "{r:?}");
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(
        run_with("45", &["--watch", "--for", "4s", "--relist-every", "500ms"]),
        1
    );
    // Fresh for about 2 s (the margin is 5 s): the relists after that fetch it again.
    let runs = run_with("7", &["--watch", "--for", "4s", "--relist-every", "500ms"]);
    assert!(
        (2..=4).contains(&runs),
        "fetched again on expiry, not per request: {runs}"
    );
}

/// What kubectl ignores, we ignore: an empty flag value (`--token "$UNSET"`), another user's
/// token file that is missing. And a kubeconfig that does not parse is named without quoting
/// its lines (they may hold a token).
#[test]
fn empty_flags_other_users_and_parse_errors_as_kubectl() {
    let server = FakeApiServer::start(one_alert_cluster());
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = server.write_kubeconfig(dir.path()).display().to_string();
    let base = [
        NS,
        "--since-time",
        WINDOW,
        "--kubeconfig",
        kc.as_str(),
        "-o",
        "json",
    ];
    let r = run(
        &[&base[..], &["--token", "", "--as", ""]].concat(),
        &[],
        None,
    );
    assert_eq!(
        r.code, 1,
        "an empty --token is unset, the kubeconfig's token is used: {r:?}"
    );
    let other = dir.path().join("other-user.yaml");
    let mut text = std::fs::read_to_string(&kc).expect("read");
    text = text.replace(
        "- name: bad-token\n  user:\n    token: wrong-token\n",
        "- name: bad-token\n  user:\n    tokenFile: /nonexistent/token\n",
    );
    std::fs::write(&other, text).expect("write");
    let o = other.display().to_string();
    let r = run(
        &[NS, "--since-time", WINDOW, "--kubeconfig", &o, "-o", "json"],
        &[],
        None,
    );
    assert_eq!(
        r.code, 1,
        "another user's missing token file does not matter: {r:?}"
    );
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: eyJSECRETTOKEN\n    as-groups: admin\n",
    )
    .expect("write");
    let b = broken.display().to_string();
    let r = run(&[NS, "--kubeconfig", &b], &[], None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        !r.stderr.contains("eyJSECRETTOKEN"),
        "the file's text is not quoted: {r:?}"
    );
    assert!(r.stderr.contains("does not parse"), "{r:?}");
}

/// A 401 from a credential the exec plugin gave (revoked, rotated before its expiry): the
/// plugin is run again and the request retried once, as client-go does.
#[test]
fn exec_credential_is_fetched_again_after_a_401() {
    let server = FakeApiServer::start(one_alert_cluster());
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin_for = |who: &str| -> (String, PathBuf) {
        let state = dir.path().join(format!("{who}.runs"));
        // The first run hands out a stale token, the next ones the good one.
        let kc = exec_kubeconfig(
            &server,
            dir.path(),
            who,
            &format!(
                "#!/bin/sh\nif [ -e {s} ]; then t={DEFAULT_TOKEN}; else t=stale-token; fi\necho run >> {s}\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"%s\"}}}}' \"$t\"\n",
                s = state.display()
            ),
        );
        (kc, state)
    };
    let (kc, state) = plugin_for("plugin");
    let r = run(
        &[
            NS,
            "--since-time",
            WINDOW,
            "--kubeconfig",
            &kc,
            "-o",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    let runs = std::fs::read_to_string(&state)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(runs, 2, "one run, a 401, one run again");
    if let Some(bin) = kubectl() {
        let (kc, _) = plugin_for("kubectl");
        let (ok, stderr) = kubectl_run(&bin, &[], &["--kubeconfig".to_string(), kc], dir.path());
        assert!(ok, "kubectl does the same: {stderr}");
    }
}

/// A `tokenFile` rotated while the check runs (a projected service account token, or a CI that
/// refreshes it), the old token revoked: the file is read again, as client-go does, and every
/// Falco pod is still read.
#[test]
fn a_token_file_rotated_mid_run_is_read_again() {
    let t0 = "2024-01-15T10:31:00.000000000Z";
    let log = || {
        let mut lines = vec![(
            ts("2024-01-15T09:59:58.101233Z"),
            "Mon Jan 15 09:59:58 2024: Falco version: 0.42.1 (x86_64)".to_string(),
        )];
        for _ in 0..6 {
            lines.push((
                kubelet(t0),
                alert(t0, "Critical", "Other", Some("other-ns")),
            ));
        }
        LogSource::lines(lines)
    };
    let mut faults = Faults {
        slow_log_bytes_per_sec: Some(3000),
        ..Faults::default()
    };
    faults.token_rotation = Some((Duration::from_millis(1500), "rotated-t0ken".to_string()));
    let server = FakeApiServer::start(
        FakeCluster::new(vec![
            FakePod::falco("falco-a", "node-a", log()),
            FakePod::falco("falco-b", "node-b", log()),
            FakePod::falco("falco-c", "node-c", log()),
        ])
        .with_faults(faults),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{DEFAULT_TOKEN}\n")).expect("write");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubeconfig_for(
            &server.url(),
            &server.ca_pem(),
            "",
            &format!("tokenFile: {}\n", token_file.display()),
        ),
    )
    .expect("write");
    let k = kubeconfig.display().to_string();
    let args = [
        NS,
        "--since-time",
        WINDOW,
        "--kubeconfig",
        &k,
        "--max-concurrency",
        "1",
        "--node-coverage=false",
        "-o",
        "json",
    ];
    let child = std::process::Command::new(BIN)
        .args(args)
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(&token_file, "rotated-t0ken\n").expect("rotate");
    let out = child.wait_with_output().expect("wait");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        j["verdict"],
        "passed",
        "{j}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = server.requests();
    assert!(
        reqs.iter().any(|r| r.status == Some(401)),
        "the old token was refused at least once: {reqs:?}"
    );
    assert_eq!(
        reqs.iter()
            .filter(|r| r.is_log() && r.status == Some(200) && r.param("sinceTime").is_some())
            .count(),
        3
    );
}
