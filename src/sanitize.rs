//! Untrusted text (Falco output is shaped by whatever runs in a watched container) made safe
//! for a terminal. One predicate decides what a terminal would act on; every view uses it.

use std::fmt::Write as _;

/// Would a terminal act on this character? Controls (C0, DEL, C1), bidi embeddings, overrides,
/// isolates and marks, zero-width characters and the BOM.
pub fn unsafe_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}' | '\u{feff}')
}

/// Replaces what [`unsafe_on_terminal`] flags with visible escapes, so that log text cannot
/// move the cursor, retitle the terminal, hide text or reorder it.
pub fn neutralize(s: &str) -> String {
    if !s.chars().any(unsafe_on_terminal) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_on_terminal(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// [`neutralize`] on every string of a JSON value (for YAML on a terminal).
pub fn neutralize_strings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = neutralize(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(neutralize_strings),
        serde_json::Value::Object(m) => m.values_mut().for_each(neutralize_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_neutralized() {
        let s = "ok\u{1b}]0;pwned\u{7}\u{1b}[2J\u{8}\r\u{202e}evil\u{0}\u{9b}x";
        let n = neutralize(s);
        assert!(!n.chars().any(unsafe_on_terminal), "{n}");
        assert!(!n.contains('\u{202e}'));
        assert!(n.contains("\\x1b]0;pwned\\x07"));
        assert!(n.contains("\\u{202e}"));
        assert_eq!(
            neutralize("plain text k8s_ns_name=a"),
            "plain text k8s_ns_name=a"
        );
    }
}
