//! The time stamps found in Falco pod logs, parsed from bytes without allocating.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Fractional seconds `.nnn` (1 to 9 digits) at the start of `b`: (nanoseconds, bytes used).
fn fraction(b: &[u8]) -> Option<(u32, usize)> {
    if b.first() != Some(&b'.') {
        return Some((0, 0));
    }
    let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 9 {
        return None;
    }
    let v = digits(&b[1..1 + n])?;
    Some((v * 10u32.pow(9 - n as u32), 1 + n))
}

/// `YYYY-MM-DD`
fn date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(
        digits(&b[0..4])? as i32,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )
}

/// `HH:MM:SS`
fn clock(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?))
}

fn naive_time(h: u32, m: u32, s: u32, nanos: u32) -> Option<NaiveTime> {
    NaiveTime::from_hms_nano_opt(h, m, s, nanos)
}

/// The kubelet's `timestamps=true` prefix: `2024-01-15T10:30:00.000731000Z ` (RFC3339Nano, UTC).
/// Returns the time and the rest of the line.
pub fn split_kubelet_prefix(line: &[u8]) -> Option<(DateTime<Utc>, &[u8])> {
    if line.len() < 21 || line[10] != b'T' || !line[0].is_ascii_digit() {
        return None;
    }
    let d = date(line)?;
    let (h, m, s) = clock(&line[11..])?;
    let (nanos, used) = fraction(&line[19..])?;
    let at = 19 + used;
    // `Z` on UTC nodes; a node in another zone gets its offset (`+08:00`): the kubelet re-prints
    // the container runtime's local time.
    let (offset_secs, zone_len) = match line.get(at) {
        Some(b'Z') => (0, 1),
        Some(sign @ (b'+' | b'-')) => {
            let z = line.get(at + 1..at + 6)?;
            if z[2] != b':' {
                return None;
            }
            let v = i64::from(digits(&z[0..2])?) * 3600 + i64::from(digits(&z[3..5])?) * 60;
            (if *sign == b'-' { -v } else { v }, 6)
        }
        _ => return None,
    };
    if line.get(at + zone_len) != Some(&b' ') {
        return None;
    }
    let t = naive_time(h, m, s, nanos)?;
    let local = Utc.from_utc_datetime(&NaiveDateTime::new(d, t));
    Some((
        local - Duration::seconds(offset_secs),
        &line[at + zone_len + 1..],
    ))
}

