//! Shell completion and the man page: `completion SHELL`, `man`, and the hidden `__complete`
//! protocol that kubectl's plugin completion hook speaks.
//!
//! kubectl (1.26 and later) completes `kubectl falco-verify ...` by running an executable named
//! `kubectl_complete-falco_verify` found on PATH with the words typed so far, the last one being
//! the word under the cursor (possibly empty). It expects cobra's output: one candidate per line,
//! optionally `candidate<TAB>description`, then a line `:<directive>`. That executable (a thin
//! binary of this package) runs `kubectl-falco_verify __complete WORDS...`, answered here from
//! the clap definition in [`crate::args`] plus, for namespace and context values, the cluster and
//! the kubeconfig. Completion never fails: whatever goes wrong just means fewer candidates.

use std::io::Write;
use std::time::Duration;

use clap::Command;
use clap_complete::Shell;

use crate::args::Special;
pub use crate::args::{COMPLETE_ARG, SHELLS};
use crate::verdict::Exit;

mod engine;
pub use engine::{complete, ClusterLookup, Completions, Lookup};

/// The plugin's executable; kubectl maps `kubectl falco-verify` to it.
pub const BIN_NAME: &str = "kubectl-falco_verify";
/// The executable kubectl runs to complete the plugin's arguments.
pub const COMPLETE_BIN_NAME: &str = "kubectl_complete-falco_verify";
/// How long completion may wait for the cluster's namespace list.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Cobra's `ShellCompDirective` values, as kubectl reads them from the last output line.
pub mod directive {
    /// Let the shell complete file names when there is no candidate.
    pub const DEFAULT: u32 = 0;
    /// Do not add a space after the candidate.
    pub const NO_SPACE: u32 = 2;
    /// Do not fall back to file names.
    pub const NO_FILE_COMP: u32 = 4;
}

/// Answers a special mode ([`crate::args::parse`] recognised it): prints what it asks for and
/// gives the exit code (0; 2 for `completion` without a shell).
pub fn run(mode: Special, env: &crate::args::Environment) -> Exit {
    match mode {
        Special::Complete(words) => {
            let found = complete(&words, &ClusterLookup::default(), &env.connection);
            write_stdout(found.render().as_bytes());
            Exit::Passed
        }
        Special::Man => match man_page() {
            Ok(page) => {
                write_stdout(&page);
                Exit::Passed
            }
            Err(e) => {
                eprintln!("error: cannot render the man page: {e}");
                Exit::Usage
            }
        },
        Special::Script(shell) => {
            write_stdout(&completion_script(shell));
            Exit::Passed
        }
        Special::CompletionUsage { asked: true } => {
            write_stdout(completion_usage().as_bytes());
            Exit::Passed
        }
        Special::CompletionUsage { asked: false } => {
            eprint!("{}", completion_usage());
            Exit::Usage
        }
    }
}

/// Writes everything, ignoring a closed pipe (`| head`).
fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|_| out.flush());
}

fn completion_usage() -> String {
    format!(
        "Print a shell completion script for {BIN_NAME}.\n\n\
         Usage: kubectl falco-verify completion <SHELL>\n\n\
         SHELL: {SHELLS}\n\n\
         Examples:\n  \
         source <(kubectl falco-verify completion bash)\n  \
         kubectl falco-verify completion zsh > \"${{fpath[1]}}/_{BIN_NAME}\"\n  \
         kubectl falco-verify completion fish > ~/.config/fish/completions/{BIN_NAME}.fish\n\n\
         These complete the executable {BIN_NAME}. `kubectl falco-verify <TAB>` is completed by\n\
         kubectl itself (1.26+) through {COMPLETE_BIN_NAME} on PATH.\n\
         To check a namespace called `completion`, run: kubectl falco-verify -- completion\n"
    )
}

/// The clap command as the plugin presents itself.
pub fn command() -> Command {
    crate::args::command()
        .name(BIN_NAME)
        .display_name(BIN_NAME)
        .bin_name("kubectl falco-verify")
}

/// A completion script (clap_complete) for the executable `kubectl-falco_verify`.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut cmd = command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN_NAME, &mut buf);
    buf
}

/// The roff man page (clap_mangen), as installed as `kubectl-falco_verify.1`.
/// Text safe in a roff line: backslashes doubled, a leading `.` or `'` escaped.
fn roff_escape(s: &str) -> String {
    let s = s.replace('\\', "\\\\").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

pub fn man_page() -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(command())
        .title(BIN_NAME.to_ascii_uppercase())
        .section("1")
        .manual("kubectl plugins");
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    for (heading, items) in crate::args::HELP_SECTIONS {
        buf.extend_from_slice(format!(".SH \"{heading}\"\n").as_bytes());
        for (term, text) in items {
            buf.extend_from_slice(
                format!(".TP\n{}\n{}\n", roff_escape(term), roff_escape(text)).as_bytes(),
            );
        }
    }
    man.render_version_section(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn scripts_and_man_page() {
        for shell in Shell::value_variants() {
            let script = String::from_utf8(completion_script(*shell)).unwrap_or_default();
            assert!(script.contains(BIN_NAME), "{shell}");
            assert!(script.contains("severity"), "{shell}");
        }
        let page = String::from_utf8(man_page().unwrap_or_default()).unwrap_or_default();
        assert!(page.starts_with(".ie"), "{}", &page[..page.len().min(200)]);
        assert!(page.contains(".TH KUBECTL-FALCO_VERIFY 1"), "{page}");
        assert!(page.contains("kubectl falco\\-verify"), "{page}");
        assert!(page.contains("\\-\\-severity"), "{page}");
    }
}
