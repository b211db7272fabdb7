//! `kubectl-falco_verify`: parse flags, run the check, print, exit with the contract's code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use falco_verify::cli::{self, OutputFormat};
use falco_verify::render::{self, Style};
use falco_verify::verdict::{CheckResult, Summary};
use falco_verify::watch::{watch_falco_alerts, WatchEvent};
use falco_verify::{check_falco_alerts, verdict, CheckOptions, Progress};

/// Clears the current terminal line.
const CLEAR_LINE: &str = "\r\x1b[2K";

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = falco_verify::completion::dispatch(&argv) {
        return code;
    }
    let args = match cli::parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                verdict::exit::USAGE as u8
            } else {
                0
            });
        }
    };
    let enabled = cli::enabled_from_env(
        std::env::var("AEGIS_SECURITY__FALCO_ENABLED")
            .ok()
            .as_deref(),
    );
    let now = chrono::Utc::now();
    // An input file that cannot be opened is a usage error, not a gate that passes unread.
    for path in args.logs.iter().filter(|p| p.as_os_str() != "-") {
        if let Err(e) = std::fs::File::open(path) {
            eprintln!(
                "error: cannot read --logs {}: {e}",
                render::neutralize(&path.display().to_string())
            );
            return ExitCode::from(verdict::exit::USAGE as u8);
        }
    }
    if let Err(e) = args.validate(now) {
        eprintln!("error: {e}");
        return ExitCode::from(verdict::exit::USAGE as u8);
    }
    let mut options = args.to_options(now, enabled);
    options.ignores = match args.ignores() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(verdict::exit::USAGE as u8);
        }
    };
    let no_color = std::env::var("NO_COLOR").ok();
    let stdout_tty = std::io::stdout().is_terminal();
    let stderr_tty = std::io::stderr().is_terminal();
    let out_style = Style {
        color: cli::use_color(args.color, no_color.as_deref(), stdout_tty),
        wide: args.output == OutputFormat::Wide,
        tty: stdout_tty,
    };
    let err_color = cli::use_color(args.color, no_color.as_deref(), stderr_tty);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(verdict::exit::NOT_VERIFIED as u8);
        }
    };
    let result = match args.follow(now) {
        Some(end) if enabled => {
            let text_out = matches!(args.output, OutputFormat::Text | OutputFormat::Wide);
            let live = Live {
                print_alerts: args.watch,
                to_stdout: text_out,
                stdout_style: out_style,
                status: stderr_tty && args.watch,
                err_color,
            };
            runtime.block_on(follow(&options, end, live))
        }
        _ => {
            let progress =
                (stderr_tty && !options.is_offline()).then(|| Arc::new(Progress::default()));
            options.progress = progress.clone();
            let ticker = progress.map(spawn_progress);
            let r = runtime.block_on(check_falco_alerts(&options));
            if let Some((stop, handle)) = ticker {
                stop.store(true, Ordering::Relaxed);
                let _ = handle.join();
            }
            r
        }
    };
    // Let in-flight streams go without waiting for them.
    runtime.shutdown_background();
    print_result(&result, args.output, out_style, err_color);
    ExitCode::from(result.exit_code as u8)
}

fn print_result(result: &CheckResult, format: OutputFormat, style: Style, err_color: bool) {
    let body = match format {
        OutputFormat::Json => render::json(result) + "\n",
        OutputFormat::Yaml => render::yaml(result, style.tty),
        OutputFormat::Text | OutputFormat::Wide => render::text(result, style),
    };
    eprint!("{}", render::warnings(result, err_color));
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = out.write_all(body.as_bytes()).and_then(|_| out.flush());
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
            let line = render::progress_line(
                p.pods_done.load(Ordering::Relaxed),
                p.pods_total.load(Ordering::Relaxed),
                p.bytes.load(Ordering::Relaxed),
            );
            eprint!("{CLEAR_LINE}{line}");
            drawn = true;
        }
        if drawn {
            eprint!("{CLEAR_LINE}");
        }
    });
    (stop, handle)
}

struct Live {
    print_alerts: bool,
    to_stdout: bool,
    stdout_style: Style,
    status: bool,
    err_color: bool,
}

/// Follow mode: live alerts and status until the window ends or Ctrl-C.
async fn follow(
    options: &CheckOptions,
    end: Option<chrono::DateTime<chrono::Utc>>,
    live: Live,
) -> CheckResult {
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let check = watch_falco_alerts(options, end, stop_rx, events_tx);
    tokio::pin!(check);
    let started = Instant::now();
    let mut summary = Summary::default();
    let (mut following, mut ended) = (0usize, 0usize);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    // One Ctrl-C listener for the whole run: a listener made afresh on every turn of the loop
    // would miss a SIGINT delivered between two turns.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    let err_style = Style {
        color: live.err_color,
        wide: live.stdout_style.wide,
        tty: true,
    };
    loop {
        tokio::select! {
            result = &mut check => {
                if live.status {
                    eprint!("{CLEAR_LINE}");
                }
                return result;
            }
            signal = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                // No handler could be installed: keep following (the window end still stops).
                if signal.is_ok() {
                    let _ = stop_tx.send(true);
                }
            }
            Some(event) = events.recv() => {
                let line = match event {
                    WatchEvent::Alert(a) => {
                        summary.add(a.level);
                        live.print_alerts.then(|| render::live_alert(&a, if live.to_stdout { live.stdout_style } else { err_style }))
                    }
                    WatchEvent::PodFollowed { .. } => {
                        following += 1;
                        None
                    }
                    WatchEvent::PodEnded { pod, error } => {
                        ended += 1;
                        following = following.saturating_sub(1);
                        live.print_alerts.then(|| format!("  -- Falco pod {} ended{}\n", render::neutralize(&pod), error.map(|e| format!(": {}", render::neutralize(&e))).unwrap_or_default()))
                    }
                };
                if let Some(line) = line {
                    if live.status {
                        eprint!("{CLEAR_LINE}");
                    }
                    if live.to_stdout {
                        print!("{line}");
                        let _ = std::io::stdout().flush();
                    } else {
                        eprint!("{line}");
                    }
                }
            }
            _ = tick.tick() => {}
        }
        if live.status {
            eprint!(
                "{CLEAR_LINE}{}",
                render::live_status(&summary, following, ended, started.elapsed(), err_style)
            );
        }
    }
}
