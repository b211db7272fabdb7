//! Text and JSON views of a [`CheckResult`]. Untrusted text (Falco output is shaped by whatever
//! runs in a watched container) is neutralized before it can reach a terminal.

use std::fmt::Write as _;

use owo_colors::OwoColorize;

use crate::falco::Priority;
use crate::verdict::{Alert, CheckResult, Verdict};

/// How to draw text output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// Adds node and container columns.
    pub wide: bool,
}

/// Replaces control characters, terminal escapes and bidi overrides with visible escapes, so that
/// log text cannot move the cursor, retitle the terminal, hide text or reorder it.
pub fn neutralize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            // Bidi embeddings, overrides, isolates and marks; zero-width and BOM.
            '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061c}'
            | '\u{feff}' => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn paint(text: &str, p: Option<Priority>, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    match p {
        Some(Priority::Emergency | Priority::Alert | Priority::Critical) => {
            text.red().bold().to_string()
        }
        Some(Priority::Error) => text.red().to_string(),
        Some(Priority::Warning) => text.yellow().to_string(),
        Some(Priority::Notice) => text.cyan().to_string(),
        Some(Priority::Informational | Priority::Debug) => text.dimmed().to_string(),
        None => text.magenta().to_string(),
    }
}

fn verdict_word(v: Verdict, color: bool) -> String {
    let w = v.as_upper();
    if !color {
        return w.to_string();
    }
    match v {
        Verdict::Passed => w.green().bold().to_string(),
        Verdict::Blocked => w.red().bold().to_string(),
        Verdict::Skipped | Verdict::Incomplete => w.yellow().bold().to_string(),
    }
}

/// The human view: header, per-priority table, blocking alerts, verdict line.
pub fn text(r: &CheckResult, style: Style) -> String {
    let mut o = String::new();
    let read = r.pods.iter().filter(|p| p.error.is_none()).count();
    let sources = if r.input == "logs" {
        format!("{read}/{} log file(s) read", r.pods.len())
    } else {
        format!(
            "{read}/{} Falco pod(s) read ({} in {})",
            r.pods.len(),
            neutralize(&r.label_selector),
            neutralize(&r.falco_namespace)
        )
    };
    let _ = writeln!(
        o,
        "Falco alerts for namespace {} since {} ({} min), threshold {}, {sources}",
        neutralize(&r.namespace_filter),
        r.since_timestamp,
        r.since_minutes,
        r.severity_threshold,
    );
    if r.verdict != Verdict::Skipped {
        o.push('\n');
        let _ = writeln!(o, "  {:<15}{:>8}", "PRIORITY", "COUNT");
        for p in Priority::ALL {
            let n = r.summary.get(p);
            let label = format!("  {:<15}{:>8}", p.as_upper(), n);
            let _ = writeln!(
                o,
                "{}",
                if n > 0 {
                    paint(&label, Some(p), style.color)
                } else {
                    label
                }
            );
        }
        let label = format!("  {:<15}{:>8}", "OTHER", r.summary.other);
        let _ = writeln!(
            o,
            "{}",
            if r.summary.other > 0 {
                paint(&label, None, style.color)
            } else {
                label
            }
        );
        let blocking: Vec<&Alert> = r.alerts.iter().filter(|a| a.blocking).collect();
        if !blocking.is_empty() {
            let _ = writeln!(o, "\nBlocking alerts ({}):", r.blocking_count);
            for a in blocking {
                alert_line(&mut o, a, style);
            }
            if r.alerts_omitted > 0 {
                let _ = writeln!(
                    o,
                    "  ... {} more alert(s) counted but not listed (raise --max-alerts)",
                    r.alerts_omitted
                );
            }
        }
        if r.outside_window_count > 0 {
            let _ = writeln!(
                o,
                "\n{} alert(s) for {} fall before the window start and were not counted (see --since / --since-time)",
                r.outside_window_count,
                neutralize(&r.namespace_filter)
            );
        }
        if style.wide || r.pods.iter().any(|p| p.error.is_some()) {
            let _ = writeln!(o, "\nFalco pods:");
            for p in &r.pods {
                let _ = writeln!(
                    o,
                    "  {:<40} {:<20} {:<10} {:>10} lines{}",
                    neutralize(&p.name),
                    neutralize(p.node.as_deref().unwrap_or("-")),
                    neutralize(p.container.as_deref().unwrap_or("-")),
                    p.lines_read,
                    p.error
                        .as_deref()
                        .map(|e| format!("  ERROR: {}", neutralize(e)))
                        .unwrap_or_default()
                );
            }
        }
    }
    o.push('\n');
    let word = verdict_word(r.verdict, style.color);
    let line = match r.verdict {
        Verdict::Passed => format!(
            "{word}: no Falco alert at or above {} for namespace {} ({} below the threshold)",
            r.severity_threshold,
            neutralize(&r.namespace_filter),
            r.alert_count - r.blocking_count
        ),
        _ => format!("{word}: {}", neutralize(r.reason.as_deref().unwrap_or(""))),
    };
    let _ = writeln!(o, "{line}");
    o
}

