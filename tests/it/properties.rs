//! Issue 5, properties of the library over random Falco logs:
//!
//! (a) the outcome does not depend on how the byte stream is cut into chunks;
//! (b) it does not depend on the order of whole JSON lines;
//! (c) it is never "passed" when a matching alert at or above the threshold, inside the window,
//!     is anywhere in the input.
//!
//! Case counts are modest so that the file runs in a few seconds in a debug build; raise them with
//! `PROPTEST_CASES=N`.

use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use falco_verify::falco::{DecodeStats, Decoder, Priority};
use falco_verify::verdict::{Alert, AlertFilter, LogOrigin, Summary, Tally, Verdict, Window};
use falco_verify::{check_falco_alerts, CheckOptions, Input};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

const NS: &str = "shadow-abc123";
/// Other namespaces, prefix traps included, and a host event.
const OTHER_NS: [&str; 4] = ["default", "shadow-abc1234", "shadow-abc12", "<NA>"];
const PRIORITIES: [&str; 11] = [
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
    "info",
    "WARNING",
    "Severe",
];

fn window_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0)
        .single()
        .expect("valid date")
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One record of a Falco log, as one or more lines.
#[derive(Debug, Clone)]
enum Item {
    Json {
        ns: String,
        priority: String,
        /// Event time, from the window start.
        at_ns: i64,
        kubelet: bool,
        /// `output_fields` switched off: the namespace comes from the output text.
        no_fields: bool,
        /// No `time` key: `output_fields.evt.time` stands in.
        no_time: bool,
    },
    Text {
        ns: String,
        priority: String,
        at_ns: i64,
        kubelet: bool,
        /// The command line holds a newline: the namespace is on a continuation line.
        multiline: bool,
    },
    Banner {
        at_s: i64,
    },
    Drop {
        at_ns: i64,
    },
    Garbage(Vec<u8>),
    Empty,
    /// A JSON alert with a command line of this many bytes (over-long for small line limits).
    Long {
        ns: String,
        size: usize,
    },
    /// A text alert whose namespace token comes after `size` bytes of command line.
    LongText {
        ns: String,
        size: usize,
    },
}

fn at(at_ns: i64) -> DateTime<Utc> {
    window_start() + Duration::nanoseconds(at_ns)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn kubelet_prefix(t: DateTime<Utc>) -> String {
    format!("{} ", rfc3339(t + Duration::microseconds(731)))
}

fn json_alert(
    ns: &str,
    priority: &str,
    t: DateTime<Utc>,
    no_fields: bool,
    no_time: bool,
) -> String {
    let hms = t.format("%H:%M:%S%.9f");
    let output = format!("{hms}: {priority} Shell in container | command=sh k8s_ns_name={ns}");
    let mut v = json!({
        "hostname": "node-x",
        "output": output,
        "output_fields": {
            "evt.time": t.timestamp_nanos_opt().unwrap_or(0),
            "k8s.ns.name": if ns == "<NA>" { serde_json::Value::Null } else { json!(ns) },
        },
        "priority": priority,
        "rule": "Shell in container",
        "source": "syscall",
        "time": rfc3339(t),
    });
    if no_fields {
        if let Some(m) = v.as_object_mut() {
            m.remove("output_fields");
        }
    } else if no_time {
        if let Some(m) = v.as_object_mut() {
            m.remove("time");
        }
    }
    v.to_string()
}

impl Item {
    fn lines(&self) -> Vec<Vec<u8>> {
        match self {
            Item::Json {
                ns,
                priority,
                at_ns,
                kubelet,
                no_fields,
                no_time,
            } => {
                let t = at(*at_ns);
                let prefix = if *kubelet {
                    kubelet_prefix(t)
                } else {
                    String::new()
                };
                vec![format!(
                    "{prefix}{}",
                    json_alert(ns, priority, t, *no_fields, *no_time)
                )
                .into_bytes()]
            }
            Item::Text {
                ns,
                priority,
                at_ns,
                kubelet,
                multiline,
            } => {
                let t = at(*at_ns);
                let prefix = if *kubelet {
                    kubelet_prefix(t)
                } else {
                    String::new()
                };
                let hms = t.format("%H:%M:%S%.9f");
                if *multiline {
                    vec![
                        format!("{prefix}{hms}: {priority} Shell | command=sh -c 'echo")
                            .into_bytes(),
                        format!("{prefix}done' k8s_ns_name={ns}").into_bytes(),
                    ]
                } else {
                    vec![
                        format!("{prefix}{hms}: {priority} Shell | command=sh k8s_ns_name={ns}")
                            .into_bytes(),
                    ]
                }
            }
            Item::Banner { at_s } => {
                let t = window_start() + Duration::seconds(*at_s);
                vec![
                    format!("{}: Falco initialized", t.format("%a %b %d %H:%M:%S %Y")).into_bytes(),
                ]
            }
            Item::Drop { at_ns } => vec![json!({
                "output": "Falco internal: syscall event drop. 9 system calls dropped",
                "output_fields": {},
                "priority": "Debug",
                "rule": "Falco internal: syscall event drop",
                "source": "internal",
                "time": rfc3339(at(*at_ns)),
            })
            .to_string()
            .into_bytes()],
            Item::Garbage(bytes) => vec![bytes.clone()],
            Item::Empty => vec![Vec::new()],
            Item::Long { ns, size } => {
                let filler = "x".repeat(*size);
                let t = at(1_000_000_000);
                vec![json_alert(ns, "Critical", t, false, false)
                    .replace("command=sh", &format!("command=sh {filler}"))
                    .into_bytes()]
            }
            Item::LongText { ns, size } => {
                let hms = at(1_000_000_000).format("%H:%M:%S%.9f");
                let filler = "y".repeat(*size);
                vec![
                    format!("{hms}: Critical Shell | command=sh {filler} k8s_ns={ns}").into_bytes(),
                ]
            }
        }
    }
}

fn render(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        for line in item.lines() {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
    }
    out
}

fn any_ns() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(NS.to_string()),
        2 => prop::sample::select(&OTHER_NS[..]).prop_map(str::to_string),
    ]
}

