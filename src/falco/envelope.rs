//! What the tools people save Falco's output with put around each line: the kubelet's
//! `--timestamps` stamp, `kubectl logs --prefix`, stern (default, `-o raw`, `-o json`), syslog
//! (RFC 3164, RFC 3339 / 5424 stamps) and journald (`short`, `short-iso`). [`open`] takes the
//! envelope off one physical line and says when it was written and by which Falco pod.
//!
//! Every form is recognized exactly (a syslog tag must name Falco): a line that is none of them
//! is left as it is, so nothing is taken off on a guess.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::time::{logger_time, split_alert_time, split_kubelet_prefix, MONTHS};

/// When a line was written, from the envelope's stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub at: DateTime<Utc>,
    /// The stamp names its zone (kubelet, RFC 3339): the distance to an alert's local time of
    /// day is the node's UTC offset. Classic syslog stamps are local time: taken as UTC.
    pub zoned: bool,
}

/// One physical line without its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<'a> {
    pub body: Cow<'a, [u8]>,
    pub stamp: Option<Stamp>,
    /// `(pod, container)` the saving tool named (`kubectl logs --prefix`, stern).
    pub origin: Option<(String, String)>,
    /// The stamp is a syslog one, whose year may have come from `year_hint`.
    pub hinted: bool,
}

/// Takes the envelope off `line`. `year_hint`, a recent date of the same log, gives a classic
/// syslog stamp (which has no year) its year; without one, the latest year not ahead of now.
pub fn open(line: &[u8], year_hint: Option<DateTime<Utc>>) -> Opened<'_> {
    let mut origin = None;
    let mut body: Cow<'_, [u8]> = Cow::Borrowed(line);
    // stern and `kubectl logs` colour their prefixes on a terminal (or with --color always).
    if body.first() == Some(&0x1b) {
        body = Cow::Owned(strip_sgr(&body));
    }
    if body.first() == Some(&b'[') {
        if let Some((o, rest)) = kubectl_prefix(&body) {
            origin = Some(o);
            body = own_tail(body, rest);
        }
    } else if body.starts_with(b"{\"message\":") {
        if let Some((o, message)) = stern_json(&body) {
            origin = Some(o);
            body = Cow::Owned(message);
        }
    } else if body.first().is_some_and(u8::is_ascii_lowercase) {
        if let Some((o, rest)) = stern_default(&body) {
            origin = Some(o);
            body = own_tail(body, rest);
        }
    }
    let (stamp, rest) = stamped(&body, year_hint);
    let hinted = stamp.is_some() && matches!(body.first(), Some(b'<' | b'A'..=b'Z'));
    let body = match rest {
        Some(r) => own_tail(body, r),
        None => body,
    };
    Opened {
        body,
        stamp,
        origin,
        hinted,
    }
}

/// The part of `whole` from `tail` on (`tail` is a suffix of `whole`).
fn own_tail<'a>(whole: Cow<'a, [u8]>, tail: usize) -> Cow<'a, [u8]> {
    match whole {
        Cow::Borrowed(b) => Cow::Borrowed(&b[tail..]),
        Cow::Owned(v) => Cow::Owned(v[tail..].to_vec()),
    }
}

/// A stamp (kubelet, syslog, journald) at the start of `line`: when, and where the rest begins.
fn stamped(line: &[u8], year_hint: Option<DateTime<Utc>>) -> (Option<Stamp>, Option<usize>) {
    let offset_of = |rest: &[u8]| line.len() - rest.len();
    match line.first() {
        Some(b'0'..=b'9') => {
            // RFC 3339: the kubelet's stamp, syslog with RFC 3339 stamps, journald short-iso.
            if let Some((at, rest)) =
                split_kubelet_prefix(line).or_else(|| split_compact_offset(line))
            {
                let rest = syslog_header(rest).unwrap_or(rest);
                return (Some(Stamp { at, zoned: true }), Some(offset_of(rest)));
            }
        }
        Some(b'<') => {
            if let Some((stamp, rest)) = with_priority(line, year_hint) {
                return (Some(stamp), Some(offset_of(rest)));
            }
        }
        Some(b'A'..=b'Z') => {
            if let Some((at, rest)) = classic_syslog(line, year_hint) {
                let stamp = Stamp { at, zoned: false };
                return (Some(stamp), Some(offset_of(rest)));
            }
        }
        _ => {}
    }
    (None, None)
}