/// Where a text alert's `%evt.time` puts the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClock {
    /// `HH:MM:SS.nnnnnnnnn`: local time of day, no date.
    TimeOfDay(NaiveTime),
    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000` (`time_format_iso_8601: true`).
    Absolute(DateTime<Utc>),
}

/// A text alert's time prefix up to and including `": "`. Returns the clock and the rest.
pub fn split_alert_time(line: &[u8]) -> Option<(EventClock, &[u8])> {
    if line.len() >= 20 && line[2] == b':' {
        let (h, m, s) = clock(line)?;
        if line[8] != b'.' {
            return None;
        }
        let (nanos, used) = fraction(&line[8..])?;
        let rest = line[8 + used..].strip_prefix(b": ")?;
        return Some((EventClock::TimeOfDay(naive_time(h, m, s, nanos)?), rest));
    }
    if line.len() >= 30 && line[10] == b'T' && line[4] == b'-' {
        let d = date(line)?;
        let (h, m, s) = clock(&line[11..])?;
        if line[19] != b'.' {
            // The logger's ISO form has no fraction: not an alert.
            return None;
        }
        let (nanos, used) = fraction(&line[19..])?;
        let mut at = 19 + used;
        let offset_secs = match line.get(at) {
            Some(b'Z') => {
                at += 1;
                0
            }
            Some(sign @ (b'+' | b'-')) => {
                let hh = digits(line.get(at + 1..at + 3)?)? as i64;
                let mm = digits(line.get(at + 3..at + 5)?)? as i64;
                at += 5;
                let v = hh * 3600 + mm * 60;
                if *sign == b'-' {
                    -v
                } else {
                    v
                }
            }
            _ => return None,
        };
        let rest = line[at..].strip_prefix(b": ")?;
        let local = NaiveDateTime::new(d, naive_time(h, m, s, nanos)?);
        let utc = Utc.from_utc_datetime(&local) - Duration::seconds(offset_secs);
        return Some((EventClock::Absolute(utc), rest));
    }
    None
}

pub(crate) const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Falco's logger prefix: `Mon Jan 15 09:59:58 2024: ` (asctime; the day may be space padded)
/// or `2024-01-15T09:59:58+0000: `. Returns the (local) date and time it names.
pub fn logger_time(line: &[u8]) -> Option<NaiveDateTime> {
    if line.len() >= 25 && line[3] == b' ' && line[7] == b' ' && line[0].is_ascii_uppercase() {
        let month = MONTHS.iter().position(|m| &line[4..7] == *m)? as u32 + 1;
        // The day is space padded (`Feb  2`), zero padded, or, as some builds print, neither
        // (`Nov 9`): then everything after it sits one byte earlier.
        let (day, at) = match &line[8..10] {
            [b' ', d] => (digits(&[*d])?, 11),
            [d, b' '] => (digits(&[*d])?, 10),
            two => (digits(two)?, 11),
        };
        let rest = &line[at..];
        if rest.len() < 15 {
            return None;
        }
        let (h, m, s) = clock(&rest[..8])?;
        if rest[8] != b' ' || &rest[13..15] != b": " {
            return None;
        }
        let year = digits(&rest[9..13])? as i32;
        let d = NaiveDate::from_ymd_opt(year, month, day)?;
        return Some(NaiveDateTime::new(d, naive_time(h, m, s, 0)?));
    }
    if line.len() >= 26
        && line[10] == b'T'
        && line[4] == b'-'
        && (line[19] == b'+' || line[19] == b'-')
    {
        let d = date(line)?;
        let (h, m, s) = clock(&line[11..19])?;
        if &line[24..26] != b": " {
            return None;
        }
        return Some(NaiveDateTime::new(d, naive_time(h, m, s, 0)?));
    }
    None
}

/// The k8saudit plugin's Go logger: `2024/01/15 10:20:14 [k8saudit] ...` (UTC).
pub fn go_logger_time(line: &[u8]) -> Option<DateTime<Utc>> {
    if line.len() < 20 || line[4] != b'/' || line[7] != b'/' || line[10] != b' ' || line[19] != b' '
    {
        return None;
    }
    let d = NaiveDate::from_ymd_opt(
        digits(&line[0..4])? as i32,
        digits(&line[5..7])?,
        digits(&line[8..10])?,
    )?;
    let (h, m, s) = clock(&line[11..19])?;
    Some(Utc.from_utc_datetime(&NaiveDateTime::new(d, naive_time(h, m, s, 0)?)))
}

/// Places a date-less time of day next to a reference instant.
///
/// `exact` is true when the reference is the kubelet's time for this very line: the event was
/// written a moment after it happened, so the distance to the nearest quarter hour is the node's
/// UTC offset (Falco prints local time). Otherwise the reference is only a nearby time from the
/// same log, and the nearest calendar day is taken.
pub fn place_time_of_day(t: NaiveTime, reference: DateTime<Utc>, exact: bool) -> DateTime<Utc> {
    let day = reference.date_naive();
    let same_day = Utc.from_utc_datetime(&NaiveDateTime::new(day, t));
    let residual = reference - same_day;
    let whole_day = Duration::days(1);
    let half_day = Duration::hours(12);
    // Bring the residual into [-12h, 12h): the candidate on the nearest day.
    let mut shift = Duration::zero();
    let mut r = residual;
    while r >= half_day {
        r -= whole_day;
        shift += whole_day;
    }
    while r < -half_day {
        r += whole_day;
        shift -= whole_day;
    }
    let candidate = same_day + shift;
    if !exact {
        return candidate;
    }
    // Round the remaining distance to the nearest 15 minutes: that is the zone offset.
    let quarter = 15 * 60 * 1_000_000_000i64;
    let nanos = r.num_nanoseconds().unwrap_or(0);
    let offset = ((nanos as f64) / quarter as f64).round() as i64 * quarter;
    candidate + Duration::nanoseconds(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    #[test]
    fn kubelet_prefix() {
        let (t, rest) =
            split_kubelet_prefix(b"2024-01-15T10:30:00.000731000Z 10:29:59.999999999: Error x")
                .expect("prefix");
        assert_eq!(t, ts("2024-01-15T10:30:00.000731Z"));
        assert_eq!(rest, b"10:29:59.999999999: Error x");
        assert!(split_kubelet_prefix(b"2024-01-15T10:46:03.774512908+0000: Warning x").is_none());
        assert!(split_kubelet_prefix(b"2024-01-15T10:30:00Z x").is_some());
        let (t, rest) =
            split_kubelet_prefix(b"2024-01-15T18:30:00.000731000+08:00 {}").expect("offset");
        assert_eq!((t, rest), (ts("2024-01-15T10:30:00.000731Z"), &b"{}"[..]));
        assert!(split_kubelet_prefix(b"2024-01-15T18:30:00.5-03:30 x").is_some());
        assert!(split_kubelet_prefix(b"{\"a\":1}").is_none());
    }

    #[test]
    fn alert_time_prefixes() {
        let (c, rest) = split_alert_time(b"10:30:00.000000000: Warning Log").expect("tod");
        assert_eq!(
            c,
            EventClock::TimeOfDay(NaiveTime::from_hms_opt(10, 30, 0).expect("t"))
        );
        assert_eq!(rest, b"Warning Log");
        let (c, _) =
            split_alert_time(b"2024-01-15T10:46:03.774512908+0000: Warning x").expect("iso");
        assert_eq!(
            c,
            EventClock::Absolute(ts("2024-01-15T10:46:03.774512908Z"))
        );
        let (c, _) =
            split_alert_time(b"2024-01-15T12:46:03.774512908+0200: Warning x").expect("iso");
        assert_eq!(
            c,
            EventClock::Absolute(ts("2024-01-15T10:46:03.774512908Z"))
        );
        assert!(split_alert_time(b"2024-01-15T10:46:03+0000: logger").is_none());
        assert!(split_alert_time(b"10:30:00: Warning").is_none());
        assert!(split_alert_time(b"Mon Jan 15 09:59:58 2024: x").is_none());
    }

    #[test]
    fn logger_prefixes() {
        let t = logger_time(b"Mon Jan 15 09:59:58 2024: Falco version").expect("asctime");
        assert_eq!(t.to_string(), "2024-01-15 09:59:58");
        let t = logger_time(b"Fri Feb  2 01:02:03 2024: x").expect("padded");
        assert_eq!(t.to_string(), "2024-02-02 01:02:03");
        let t = logger_time(b"Mon Nov 9 18:43:37 2020: Falco internal: x").expect("unpadded");
        assert_eq!(t.to_string(), "2020-11-09 18:43:37");
        // Every prefix of a logger line is safe to look at.
        let full = b"Mon Nov 9 18:43:37 2020: Falco internal: x";
        for n in 0..full.len() {
            let _ = logger_time(&full[..n]);
        }
        assert!(logger_time(b"2024-01-15T09:59:58+0000: Falco").is_some());
        assert!(logger_time(b"10:30:00.000000000: Warning").is_none());
        assert!(go_logger_time(b"2024/01/15 10:20:14 [k8saudit] bad").is_some());
    }

    #[test]
    fn time_of_day_placement() {
        let t = NaiveTime::from_hms_nano_opt(10, 29, 59, 999_999_999).expect("t");
        let k = ts("2024-01-15T10:30:00.000731Z");
        assert_eq!(
            place_time_of_day(t, k, true),
            ts("2024-01-15T10:29:59.999999999Z")
        );
        // Just before midnight, written just after.
        let t = NaiveTime::from_hms_opt(23, 59, 59).expect("t");
        assert_eq!(
            place_time_of_day(t, ts("2024-01-16T00:00:01Z"), true),
            ts("2024-01-15T23:59:59Z")
        );
        // A node two hours ahead of UTC.
        let t = NaiveTime::from_hms_opt(12, 30, 0).expect("t");
        assert_eq!(
            place_time_of_day(t, ts("2024-01-15T10:30:00.5Z"), true),
            ts("2024-01-15T10:30:00Z")
        );
        // A loose reference keeps the clock as it is, on the nearest day.
        assert_eq!(
            place_time_of_day(t, ts("2024-01-15T09:59:58Z"), false),
            ts("2024-01-15T12:30:00Z")
        );
    }
}
