//! Which events are alerts for the namespace in the window, how they count, which sources
//! covered the window, and the verdict.
//!
//! [`filter`] decides what counts, [`tally`] counts it (the decoder's sink), [`alerts`] keeps a
//! bounded list, [`ledger`] records each source's coverage gaps, [`conclude`] turns it all into a
//! [`CheckResult`] ([`result`], the JSON contract).

pub mod alerts;
pub mod breakdown;
pub mod canary;
pub mod conclude;
pub mod filter;
pub mod ignore;
pub mod ledger;
pub mod nodes;
pub mod result;
pub mod tally;

pub use alerts::{Alert, AlertList, LogOrigin};
pub use breakdown::{GroupBy, GroupStat, Minute, NamespaceStat};
pub use conclude::{conclude, minutes_since, Connection, Echo, Findings, Skip, SourceRead};
pub use filter::{AlertFilter, Scope, Window};
pub use ignore::{IgnoreRule, Ignores};
pub use ledger::{Gap, GapKind, Ledger};
pub use nodes::{CoverageMode, NodeCoverage};
pub use result::{CheckResult, Exit, InputKind, PodReport, Verdict};
pub use tally::{Summary, Tally};
