//! The live view of `--watch` / `--for`: alerts as they arrive, the status line, progress.

use super::text::{alert_line, paint};
use super::Style;
use crate::falco::Priority;
use crate::verdict::Alert;

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
