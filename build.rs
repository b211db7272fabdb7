//! Records the git commit for `--version`.
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=FALCO_VERIFY_GIT_COMMIT={commit}");
    // The material beside the repository (`../shared`: Falco's real output, the JUnit schema)
    // that some checks need. Without it those checks are ignored, never passed: cargo says so.
    println!("cargo::rustc-check-cfg=cfg(shared_material)");
    let shared = std::path::Path::new("../shared");
    let present = [
        "falco-corpus/json.log",
        "falco-wild",
        "schemas/junit-10.xsd",
    ]
    .iter()
    .all(|p| shared.join(p).exists());
    if present {
        println!("cargo:rustc-cfg=shared_material");
    }
    println!("cargo:rerun-if-changed=../shared");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