fn any_priority() -> impl Strategy<Value = String> {
    prop::sample::select(&PRIORITIES[..]).prop_map(str::to_string)
}

/// Around the window start: two minutes either side, to the nanosecond.
fn any_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        -120_000_000_000i64..120_000_000_000,
        Just(0i64),
        Just(-1i64),
    ]
}

fn json_item() -> impl Strategy<Value = Item> {
    (any_ns(), any_priority(), any_time(), any::<bool>(), 0u8..6).prop_map(
        |(ns, priority, at_ns, kubelet, v)| Item::Json {
            ns,
            priority,
            at_ns,
            kubelet,
            no_fields: v == 0,
            no_time: v == 1,
        },
    )
}

fn any_item() -> impl Strategy<Value = Item> {
    prop_oneof![
        6 => json_item(),
        4 => (any_ns(), any_priority(), any_time(), any::<bool>(), any::<bool>()).prop_map(
            |(ns, priority, at_ns, kubelet, multiline)| Item::Text {
                ns,
                priority,
                at_ns,
                kubelet,
                multiline,
            }
        ),
        1 => (-300i64..300).prop_map(|at_s| Item::Banner { at_s }),
        1 => any_time().prop_map(|at_ns| Item::Drop { at_ns }),
        2 => prop::collection::vec(any::<u8>(), 0..120).prop_map(|mut v| {
            v.retain(|b| *b != b'\n');
            Item::Garbage(v)
        }),
        1 => prop::collection::vec(
            prop::sample::select(&b"{}[]\":,0123456789 abcshadow-k8s_ns_name=\\\t\r"[..]),
            0..80
        )
        .prop_map(Item::Garbage),
        1 => Just(Item::Empty),
        1 => (any_ns(), 100usize..3000).prop_map(|(ns, size)| Item::Long { ns, size }),
        1 => (any_ns(), 100usize..3000).prop_map(|(ns, size)| Item::LongText { ns, size }),
    ]
}

fn any_threshold() -> impl Strategy<Value = Priority> {
    prop::sample::select(&Priority::ALL[..])
}

fn filter(threshold: Priority) -> Arc<AlertFilter> {
    Arc::new(AlertFilter::new(
        NS,
        Window {
            start: window_start(),
            end: None,
        },
        threshold,
    ))
}

/// What a decoded log comes to, in comparable form.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    summary: Summary,
    blocking: u64,
    outside_window: u64,
    undated: u64,
    syscall_drops: u64,
    alerts: Vec<Alert>,
    stats: DecodeStats,
}

/// Feeds `input` cut at `cuts` (byte offsets, any order, duplicates allowed).
fn decode(input: &[u8], cuts: &[usize], threshold: Priority, max_line: usize) -> Outcome {
    let tally = Tally::new(filter(threshold), LogOrigin::default(), 100_000);
    let mut d = Decoder::with_max_line(tally, max_line);
    d.set_reference(window_start());
    let mut cuts: Vec<usize> = cuts.iter().map(|c| (*c).min(input.len())).collect();
    cuts.sort_unstable();
    let mut from = 0;
    for c in cuts {
        d.feed(&input[from..c]);
        from = c;
    }
    d.feed(&input[from..]);
    let (t, stats) = d.finish();
    let (alerts, _) = t.alerts.into_sorted();
    Outcome {
        summary: t.summary,
        blocking: t.blocking,
        outside_window: t.outside_window,
        undated: t.undated,
        syscall_drops: t.syscall_drops,
        alerts,
        stats,
    }
}

