//! One Falco record (rule alert or internal message) parsed from a JSON line or a text record.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

pub use super::fields::{dockershim_name, text_namespace, Workload};
use super::fields::{text_namespaces, tokens, unresolved, TextNamespaces};
pub use super::output_fields::Fields;
use super::output_fields::Record;
use super::priority::Priority;
use super::time::{split_alert_time, EventClock};

/// How Falco wrote the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// A Falco record that has the shape of an alert: a rule alert or one of Falco's internal messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub format: Format,
    /// Falco's own messages (`source: internal`, `Falco internal: ...`, metrics snapshots):
    /// never an alert for a namespace.
    pub internal: bool,
    /// Event time in UTC, when it could be worked out.
    pub time: Option<DateTime<Utc>>,
    pub priority: Option<Priority>,
    /// The priority as Falco printed it (kept for unknown values).
    pub priority_text: String,
    /// The rule name (JSON). Text output has no rule name: the title of the message stands in.
    pub rule: Option<String>,
    pub source: Option<String>,
    pub hostname: Option<String>,
    pub output: Option<String>,
    pub output_fields: Option<Fields>,
    /// Namespace of the workload the event is about, when it names one.
    pub namespace: Option<String>,
    /// Text k8s audit output: every `ns=` value (user-controlled fields may follow the real one).
    pub audit_namespaces: Vec<String>,
    /// A k8saudit alert about a Namespace object (created, deleted): that namespace. Understood,
    /// and about no workload in it.
    pub namespace_object: Option<String>,
    /// `(pod, container)` of the Falco pod that wrote it, when the saving tool said
    /// (`kubectl logs --prefix`, stern).
    pub origin: Option<(String, String)>,
    /// A text time of day dated without a zone (from nearby lines, or a stamp in local time):
    /// its clock may be off by the node's UTC offset.
    pub loosely_dated: bool,
    /// The alert is about a container (a container id that is not `host`): with no namespace
    /// resolved, it may belong to any namespace that ran on the node.
    pub in_container: bool,
    /// How the namespace was found when Falco's own namespace field was unresolved.
    pub attributed_by: Option<Attribution>,
    /// Falco's metrics snapshot (an internal message): evidence that Falco was alive.
    pub metrics: Option<Metrics>,
}

/// How an alert's namespace was worked out when Falco did not label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// A dockershim-style container name, `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
    ContainerName,
}

/// The counters of one Falco metrics snapshot that say whether Falco saw everything.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Events the kernel driver dropped since Falco started (`scap.n_drops`).
    pub n_drops: Option<u64>,
    /// The same as a percentage of the events seen (`scap.n_drops_perc`).
    pub n_drops_perc: Option<f64>,
    /// `falco.hostname`: the node Falco runs on.
    pub hostname: Option<String>,
}

