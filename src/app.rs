//! The binary's edge: one resolved invocation is run on a runtime with SIGINT / SIGTERM wired
//! to the run's stop, shown live or with progress, and its result written once, with the exit
//! code of the contract.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::args::{Invocation, LiveView, Output, OutputFormat, Reports};
use crate::render::{self, Style};
use crate::source::{LiveEvent, Progress};
use crate::verdict::{CheckResult, Exit, Verdict};

/// Clears the current terminal line.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Runs the check and prints its result; the exit code says what a pipeline should do.
pub fn run(mut inv: Invocation) -> Exit {
    crate::debug::set_level(inv.verbosity);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(io::stderr(), "error: cannot start the async runtime: {e}");
            return Exit::NotVerified;
        }
    };
    let output = inv.output;
    let result = runtime.block_on(async {
        let (interrupt_tx, interrupt) = watch::channel(false);
        let interrupt_tx = Arc::new(interrupt_tx);
        tokio::spawn(on_signal(interrupt_tx.clone()));
        match output.live {
            Some(view) => follow(&inv, interrupt, &interrupt_tx, view, output).await,
            None => {
                let progress = output.progress.then(|| Arc::new(Progress::default()));
                inv.check.progress = progress.clone();
                let ticker = progress.map(spawn_progress);
                let r = crate::check::run(&inv.check, interrupt, None).await;
                if let Some((stop, handle)) = ticker {
                    stop.store(true, Ordering::Relaxed);
                    let _ = handle.join();
                }
                r
            }
        }
    });
    // Let in-flight streams go without waiting for them.
    runtime.shutdown_background();
    let exit = print_result(&result, output, inv.reports.annotations);
    match write_reports(&result, &inv.reports) {
        Ok(()) => exit,
        Err(e) => lost(&result, &e),
    }
}

/// The `--report` files (each written to a temporary file beside it, then renamed: a reader
/// never sees half a report) and the GitHub job summary (appended, as GitHub asks).
fn write_reports(result: &CheckResult, reports: &Reports) -> Result<(), String> {
    for (format, path) in &reports.files {
        let mut body = Vec::new();
        let written = write_result(&mut body, result, *format, Style::default(), false);
        let shown = render::neutralize(&path.display().to_string());
        written
            .and_then(|()| write_atomically(path, &body))
            .map_err(|e| format!("cannot write the report {shown}: {e}"))?;
    }
    if let Some(summary) = &reports.step_summary {
        let shown = render::neutralize(&summary.display().to_string());
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(summary)
            .and_then(|mut f| f.write_all(render::markdown::to_string(result).as_bytes()))
            .map_err(|e| format!("cannot append the job summary to {shown}: {e}"))?;
    }
    Ok(())
}

fn write_atomically(path: &std::path::Path, body: &[u8]) -> io::Result<()> {
    let dir = crate::args::report_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_string());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(body).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// SIGINT and SIGTERM (what Ctrl-C, CI cancel and `timeout` send) stop the run, which still
/// ends with its result. Later signals are ignored: the run is already ending, bounded.
async fn on_signal(interrupt: Arc<watch::Sender<bool>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let _ = interrupt.send(true);
        }
    }
    #[cfg(not(unix))]
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        let _ = interrupt.send(true);
    }
}

