//! Fuzzes `falco_verify::falco::Decoder` with a `verdict::Tally` sink: arbitrary bytes, fed in
//! arbitrary chunks, under an arbitrary line limit and threshold.
//!
//! Beyond "no panic, no hang, bounded memory", it checks two properties:
//! - the outcome (counts, alerts, statistics) is the same whether the log is fed whole or in the
//!   chunks the input picks;
//! - every alert's text, as the text output shows it (`render::neutralize`), holds no control,
//!   bidi or zero-width character.
#![no_main]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use falco_verify::falco::{DecodeStats, Decoder, Priority};
use falco_verify::render::neutralize;
use falco_verify::verdict::{Alert, AlertFilter, LogOrigin, Summary, Tally, Window};
use libfuzzer_sys::fuzz_target;

/// The namespace the filter looks for (`decode.dict` and the seed in README.md name it).
const NS: &str = "shadow-abc123";

#[derive(Debug, PartialEq)]
struct Outcome {
    summary: Summary,
    blocking: u64,
    outside_window: u64,
    undated: u64,
    syscall_drops: u64,
    alerts: Vec<Alert>,
    omitted: u64,
    stats: DecodeStats,
}

fn decode(log: &[u8], chunks: &[usize], threshold: Priority, max_line: usize) -> Outcome {
    let (start, tally) = start_and_tally(threshold);
    let mut decoder = Decoder::with_max_line(tally, max_line);
    decoder.set_reference(start);
    let mut rest = log;
    for &n in chunks {
        let n = n.min(rest.len());
        let (now, later) = rest.split_at(n);
        decoder.feed(now);
        rest = later;
    }
    decoder.feed(rest);
    outcome(decoder)
}

/// What a decoder ended with, as the properties compare it.
fn outcome(decoder: Decoder<Tally>) -> Outcome {
    let (t, stats) = decoder.finish();
    let (alerts, omitted) = t.alerts.into_sorted();
    Outcome {
        summary: t.summary,
        blocking: t.blocking,
        outside_window: t.outside_window,
        undated: t.undated,
        syscall_drops: t.syscall_drops,
        alerts,
        omitted,
        stats,
    }
}

/// The window start every input is checked from, and an empty tally counting for `NS`.
fn start_and_tally(threshold: Priority) -> (chrono::DateTime<Utc>, Tally) {
    let start = Utc
        .with_ymd_and_hms(2024, 1, 15, 10, 30, 0)
        .single()
        .unwrap_or_default();
    let filter = Arc::new(AlertFilter::new(NS, Window { start, end: None }, threshold));
    // A small alert list: the bounded list's replacement logic is exercised too.
    (start, Tally::new(filter, LogOrigin::default(), 8))
}

/// The log cut at the first line boundary at or after `at`, its halves decoded apart and joined
/// as a large file is (or, join refused, the second half fed again to the first's decoder).
fn decode_halves(log: &[u8], at: usize, threshold: Priority, max_line: usize) -> Option<Outcome> {
    let cut = log.get(at..)?.iter().position(|&b| b == b'\n')? + at + 1;
    let (start, tally) = start_and_tally(threshold);
    let mut second = Decoder::with_max_line(tally.detached(), max_line);
    let mut first = Decoder::with_max_line(tally, max_line);
    first.set_reference(start);
    first.feed(&log[..cut]);
    second.feed(&log[cut..]);
    let decoder = match first.join(second, |a, b| a.merge(b)) {
        Ok(d) => d,
        Err(refused) => {
            let mut first = refused.first;
            first.feed(&log[cut..]);
            first
        }
    };
    Some(outcome(decoder))
}

fn terminal_safe(s: &str) -> bool {
    !s.chars().any(|c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}' | '\u{feff}')
    })
}

fuzz_target!(|data: &[u8]| {
    // Four header bytes: line limit, threshold, chunking seed; then the log.
    let Some((head, log)) = data.split_first_chunk::<4>() else {
        return;
    };
    let max_line = 64 + usize::from(head[0]) * 61;
    let threshold = Priority::ALL[usize::from(head[1]) % Priority::ALL.len()];
    // Chunk sizes from a xorshift sequence: 1 to 1 + 4 * head[3] bytes.
    let mut x = u32::from(u16::from_le_bytes([head[2], head[3]])) | 1;
    let most = 1 + 4 * usize::from(head[3]);
    let mut chunks = Vec::new();
    let mut covered = 0;
    while covered < log.len() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = 1 + (x as usize) % most;
        chunks.push(n);
        covered += n;
    }
    let whole = decode(log, &[], threshold, max_line);
    let chunked = decode(log, &chunks, threshold, max_line);
    assert_eq!(whole, chunked, "chunk boundaries changed the outcome");
    // Cut where the chunking seed says, as a large file is cut in two halves.
    let at = log.len() * usize::from(head[2]) / 256;
    if let Some(halves) = decode_halves(log, at, threshold, max_line) {
        assert_eq!(whole, halves, "decoding in halves changed the outcome");
    }
    assert!(whole.stats.oversized <= whole.stats.lines);
    assert!(whole.summary.total() >= whole.blocking);
    for a in &whole.alerts {
        for text in [&a.output, &a.rule, &a.hostname].into_iter().flatten() {
            assert!(terminal_safe(&neutralize(text)), "{text:?}");
        }
        assert!(terminal_safe(&neutralize(&a.priority)));
    }
});