impl Metrics {
    fn of(fields: Option<&Fields>) -> Metrics {
        let get = |k: &str| fields.and_then(|f| f.get(k));
        Metrics {
            n_drops: get("scap.n_drops").and_then(Value::as_u64),
            n_drops_perc: get("scap.n_drops_perc").and_then(Value::as_f64),
            hostname: get("falco.hostname")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

impl Event {
    /// A record with nothing known yet: what each parser fills in starts from here.
    fn blank(format: Format) -> Event {
        Event {
            format,
            internal: false,
            time: None,
            priority: None,
            priority_text: String::new(),
            rule: None,
            source: None,
            hostname: None,
            output: None,
            output_fields: None,
            namespace: None,
            audit_namespaces: Vec::new(),
            namespace_object: None,
            origin: None,
            loosely_dated: false,
            in_container: false,
            attributed_by: None,
            metrics: None,
        }
    }

    /// One of Falco's own messages, by its rule name.
    fn internal(format: Format, rule: &str, time: Option<DateTime<Utc>>) -> Event {
        Event {
            internal: true,
            time,
            rule: Some(rule.to_string()),
            source: Some("internal".to_string()),
            ..Event::blank(format)
        }
    }

    /// A drop notice Falco logged outside its drop alert (a logger line, glued to a message).
    pub fn drop_notice(time: Option<DateTime<Utc>>) -> Event {
        Event::internal(Format::Text, "Falco internal: syscall event drop", time)
    }

    /// An alert about a container whose namespace Falco could not resolve (and no container
    /// name told it either): it may be any namespace's that ran on the node.
    pub fn is_unlabelled(&self) -> bool {
        !self.internal
            && self.in_container
            && self.namespace.is_none()
            && self.audit_namespaces.is_empty()
    }

    /// Where the container facts are: `output_fields` when printed, else the output's tokens.
    fn place_container(&mut self, text: &[u8]) {
        let field = |k: &str| {
            self.output_fields
                .as_ref()
                .and_then(|f| f.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let token = |k: &[u8]| {
            tokens(text, k)
                .last()
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let (id, name) = if self.output_fields.is_some() {
            (field("container.id"), field("container.name"))
        } else {
            (token(b"container_id="), token(b"container_name="))
        };
        self.in_container = id.is_some_and(|id| !unresolved(&id) && id != "host");
        if self.namespace.is_some() || !self.audit_namespaces.is_empty() {
            return;
        }
        if let Some((_, _, ns)) = name.as_deref().and_then(dockershim_name) {
            self.namespace = Some(ns.to_string());
            self.attributed_by = Some(Attribution::ContainerName);
        }
    }

    /// `Falco internal: syscall event drop`: Falco itself may have missed events.
    pub fn is_syscall_drop(&self) -> bool {
        self.internal
            && (self
                .rule
                .as_deref()
                .is_some_and(|r| r.contains("syscall event drop"))
                || self
                    .output
                    .as_deref()
                    .is_some_and(|o| o.contains("syscall event drop")))
    }
}

/// The k8saudit rules about Namespace objects print `ka.target.name` as `ns=` / `namespace=`:
/// there the value is the namespace being created or deleted, not where the workload runs.
const NAMESPACE_OBJECT_RULES: [&str; 3] = [
    "Create Disallowed Namespace",
    "K8s Namespace Created",
    "K8s Namespace Deleted",
];
const NAMESPACE_OBJECT_MESSAGES: [&str; 3] = [
    "Disallowed namespace created",
    "K8s Namespace Created",
    "K8s Namespace Deleted",
];

fn is_internal_message(msg: &str) -> bool {
    msg.starts_with("Falco internal:") || msg.starts_with("Falco metrics snapshot")
}

fn title_of(message: &str) -> String {
    let end = [message.find(" | "), message.find(" ("), message.find('\n')]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(message.len());
    let t = message[..end].trim();
    match t.char_indices().nth(200) {
        Some((i, _)) => t[..i].to_string(),
        None => t.to_string(),
    }
}

/// Parses a text record (first line starts with `%evt.time: Priority`; continuation lines joined
/// with `\n`). Returns the clock as printed; the caller places a date-less time.
pub fn parse_text(record: &[u8]) -> Option<(EventClock, Event)> {
    let (clock, rest) = split_alert_time(record)?;
    let word_end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\n')
        .unwrap_or(rest.len());
    let priority_bytes = &rest[..word_end];
    if priority_bytes.is_empty() {
        return None;
    }
    let message_bytes = rest.get(word_end + 1..).unwrap_or(b"");
    let message = String::from_utf8_lossy(message_bytes);
    let internal = is_internal_message(&message);
    let ns_rule = NAMESPACE_OBJECT_MESSAGES
        .iter()
        .any(|m| message.starts_with(m));
    let names = if internal {
        TextNamespaces::default()
    } else {
        text_namespaces(message_bytes, ns_rule)
    };
    let time = match clock {
        EventClock::Absolute(t) => Some(t),
        EventClock::TimeOfDay(_) => None,
    };
    let mut event = Event {
        internal,
        time,
        priority: Priority::parse_bytes(priority_bytes),
        priority_text: String::from_utf8_lossy(priority_bytes).into_owned(),
        rule: Some(title_of(&message)),
        output: Some(String::from_utf8_lossy(record).into_owned()),
        namespace: names.primary,
        audit_namespaces: names.audit,
        namespace_object: names.object,
        metrics: internal.then(|| Metrics::of(None)).filter(|_| {
            message.starts_with("Falco metrics snapshot")
                || message.starts_with("Falco internal: metrics snapshot")
        }),
        ..Event::blank(Format::Text)
    };
    if !internal {
        event.place_container(message_bytes);
    }
    Some((clock, event))
}

/// Removes kubelet timestamps injected inside a long line (kubernetes#77603): the runtime splits
/// lines over 16 KiB and the kubelet may prefix each part, `YYYY-MM-DDTHH:MM:SS.fffffffffZ ` or
/// with an offset (`+08:00 `). `None` when there is none.
pub(crate) fn strip_injected_timestamps(line: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut last = 0;
    for space in memchr::memchr_iter(b' ', line) {
        // RFC3339 with 9 fraction digits: 30 bytes with `Z`, 35 with `+hh:mm`.
        for len in [30usize, 35] {
            let Some(start) = space.checked_sub(len) else {
                continue;
            };
            if start < last || start == 0 {
                continue;
            }
            if let Some((_, rest)) = super::time::split_kubelet_prefix(&line[start..]) {
                if rest.as_ptr() == line[space + 1..].as_ptr() {
                    out.extend_from_slice(&line[last..start]);
                    last = space + 1;
                    break;
                }
            }
        }
    }
    if last == 0 {
        return None;
    }
    out.extend_from_slice(&line[last..]);
    Some(out)
}

/// Lines up to this size are never split by the container runtime.
pub const RUNTIME_SPLIT: usize = 16 * 1024;

fn parse_json_value(line: &[u8]) -> Option<Record> {
    match serde_json::from_slice::<Record>(line) {
        Ok(r) => Some(r),
        Err(_) => {
            let controls = line.iter().any(|&b| b < 0x20);
            if std::str::from_utf8(line).is_err() || controls {
                // Falco may pass raw bytes from a process through; keep the event, lose the bytes.
                // Raw control bytes are escaped (Falco writes compact JSON: none between tokens).
                let mut text = String::from_utf8_lossy(line).into_owned();
                if controls {
                    let mut escaped = String::with_capacity(text.len() + 64);
                    for c in text.chars() {
                        if c < ' ' {
                            escaped.push_str(&format!("\\u{:04x}", c as u32));
                        } else {
                            escaped.push(c);
                        }
                    }
                    text = escaped;
                }
                if let Ok(r) = serde_json::from_str::<Record>(&text) {
                    return Some(r);
                }
            }
            if line.len() > RUNTIME_SPLIT {
                let repaired = strip_injected_timestamps(line)?;
                return parse_json_value(&repaired);
            }
            None
        }
    }
}

fn str_field(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Parses one JSON line. `None` when it is not a Falco record (malformed JSON, or JSON of another shape).
pub fn parse_json(line: &[u8]) -> Option<Event> {
    let Record { top: m, fields } = parse_json_value(line)?;
    let output_fields = fields.and_then(Fields::new);
    if let Some(e) = metrics_sample(&m, output_fields.as_ref()) {
        return Some(e);
    }
    let rule = str_field(&m, "rule");
    let output = str_field(&m, "output");
    let has_priority = m.contains_key("priority");
    // Falco always prints priority and rule; without them this is someone else's JSON.
    if !has_priority || (rule.is_none() && output.is_none()) {
        return None;
    }
    let priority_text = match m.get("priority") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let priority = Priority::parse(&priority_text);
    let source = str_field(&m, "source");
    let hostname = str_field(&m, "hostname");
    let internal = source.as_deref() == Some("internal")
        || rule
            .as_deref()
            .is_some_and(|r| r.starts_with("Falco internal:"))
        || output.as_deref().is_some_and(is_internal_message);

    let time = m
        .get("time")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            let ns = output_fields.as_ref()?.get("evt.time")?.as_i64()?;
            Some(Utc.timestamp_nanos(ns))
        })
        .or_else(|| match split_alert_time(output.as_deref()?.as_bytes())? {
            (EventClock::Absolute(t), _) => Some(t),
            _ => None,
        });

    let names = if internal {
        TextNamespaces::default()
    } else {
        json_namespace(
            output_fields.as_ref(),
            source.as_deref(),
            rule.as_deref(),
            output.as_deref(),
        )
    };

    let metrics = (internal && is_metrics_snapshot(rule.as_deref(), output.as_deref()))
        .then(|| Metrics::of(output_fields.as_ref()));
    let mut event = Event {
        internal,
        time,
        priority,
        priority_text,
        rule,
        source,
        hostname,
        output,
        output_fields,
        namespace: names.primary,
        audit_namespaces: names.audit,
        namespace_object: names.object,
        metrics,
        ..Event::blank(Format::Json)
    };
    if !internal {
        let text = event.output.clone().unwrap_or_default();
        event.place_container(text.as_bytes());
    }
    Some(event)
}

fn is_metrics_snapshot(rule: Option<&str>, output: Option<&str>) -> bool {
    rule.is_some_and(|r| r.contains("metrics snapshot"))
        || output.is_some_and(|o| o.contains("Falco metrics snapshot"))
}

/// Falco's metrics written with `metrics.output_file` (users point it at stdout):
/// `{"output_fields": {...}, "sample": N}`. Falco's own message, with no priority or rule.
fn metrics_sample(m: &Map<String, Value>, fields: Option<&Fields>) -> Option<Event> {
    if m.contains_key("priority") || !m.get("sample").is_some_and(Value::is_number) {
        return None;
    }
    let fields = fields?.clone();
    let time = fields
        .get("evt.time")
        .and_then(Value::as_i64)
        .map(|ns| Utc.timestamp_nanos(ns));
    let mut e = Event::internal(Format::Json, "Falco internal: metrics snapshot", time);
    e.hostname = fields
        .get("falco.hostname")
        .and_then(Value::as_str)
        .map(str::to_string);
    e.metrics = Some(Metrics::of(Some(&fields)));
    e.output_fields = Some(fields);
    Some(e)
}

fn json_namespace(
    fields: Option<&Fields>,
    source: Option<&str>,
    rule: Option<&str>,
    output: Option<&str>,
) -> TextNamespaces {
    const SYSCALL: &str = "k8s.ns.name";
    const AUDIT: &str = "ka.target.namespace";
    // When Falco printed `output_fields`, they alone say whose event it is: the `output` text
    // carries process-controlled bytes (a command line can hold a forged `k8s_ns=`).
    if let Some(f) = fields {
        let keys: [&str; 2] = if source == Some("k8s_audit") {
            [AUDIT, SYSCALL]
        } else {
            [SYSCALL, AUDIT]
        };
        let primary = keys
            .iter()
            .find_map(|k| f.get(k).and_then(Value::as_str))
            .filter(|v| !v.is_empty() && *v != "<NA>")
            .map(str::to_string);
        let object = rule
            .filter(|r| NAMESPACE_OBJECT_RULES.contains(r))
            .and_then(|_| f.get("ka.target.name").and_then(Value::as_str))
            .filter(|v| !v.is_empty() && *v != "<NA>")
            .map(str::to_string);
        return TextNamespaces {
            primary,
            audit: Vec::new(),
            object,
        };
    }
    // `output_fields` switched off: fall back to the tokens of the output text.
    let Some(output) = output else {
        return TextNamespaces::default();
    };
    let message: Cow<'_, [u8]> = match split_alert_time(output.as_bytes()) {
        Some((_, rest)) => Cow::Borrowed(rest),
        None => Cow::Borrowed(output.as_bytes()),
    };
    let ns_rule = rule.is_some_and(|r| NAMESPACE_OBJECT_RULES.contains(&r))
        || NAMESPACE_OBJECT_MESSAGES.iter().any(|m| {
            let body = message
                .iter()
                .position(|&b| b == b' ')
                .map(|i| &message[i + 1..])
                .unwrap_or(&message);
            body.starts_with(m.as_bytes())
        });
    text_namespaces(&message, ns_rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_envelopes() {
        let l = br#"{"hostname":"h","output":"10:30:00.000000000: Warning x | k8s_ns_name=shadow-abc123","output_fields":{"evt.time":1705314600000000000,"k8s.ns.name":"shadow-abc123"},"priority":"Warning","rule":"R","source":"syscall","tags":["a"],"time":"2024-01-15T10:30:00.000000000Z"}"#;
        let e = parse_json(l).expect("alert");
        assert_eq!(e.priority, Some(Priority::Warning));
        assert_eq!(e.namespace.as_deref(), Some("shadow-abc123"));
        assert_eq!(
            e.time.map(|t| t.to_rfc3339()),
            Some("2024-01-15T10:30:00+00:00".into())
        );
        assert!(!e.internal);
        // output_fields switched off: fall back to the output text.
        let l = br#"{"output":"10:40:56.781502244: Notice U | k8s_ns_name=shadow-abc123","priority":"Notice","rule":"C","source":"syscall","time":"2024-01-15T10:40:56.781502244Z"}"#;
        assert_eq!(
            parse_json(l).and_then(|e| e.namespace).as_deref(),
            Some("shadow-abc123")
        );
        // output_fields present without Kubernetes keys (a host event): a forged token in the
        // command line must not move the alert into a namespace.
        let l = br#"{"output":"10:40:56.781502244: Warning Shell (cmdline=sh -c echo k8s_ns=shadow-abc123 k8s_ns_name=shadow-abc123)","output_fields":{"proc.cmdline":"sh -c echo k8s_ns=shadow-abc123 k8s_ns_name=shadow-abc123","container.id":"host"},"priority":"Warning","rule":"C","source":"syscall","time":"2024-01-15T10:40:56.781502244Z"}"#;
        assert_eq!(parse_json(l).and_then(|e| e.namespace), None);
        // k8s audit source.
        let l = br#"{"output":"x","output_fields":{"ka.target.namespace":"ns1"},"priority":"Error","rule":"K","source":"k8s_audit","time":"2024-01-15T10:40:56Z"}"#;
        assert_eq!(
            parse_json(l).and_then(|e| e.namespace).as_deref(),
            Some("ns1")
        );
        // null namespace.
        let l = br#"{"output":"x","output_fields":{"k8s.ns.name":null},"priority":"Alert","rule":"K","source":"syscall","time":"2024-01-15T10:40:56Z"}"#;
        assert_eq!(parse_json(l).and_then(|e| e.namespace), None);
        // internal
        let l = br#"{"output":"Falco internal: syscall event drop. 1 system calls dropped","output_fields":{},"priority":"Debug","rule":"Falco internal: syscall event drop","source":"internal","time":"2024-01-15T10:40:56Z"}"#;
        let e = parse_json(l).expect("internal");
        assert!(e.internal && e.is_syscall_drop());
        // not Falco, malformed
        assert!(parse_json(br#"{"a":1}"#).is_none());
        assert!(parse_json(br#"{"priority":"Warning","rule":"x",}"#).is_none());
        assert!(parse_json(b"[1,2]").is_none());
        // unknown priority is kept
        let l = br#"{"output":"x","output_fields":{"k8s.ns.name":"n"},"priority":"Severe","rule":"K","time":"2024-01-15T10:40:56Z"}"#;
        let e = parse_json(l).expect("unknown priority");
        assert_eq!((e.priority, e.priority_text.as_str()), (None, "Severe"));
        // wrong type
        let l = br#"{"output":"x","output_fields":{"k8s.ns.name":"n"},"priority":7,"rule":"K","time":"2024-01-15T10:40:56Z"}"#;
        assert_eq!(parse_json(l).map(|e| e.priority_text), Some("7".into()));
    }

    #[test]
    fn invalid_utf8_inside_json_keeps_the_event() {
        let mut l = br#"{"output":"x "#.to_vec();
        l.extend_from_slice(&[0xff, 0xfe]);
        l.extend_from_slice(br#"","output_fields":{"k8s.ns.name":"n"},"priority":"Critical","rule":"K","time":"2024-01-15T10:40:56Z"}"#);
        assert_eq!(
            parse_json(&l).and_then(|e| e.namespace).as_deref(),
            Some("n")
        );
    }

    #[test]
    fn injected_kubelet_timestamp_is_repaired() {
        let pad = "a".repeat(RUNTIME_SPLIT);
        let l = format!(
            r#"{{"output":"{pad}","output_fields":{{"k8s.ns.name"2024-01-15T10:30:00.000731000Z :"n"}},"priority":"Critical","rule":"K","time":"2024-01-15T10:40:56Z"}}"#
        );
        let e = parse_json(l.as_bytes()).expect("repaired");
        assert_eq!(e.namespace.as_deref(), Some("n"));
    }

    #[test]
    fn text_records() {
        let (_, e) = parse_text(b"10:30:00.000000000: Warning Log files were tampered | file=x k8s_ns_name=shadow-abc123").expect("text");
        assert_eq!(e.priority, Some(Priority::Warning));
        assert_eq!(e.rule.as_deref(), Some("Log files were tampered"));
        assert_eq!(e.namespace.as_deref(), Some("shadow-abc123"));
        let (_, e) = parse_text(b"10:36:47.113820936: Debug Falco internal: syscall event drop. 1874 (n_drops=\"1874\")").expect("internal");
        assert!(e.internal && e.is_syscall_drop());
        let (_, e) = parse_text(b"10:39:05.330581127: Warning Disallowed namespace created (user=m ns=shadow-abc123 resource=namespaces)").expect("ns rule");
        assert_eq!(e.namespace, None);
        assert_eq!(e.namespace_object.as_deref(), Some("shadow-abc123"));
        let (_, e) = parse_text(b"10:50:31.447210983: Warning Sensitive | command=sh -c cat\necho done k8s_ns_name=shadow-abc123").expect("multi");
        assert_eq!(e.namespace.as_deref(), Some("shadow-abc123"));
    }
}
