//! Falco's output as it appears in a pod log: priorities, time stamps, JSON and text records.
//!
//! Nothing here knows about namespaces to look for or windows: that is `verdict`'s job. The
//! decoder asks its [`EventSink`] whether raw bytes are worth parsing, so the filter can skip most
//! lines without parsing them.

pub mod decoder;
pub mod envelope;
pub mod event;
pub mod fields;
pub(crate) mod needle;
pub mod output_fields;
pub mod priority;
pub mod time;

pub use decoder::{
    banner_version, DecodeStats, Decoder, EventSink, LineAt, LineScan, Spot, SpotKind,
    DEFAULT_MAX_LINE, SPOTS_KEPT,
};
pub use event::{Event, Format};
pub use output_fields::Fields;
pub use priority::{Priority, UnknownPriority};
