//! The live view of `--watch` / `--for`: the header, alerts as they arrive (marked: what blocks
//! and what does not), the status line fitted to the terminal, progress.

use chrono::{DateTime, SecondsFormat, Utc};

use super::text::{alert_line, paint};
use super::Style;
use crate::falco::Priority;
use crate::sanitize::neutralize;
use crate::verdict::Alert;

/// What the status line counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveCounts {
    pub blocking: u64,
    pub below: u64,
    pub ignored: u64,
    pub worst: Option<Priority>,
    pub following: usize,
    pub ended: usize,
}

impl LiveCounts {
    pub fn add(&mut self, a: &Alert) {
        if a.ignored {
            self.ignored += 1;
        } else if a.blocking {
            self.blocking += 1;
        } else {
            self.below += 1;
        }
        if let Some(p) = a.level {
            if self.worst.is_none_or(|w| p.rank() < w.rank()) {
                self.worst = Some(p);
            }
        }
    }
}

/// The first line of `--watch`: what is watched, at which threshold, until when.
pub fn header(
    what: &str,
    threshold: Priority,
    selector: &str,
    falco_namespace: &str,
    until: Option<DateTime<Utc>>,
) -> String {
    format!(
        "Watching Falco alerts for {} at or above {} (Falco pods {} in {}), {}\n",
        neutralize(what),
        threshold.as_upper(),
        neutralize(selector),
        neutralize(falco_namespace),
        match until {
            Some(t) => format!("until {}", t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            None => "until Ctrl-C".to_string(),
        }
    )
}

/// One alert as it arrives: `BLOCKS`, `below` or `ignored`, then the alert.
pub fn live_alert(a: &Alert, style: Style) -> String {
    let mut line = String::new();
    alert_line(&mut line, a, style);
    let marker = if a.ignored {
        "ignored"
    } else if a.blocking {
        "BLOCKS "
    } else {
        "below  "
    };
    let marker = if a.blocking && !a.ignored {
        paint(marker, Some(Priority::Critical), style.color)
    } else {
        marker.to_string()
    };
    // alert_line starts with two spaces (and "(ignored) " for ignored alerts): the marker
    // takes their place.
    let rest = line.trim_start_matches(' ');
    let rest = rest.strip_prefix("(ignored) ").unwrap_or(rest);
    format!("{marker} {rest}")
}

/// The status line (no newline), at most `width - 1` columns so that a redraw never wraps.
pub fn live_status(
    counts: &LiveCounts,
    threshold: Priority,
    elapsed: std::time::Duration,
    width: usize,
    style: Style,
) -> String {
    let secs = elapsed.as_secs();
    let clock = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let pods = if counts.ended > 0 {
        format!(
            "watching {} Falco pod(s), {} ended",
            counts.following, counts.ended
        )
    } else {
        format!("watching {} Falco pod(s)", counts.following)
    };
    let blocking = format!("{} blocking (>= {})", counts.blocking, threshold.as_upper());
    let below = if counts.ignored > 0 {
        format!("{} below, {} ignored", counts.below, counts.ignored)
    } else {
        format!("{} below", counts.below)
    };
    let worst = counts
        .worst
        .map(|w| format!("worst {}", w.as_upper()))
        .unwrap_or_default();
    // Longest first; parts drop from the end of this list until the line fits.
    let candidates: [Vec<&str>; 4] = [
        vec![&pods, &blocking, &below, &worst, &clock],
        vec![&pods, &blocking, &below, &clock],
        vec![&pods, &blocking, &clock],
        vec![&blocking, &clock],
    ];
    let limit = width.saturating_sub(1).max(10);
    let join = |parts: &[&str]| {
        parts
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let plain = candidates
        .iter()
        .map(|c| join(c))
        .find(|l| l.chars().count() <= limit)
        .unwrap_or_else(|| join(&candidates[3]).chars().take(limit).collect());
    if style.color && counts.blocking > 0 {
        plain.replacen(
            &blocking,
            &paint(&blocking, Some(Priority::Critical), true),
            1,
        )
    } else {
        plain
    }
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
    fn status_fits_every_width() {
        let counts = LiveCounts {
            blocking: 12,
            below: 345,
            ignored: 6,
            worst: Some(Priority::Critical),
            following: 48,
            ended: 2,
        };
        for width in [20, 40, 60, 80, 100, 200] {
            let line = live_status(
                &counts,
                Priority::Warning,
                std::time::Duration::from_secs(3725),
                width,
                Style::default(),
            );
            assert!(line.chars().count() < width.max(11), "{width}: {line}");
            assert!(
                line.contains("12 blocking") || width < 30,
                "{width}: {line}"
            );
        }
        let wide = live_status(
            &counts,
            Priority::Warning,
            std::time::Duration::from_secs(3725),
            200,
            Style::default(),
        );
        assert_eq!(
            wide,
            "watching 48 Falco pod(s), 2 ended | 12 blocking (>= WARNING) | 345 below, 6 ignored | worst CRITICAL | 01:02:05"
        );
    }
}
