//! The Markdown view (`-o markdown`, `--report markdown=PATH`, the GitHub job summary):
//! verdict, per-priority table, blocking alerts, coverage of each source.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::falco::Priority;
use crate::sanitize::neutralize;
use crate::verdict::{CheckResult, Verdict};

/// Table cell text: neutralized, with the characters Markdown would act on escaped, so that
/// alert text cannot break the table, add links or images, or inject HTML.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in neutralize(s).chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// How many blocking alerts are listed; the rest are counted.
const LISTED: usize = 50;

/// Writes the Markdown report.
pub fn write(w: &mut dyn Write, r: &CheckResult) -> io::Result<()> {
    w.write_all(to_string(r).as_bytes())
}

pub fn to_string(r: &CheckResult) -> String {
    let mut o = String::new();
    let icon = match r.verdict {
        Verdict::Passed => "✅",
        Verdict::Blocked => "❌",
        Verdict::Skipped | Verdict::Incomplete => "⚠️",
    };
    let scope = r.scope_of.label().to_string();
    let _ = writeln!(o, "### {icon} Falco check: {}\n", r.verdict.as_upper());
    let _ = writeln!(
        o,
        "Falco alerts for {scope} from {} to {}, threshold **{}**.\n",
        r.since_timestamp,
        r.window_end,
        r.severity_threshold.as_upper()
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(o, "> {}\n", cell(reason));
    }
    if r.verdict != Verdict::Skipped {
        let _ = writeln!(o, "| priority | alerts |\n|---|---:|");
        for p in Priority::ALL {
            let n = r.summary.get(p);
            let name = if p.at_least(r.severity_threshold) {
                format!("**{}**", p.as_falco_str())
            } else {
                p.as_falco_str().to_string()
            };
            let _ = writeln!(o, "| {name} | {n} |");
        }
        if r.summary.other > 0 {
            let _ = writeln!(o, "| other | {} |", r.summary.other);
        }
        if r.ignored_count > 0 {
            let _ = writeln!(o, "| ignored (accepted noise) | {} |", r.ignored_count);
        }
        o.push('\n');
    }
    let blocking: Vec<_> = r.alerts.iter().filter(|a| a.blocking).collect();
    if !blocking.is_empty() {
        let _ = writeln!(o, "#### Blocking alerts ({})\n", r.blocking_count);
        let _ = writeln!(
            o,
            "| time | priority | rule | pod | container | image |\n|---|---|---|---|---|---|"
        );
        for a in blocking.iter().take(LISTED) {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                cell(a.time.as_deref().unwrap_or("(no date)")),
                cell(&a.priority),
                cell(a.rule.as_deref().unwrap_or("-")),
                cell(a.workload.pod.as_deref().unwrap_or("-")),
                cell(a.workload.container.as_deref().unwrap_or("-")),
                cell(a.workload.image.as_deref().unwrap_or("-")),
            );
        }
        let more = r
            .blocking_count
            .saturating_sub(blocking.len().min(LISTED) as u64);
        if more > 0 {
            let _ = writeln!(o, "\n{more} more blocking alert(s) not listed.");
        }
        o.push('\n');
    }
    if !r.pods.is_empty() {
        let read = r.pods.iter().filter(|p| p.is_closed()).count();
        let _ = writeln!(
            o,
            "#### Coverage: {read}/{} source(s) read for the whole window\n",
            r.pods.len()
        );
        let _ = writeln!(
            o,
            "| source | node | lines | coverage |\n|---|---|---:|---|"
        );
        for p in &r.pods {
            let coverage = if p.is_closed() {
                "covered".to_string()
            } else {
                p.gaps
                    .iter()
                    .map(|g| format!("**{}**: {}", g.kind, cell(&g.message)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {coverage} |",
                cell(&p.name),
                cell(p.node.as_deref().unwrap_or("-")),
                p.lines_read
            );
        }
        o.push('\n');
    }
    let nodes = &r.node_coverage;
    for g in &nodes.gaps {
        let _ = writeln!(o, "**{}**: {}\n", g.kind, cell(&g.message));
    }
    if !nodes.nodes.is_empty() {
        let _ = writeln!(
            o,
            "#### Nodes where {} ran: {}/{} watched by Falco\n",
            cell(&r.namespace_filter),
            nodes.covered(),
            nodes.nodes.len()
        );
        let _ = writeln!(
            o,
            "| node | pods of the namespace | Falco pod | read | coverage |\n|---|---|---|---|---|"
        );
        for n in &nodes.nodes {
            let coverage = if n.covered {
                "covered".to_string()
            } else {
                n.gaps
                    .iter()
                    .map(|g| format!("**{}**: {}", g.kind, cell(&g.message)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            let read = match (&n.read_from, &n.read_to) {
                (Some(f), Some(t)) => format!("{f}..{t}"),
                _ => "-".to_string(),
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {read} | {coverage} |",
                cell(&n.node),
                cell(&n.namespace_pods.join(", ")),
                cell(n.falco_pod.as_deref().unwrap_or("-")),
            );
        }
        o.push('\n');
    }
    let mut facts = vec![format!("falco-verify {}", r.tool_version)];
    if let Some(c) = &r.context {
        facts.push(format!("context {}", cell(c)));
    }
    if !r.falco_versions.is_empty() {
        facts.push(format!("Falco {}", cell(&r.falco_versions.join(", "))));
    }
    let _ = writeln!(o, "<sub>{}</sub>", facts.join(" · "));
    o
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_cannot_break_the_table_or_inject() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(cell("<img src=x>"), "\\<img src=x\\>");
        assert_eq!(cell("[x](http://e)"), "\\[x\\](http://e)");
        assert_eq!(cell("l1\nl2"), "l1\\\\nl2");
    }
}
