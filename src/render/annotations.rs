//! GitHub Actions workflow commands: `::error` per blocking alert (capped, then one line for
//! the rest), `::warning` per coverage gap, and a `::notice` with the verdict. Escaped as GitHub
//! documents: `%`, CR and LF in the message; also `:` and `,` in properties.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::sanitize::neutralize;
use crate::verdict::CheckResult;

/// Blocking alerts annotated one by one; the rest get one line.
pub const MAX_ALERT_ANNOTATIONS: usize = 10;

/// The message part of a workflow command.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value (`title=...`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Untrusted text made one safe line, then escaped.
fn data(s: &str) -> String {
    escape_data(&neutralize(s))
}

fn property(s: &str) -> String {
    escape_property(&neutralize(s))
}

pub fn write(w: &mut dyn Write, r: &CheckResult) -> io::Result<()> {
    w.write_all(to_string(r).as_bytes())
}

pub fn to_string(r: &CheckResult) -> String {
    let mut o = String::new();
    let blocking: Vec<_> = r.alerts.iter().filter(|a| a.blocking).collect();
    for a in blocking.iter().take(MAX_ALERT_ANNOTATIONS) {
        let title = format!(
            "Falco {}: {}",
            a.priority,
            a.rule.as_deref().unwrap_or("alert")
        );
        let place = [
            a.workload.pod.as_deref().map(|p| format!("pod {p}")),
            a.workload
                .container
                .as_deref()
                .map(|c| format!("container {c}")),
            a.workload.image.as_deref().map(|i| format!("image {i}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let _ = writeln!(
            o,
            "::error title={}::{}",
            property(&title),
            data(&format!(
                "{} {}{}: {}",
                a.time.as_deref().unwrap_or("(no date)"),
                a.namespace.as_deref().unwrap_or(""),
                if place.is_empty() {
                    String::new()
                } else {
                    format!(" ({place})")
                },
                a.output.as_deref().unwrap_or("")
            ))
        );
    }
    let rest = r
        .blocking_count
        .saturating_sub(blocking.len().min(MAX_ALERT_ANNOTATIONS) as u64);
    if rest > 0 {
        let _ = writeln!(
            o,
            "::error title={}::{}",
            property("Falco: more blocking alerts"),
            data(&format!(
                "{rest} more blocking alert(s); see the job summary or the report"
            ))
        );
    }
    for p in &r.pods {
        for g in &p.gaps {
            let _ = writeln!(
                o,
                "::warning title={}::{}",
                property(&format!("Falco coverage gap: {}", g.kind)),
                data(&format!("{}: {}", p.name, g.message))
            );
        }
    }
    let _ = writeln!(
        o,
        "::notice title={}::{}",
        property(&format!("Falco check {}", r.verdict.as_upper())),
        data(
            r.reason
                .as_deref()
                .unwrap_or("no blocking alert; every source covered")
        )
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_github_documents() {
        assert_eq!(escape_data("50% done\r\n::x"), "50%25 done%0D%0A::x");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
        // A forged command inside alert text stays inside the message.
        assert_eq!(data("x\n::error::forged"), "x\\n::error::forged");
    }
}
