//! What a resolved run is: the check and how and where its result is shown
//! ([`Invocation`], [`Output`], [`LiveView`], [`Reports`]).

use std::path::PathBuf;

use super::format::OutputFormat;
use crate::check::CheckOptions;
use crate::falco::Priority;
use crate::render::Style;

/// Files and CI outputs written besides the main output.
#[derive(Debug, Clone, Default)]
pub struct Reports {
    /// `--report FORMAT=PATH` (never a text format), written atomically.
    pub files: Vec<(OutputFormat, PathBuf)>,
    /// Write GitHub workflow-command annotations.
    pub annotations: bool,
    /// `$GITHUB_STEP_SUMMARY`: a Markdown job summary is appended to it.
    pub step_summary: Option<PathBuf>,
}

/// The live view of `--watch` / `--for`.
#[derive(Debug, Clone, Copy)]
pub struct LiveView {
    /// `--watch`: print each alert as it arrives.
    pub print_alerts: bool,
    /// Alerts go to stdout (text output); with `-o json`/`yaml` stdout is kept for the result.
    pub to_stdout: bool,
    /// Redraw a status line on stderr (a terminal that is not dumb).
    pub status: bool,
    /// The status line's width: the terminal's (80 when it does not say).
    pub columns: usize,
    /// The blocking threshold, for the status line.
    pub threshold: Priority,
}

/// How and where the result is shown.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: OutputFormat,
    pub stdout: Style,
    pub stderr: Style,
    /// A progress line on stderr while pods are read (one-shot, terminal).
    pub progress: bool,
    pub live: Option<LiveView>,
}

/// One resolved invocation: the check and how to show it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub check: CheckOptions,
    pub output: Output,
    pub reports: Reports,
    /// `-v LEVEL`: the debug log on stderr.
    pub verbosity: u8,
}