fn alert_line(o: &mut String, a: &Alert, style: Style) {
    let prio = paint(
        &format!("{:<13}", a.priority.to_uppercase()),
        a.level,
        style.color,
    );
    let mut place = neutralize(a.pod.as_deref().unwrap_or("-"));
    if style.wide {
        place = format!(
            "{place} node={} container={}",
            neutralize(a.node.as_deref().unwrap_or("-")),
            neutralize(a.container.as_deref().unwrap_or("-"))
        );
    }
    let _ = writeln!(
        o,
        "  {}  {}  {}  [{}]",
        a.time.as_deref().unwrap_or("(no date)"),
        prio,
        neutralize(a.rule.as_deref().unwrap_or("-")),
        place
    );
    if let Some(out) = &a.output {
        let mut shown = neutralize(out);
        if shown.chars().count() > 400 {
            shown = shown.chars().take(400).collect::<String>() + "...";
        }
        let _ = writeln!(o, "      {shown}");
    }
}

/// Warnings for stderr, one per line, neutralized.
pub fn warnings(r: &CheckResult, color: bool) -> String {
    let mut o = String::new();
    let mut all: Vec<String> = r.warnings.clone();
    match r.verdict {
        Verdict::Skipped | Verdict::Incomplete => {
            let what = if r.fail_closed {
                "failing closed (exit 3)"
            } else {
                "failing open: the gate passes without a verdict"
            };
            all.push(format!(
                "Falco check could NOT verify namespace {}, {what}: {}",
                r.namespace_filter,
                r.reason.as_deref().unwrap_or("")
            ));
        }
        Verdict::Passed | Verdict::Blocked => {}
    }
    for w in all {
        let label = if color {
            "warning:".yellow().bold().to_string()
        } else {
            "warning:".to_string()
        };
        let _ = writeln!(o, "{label} {}", neutralize(&w));
    }
    o
}

/// The JSON view: one object, the seed's result structure plus our fields.
pub fn json(r: &CheckResult) -> String {
    // Serializing plain data cannot fail; fall back to a minimal object rather than panic.
    serde_json::to_string_pretty(r)
        .unwrap_or_else(|e| format!("{{\"tool\":\"falco\",\"error\":{:?}}}", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_neutralized() {
        let s = "ok\u{1b}]0;pwned\u{7}\u{1b}[2J\u{8}\r\u{202e}evil\u{0}\u{9b}x";
        let n = neutralize(s);
        assert!(!n.chars().any(|c| c.is_control()), "{n}");
        assert!(!n.contains('\u{202e}'));
        assert!(n.contains("\\x1b]0;pwned\\x07"));
        assert!(n.contains("\\u{202e}"));
        assert_eq!(
            neutralize("plain text k8s_ns_name=a"),
            "plain text k8s_ns_name=a"
        );
    }
}