/// Writes warnings to stderr and the result to stdout. A result that cannot be written is not
/// a silent success: it is said on stderr and, unless the verdict blocks, exits 3.
fn print_result(result: &CheckResult, output: Output, annotations: bool) -> Exit {
    let _ = render::text::write_warnings(&mut io::stderr().lock(), result, output.stderr.color);
    // Stdout is line-buffered: a pretty JSON object of a thousand alerts would be tens of
    // thousands of `write` calls. One buffer, flushed in large writes.
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let text = output.format.is_text();
    // A YAML block scalar may start a line with `::`; with annotations on, a CI runner would
    // take it as a command: strings are neutralized then, as on a terminal.
    let neutralize = output.stdout.tty || annotations;
    let written = write_result(&mut out, result, output.format, output.stdout, neutralize)
        .and_then(|()| {
            // Workflow commands go with text on stdout; a machine format keeps stdout to itself
            // and they go to stderr (the runner reads both).
            if annotations && text {
                render::annotations::write(&mut out, result)
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if annotations && !text {
        let _ = render::annotations::write(&mut io::stderr().lock(), result);
    }
    match written {
        Ok(()) => result.exit,
        // `| head`: the reader has what it wanted.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => result.exit,
        Err(e) => lost(result, &format!("cannot write the result to stdout ({e})")),
    }
}

/// Writes `result` in `format`: the one place a format picks its renderer, for stdout and the
/// `--report` files alike. `style` is for text; `neutralize` makes YAML strings safe to show.
fn write_result(
    out: &mut dyn Write,
    result: &CheckResult,
    format: OutputFormat,
    style: Style,
    neutralize: bool,
) -> io::Result<()> {
    match format {
        OutputFormat::Text | OutputFormat::Wide => render::text::write(out, result, style),
        OutputFormat::Json => render::json::write(out, result),
        OutputFormat::Yaml => render::yaml::write(out, result, neutralize),
        OutputFormat::Junit => render::junit::write(out, result),
        OutputFormat::Markdown => render::markdown::write(out, result),
    }
}

/// A progress line on stderr, redrawn until stopped (terminal only).
fn spawn_progress(p: Arc<Progress>) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let handle = std::thread::spawn(move || {
        let started = Instant::now();
        let mut drawn = false;
        while !s.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            // Quick checks finish without ever drawing.
            if started.elapsed() < Duration::from_millis(300) {
                continue;
            }
            let line = render::live::progress_line(
                p.pods_done.load(Ordering::Relaxed),
                p.pods_total.load(Ordering::Relaxed),
                p.bytes.load(Ordering::Relaxed),
            );
            let _ = write!(io::stderr(), "{CLEAR_LINE}{line}");
            drawn = true;
        }
        if drawn {
            let _ = write!(io::stderr(), "{CLEAR_LINE}");
        }
    });
    (stop, handle)
}

/// What the live view has seen so far.
struct LiveState {
    counts: render::live::LiveCounts,
    started: Instant,
}

/// Follow mode: live alerts and status until the window ends or a signal stops it. A live
/// output that goes away (`--watch | head -1`) stops the run like a signal.
async fn follow(
    inv: &Invocation,
    interrupt: watch::Receiver<bool>,
    interrupt_tx: &watch::Sender<bool>,
    view: LiveView,
    output: Output,
) -> CheckResult {
    let (events_tx, mut events) = mpsc::channel(256);
    let check = crate::check::run(&inv.check, interrupt, Some(events_tx));
    tokio::pin!(check);
    let mut state = LiveState {
        counts: render::live::LiveCounts::default(),
        started: Instant::now(),
    };
    if view.print_alerts {
        let c = &inv.check;
        let what = match &c.scope {
            crate::verdict::Scope::All => "all namespaces".to_string(),
            crate::verdict::Scope::Namespace(ns) => format!("namespace {ns}"),
        };
        let header = render::live::header(
            &what,
            c.threshold,
            c.selector_or_default(),
            &c.falco_namespace,
            c.follow.and_then(|f| f.until),
        );
        write_live(&header, view, interrupt_tx);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let alert_style = if view.to_stdout {
        output.stdout
    } else {
        output.stderr
    };
    loop {
        let event = tokio::select! {
            result = &mut check => {
                while let Ok(event) = events.try_recv() {
                    show(event, &mut state, view, alert_style, interrupt_tx);
                }
                if view.status {
                    let _ = write!(io::stderr(), "{CLEAR_LINE}");
                }
                return result;
            }
            Some(event) = events.recv() => Some(event),
            _ = tick.tick() => None,
        };
        if let Some(event) = event {
            show(event, &mut state, view, alert_style, interrupt_tx);
        }
        if view.status {
            let line = render::live::live_status(
                &state.counts,
                view.threshold,
                state.started.elapsed(),
                view.columns,
                output.stderr,
            );
            let _ = write!(io::stderr(), "{CLEAR_LINE}{line}");
        }
    }
}

fn show(
    event: LiveEvent,
    state: &mut LiveState,
    view: LiveView,
    style: Style,
    interrupt: &watch::Sender<bool>,
) {
    let line = match event {
        LiveEvent::Alert(a) => {
            state.counts.add(&a);
            view.print_alerts
                .then(|| render::live::live_alert(&a, style))
        }
        LiveEvent::Followed { .. } => {
            state.counts.following += 1;
            None
        }
        LiveEvent::Ended { pod, gaps } => {
            state.counts.ended += 1;
            state.counts.following = state.counts.following.saturating_sub(1);
            view.print_alerts.then(|| {
                let why: Vec<String> = gaps
                    .iter()
                    .map(|g| format!("{}: {}", g.kind, render::neutralize(&g.message)))
                    .collect();
                format!(
                    "  -- Falco pod {} ended: {}\n",
                    render::neutralize(&pod),
                    why.join("; ")
                )
            })
        }
    };
    let Some(line) = line else { return };
    write_live(&line, view, interrupt);
}

/// Writes a line of the live view where it goes; an output that is gone stops the run.
fn write_live(line: &str, view: LiveView, interrupt: &watch::Sender<bool>) {
    if view.status {
        let _ = write!(io::stderr(), "{CLEAR_LINE}");
    }
    let written = if view.to_stdout {
        let mut out = io::stdout().lock();
        out.write_all(line.as_bytes()).and_then(|()| out.flush())
    } else {
        io::stderr().lock().write_all(line.as_bytes())
    };
    if written.is_err() {
        let _ = interrupt.send(true);
    }
}

/// A result that could not be written is not a silent success: said on stderr with the verdict,
/// and, unless the verdict blocks, exit 3.
fn lost(result: &CheckResult, what: &str) -> Exit {
    let _ = writeln!(
        io::stderr(),
        "error: {what}; the verdict was {}, exit code {}",
        result.verdict.as_upper(),
        result.exit.code()
    );
    if result.verdict == Verdict::Blocked {
        Exit::Blocked
    } else {
        Exit::NotVerified
    }
}
