//! Which kubeconfig files, read and merged as kubectl reads and merges them (client-go
//! `clientcmd/loader.go`): the one reading for the check, the arguments' checks and completion.

use std::path::{Path, PathBuf};

use kube::config::Kubeconfig;

use super::ClusterError;

/// The kubeconfig files kubectl reads: `--kubeconfig`, else the existing files listed in
/// `KUBECONFIG` (missing ones are skipped), else `~/.kube/config` when it exists. The arguments
/// layer checks them with the same function before any request.
pub fn kubeconfig_files(
    explicit: Option<&Path>,
    kubeconfig_env: Option<&std::ffi::OsStr>,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(list) = kubeconfig_env.filter(|v| !v.is_empty()) {
        return std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect();
    }
    home.map(|h| h.join(".kube").join("config"))
        .filter(|p| p.exists())
        .into_iter()
        .collect()
}

/// Reads and merges kubeconfig files as kubectl does (client-go `clientcmd/loader.go`): for
/// every entry and for `current-context` the first file that sets it wins, an empty
/// `current-context: ""` is unset, and an empty file is an empty configuration. `None` when there
/// is no file at all. (The chosen user's `tokenFile` is read in [`resolve`].)
pub fn load_kubeconfig(files: &[PathBuf]) -> Result<Option<Kubeconfig>, ClusterError> {
    read_kubeconfigs(files).map_err(|bad| ClusterError::Config {
        detail: format!("{}: {}", bad.path.display(), bad.why),
    })
}

/// A kubeconfig file that cannot be used, and why (`no such file`, or what does not parse).
#[derive(Debug)]
pub struct BadFile {
    pub path: PathBuf,
    pub why: String,
}

/// The one reading of the kubeconfig files, for the check, the arguments' checks and
/// completion alike (see [`load_kubeconfig`]).
pub fn read_kubeconfigs(files: &[PathBuf]) -> Result<Option<Kubeconfig>, BadFile> {
    let mut merged: Option<Kubeconfig> = None;
    for path in files {
        let bad = |why: String| BadFile {
            path: path.clone(),
            why,
        };
        if std::fs::read(path).is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace)) {
            merged.get_or_insert_with(Kubeconfig::default);
            continue;
        }
        let mut kc = Kubeconfig::read_from(path).map_err(|e| {
            bad(if path.exists() {
                parse_error_summary(&e)
            } else {
                "no such file".to_string()
            })
        })?;
        if kc.current_context.as_deref() == Some("") {
            kc.current_context = None;
        }
        merged = Some(match merged {
            None => kc,
            Some(m) => m.merge(kc).map_err(|e| bad(e.to_string()))?,
        });
    }
    Ok(merged)
}

/// What a kubeconfig parse error says, without the file's text: the parser quotes the lines
/// around the error, and they may hold a token or a key.
pub fn parse_error_summary(e: &kube::config::KubeconfigError) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("");
    // "... at line N column M" is kept; a quoted value is not.
    let location = first
        .find("line ")
        .map(|i| {
            first[i..]
                .split([':', ','])
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .filter(|l| l.chars().all(|c| c.is_ascii_alphanumeric() || c == ' '));
    match location {
        Some(l) => format!("it does not parse as a kubeconfig ({l})"),
        None => "it does not parse as a kubeconfig".to_string(),
    }
}

/// client-go's `IsConfigEmpty`: such a kubeconfig falls through to in-cluster configuration.
pub(super) fn is_empty(kc: &Kubeconfig) -> bool {
    kc.clusters.is_empty()
        && kc.contexts.is_empty()
        && kc.auth_infos.is_empty()
        && kc.current_context.is_none()
}
