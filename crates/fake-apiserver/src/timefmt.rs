//! Time formatting as the kubelet and the API server do it.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Appends `2024-01-15T10:30:00.000731000Z` (kubelet `timestamps=true` prefix: RFC3339 with
/// exactly 9 fractional digits, UTC). Hand-written: it runs for every line of big logs.
pub fn push_rfc3339_nano(out: &mut Vec<u8>, t: DateTime<Utc>) {
    let year = t.year();
    let mut buf = [0u8; 30];
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string().as_bytes());
        return;
    }
    let nanos = t.nanosecond().min(999_999_999); // leap second representation
    put(&mut buf[0..4], year as u32);
    buf[4] = b'-';
    put(&mut buf[5..7], t.month());
    buf[7] = b'-';
    put(&mut buf[8..10], t.day());
    buf[10] = b'T';
    put(&mut buf[11..13], t.hour());
    buf[13] = b':';
    put(&mut buf[14..16], t.minute());
    buf[16] = b':';
    put(&mut buf[17..19], t.second());
    buf[19] = b'.';
    put(&mut buf[20..29], nanos);
    buf[29] = b'Z';
    out.extend_from_slice(&buf);
}

fn put(dst: &mut [u8], mut v: u32) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `2024-01-15T10:30:00.000731000Z`
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let mut v = Vec::with_capacity(30);
    push_rfc3339_nano(&mut v, t);
    String::from_utf8(v).expect("ASCII")
}

/// `2024-01-15T10:30:00Z`, as `metav1.Time` serialises (seconds, truncated).
pub fn rfc3339_secs(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Port of apimachinery `duration.HumanDuration` (what `kubectl get` shows as AGE).
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// `2024-01-15T10:30:00.000731Z`: a MicroTime (an Event's `eventTime`).
pub fn rfc3339_micro(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
