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

/// How long a FIFO given as `--logs` may wait for its writer before that is a usage error.
const FIFO_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// FIFOs opened while the arguments were checked, kept for the read: opened again after its
/// writer finished, a FIFO would wait for a writer that never comes (and closed in between, it
/// would end its writer with SIGPIPE).
static OPENED: std::sync::Mutex<Vec<(PathBuf, std::fs::File)>> = std::sync::Mutex::new(Vec::new());

/// Whether an input can be read, before any work (the arguments layer asks): a file, a pipe
/// (`<(kubectl logs ...)`), a named FIFO whose writer comes within [`FIFO_WAIT`], or /dev/null;
/// not a directory or another device. The error says what to give instead.
pub fn check_input(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    let kind = meta.file_type();
    if kind.is_dir() {
        let shown = crate::sanitize::neutralize(&path.display().to_string());
        return Err(format!(
            "is a directory: give the files in it (e.g. --logs {shown}/*.log)"
        ));
    }
    // /dev/null is an empty input, as in kubectl's `-f /dev/null`; other devices never end
    // (/dev/zero) or wait for a person (/dev/tty).
    let null = std::fs::canonicalize(path).is_ok_and(|p| p == Path::new("/dev/null"));
    if (kind.is_char_device() || kind.is_block_device()) && !null {
        return Err(
            "is a device, not Falco output: give a file, a pipe, or - for standard input"
                .to_string(),
        );
    }
    if !kind.is_fifo() {
        return std::fs::File::open(path)
            .map(drop)
            .map_err(|e| format!("cannot read it: {e}"));
    }
    // Opening a named FIFO waits for its writer, maybe for ever: wait a bounded time.
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::File::open(p));
    });
    match rx.recv_timeout(FIFO_WAIT) {
        Ok(Ok(f)) => {
            if let Ok(mut kept) = OPENED.lock() {
                kept.push((path.to_path_buf(), f));
            }
            Ok(())
        }
        Ok(Err(e)) => Err(format!("cannot read it: {e}")),
        Err(_) => Err(format!(
            "is a FIFO that no program opened for writing within {}s: start its writer first, or pipe into --logs -",
            FIFO_WAIT.as_secs()
        )),
    }
}

/// Opens an input: the FIFO opened by [`check_input`] when there is one, else the path.
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    let kept = OPENED.lock().ok().and_then(|mut kept| {
        let i = kept.iter().position(|(p, _)| p == path)?;
        Some(kept.swap_remove(i).1)
    });
    match kept {
        Some(f) => Ok(f),
        None => std::fs::File::open(path),
    }
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
        match open(path) {
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