/// `2026-10-06T17:59:08+0000 ` (journald short-iso: offset without a colon).
fn split_compact_offset(line: &[u8]) -> Option<(DateTime<Utc>, &[u8])> {
    let sign = line
        .iter()
        .take(32)
        .skip(19)
        .position(|&b| b == b'+' || b == b'-')?
        + 19;
    let zone = line.get(sign..sign + 5)?;
    if !zone[1..].iter().all(u8::is_ascii_digit) || line.get(sign + 5) != Some(&b' ') {
        return None;
    }
    // Rewrite as `+hh:mm` and let the kubelet parser do the rest.
    let mut v = line[..sign + 3].to_vec();
    v.push(b':');
    v.extend_from_slice(&line[sign + 3..sign + 5]);
    v.push(b' ');
    let (at, _) = split_kubelet_prefix(&v)?;
    Some((at, &line[sign + 6..]))
}

/// `HOST TAG[PID]: ` or `HOST TAG: ` where TAG names Falco (`falco`, `falco-modern-bpf`, ...).
fn syslog_header(rest: &[u8]) -> Option<&[u8]> {
    let host_end = rest.iter().take(256).position(|&b| b == b' ')?;
    if host_end == 0 {
        return None;
    }
    let after_host = &rest[host_end + 1..];
    let colon = after_host.iter().take(80).position(|&b| b == b':')?;
    let tag = &after_host[..colon];
    let name = match tag.iter().position(|&b| b == b'[') {
        Some(i) => {
            let pid = tag[i + 1..].strip_suffix(b"]")?;
            if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
                return None;
            }
            &tag[..i]
        }
        None => tag,
    };
    let valid = name.len() >= 5
        && name[..5].eq_ignore_ascii_case(b"falco")
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if !valid {
        return None;
    }
    after_host[colon + 1..].strip_prefix(b" ")
}

/// `<PRI>` then RFC 5424 (`1 TIMESTAMP HOST APP PROCID MSGID SD MSG`) or RFC 3164.
fn with_priority(line: &[u8], year_hint: Option<DateTime<Utc>>) -> Option<(Stamp, &[u8])> {
    let close = line.iter().take(5).position(|&b| b == b'>')?;
    let pri = &line[1..close];
    if pri.is_empty() || !pri.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let rest = &line[close + 1..];
    if let Some(v5424) = rest.strip_prefix(b"1 ") {
        let (at, rest) = split_kubelet_prefix(v5424)?;
        // HOST APP PROCID MSGID, then structured data (`-` or `[...]`), then the message.
        let mut fields = rest;
        let mut app: &[u8] = b"";
        for i in 0..4 {
            let end = fields.iter().position(|&b| b == b' ')?;
            if i == 1 {
                app = &fields[..end];
            }
            fields = &fields[end + 1..];
        }
        if app.len() < 5 || !app[..5].eq_ignore_ascii_case(b"falco") {
            return None;
        }
        let msg = if let Some(m) = fields.strip_prefix(b"- ") {
            m
        } else if fields.first() == Some(&b'[') {
            let end = fields.windows(2).position(|w| w == b"] ")?;
            &fields[end + 2..]
        } else {
            return None;
        };
        return Some((Stamp { at, zoned: true }, msg));
    }
    let (at, msg) = classic_syslog(rest, year_hint)?;
    Some((Stamp { at, zoned: false }, msg))
}

