//! Files and stdin (`--logs`): each is one source, decoded as it is read, side by side.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::io::Read;

use tokio::sync::mpsc;

use super::{gather, judge_unlabelled, keep_falco_facts, note_stats, SourceRead, Stop, StopSignal};
use crate::falco::Decoder;
use crate::verdict::{
    AlertFilter, AlertList, CoverageMode, Findings, Gap, GapKind, Ledger, LogOrigin, NodeCoverage,
    PodReport, Tally,
};

/// How a source is named in reports: the path, or `(stdin)` for `-`.
pub fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "(stdin)".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads every file (and stdin) to its end, or until the stop.
pub async fn read(
    paths: &[PathBuf],
    filter: &Arc<AlertFilter>,
    alerts: &AlertList,
    max_line: usize,
    stop: &StopSignal,
) -> Findings {
    let mut tasks = Vec::new();
    for path in paths {
        let origin = LogOrigin {
            pod: Some(path.display().to_string()),
            node: None,
            container: None,
        };
        let tally = Tally::with_alerts(filter.clone(), origin, alerts.clone());
        let (path, stop) = (path.clone(), stop.clone());
        tasks.push((
            display_name(&path),
            tokio::spawn(async move { read_one(&path, tally, max_line, stop).await }),
        ));
    }
    let tally = Tally::with_alerts(filter.clone(), LogOrigin::default(), alerts.clone());
    let mut findings = Findings::new(tally, NodeCoverage::new(CoverageMode::Offline));
    gather(&mut findings, tasks, None).await;
    // Offline there is no map of nodes: every input may hold the namespace's node.
    judge_unlabelled(&mut findings, filter, None);
    findings
}

async fn read_one(path: &Path, tally: Tally, max_line: usize, mut stop: StopSignal) -> SourceRead {
    let name = display_name(path);
    let mut ledger = Ledger::default();
    let mut warnings = Vec::new();
    let mut report = PodReport {
        name: name.clone(),
        ..PodReport::default()
    };
    let reader: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        match std::fs::File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                ledger.open(Gap::new(
                    GapKind::Unreadable,
                    format!("cannot read {name}: {e}"),
                ));
                return SourceRead {
                    tally,
                    report: PodReport {
                        gaps: ledger.into_gaps(),
                        ..report
                    },
                    parsed: 0,
                    warnings,
                };
            }
        }
    };
    let mut chunks = read_ahead(reader);
    // No date is made up from the window: text alerts are dated by the input's own lines.
    let mut decoder = Decoder::with_max_line(tally, max_line);
    loop {
        // Stdin may block for ever: a stop must not wait for it.
        let next = tokio::select! {
            c = chunks.full.recv() => c,
            s = stop.wait() => {
                let why = match s {
                    Stop::Interrupted => "stopped by a signal",
                    Stop::WindowEnd => "stopped",
                };
                ledger.open(Gap::new(
                    GapKind::StoppedEarly,
                    format!("{why} before {name} was read to its end ({} bytes read)", report.bytes_read),
                ));
                break;
            }
        };
        match next {
            None => break,
            Some(Ok(buf)) => {
                report.bytes_read += buf.len() as u64;
                decoder.feed(&buf);
                // The buffer goes back to the reader thread; gone when it has ended.
                let _ = chunks.empty.try_send(buf);
            }
            Some(Err(e)) => {
                ledger.open(Gap::new(
                    GapKind::Unreadable,
                    format!(
                        "reading {name} failed after {} bytes: {e}",
                        report.bytes_read
                    ),
                ));
                break;
            }
        }
    }
    let (tally, stats) = decoder.finish();
    note_stats(&stats, &mut report, &mut ledger, &mut warnings);
    keep_falco_facts(&tally, &mut report);
    if report.bytes_read == 0 && ledger.is_closed() {
        ledger.open(Gap::new(
            GapKind::NotUnderstood,
            format!("{name} is empty: nothing was read (did the command that saved it fail?)"),
        ));
    }
    SourceRead {
        tally,
        report: PodReport {
            gaps: ledger.into_gaps(),
            ..report
        },
        parsed: stats.parsed,
        warnings,
    }
}

/// Chunks read ahead by a thread of their own, and the buffers going back to it.
struct ReadAhead {
    full: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    empty: mpsc::Sender<Vec<u8>>,
}

const CHUNK: usize = 256 * 1024;
/// Chunks in flight: reading and decoding overlap, memory stays bounded.
const AHEAD: usize = 4;

/// Reads `reader` on a plain thread (a blocking `read` of stdin must not hold a runtime thread,
/// and a file is read while the last chunk is decoded) until its end, an error, or the receiver
/// is gone.
fn read_ahead(mut reader: Box<dyn Read + Send>) -> ReadAhead {
    let (full_tx, full) = mpsc::channel(AHEAD);
    let (empty, mut empty_rx) = mpsc::channel::<Vec<u8>>(AHEAD);
    std::thread::spawn(move || loop {
        let mut buf = empty_rx.try_recv().unwrap_or_default();
        buf.resize(CHUNK, 0);
        let n = match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = full_tx.blocking_send(Err(e));
                return;
            }
        };
        buf.truncate(n);
        if full_tx.blocking_send(Ok(buf)).is_err() {
            return;
        }
    });
    ReadAhead { full, empty }
}
