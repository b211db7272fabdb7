//! `kubectl-falco_verify`: parse flags, run the check, print, exit with the contract's code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use falco_verify::cli::{self, OutputFormat};
use falco_verify::render::{self, Style};
use falco_verify::{check_falco_alerts, verdict};

fn main() -> ExitCode {
    // `completion SHELL`, `man` and the completion hook's `__complete` come before the flags.
    if let Some(code) = falco_verify::completion::dispatch(&std::env::args_os().collect::<Vec<_>>())
    {
        return code;
    }
    let args = match cli::parse_from(std::env::args_os()) {
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
    let mut options = args.to_options(chrono::Utc::now(), enabled);
    options.ignores = match args.ignores() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(verdict::exit::USAGE as u8);
        }
    };
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
    let result = runtime.block_on(check_falco_alerts(&options));
    // Let in-flight streams go without waiting for them.
    runtime.shutdown_background();

    let no_color = std::env::var("NO_COLOR").ok();
    let stdout_tty = std::io::stdout().is_terminal();
    let stdout_color = cli::use_color(args.color, no_color.as_deref(), stdout_tty);
    let stderr_color = cli::use_color(
        args.color,
        no_color.as_deref(),
        std::io::stderr().is_terminal(),
    );
    let body = match args.output {
        OutputFormat::Json => render::json(&result) + "\n",
        OutputFormat::Yaml => render::yaml(&result),
        OutputFormat::Text => render::text(
            &result,
            Style {
                color: stdout_color,
                wide: false,
                tty: stdout_tty,
            },
        ),
        OutputFormat::Wide => render::text(
            &result,
            Style {
                color: stdout_color,
                wide: true,
                tty: stdout_tty,
            },
        ),
    };
    eprint!("{}", render::warnings(&result, stderr_color));
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = out.write_all(body.as_bytes()).and_then(|_| out.flush());
    ExitCode::from(result.exit_code as u8)
}
