//! `kubectl_complete-falco_verify`: kubectl's completion hook for the plugin.
//!
//! kubectl 1.26+ completes `kubectl falco-verify WORDS<TAB>` by running this executable, found on
//! PATH, as `kubectl_complete-falco_verify WORDS... PARTIAL` and reading cobra-style lines back.
//! It is a thin trampoline (standard library only, so it stays small): the answers come from
//! `kubectl-falco_verify __complete WORDS... PARTIAL`, which knows the flags (see
//! `falco_verify::completion`). The plugin is looked for next to this executable (as installed
//! from the release archive, or as linked next to krew's link), then on PATH.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const PLUGIN: &str = "kubectl-falco_verify";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(plugin) = find_plugin() else {
        return nothing();
    };
    match Command::new(&plugin).arg("__complete").args(&args).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        _ => nothing(),
    }
}

/// No candidates: let the shell do its default (file names). Never an error.
fn nothing() -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b":0\n").and_then(|_| out.flush());
    ExitCode::SUCCESS
}

fn find_plugin() -> Option<PathBuf> {
    let name = format!("{PLUGIN}{}", std::env::consts::EXE_SUFFIX);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // As invoked (macOS keeps a symlink's path), then with links resolved (Linux always).
        dirs.extend(exe.parent().map(Path::to_path_buf));
        if let Ok(real) = exe.canonicalize() {
            dirs.extend(real.parent().map(Path::to_path_buf));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}
