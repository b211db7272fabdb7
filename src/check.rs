//! One check from start to verdict: the options, then sources -> verdict. A one-shot check, a
//! `--for` soak and `--watch` are the same run; they differ only in whether the pods' logs are
//! followed, when the run stops, and whether the pod list is read again. The source is chosen
//! here, in one place.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

pub use crate::options::{CheckOptions, Follow, Input, RELIST_EVERY};
use crate::source::cluster::Streams;
use crate::source::{self, drive_stop, files, LiveSender, Stop, StopSignal};
use crate::verdict::{
    self, AlertList, CheckResult, Findings, LogOrigin, NodeCoverage, Skip, Tally,
};

/// Runs a check to its end. Never fails: every problem ends in the result's verdict and reason.
pub async fn check_falco_alerts(opts: &CheckOptions) -> CheckResult {
    run(opts, watch::channel(false).1, None).await
}

/// Runs a check until its window is read (one-shot), its window ends (`--for`), or
/// `interrupt` turns true (SIGINT / SIGTERM). Alerts and pod news go to `live` as they are found.
pub async fn run(
    opts: &CheckOptions,
    interrupt: watch::Receiver<bool>,
    live: Option<LiveSender>,
) -> CheckResult {
    let filter = Arc::new(opts.filter());
    let alerts = AlertList::new(opts.max_alerts);
    if let Some(value) = &opts.disabled {
        let tally = Tally::with_alerts(filter.clone(), LogOrigin::default(), alerts);
        let why = Skip::Disabled {
            value: value.clone(),
        };
        let findings =
            Findings::skipped(tally, why, vec![], NodeCoverage::new(opts.coverage_mode()));
        return verdict::conclude(opts.echo(opts.selector_or_default().to_string()), findings);
    }
    let (stop_tx, stop) = StopSignal::channel();
    // With `--watch` and no end, stopping is how the window ends; otherwise it cuts it short.
    let open_ended = opts.follow.is_some_and(|f| f.until.is_none());
    let on_interrupt = if open_ended {
        Stop::WindowEnd
    } else {
        Stop::Interrupted
    };
    let ends_at = opts.follow.and_then(|f| f.until).map(instant_of);
    let end_round_interrupt = interrupt.clone();
    let stopper = tokio::spawn(drive_stop(interrupt, stop_tx, on_interrupt, ends_at));
    let (selector, mut findings) = match &opts.input {
        Input::Files(paths) => {
            let f = files::read(paths, &filter, &alerts, opts.max_line, &stop).await;
            (opts.selector_or_default().to_string(), f)
        }
        Input::Cluster(target) => {
            let streams = Streams {
                stop,
                live,
                end_round_interrupt,
            };
            source::cluster::read(target, &filter, alerts, opts, streams).await
        }
    };
    stopper.abort();
    findings.warnings.extend(opts.notes.iter().cloned());
    verdict::conclude(opts.echo(selector), findings)
}

fn instant_of(t: DateTime<Utc>) -> Instant {
    let left = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + left
}
