//! Text and JSON views of a [`CheckResult`]. Untrusted text (Falco output is shaped by whatever
//! runs in a watched container) is neutralized before it can reach a terminal.

use std::fmt::Write as _;

use owo_colors::OwoColorize;

use crate::falco::Priority;
use crate::verdict::breakdown::sparkline;
use crate::verdict::{Alert, CheckResult, Verdict};

/// How to draw text output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// Adds node and container columns.
    pub wide: bool,
    /// Output goes to a terminal: draw the timeline as a sparkline.
    pub tty: bool,
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
    let sources = if r.input == crate::verdict::InputKind::Logs {
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
        "Falco alerts for {} since {} ({} min), threshold {}, {sources}",
        if r.all_namespaces {
            "all namespaces".to_string()
        } else {
            format!("namespace {}", neutralize(&r.namespace_filter))
        },
        r.since_timestamp,
        r.since_minutes,
        r.severity_threshold,
    );
    if r.verdict != Verdict::Skipped {
        o.push('\n');
        if r.all_namespaces {
            namespaces_table(&mut o, r, style);
        }
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
        if r.ignored_count > 0 {
            let _ = writeln!(
                o,
                "  {:<15}{:>8}  (accepted noise: counted above, not blocking)",
                "IGNORED", r.ignored_count
            );
        }
        timeline(&mut o, r, style);
        if let Some(g) = r.group_by {
            groups_table(&mut o, r, g.as_str(), style);
        }
        let blocking: Vec<&Alert> = r.alerts.iter().filter(|a| a.blocking).collect();
        if !blocking.is_empty() {
            let _ = writeln!(o, "\nBlocking alerts ({}):", r.blocking_count);
            for a in blocking {
                alert_line(&mut o, a, style);
            }
        }
        if r.alerts_omitted > 0 {
            let _ = writeln!(
                o,
                "\n{} more alert(s) counted but not listed (raise --max-alerts)",
                r.alerts_omitted
            );
        }
        if r.outside_window_count > 0 {
            let _ = writeln!(
                o,
                "\n{} alert(s) for {} fall before the window start and were not counted (see --since / --since-time)",
                r.outside_window_count,
                if r.all_namespaces { "any namespace".to_string() } else { neutralize(&r.namespace_filter) }
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
            "{word}: no Falco alert at or above {} {} ({} below the threshold{})",
            r.severity_threshold,
            if r.all_namespaces {
                "in any namespace".to_string()
            } else {
                format!("for namespace {}", neutralize(&r.namespace_filter))
            },
            r.alert_count - r.blocking_count - r.ignored_count,
            if r.ignored_count > 0 {
                format!(", {} ignored", r.ignored_count)
            } else {
                String::new()
            }
        ),
        _ => format!("{word}: {}", neutralize(r.reason.as_deref().unwrap_or(""))),
    };
    let _ = writeln!(o, "{line}");
    o
}

