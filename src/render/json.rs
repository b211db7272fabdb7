//! The JSON view: one object, the seed's result structure plus ours, safe on a terminal.

use std::io::{self, Write};

use crate::sanitize::unsafe_on_terminal;
use crate::verdict::CheckResult;

/// Writes the result as one pretty-printed JSON object and a newline.
pub fn write(w: &mut dyn Write, r: &CheckResult) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(
        &mut *w,
        TerminalSafe(serde_json::ser::PrettyFormatter::new()),
    );
    serde::Serialize::serialize(r, &mut ser).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// The JSON text of a result (for tests and callers that want a string).
pub fn to_string(r: &CheckResult) -> String {
    let mut out = Vec::with_capacity(4096);
    match write(&mut out, r) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(e) => format!("{{\"tool\":\"falco\",\"error\":{:?}}}\n", e.to_string()),
    }
}

/// A JSON formatter that writes terminal-unsafe characters as `\uXXXX` escapes: same JSON value,
/// nothing lost, nothing for a terminal to interpret.
struct TerminalSafe<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for TerminalSafe<F> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if unsafe_on_terminal(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::falco::Priority;

    #[test]
    fn json_escapes_what_a_terminal_would_act_on() {
        let r = crate::verdict::conclude(
            crate::verdict::Echo {
                scope: crate::verdict::Scope::Namespace("n\u{202e}s\u{9b}x".into()),
                falco_namespace: "falco".into(),
                label_selector: "app=falco".into(),
                window: crate::verdict::Window {
                    start: chrono::DateTime::UNIX_EPOCH,
                    end: None,
                },
                since_minutes: 1,
                threshold: Priority::Warning,
                fail_closed: false,
                input: crate::verdict::InputKind::Logs,
                group_by: None,
                window_end: chrono::DateTime::UNIX_EPOCH,
            },
            crate::verdict::Findings::new(
                crate::verdict::Tally::new(
                    std::sync::Arc::new(crate::verdict::AlertFilter::new(
                        "n",
                        crate::verdict::Window {
                            start: chrono::DateTime::UNIX_EPOCH,
                            end: None,
                        },
                        Priority::Warning,
                    )),
                    Default::default(),
                    10,
                ),
                crate::verdict::NodeCoverage::new(crate::verdict::CoverageMode::Offline),
            ),
        );
        let j = to_string(&r);
        assert!(!j.contains('\u{202e}') && !j.contains('\u{9b}'), "{j}");
        assert!(j.contains("\\u202e") && j.contains("\\u009b"), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
        assert_eq!(
            v["namespace_filter"], "n\u{202e}s\u{9b}x",
            "same value, escaped"
        );
    }
}
