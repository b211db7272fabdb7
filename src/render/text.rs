//! The human view of a result: header, per-priority table, breakdowns, blocking alerts,
//! coverage of each source, verdict line; and the warnings for stderr.

use std::fmt::Write as _;
use std::io::{self, Write};

use owo_colors::OwoColorize;

use super::Style;
use crate::falco::Priority;
use crate::sanitize::neutralize;
use crate::verdict::breakdown::sparkline;
use crate::verdict::{Alert, CheckResult, CoverageMode, Verdict};

/// Writes the human view.
pub fn write(w: &mut dyn Write, r: &CheckResult, style: Style) -> io::Result<()> {
    w.write_all(text(r, style).as_bytes())
}

/// Writes the warnings, one per line, neutralized (for stderr).
pub fn write_warnings(w: &mut dyn Write, r: &CheckResult, color: bool) -> io::Result<()> {
    w.write_all(warnings(r, color).as_bytes())
}

pub(crate) fn paint(text: &str, p: Option<Priority>, color: bool) -> String {
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

/// The window's length as a person reads it: minutes, then hours, then days.
fn span(minutes: u64) -> String {
    match minutes {
        0..120 => format!("{minutes} min"),
        120..2880 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ => format!("{} days", minutes / 1440),
    }
}

/// The human view: header, per-priority table, blocking alerts, verdict line.
fn text(r: &CheckResult, style: Style) -> String {
    let mut o = String::new();
    let read = r.pods.iter().filter(|p| p.is_closed()).count();
    let noun = r.input.read_noun();
    // A match, not a test for one kind: a new kind of input must say how its sources are named.
    let sources = match r.input {
        crate::verdict::InputKind::Logs => format!("{read}/{} {noun} read", r.pods.len()),
        crate::verdict::InputKind::Cluster => format!(
            "{read}/{} {noun} read ({} in {})",
            r.pods.len(),
            neutralize(&r.label_selector),
            neutralize(&r.falco_namespace)
        ),
    };
    let _ = writeln!(
        o,
        "Falco alerts for {} since {} ({}), threshold {}, {sources}",
        neutralize(&r.scope_of.describe()),
        r.since_timestamp,
        span(r.since_minutes),
        r.severity_threshold.as_upper(),
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
        if style.streamed {
            if r.blocking_count > 0 {
                let _ = writeln!(
                    o,
                    "\n{} blocking alert(s), shown above (BLOCKS) as they arrived",
                    r.blocking_count
                );
            }
        } else if !blocking.is_empty() {
            let _ = writeln!(o, "\nBlocking alerts ({}):", r.blocking_count);
            for a in blocking {
                alert_line(&mut o, a, style);
            }
        }
        if r.alerts_omitted > 0 && !style.streamed {
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
        if style.wide || r.pods.iter().any(|p| !p.is_closed()) {
            let heading = r.input.heading();
            let _ = writeln!(o, "\n{heading} (coverage):");
            for p in &r.pods {
                let _ = writeln!(
                    o,
                    "  {:<40} {:<20} {:<10} {:>10} lines  {}",
                    neutralize(&p.name),
                    neutralize(p.node.as_deref().unwrap_or("-")),
                    neutralize(p.container.as_deref().unwrap_or("-")),
                    p.lines_read,
                    if p.is_closed() { "covered" } else { "GAPS" }
                );
                for g in &p.gaps {
                    let _ = writeln!(o, "      {}: {}", g.kind, neutralize(&g.message));
                }
                if let (true, Some(m)) = (style.wide, &p.falco_metrics) {
                    let _ = writeln!(
                        o,
                        "      Falco metrics snapshot at {}: {} event(s) dropped{}",
                        m.time.as_deref().unwrap_or("(no time)"),
                        m.metrics.n_drops.map_or("?".to_string(), |d| d.to_string()),
                        m.metrics
                            .n_drops_perc
                            .map(|p| format!(" ({p}%)"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        node_table(&mut o, r);
        canary_section(&mut o, r);
    }
    o.push('\n');
    let word = verdict_word(r.verdict, style.color);
    let line = match r.verdict {
        Verdict::Passed => format!(
            "{word}: {}no Falco alert at or above {} {} ({} below the threshold{})",
            watched(r),
            r.severity_threshold.as_upper(),
            neutralize(&r.scope_of.whose()),
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

/// What a PASSED proves about Falco watching the namespace.
fn watched(r: &CheckResult) -> String {
    let c = &r.node_coverage;
    match c.mode {
        CoverageMode::Nodes if c.mapped && !c.nodes.is_empty() => {
            let canary = r
                .canary
                .as_ref()
                .map(|k| {
                    let (seen, all) = k.seen();
                    format!(" (canary seen on {seen}/{all})")
                })
                .unwrap_or_default();
            format!(
                "Falco watched {} on {} node(s){canary}; ",
                neutralize(&r.namespace_filter),
                c.nodes.len()
            )
        }
        _ => String::new(),
    }
}

/// The canaries (`--canary`) and the canary alerts found: expected, never counted.
fn canary_section(o: &mut String, r: &CheckResult) {
    if let Some(k) = &r.canary {
        let (seen, all) = k.seen();
        let _ = writeln!(
            o,
            "\nCanary {} ({}, rule {:?}): seen on {seen}/{all}",
            neutralize(&k.nonce),
            neutralize(&k.image),
            neutralize(&k.rule)
        );
        for n in &k.nodes {
            let _ = writeln!(
                o,
                "  {:<6} {:<24} {:<34} {:<16} {}",
                n.round,
                truncate(&neutralize(n.node.as_deref().unwrap_or("-")), 24),
                truncate(&neutralize(&n.pod), 34),
                n.outcome.as_str(),
                neutralize(&n.message)
            );
        }
    }
    if !r.canary_alerts.is_empty() {
        let _ = writeln!(
            o,
            "\n{} canary alert(s) in the window (expected: listed, never counted)",
            r.canary_alerts.len()
        );
    }
}

/// Where the namespace ran and which Falco pod watched each node.
fn node_table(o: &mut String, r: &CheckResult) {
    let c = &r.node_coverage;
    let ns = neutralize(&r.namespace_filter);
    match c.mode {
        CoverageMode::Offline => {
            let _ = writeln!(
                o,
                "\nNode coverage: offline input, no node map (every input counts as a node where {ns} ran)"
            );
            return;
        }
        CoverageMode::Off if !r.all_namespaces => {
            let _ = writeln!(
                o,
                "\nNode coverage: off (--node-coverage=false): Falco pods only"
            );
            return;
        }
        CoverageMode::Off => return,
        CoverageMode::Nodes => {}
    }
    for g in &c.gaps {
        let _ = writeln!(o, "\nNode coverage: {}: {}", g.kind, neutralize(&g.message));
    }
    if !c.mapped {
        return;
    }
    if c.nodes.is_empty() {
        let _ = writeln!(
            o,
            "\nNode coverage: no pod of {ns} ran on any node in the window"
        );
        return;
    }
    let _ = writeln!(
        o,
        "\nNodes where {ns} ran ({}/{} watched):",
        c.covered(),
        c.nodes.len()
    );
    let _ = writeln!(
        o,
        "  {:<24} {:<28} {:<28} {:<41} {:<15} STATUS",
        "NODE", "PODS OF NAMESPACE", "FALCO POD", "READ", "CANARY"
    );
    for n in &c.nodes {
        let read = match (&n.read_from, &n.read_to) {
            (Some(f), Some(t)) => format!("{f}..{t}"),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            o,
            "  {:<24} {:<28} {:<28} {:<41} {:<15} {}",
            truncate(&neutralize(&n.node), 24),
            truncate(&neutralize(&n.namespace_pods.join(",")), 28),
            truncate(&neutralize(n.falco_pod.as_deref().unwrap_or("-")), 28),
            read,
            neutralize(n.canary.as_deref().unwrap_or("-")),
            if n.covered { "covered" } else { "GAPS" }
        );
        for g in &n.own_gaps {
            let _ = writeln!(o, "      {}: {}", g.kind, neutralize(&g.message));
        }
    }
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

pub(crate) fn alert_line(o: &mut String, a: &Alert, style: Style) {
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
        // A CI runner takes a line starting with `::` (after spaces) as a workflow command.
        if shown.trim_start().starts_with("::") {
            shown = format!("(output) {shown}");
        }
        let _ = writeln!(o, "      {shown}");
    }
}

/// Warnings for stderr, one per line, neutralized.
fn warnings(r: &CheckResult, color: bool) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_minutes_hours_or_days() {
        for (m, want) in [
            (0, "0 min"),
            (119, "119 min"),
            (120, "2 h 0 min"),
            (1501, "25 h 1 min"),
            (2880, "2 days"),
            (1_521_216, "1056 days"),
        ] {
            assert_eq!(span(m), want);
        }
    }
}
