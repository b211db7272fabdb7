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

async fn read_one(path: &Path, tally: Tally, max_line: usize, stop: StopSignal) -> SourceRead {
    let name = display_name(path);
    let mut ledger = Ledger::default();
    let mut warnings = Vec::new();
    let mut report = PodReport {
        name: name.clone(),
        ..PodReport::default()
    };
    let file = if path.as_os_str() == "-" {
        None
    } else {
        match open(path) {
            Ok(f) => Some(f),
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
    // No date is made up from the window: text alerts are dated by the input's own lines.
    let (decoder, bytes, end) = match file {
        Some(f) if worth_halving(&f) => {
            // Still empty: what is left when the halves' thread is lost.
            let spare = tally.clone();
            let halves =
                tokio::task::spawn_blocking(move || read_in_halves(f, tally, max_line, &stop));
            match halves.await {
                Ok(done) => done,
                Err(e) => {
                    ledger.open(Gap::new(
                        GapKind::Unreadable,
                        format!("reading {name} failed: {e}"),
                    ));
                    return SourceRead {
                        tally: spare,
                        report: PodReport {
                            gaps: ledger.into_gaps(),
                            ..report
                        },
                        parsed: 0,
                        warnings,
                    };
                }
            }
        }
        f => {
            let reader: Box<dyn Read + Send> = match f {
                Some(f) => Box::new(f),
                None => Box::new(std::io::stdin()),
            };
            read_through(reader, Decoder::with_max_line(tally, max_line), stop).await
        }
    };
    report.bytes_read = bytes;
    match end {
        None => {}
        Some(End::Stopped(s)) => {
            let why = match s {
                Stop::Interrupted => "stopped by a signal",
                Stop::WindowEnd => "stopped",
            };
            ledger.open(Gap::new(
                GapKind::StoppedEarly,
                format!("{why} before {name} was read to its end ({bytes} bytes read)"),
            ));
        }
        Some(End::Failed(e)) => {
            ledger.open(Gap::new(
                GapKind::Unreadable,
                format!("reading {name} failed after {bytes} bytes: {e}"),
            ));
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

/// Why a read ended before the input's end.
enum End {
    Stopped(Stop),
    Failed(std::io::Error),
}

/// Reads `reader` to its end (or the stop, or an error) through a read-ahead thread, decoding
/// as it goes; the bytes read.
async fn read_through(
    reader: Box<dyn Read + Send>,
    mut decoder: Decoder<Tally>,
    mut stop: StopSignal,
) -> (Decoder<Tally>, u64, Option<End>) {
    let mut chunks = read_ahead(reader);
    let mut bytes = 0u64;
    loop {
        // Stdin may block for ever: a stop must not wait for it.
        let next = tokio::select! {
            c = chunks.full.recv() => c,
            s = stop.wait() => return (decoder, bytes, Some(End::Stopped(s))),
        };
        match next {
            None => return (decoder, bytes, None),
            Some(Ok(buf)) => {
                bytes += buf.len() as u64;
                decoder.feed(&buf);
                // The buffer goes back to the reader thread; gone when it has ended.
                let _ = chunks.empty.try_send(buf);
            }
            Some(Err(e)) => return (decoder, bytes, Some(End::Failed(e))),
        }
    }
}

/// Below this a file is decoded on one core: a second thread would cost more than it saves.
const HALVING_MIN: u64 = 64 * 1024 * 1024;

/// A regular file large enough, on a machine with a second core.
fn worth_halving(file: &std::fs::File) -> bool {
    let big = file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() >= HALVING_MIN);
    big && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

/// Decodes a regular file in two halves at once, cut at a line boundary, each half on its own
/// core, and joins them (`Decoder::join`). When the second half's lines needed what came
/// before them (a date for a date-less time, an alert still open at the cut), that half is
/// decoded again after the first, so the outcome is always the one-pass outcome. Whatever the
/// file grew by meanwhile is read after.
fn read_in_halves(
    file: std::fs::File,
    tally: Tally,
    max_line: usize,
    stop: &StopSignal,
) -> (Decoder<Tally>, u64, Option<End>) {
    let len = file.metadata().map_or(0, |m| m.len());
    // Its alerts are its own until the join: a half decoded again must not count twice.
    let second = Decoder::with_max_line(tally.detached(), max_line);
    let first = Decoder::with_max_line(tally, max_line);
    let Some(mid) = line_boundary(&file, len / 2).filter(|&m| m < len) else {
        return read_range(&file, 0, None, first, stop);
    };
    crate::debug::log(
        4,
        format_args!("reading a file of {len} bytes in two halves at once, cut at byte {mid}"),
    );
    let (a, b) = std::thread::scope(|scope| {
        let later = scope.spawn(|| read_range(&file, mid, Some(len), second, stop));
        let a = read_range(&file, 0, Some(mid), first, stop);
        (a, later.join())
    });
    let (first, bytes_a, end_a) = a;
    if end_a.is_some() {
        return (first, bytes_a, end_a);
    }
    let joined = match b {
        Ok((second, bytes_b, end_b)) => match first.join(second, |a, b| a.merge(b)) {
            Ok(both) if end_b.is_some() => return (both, bytes_a + bytes_b, end_b),
            Ok(both) => Ok((both, bytes_a + bytes_b)),
            Err(parts) => Err(parts.first),
        },
        Err(_) => Err(first),
    };
    match joined {
        Ok((both, bytes)) => {
            let (d, more, end) = read_range(&file, len, None, both, stop);
            (d, bytes + more, end)
        }
        Err(first) => {
            crate::debug::log(
                4,
                format_args!("the second half of a file needed the first: decoding it again"),
            );
            let (d, more, end) = read_range(&file, mid, None, first, stop);
            (d, bytes_a + more, end)
        }
    }
}

/// The offset just after the first newline at or after `from`, if any.
fn line_boundary(file: &std::fs::File, from: u64) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = from;
    loop {
        let n = file.read_at(&mut buf, at).ok()?;
        if n == 0 {
            return None;
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Some(at + i as u64 + 1);
        }
        at += n as u64;
    }
}

/// Feeds the bytes of `file` from `from` to `to` (or its end) to `decoder`, a chunk at a time,
/// until the stop.
fn read_range(
    file: &std::fs::File,
    from: u64,
    to: Option<u64>,
    mut decoder: Decoder<Tally>,
    stop: &StopSignal,
) -> (Decoder<Tally>, u64, Option<End>) {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; CHUNK];
    let mut at = from;
    loop {
        if let Some(s) = stop.now() {
            return (decoder, at - from, Some(End::Stopped(s)));
        }
        let want = to.map_or(CHUNK as u64, |t| t.saturating_sub(at).min(CHUNK as u64)) as usize;
        if want == 0 {
            return (decoder, at - from, None);
        }
        match file.read_at(&mut buf[..want], at) {
            Ok(0) => return (decoder, at - from, None),
            Ok(n) => {
                decoder.feed(&buf[..n]);
                at += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (decoder, at - from, Some(End::Failed(e))),
        }
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