fn timeline(o: &mut String, r: &CheckResult, style: Style) {
    if r.timeline.len() < 2 {
        return;
    }
    let counts: Vec<u64> = r.timeline.iter().map(|m| m.count).collect();
    let first = r.timeline.first().map(|m| m.minute.as_str()).unwrap_or("");
    let last = r.timeline.last().map(|m| m.minute.as_str()).unwrap_or("");
    let body = if style.tty {
        sparkline(&counts)
    } else {
        counts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(o, "\nAlerts per minute, {first} .. {last}:\n  {body}");
}

fn groups_table(o: &mut String, r: &CheckResult, key: &str, style: Style) {
    let _ = writeln!(o, "\nBy {key}:");
    let _ = writeln!(
        o,
        "  {:<44} {:>7} {:>8} {:>7}  {:<13} {:<20} {:<20}",
        key.to_uppercase(),
        "COUNT",
        "BLOCKING",
        "IGNORED",
        "WORST",
        "FIRST SEEN",
        "LAST SEEN"
    );
    for g in &r.groups {
        let worst = g.worst.map_or("OTHER", |p| p.as_upper());
        let row = format!(
            "  {:<44} {:>7} {:>8} {:>7}  {:<13} {:<20} {:<20}",
            truncate(&neutralize(if g.key.is_empty() { "-" } else { &g.key }), 44),
            g.count,
            g.blocking,
            g.ignored,
            worst,
            g.first_seen.as_deref().unwrap_or("-"),
            g.last_seen.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            o,
            "{}",
            if g.blocking > 0 {
                paint(&row, g.worst, style.color)
            } else {
                row
            }
        );
    }
}

fn namespaces_table(o: &mut String, r: &CheckResult, style: Style) {
    let _ = writeln!(
        o,
        "  {:<40} {:>7} {:>8} {:>7}  {:<13}",
        "NAMESPACE", "ALERTS", "BLOCKING", "IGNORED", "WORST"
    );
    for n in &r.namespaces {
        let row = format!(
            "  {:<40} {:>7} {:>8} {:>7}  {:<13}",
            truncate(&neutralize(&n.namespace), 40),
            n.alert_count,
            n.blocking_count,
            n.ignored_count,
            n.worst.map_or("OTHER", |p| p.as_upper())
        );
        let _ = writeln!(
            o,
            "{}",
            if n.blocking_count > 0 {
                paint(&row, n.worst, style.color)
            } else {
                row
            }
        );
    }
    if r.namespaces.is_empty() {
        let _ = writeln!(o, "  (no alert for any namespace in the window)");
    }
    o.push('\n');
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

fn alert_line(o: &mut String, a: &Alert, style: Style) {
    let prio = paint(
        &format!("{:<13}", neutralize(&a.priority.to_uppercase())),
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
        "  {}{}  {}  {}  [{}]",
        if a.ignored { "(ignored) " } else { "" },
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
    for w in &r.warnings {
        let label = if color {
            "warning:".yellow().bold().to_string()
        } else {
            "warning:".to_string()
        };
        let _ = writeln!(o, "{label} {}", neutralize(w));
    }
    o
}

/// The YAML view: the same document as JSON. YAML has no escape that every emitter uses for
/// bidi controls, so on a terminal (`tty`) strings are neutralized (visible escapes, as in
/// text output); on a pipe the data goes out exactly.
pub fn yaml(r: &CheckResult, tty: bool) -> String {
    let rendered = if tty {
        serde_json::to_value(r).map(|mut v| {
            neutralize_strings(&mut v);
            serde_saphyr::to_string(&v)
        })
    } else {
        Ok(serde_saphyr::to_string(r))
    };
    match rendered {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => format!("tool: falco\nerror: {:?}\n", e.to_string()),
        Err(e) => format!("tool: falco\nerror: {:?}\n", e.to_string()),
    }
}

fn neutralize_strings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = neutralize(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(neutralize_strings),
        serde_json::Value::Object(m) => m.values_mut().for_each(neutralize_strings),
        _ => {}
    }
}

/// The JSON view: one object, the seed's result structure plus our fields.
pub fn json(r: &CheckResult) -> String {
    let mut out = Vec::with_capacity(4096);
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        TerminalSafe(serde_json::ser::PrettyFormatter::new()),
    );
    // Serializing plain data cannot fail; fall back to a minimal object rather than panic.
    match serde::Serialize::serialize(r, &mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(e) => format!("{{\"tool\":\"falco\",\"error\":{:?}}}", e.to_string()),
    }
}

/// Would a terminal act on this character (C1 controls, bidi, zero-width)? serde_json already
/// escapes C0 controls; these it writes raw, which is valid JSON but unsafe on a terminal.
fn unsafe_on_terminal(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}' | '\u{feff}')
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

/// Live view (`--watch`): one alert as it arrives.
pub fn live_alert(a: &Alert, style: Style) -> String {
    let mut o = String::new();
    alert_line(&mut o, a, style);
    o
}

/// Live view: the status line (no newline), redrawn in place on a terminal.
pub fn live_status(
    summary: &crate::verdict::Summary,
    following: usize,
    ended: usize,
    elapsed: std::time::Duration,
    style: Style,
) -> String {
    let mut parts = Vec::new();
    for p in Priority::ALL {
        let n = summary.get(p);
        let cell = format!("{} {n}", &p.as_upper()[..4]);
        parts.push(if n > 0 {
            paint(&cell, Some(p), style.color)
        } else {
            cell
        });
    }
    if summary.other > 0 {
        parts.push(format!("OTHER {}", summary.other));
    }
    let secs = elapsed.as_secs();
    format!(
        "watching {following} Falco pod(s){} | {} | {:02}:{:02}:{:02}",
        if ended > 0 {
            format!(", {ended} ended")
        } else {
            String::new()
        },
        parts.join(" "),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Progress while reading pods (terminal only).
pub fn progress_line(done: usize, total: usize, bytes: u64) -> String {
    format!(
        "reading Falco logs: {done}/{total} pod(s), {:.1} MiB",
        bytes as f64 / (1024.0 * 1024.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_a_terminal_would_act_on() {
        let r = crate::verdict::conclude(
            crate::verdict::Echo {
                namespace: "n\u{202e}s\u{9b}x".into(),
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
            },
            crate::verdict::Findings {
                tally: crate::verdict::Tally::new(
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
                pods: vec![],
                raw_lines: 0,
                parsed_records: 0,
                skipped: None,
                disabled: false,
                scope: None,
                warnings: vec![],
            },
        );
        let j = json(&r);
        assert!(!j.contains('\u{202e}') && !j.contains('\u{9b}'), "{j}");
        assert!(j.contains("\\u202e") && j.contains("\\u009b"), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
        assert_eq!(
            v["namespace_filter"], "n\u{202e}s\u{9b}x",
            "same value, escaped"
        );
    }

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
