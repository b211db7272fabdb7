//! `kubectl falco-verify`: did Falco raise an alert for workloads in a namespace since a time, at
//! or above a priority? And did every source prove it covered the window?
//!
//! Data flows one way: [`args`] (flags, environment, terminal: resolved once) -> [`source`]
//! (Falco pods found through [`cluster`], files, stdin) -> [`falco`] (records) -> [`verdict`]
//! (filter, tally, ledger, outcome) -> [`render`] (text, JSON, YAML, JUnit, Markdown, GitHub
//! annotations, live view). [`check`] runs one check; [`app`] is the binary's edge (runtime,
//! signals, printing, reports, exit code).

pub mod app;
pub mod args;
pub mod check;
pub mod cluster;
pub mod completion;
pub mod debug;
pub mod falco;
pub mod options;
pub mod render;
pub mod sanitize;
pub mod source;
pub mod verdict;

pub use check::{check_falco_alerts, run};
pub use options::{CheckOptions, Follow, Input};
pub use source::{LiveEvent, Progress};
pub use verdict::{CheckResult, Exit, Verdict};