/// RFC 3164 / journald `short`: `Oct  6 17:59:08 HOST TAG[PID]: `. The stamp has no year: the
/// one nearest to `year_hint` (a date of the same log), else the latest not ahead of now (a day
/// of slack), as syslog readers do.
fn classic_syslog(line: &[u8], year_hint: Option<DateTime<Utc>>) -> Option<(DateTime<Utc>, &[u8])> {
    if line.len() < 16 || line[3] != b' ' || line[6] != b' ' || line[15] != b' ' {
        return None;
    }
    let month = MONTHS.iter().position(|m| &line[0..3] == *m)? as u32 + 1;
    let day = match &line[4..6] {
        [b' ', d] if d.is_ascii_digit() => u32::from(d - b'0'),
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            u32::from(a - b'0') * 10 + u32::from(b - b'0')
        }
        _ => return None,
    };
    let clock = std::str::from_utf8(&line[7..15]).ok()?;
    let t = chrono::NaiveTime::parse_from_str(clock, "%H:%M:%S").ok()?;
    let rest = syslog_header(&line[16..])?;
    let in_year = |year: i32| {
        NaiveDate::from_ymd_opt(year, month, day)
            .map(|d| Utc.from_utc_datetime(&NaiveDateTime::new(d, t)))
    };
    let at = match year_hint {
        Some(hint) => (hint.year() - 1..=hint.year() + 1)
            .filter_map(in_year)
            .min_by_key(|at| (*at - hint).num_seconds().abs())?,
        None => {
            let now = Utc::now();
            // Feb 29 of a year that has none, or a date still ahead this year: go back.
            (now.year() - 8..=now.year())
                .rev()
                .filter_map(in_year)
                .find(|at| *at <= now + Duration::days(1))?
        }
    };
    Some((at, rest))
}

/// `kubectl logs --prefix`: `[pod/NAME/CONTAINER] `.
fn kubectl_prefix(line: &[u8]) -> Option<((String, String), usize)> {
    let inner = line.strip_prefix(b"[pod/")?;
    let close = inner.iter().take(400).position(|&b| b == b']')?;
    if inner.get(close + 1) != Some(&b' ') {
        return None;
    }
    let path = std::str::from_utf8(&inner[..close]).ok()?;
    let (pod, container) = path.split_once('/')?;
    if !is_name(pod.as_bytes()) || !is_name(container.as_bytes()) {
        return None;
    }
    Some(((pod.to_string(), container.to_string()), 5 + close + 2))
}

/// stern `-o json`: `{"message":"...","nodeName":"...","namespace":"...","podName":"...",
/// "containerName":"..."}`.
fn stern_json(line: &[u8]) -> Option<((String, String), Vec<u8>)> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Stern {
        message: String,
        pod_name: String,
        container_name: String,
    }
    let s: Stern = serde_json::from_slice(line).ok()?;
    let message = s
        .message
        .strip_suffix('\n')
        .unwrap_or(&s.message)
        .as_bytes()
        .to_vec();
    Some(((s.pod_name, s.container_name), message))
}

/// stern's default template: `POD CONTAINER message`, where the message is Falco's.
fn stern_default(line: &[u8]) -> Option<((String, String), usize)> {
    let pod_end = line.iter().take(254).position(|&b| b == b' ')?;
    let after_pod = &line[pod_end + 1..];
    let container_end = after_pod.iter().take(64).position(|&b| b == b' ')?;
    let (pod, container) = (&line[..pod_end], &after_pod[..container_end]);
    if !is_name(pod) || !is_name(container) {
        return None;
    }
    let rest = &after_pod[container_end + 1..];
    let falco_like = rest.first() == Some(&b'{')
        || split_alert_time(rest).is_some()
        || split_kubelet_prefix(rest).is_some()
        || logger_time(rest).is_some();
    if !falco_like {
        return None;
    }
    let start = pod_end + 1 + container_end + 1;
    Some((
        (
            String::from_utf8_lossy(pod).into_owned(),
            String::from_utf8_lossy(container).into_owned(),
        ),
        start,
    ))
}

/// A Kubernetes object name: lowercase letters, digits, `-` and `.`.
fn is_name(b: &[u8]) -> bool {
    !b.is_empty()
        && b.len() <= 253
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
}

