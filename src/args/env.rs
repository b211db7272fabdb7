//! The process environment, read once ([`Environment`]), and the checks of the
//! `AEGIS_SECURITY__*` variables (the kill switch and the flag defaults).

use std::io::IsTerminal;
use std::path::PathBuf;

use super::values::{check_label_selector, parse_namespace};
use crate::falco::Priority;
use crate::render::neutralize;

/// The environment variable that switches the check off.
pub const ENABLED_VAR: &str = "AEGIS_SECURITY__FALCO_ENABLED";

/// `AEGIS_SECURITY__FALCO_ENABLED`: `Ok(Some(value))` when it switches the check off. A value
/// that is not a boolean is the user's mistake, never "enabled" nor "disabled" by guess.
pub fn disabled_by(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(None),
        "false" | "0" | "no" | "off" => Ok(Some(v.trim().to_string())),
        _ => Err(format!(
            "{ENABLED_VAR}={:?} is not a boolean: use true or false (also 1/0, yes/no, on/off), or unset it",
            neutralize(v)
        )),
    }
}

/// The `AEGIS_SECURITY__*` variables this tool reads: (name, flag it sets).
const AEGIS_VARS: [(&str, &str); 4] = [
    (ENABLED_VAR, "the kill switch"),
    ("AEGIS_SECURITY__FALCO_SEVERITY", "--severity"),
    ("AEGIS_SECURITY__FALCO_NAMESPACE", "--falco-namespace"),
    ("AEGIS_SECURITY__FALCO_LABEL_SELECTOR", "--selector"),
];

/// Checks the values of the `AEGIS_SECURITY__FALCO_*` variables, naming the variable that is
/// wrong; unknown `AEGIS_SECURITY__FALCO_*` names (a typo does nothing) come back as notes.
pub fn check_aegis_vars(vars: &[(String, String)]) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    for (name, value) in vars {
        let v = value.trim();
        let bad = |why: String| {
            Err(format!(
                "{name}={:?}: {why}; fix or unset the variable",
                neutralize(value)
            ))
        };
        match name.as_str() {
            ENABLED_VAR => {}
            "AEGIS_SECURITY__FALCO_SEVERITY" if !v.is_empty() && Priority::parse(v).is_none() => {
                return bad("not a Falco priority (emergency alert critical error warning notice informational debug)".to_string());
            }
            "AEGIS_SECURITY__FALCO_NAMESPACE" => {
                if let Err(why) = parse_namespace(v) {
                    return bad(format!("not a namespace name: it {why}"));
                }
            }
            "AEGIS_SECURITY__FALCO_LABEL_SELECTOR" if !v.is_empty() => {
                if let Err(why) = check_label_selector(v) {
                    return bad(why);
                }
            }
            n if AEGIS_VARS.iter().any(|(known, _)| *known == n) => {}
            n if n.starts_with("AEGIS_SECURITY__FALCO_") => notes.push(format!(
                "{} is not a variable this tool reads (it reads {}); it has no effect",
                neutralize(n),
                AEGIS_VARS.map(|(n, _)| n).join(", ")
            )),
            _ => {}
        }
    }
    Ok(notes)
}

/// What the process environment says, read once (tests build their own).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub enabled: Option<String>,
    /// Every `AEGIS_SECURITY__*` variable (name, value), for their checks.
    pub aegis: Vec<(String, String)>,
    /// What connecting reads: `KUBECONFIG`, `HOME`, the proxy variables, in-cluster, stdin.
    pub connection: crate::cluster::ConnectionEnv,
    pub no_color: Option<String>,
    pub term: Option<String>,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    /// Terminal width of stderr, for the live status line.
    pub columns: Option<usize>,
    /// `GITHUB_ACTIONS=true`: running as a GitHub Actions step.
    pub github_actions: bool,
    /// `GITHUB_STEP_SUMMARY`: the job summary file.
    pub step_summary: Option<PathBuf>,
}

impl Environment {
    pub fn from_process() -> Self {
        Environment {
            enabled: std::env::var(ENABLED_VAR).ok(),
            aegis: std::env::vars_os()
                .filter_map(|(k, v)| {
                    let k = k.into_string().ok()?;
                    k.starts_with("AEGIS_SECURITY__")
                        .then(|| (k, v.to_string_lossy().into_owned()))
                })
                .collect(),
            connection: crate::cluster::ConnectionEnv::from_process(),
            no_color: std::env::var("NO_COLOR").ok(),
            term: std::env::var("TERM").ok(),
            stdout_tty: std::io::stdout().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
            columns: terminal_size::terminal_size_of(std::io::stderr())
                .map(|(w, _)| usize::from(w.0))
                .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok()),
            github_actions: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
            step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_switch() {
        assert_eq!(disabled_by(None), Ok(None));
        assert_eq!(disabled_by(Some("")), Ok(None));
        for on in ["true", "1", "YES", "On"] {
            assert_eq!(disabled_by(Some(on)), Ok(None), "{on}");
        }
        for off in ["false", "False", "0", "no", "OFF"] {
            assert_eq!(disabled_by(Some(off)), Ok(Some(off.to_string())), "{off}");
        }
        for bad in ["flase", "disabled", "2", "nope"] {
            assert!(disabled_by(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn aegis_variables_are_checked_by_name() {
        let vars = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let ok = vars(&[
            ("AEGIS_SECURITY__FALCO_ENABLED", "true"),
            ("AEGIS_SECURITY__FALCO_SEVERITY", "Critical"),
            ("AEGIS_SECURITY__FALCO_NAMESPACE", "security"),
            ("AEGIS_SECURITY__FALCO_LABEL_SELECTOR", "app in (falco)"),
            ("AEGIS_SECURITY__OTHER_TOOL", "x"),
        ]);
        assert_eq!(check_aegis_vars(&ok), Ok(vec![]));
        let typo = vars(&[("AEGIS_SECURITY__FALCO_SEVERTY", "critical")]);
        assert_eq!(check_aegis_vars(&typo).map(|n| n.len()), Ok(1));
        let bad = vars(&[("AEGIS_SECURITY__FALCO_SEVERITY", "loud")]);
        assert!(check_aegis_vars(&bad).is_err_and(|e| e.contains("AEGIS_SECURITY__FALCO_SEVERITY")));
    }
}
