//! The JUnit XML view (`-o junit`, `--report junit=PATH`): the shape Jenkins validates against
//! (`junit-10.xsd`) and GitLab's and GitHub's test reporters read. One testsuite for the check;
//! a testcase per rule with alerts (a failure when it blocks), and one per Falco source for its
//! coverage (an error when its ledger has a gap, skipped when the check was skipped).

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::sanitize::neutralize;
use crate::verdict::{CheckResult, Verdict};

/// XML text: neutralized (no control character survives; XML 1.0 forbids most of them even
/// escaped), then the five XML specials escaped.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in neutralize(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not in XML 1.0's Char production (controls are already escaped above).
            '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Writes the JUnit XML document.
pub fn write(w: &mut dyn Write, r: &CheckResult) -> io::Result<()> {
    w.write_all(to_string(r).as_bytes())
}

pub fn to_string(r: &CheckResult) -> String {
    let mut o = String::new();
    let scope = r.scope_of.label().to_string();
    let rules: Vec<_> = r.by_rule.iter().filter(|g| g.count > 0).collect();
    let skipped = r.verdict == Verdict::Skipped;
    let rule_failures = rules.iter().filter(|g| g.blocking > 0).count();
    // A blocking alert whose rule row was lost (a followed reader abandoned at the end) still
    // fails the suite.
    let orphan = r.verdict == Verdict::Blocked && rule_failures == 0;
    let failures = rule_failures + usize::from(orphan);
    // Node coverage: a testcase per node where the namespace ran, one for a map not made.
    let nodes = &r.node_coverage;
    let node_cases: Vec<(String, Vec<&crate::verdict::Gap>)> = if skipped {
        Vec::new()
    } else {
        nodes
            .gaps
            .iter()
            .map(|g| ("(node map)".to_string(), vec![g]))
            .chain(
                nodes
                    .nodes
                    .iter()
                    .map(|n| (n.node.clone(), n.gaps.iter().collect())),
            )
            .collect()
    };
    let errors = r.pods.iter().filter(|p| !p.is_closed()).count()
        + node_cases.iter().filter(|(_, g)| !g.is_empty()).count();
    let tests = rules.len()
        + r.pods.len().max(usize::from(skipped))
        + usize::from(orphan)
        + node_cases.len();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<testsuites name="falco-verify" tests="{tests}" failures="{failures}" errors="{errors}">"#
    );
    let _ = writeln!(
        o,
        r#"  <testsuite name="{}" tests="{tests}" failures="{failures}" errors="{errors}" skipped="{}" timestamp="{}">"#,
        xml(&format!(
            "falco-verify {scope} {}..{}",
            r.since_timestamp, r.window_end
        )),
        usize::from(skipped),
        xml(&r.window_end),
    );
    let _ = writeln!(o, "    <properties>");
    let props: [(&str, String); 9] = [
        ("verdict", r.verdict.as_upper().to_string()),
        ("threshold", r.severity_threshold.as_upper().to_string()),
        ("window_start", r.since_timestamp.clone()),
        ("window_end", r.window_end.clone()),
        ("namespace", scope.clone()),
        ("context", r.context.clone().unwrap_or_default()),
        ("server", r.server.clone().unwrap_or_default()),
        ("tool_version", r.tool_version.to_string()),
        ("falco_versions", r.falco_versions.join(", ")),
    ];
    for (name, value) in props {
        let _ = writeln!(
            o,
            r#"      <property name="{name}" value="{}"/>"#,
            xml(&value)
        );
    }
    let _ = writeln!(o, "    </properties>");
    for g in &rules {
        let name = if g.key.is_empty() {
            "(no rule)"
        } else {
            &g.key
        };
        let _ = write!(
            o,
            r#"    <testcase classname="falco.rules" name="{}""#,
            xml(name)
        );
        if g.blocking == 0 {
            let _ = writeln!(o, "/>");
            continue;
        }
        let worst = g.worst.map_or("unknown", |p| p.as_falco_str());
        let _ = writeln!(o, ">");
        let _ = write!(
            o,
            r#"      <failure type="FalcoAlert" message="{}">"#,
            xml(&format!(
                "{} alert(s), {} blocking (at or above {}), worst {worst}",
                g.count,
                g.blocking,
                r.severity_threshold.as_upper()
            ))
        );
        for a in r
            .alerts
            .iter()
            .filter(|a| a.rule.as_deref().unwrap_or("") == g.key && a.blocking)
        {
            let _ = writeln!(
                o,
                "{}",
                xml(&format!(
                    "{} {} pod={} container={} image={} | {}",
                    a.time.as_deref().unwrap_or("(no date)"),
                    a.priority,
                    a.workload.pod.as_deref().unwrap_or("-"),
                    a.workload.container.as_deref().unwrap_or("-"),
                    a.workload.image.as_deref().unwrap_or("-"),
                    a.output.as_deref().unwrap_or("")
                ))
            );
        }
        let _ = writeln!(o, "</failure>");
        let _ = writeln!(o, "    </testcase>");
    }
    if orphan {
        let _ = writeln!(
            o,
            r#"    <testcase classname="falco.rules" name="blocking alerts">"#
        );
        let _ = write!(
            o,
            r#"      <failure type="FalcoAlert" message="{}">"#,
            xml(&format!("{} blocking alert(s)", r.blocking_count))
        );
        for a in r.alerts.iter().filter(|a| a.blocking) {
            let _ = writeln!(
                o,
                "{}",
                xml(&format!(
                    "{} {} {} | {}",
                    a.time.as_deref().unwrap_or("(no date)"),
                    a.priority,
                    a.rule.as_deref().unwrap_or("-"),
                    a.output.as_deref().unwrap_or("")
                ))
            );
        }
        let _ = writeln!(o, "</failure>");
        let _ = writeln!(o, "    </testcase>");
    }
    if skipped && r.pods.is_empty() {
        let _ = writeln!(
            o,
            r#"    <testcase classname="falco.coverage" name="Falco sources">"#
        );
        let _ = writeln!(
            o,
            r#"      <skipped message="{}"/>"#,
            xml(r.reason.as_deref().unwrap_or("skipped"))
        );
        let _ = writeln!(o, "    </testcase>");
    }
    for p in &r.pods {
        let _ = write!(
            o,
            r#"    <testcase classname="falco.coverage" name="{}""#,
            xml(&p.name)
        );
        if skipped {
            let _ = writeln!(o, ">");
            let _ = writeln!(
                o,
                r#"      <skipped message="{}"/>"#,
                xml(r.reason.as_deref().unwrap_or("skipped"))
            );
            let _ = writeln!(o, "    </testcase>");
        } else if p.is_closed() {
            let _ = writeln!(o, "/>");
        } else {
            let _ = writeln!(o, ">");
            let kinds: Vec<&str> = p.gaps.iter().map(|g| g.kind.as_str()).collect();
            let _ = write!(
                o,
                r#"      <error type="CoverageGap" message="{}">"#,
                xml(&format!(
                    "not read for the whole window: {}",
                    kinds.join(", ")
                ))
            );
            for g in &p.gaps {
                let _ = writeln!(o, "{}", xml(&format!("{}: {}", g.kind, g.message)));
            }
            let _ = writeln!(o, "</error>");
            let _ = writeln!(o, "    </testcase>");
        }
    }
    for (node, gaps) in &node_cases {
        let _ = write!(
            o,
            r#"    <testcase classname="falco.nodes" name="{}""#,
            xml(node)
        );
        if gaps.is_empty() {
            let _ = writeln!(o, "/>");
            continue;
        }
        let _ = writeln!(o, ">");
        let kinds: Vec<&str> = gaps.iter().map(|g| g.kind.as_str()).collect();
        let _ = write!(
            o,
            r#"      <error type="NodeCoverageGap" message="{}">"#,
            xml(&format!(
                "not watched for the whole window: {}",
                kinds.join(", ")
            ))
        );
        for g in gaps {
            let _ = writeln!(o, "{}", xml(&format!("{}: {}", g.kind, g.message)));
        }
        let _ = writeln!(o, "</error>");
        let _ = writeln!(o, "    </testcase>");
    }
    let _ = writeln!(o, "  </testsuite>");
    let _ = writeln!(o, "</testsuites>");
    o
}

#[cfg(test)]
mod tests {
    use super::xml;

    #[test]
    fn xml_text_has_no_control_characters_or_markup() {
        let s = xml("a<b>&\"'\u{1b}[31m\u{0}\n\u{ffff}");
        assert_eq!(s, "a&lt;b&gt;&amp;&quot;&apos;\\x1b[31m\\x00\\n\\u{ffff}");
    }
}
