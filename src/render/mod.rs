//! Views of a [`CheckResult`](crate::verdict::CheckResult), each written to an `io::Write`:
//! [`text`], [`json`], [`yaml`], [`junit`], [`markdown`], GitHub [`annotations`], the [`live`]
//! view. Untrusted text goes through [`crate::sanitize`] first.

pub mod annotations;
pub mod json;
pub mod junit;
pub mod live;
pub mod markdown;
pub mod text;
pub mod yaml;

// The sanitizer lives below every layer; the views use it most.
pub use crate::sanitize::{neutralize, unsafe_on_terminal};

/// How to draw text output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// Adds node and container columns.
    pub wide: bool,
    /// Output goes to a terminal: draw the timeline as a sparkline.
    pub tty: bool,
    /// The alerts were already shown as they arrived (`--watch`): the summary does not list
    /// them again.
    pub streamed: bool,
}
