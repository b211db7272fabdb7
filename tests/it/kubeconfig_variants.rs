//! Kubeconfig variants side by side: real kubectl and the plugin against the same fake API
//! server with the same kubeconfig. Whatever kubectl accepts, the plugin must accept with the
//! same meaning: a connection the plugin cannot make where kubectl can is a fail-open exit 0
//! that checked nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use fake_apiserver::*;

fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
}

/// `kubectl get pods -n falco` with this environment: did it work?
fn kubectl_works(bin: &Path, env: &[(&str, String)], args: &[&str], home: &Path) -> bool {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .args(["get", "pods", "-n", "falco", "--request-timeout=10s"])
        .env("HOME", home)
        .env_remove("KUBECONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run kubectl");
    out.status.success()
}

const EMPTY_CONTEXT: &str =
    "apiVersion: v1\nkind: Config\ncurrent-context: \"\"\nclusters: []\ncontexts: []\nusers: []\n";

#[test]
fn kubeconfig_variants_behave_as_kubectl_does() {
    let server = FakeApiServer::start(FakeCluster::new(vec![falco_pod(
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
    )]));
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let good = server.write_kubeconfig(dir.path()).display().to_string();
    // A token file as `kubectl create token ... > token` writes it: with a newline.
    let token_dir = dir.path().join("token");
    std::fs::create_dir_all(&token_dir).expect("dir");
    let token = token_dir.join("token");
    std::fs::write(&token, format!("{DEFAULT_TOKEN}\n")).expect("token");
    let with_token_file = server
        .write_kubeconfig_with_user(&token_dir, &format!("tokenFile: {}\n", token.display()))
        .display()
        .to_string();
    let empty_context = dir.path().join("empty-context.yaml");
    std::fs::write(&empty_context, EMPTY_CONTEXT).expect("write");
    let missing = dir.path().join("missing.yaml").display().to_string();
    let empty_context = empty_context.display().to_string();
    // (variant, KUBECONFIG, --kubeconfig)
    let variants: Vec<(&str, Option<String>, Option<&str>)> = vec![
        ("--kubeconfig", None, Some(good.as_str())),
        ("KUBECONFIG=one file", Some(good.clone()), None),
        (
            "tokenFile ending in a newline",
            None,
            Some(with_token_file.as_str()),
        ),
        (
            "KUBECONFIG=missing:good",
            Some(format!("{missing}:{good}")),
            None,
        ),
        (
            "KUBECONFIG=a:b, a has current-context \"\"",
            Some(format!("{empty_context}:{good}")),
            None,
        ),
    ];
    let kubectl = kubectl();
    if kubectl.is_none() {
        eprintln!("notice: kubectl not found on PATH; only the plugin's side is checked");
    }
    for (variant, env_value, flag) in variants {
        let env: Vec<(&str, String)> = env_value
            .iter()
            .map(|v| ("KUBECONFIG", v.clone()))
            .collect();
        let flag_args: Vec<&str> = flag.map(|f| vec!["--kubeconfig", f]).unwrap_or_default();
        if let Some(bin) = &kubectl {
            assert!(
                kubectl_works(bin, &env, &flag_args, &home),
                "kubectl refused {variant}"
            );
        }
        let mut args = vec![NS, "--since-time", WINDOW, "--fail-closed", "-o", "json"];
        args.extend(flag_args.iter().copied());
        let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = run(&args, &env_ref, None);
        assert_eq!(
            r.code, 1,
            "{variant}: the plugin must see the alert as kubectl sees the pods: {r:?}"
        );
        assert_eq!(r.json()["verdict"], "blocked", "{variant}: {r:?}");
    }
}
