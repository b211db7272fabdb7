//! The arguments layer: flags, environment and terminal, resolved once into an [`Invocation`]
//! (or a usage error before any request is made). One file per job, as ripgrep's `flags/`:
//!
//! - `defs.rs`: the clap definition [`Cli`] (the flag contract) and its help sections;
//! - `values.rs`: parsers and grammars of single values (durations, namespaces, selectors...);
//! - `format.rs`: the output formats of stdout and `--report`;
//! - `env.rs`: the process environment read once, and the `AEGIS_SECURITY__*` variables;
//! - `parse.rs`: the command line: a check or a special mode, clap, why arguments cannot run;
//! - `resolve.rs`: flags + environment + terminal -> [`Invocation`], with the pre-checks;
//! - `options.rs`: the flags lowered to the check's options;
//! - `invocation.rs`: what a resolved run is and how its result is shown.
//!
//! This file only re-exports, so that `crate::args::X` is the one path callers use.

mod cli;
mod defs;
mod env;
mod format;
mod invocation;
mod options;
mod parse;
mod resolve;
mod values;

pub use cli::{bin_name, parse_from, ArgsError};
pub use defs::{command, long_help_text, AnnotationsChoice, Cli, ColorChoice, HELP_SECTIONS};
pub use env::{check_aegis_vars, disabled_by, Environment, ENABLED_VAR};
pub use format::OutputFormat;
pub use invocation::{Invocation, LiveView, Output, Reports};
pub use parse::{parse, Parsed, Special, COMPLETE_ARG, SHELLS};
pub use resolve::{report_dir, resolve, use_color};
pub use values::{check_label_selector, parse_duration, parse_namespace};
