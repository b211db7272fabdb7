//! The YAML view: the same document as JSON.

use std::io::{self, Write};

use crate::sanitize::neutralize_strings;
use crate::verdict::CheckResult;

/// YAML has no escape that every emitter uses for bidi controls, so on a terminal (`tty`)
/// strings are neutralized (visible escapes, as in text output); on a pipe the data goes out
/// exactly.
pub fn write(w: &mut dyn Write, r: &CheckResult, tty: bool) -> io::Result<()> {
    let rendered = if tty {
        serde_json::to_value(r)
            .map_err(io::Error::other)
            .and_then(|mut v| {
                neutralize_strings(&mut v);
                serde_saphyr::to_string(&v).map_err(io::Error::other)
            })
    } else {
        serde_saphyr::to_string(r).map_err(io::Error::other)
    };
    w.write_all(rendered?.as_bytes())
}