/// Removes ANSI SGR sequences (`ESC [ ... m`).
fn strip_sgr(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == 0x1b && line.get(i + 1) == Some(&b'[') {
            let end = line[i + 2..]
                .iter()
                .position(|&b| !(b.is_ascii_digit() || b == b';'));
            if let Some(e) = end.filter(|&e| line[i + 2 + e] == b'm') {
                i += 2 + e + 1;
                continue;
            }
        }
        out.push(line[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn envelopes_table() {
        let alert = "17:59:08.370713347: Notice A shell k8s_ns_name=ns1";
        /// (line, body, stamp, zoned, origin)
        type Case<'a> = (
            String,
            &'a str,
            Option<&'a str>,
            bool,
            Option<(&'a str, &'a str)>,
        );
        let cases: Vec<Case> = vec![
            (alert.to_string(), alert, None, false, None),
            (
                format!("2026-10-06T17:59:08.372015000Z {alert}"),
                alert,
                Some("2026-10-06T17:59:08.372015Z"),
                true,
                None,
            ),
            (
                format!("[pod/falco-abcde/falco] 2026-10-06T17:59:08.372015000Z {alert}"),
                alert,
                Some("2026-10-06T17:59:08.372015Z"),
                true,
                Some(("falco-abcde", "falco")),
            ),
            (
                format!("[pod/falco-abcde/falco] {alert}"),
                alert,
                None,
                false,
                Some(("falco-abcde", "falco")),
            ),
            (
                format!("2026-10-06T17:59:08.372015+00:00 node-1 falco: {alert}"),
                alert,
                Some("2026-10-06T17:59:08.372015Z"),
                true,
                None,
            ),
            (
                format!("2026-10-06T19:59:08+0200 node-1 falco[4242]: {alert}"),
                alert,
                Some("2026-10-06T17:59:08Z"),
                true,
                None,
            ),
            (
                format!("<165>1 2026-10-06T17:59:08.372Z node-1 falco 4242 - - {alert}"),
                alert,
                Some("2026-10-06T17:59:08.372Z"),
                true,
                None,
            ),
            (
                format!("<165>1 2026-10-06T17:59:08.372Z node-1 falco 4242 ID47 [x@1 a=\"b\"] {alert}"),
                alert,
                Some("2026-10-06T17:59:08.372Z"),
                true,
                None,
            ),
            (
                format!("falco-abcde falco {alert}"),
                alert,
                None,
                false,
                Some(("falco-abcde", "falco")),
            ),
            (
                format!("\u{1b}[32mfalco-abcde\u{1b}[0m \u{1b}[34mfalco\u{1b}[0m {alert}"),
                alert,
                None,
                false,
                Some(("falco-abcde", "falco")),
            ),
            (
                format!(
                    "{{\"message\":\"{alert}\\n\",\"nodeName\":\"n\",\"namespace\":\"falco\",\"podName\":\"falco-x\",\"containerName\":\"falco\"}}"
                ),
                alert,
                None,
                false,
                Some(("falco-x", "falco")),
            ),
            // Not Falco's syslog tag: left as it is.
            (
                format!("2026-10-06T17:59:08.372015+00:00 node-1 sshd[1]: {alert}"),
                "node-1 sshd[1]: 17:59:08.370713347: Notice A shell k8s_ns_name=ns1",
                Some("2026-10-06T17:59:08.372015Z"),
                true,
                None,
            ),
            // Ordinary words are not a stern prefix.
            (
                "hello world again".to_string(),
                "hello world again",
                None,
                false,
                None,
            ),
        ];
        for (line, body, stamp, zoned, origin) in cases {
            let o = open(line.as_bytes(), None);
            assert_eq!(String::from_utf8_lossy(&o.body), body, "{line}");
            assert_eq!(o.stamp.map(|s| s.at), stamp.map(ts), "{line}");
            if stamp.is_some() {
                assert_eq!(o.stamp.map(|s| s.zoned), Some(zoned), "{line}");
            }
            assert_eq!(
                o.origin,
                origin.map(|(p, c)| (p.to_string(), c.to_string())),
                "{line}"
            );
        }
    }

    #[test]
    fn classic_syslog_years() {
        let hint = Some(ts("2024-01-15T09:59:58Z"));
        let (at, rest) = classic_syslog(b"Jan 15 17:59:08 node falco: x", hint).expect("classic");
        assert_eq!(at, ts("2024-01-15T17:59:08Z"));
        assert_eq!(rest, b"x");
        let (at, _) = classic_syslog(b"Dec 31 23:59:00 node falco[9]: x", hint).expect("dec");
        assert_eq!(at, ts("2023-12-31T23:59:00Z"));
        assert!(classic_syslog(b"Oct  6 17:59:08 node cron: x", hint).is_none());
        let (at, _) = classic_syslog(b"Oct  6 17:59:08 node falco: x", None).expect("now");
        assert!(at <= Utc::now() + Duration::days(1));
        let o = open(
            b"Oct  6 17:59:08 node falco: 17:59:08.370713347: Notice x",
            hint,
        );
        assert_eq!(o.stamp.map(|s| s.zoned), Some(false));
        assert_eq!(&o.body[..], b"17:59:08.370713347: Notice x");
    }
}
