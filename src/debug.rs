//! The `-v LEVEL` debug log on stderr, as kubectl's `-v`: 4 for decisions (kubeconfig, proxy,
//! credentials, retries, coverage), 6 for every request with its status and time. Never a token,
//! a key or a credential plugin's output; untrusted text is neutralized by the callers.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Sets the level once, at the start of a run.
pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// Whether messages of `level` are shown.
pub fn enabled(level: u8) -> bool {
    level > 0 && LEVEL.load(Ordering::Relaxed) >= level
}

/// Writes one line when `level` is enabled (a full stderr loses the line, nothing else).
pub fn log(level: u8, message: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let now = chrono::Utc::now().format("%H:%M:%S%.3f");
    let _ = writeln!(std::io::stderr().lock(), "I{level} {now} {message}");
}