/// The whole library path: a file of Falco output, `check_falco_alerts`, the verdict.
fn verdict_of(input: &[u8], threshold: Priority) -> (Verdict, i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("falco.log");
    std::fs::write(&path, input).expect("write log");
    let mut opts = CheckOptions::new(NS, window_start());
    opts.threshold = threshold;
    opts.input = Input::Files(vec![path]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let r = rt.block_on(check_falco_alerts(&opts));
    (r.verdict, r.exit_code)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(96)))]

    /// (a) Chunk boundaries do not matter: not for the counts, the alerts, nor the statistics
    /// (over-long lines included: small line limits put them in play).
    #[test]
    fn outcome_is_independent_of_chunk_boundaries(
        items in prop::collection::vec(any_item(), 0..40),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
        tiny in prop::collection::vec(1usize..8, 0..4),
        threshold in any_threshold(),
        max_line in prop::sample::select(&[256usize, 1024, 4096, 1 << 20][..]),
    ) {
        let input = render(&items);
        let whole = decode(&input, &[], threshold, max_line);
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        prop_assert_eq!(&decode(&input, &cuts, threshold, max_line), &whole);
        // Byte by byte around the first cuts, where a needle or a UTF-8 sequence is split.
        let mut fine = Vec::new();
        for (c, n) in cuts.iter().zip(&tiny) {
            fine.extend((0..*n).map(|k| c + k));
        }
        prop_assert_eq!(&decode(&input, &fine, threshold, max_line), &whole);
        // Inside every namespace token (a sibling's `shadow-abc1234` cut right after
        // `shadow-abc123` looks like the namespace itself), one cut position per run.
        let starts: Vec<usize> = memchr::memmem::find_iter(&input, b"shadow-abc12").collect();
        for k in 1..=NS.len() + 1 {
            let inside: Vec<usize> = starts.iter().map(|s| s + k).collect();
            prop_assert_eq!(&decode(&input, &inside, threshold, max_line), &whole, "cut {} bytes into each token", k);
        }
    }

    /// (b) The order of whole JSON lines does not matter.
    #[test]
    fn summary_is_independent_of_the_order_of_json_lines(
        (items, shuffled) in prop::collection::vec(json_item(), 0..40)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        threshold in any_threshold(),
    ) {
        let a = decode(&render(&items), &[], threshold, 1 << 20);
        let b = decode(&render(&shuffled), &[], threshold, 1 << 20);
        prop_assert_eq!(a.summary, b.summary);
        prop_assert_eq!(a.blocking, b.blocking);
        prop_assert_eq!(a.outside_window, b.outside_window);
        prop_assert_eq!(a.undated, b.undated);
        prop_assert_eq!(a.stats.parsed, b.stats.parsed);
        prop_assert_eq!(a.stats.malformed, b.stats.malformed);
        let key = |alerts: &[Alert]| {
            let mut v: Vec<String> = alerts
                .iter()
                .map(|a| serde_json::to_string(a).unwrap_or_default())
                .collect();
            v.sort();
            v
        };
        prop_assert_eq!(key(&a.alerts), key(&b.alerts));
    }

    /// (c) A matching alert at or above the threshold inside the window, anywhere, blocks.
    #[test]
    fn a_matching_alert_anywhere_is_never_passed(
        items in prop::collection::vec(any_item(), 0..30),
        place in any::<Index>(),
        threshold in any_threshold(),
        severity in any::<Index>(),
        at_ns in 0i64..3_600_000_000_000,
        form in 0u8..4,
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        // A priority at or above the threshold, or one Falco does not define.
        let allowed: Vec<&str> = Priority::ALL
            .iter()
            .filter(|p| p.at_least(threshold))
            .map(|p| p.as_falco_str())
            .chain(["Severe"])
            .collect();
        let priority = allowed[severity.index(allowed.len())].to_string();
        let injected = match form {
            0 | 1 => vec![Item::Json {
                ns: NS.to_string(),
                priority,
                at_ns,
                kubelet: form == 1,
                no_fields: false,
                no_time: false,
            }],
            2 => vec![Item::Json {
                ns: NS.to_string(),
                priority,
                at_ns,
                kubelet: false,
                no_fields: true,
                no_time: false,
            }],
            // A text alert, closed by the next record as Falco's next line would.
            _ => vec![
                Item::Text {
                    ns: NS.to_string(),
                    priority,
                    at_ns,
                    kubelet: true,
                    multiline: false,
                },
                Item::Banner { at_s: 4000 },
            ],
        };
        let mut all = items;
        let i = place.index(all.len() + 1);
        all.splice(i..i, injected);
        let input = render(&all);
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        let o = decode(&input, &cuts, threshold, 1 << 20);
        prop_assert!(o.blocking >= 1, "{:?}", o);
        let (verdict, code) = verdict_of(&input, threshold);
        prop_assert_eq!(verdict, Verdict::Blocked);
        prop_assert_eq!(code, 1);
    }
}

/// The generators do produce what the properties are about (guards against a vacuous pass).
#[test]
fn generated_logs_hold_every_kind_of_record() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut blocked, mut passed, mut oversized_wanted, mut drops) = (0, 0, 0, 0);
    for _ in 0..200 {
        let items = prop::collection::vec(any_item(), 0..40)
            .new_tree(&mut runner)
            .expect("tree")
            .current();
        let o = decode(&render(&items), &[], Priority::Warning, 1024);
        if o.blocking > 0 {
            blocked += 1;
        } else {
            passed += 1;
        }
        oversized_wanted += o.stats.oversized_wanted;
        drops += o.syscall_drops;
    }
    assert!(
        blocked > 10 && passed > 10,
        "{blocked} blocked, {passed} passed"
    );
    assert!(oversized_wanted > 0 && drops > 0);
}
