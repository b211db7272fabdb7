//! Value parsers and grammars of single flags and variables: durations, times, namespaces,
//! priorities, line limits, `--report FORMAT=PATH` and label selectors.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::ValueEnum;

use super::format::OutputFormat;
use crate::falco::Priority;
use crate::render::neutralize;

/// `FORMAT=PATH` of `--report`.
pub(super) fn parse_report(s: &str) -> Result<(OutputFormat, PathBuf), String> {
    let (format, path) = s
        .split_once('=')
        .ok_or_else(|| format!("--report {s:?}: use FORMAT=PATH, e.g. junit=falco.xml"))?;
    let format = OutputFormat::from_str(format, true)
        .ok()
        .filter(|f| !f.is_text())
        .ok_or_else(|| {
            format!("--report {s:?}: the format is one of json, yaml, junit, markdown")
        })?;
    if path.is_empty() {
        return Err(format!("--report {s:?}: the path is empty"));
    }
    Ok((format, PathBuf::from(path)))
}

/// kubectl's `--request-timeout`: `0` is no limit (zero), a bare number is seconds, else a
/// duration.
pub(super) fn parse_request_timeout(s: &str) -> Result<Duration, String> {
    if let Ok(n) = s.trim().parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    parse_duration(s)
}

pub fn parse_namespace(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err("must be a DNS-1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit".to_string())
    }
}

/// Go durations, as kubectl takes them: `30s`, `5m`, `1h30m`, `1.5h`, `90s`, `500ms`, `2h45m`
/// (units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, fractions allowed). Zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {s:?}: use a number with a unit, as kubectl does: ns, us, ms, s, m or h (no d: a day is 24h), e.g. 30s, 5m, 1.5h, 1h30m")
    };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    // Whole nanoseconds, in u128 so that no sum or product overflows before the century check.
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let digits = |d: &str| -> Result<u128, String> {
            if d.len() > 20 {
                return Err(bad());
            }
            if d.is_empty() {
                Ok(0)
            } else {
                d.parse::<u128>().map_err(|_| bad())
            }
        };
        total += digits(whole)? * unit;
        // The fraction, to the nanosecond (Go keeps the same precision).
        let frac = &frac[..frac.len().min(18)];
        if !frac.is_empty() {
            total += digits(frac)? * unit / 10u128.pow(frac.len() as u32);
        }
        if total > 100 * 365 * 24 * 3_600_000_000_000 {
            return Err(format!("invalid duration {s:?}: longer than a century"));
        }
    }
    if total == 0 {
        return Err(format!("invalid duration {s:?}: must be more than zero"));
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, nanos))
}

pub(super) fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid RFC3339 time {s:?} ({e}): use e.g. 2024-01-15T10:30:00Z"))
}

/// The level names Falco accepts, as possible values (so completion can offer them).
pub(super) fn priority_parser() -> impl clap::builder::TypedValueParser<Value = Priority> {
    let names = Priority::ALL.iter().map(|p| p.as_lower()).chain(["info"]);
    clap::builder::TypedValueParser::map(
        clap::builder::PossibleValuesParser::new(names),
        |s: String| {
            // Every possible value parses; Warning is never reached.
            Priority::parse(&s).unwrap_or(Priority::Warning)
        },
    )
}

pub(super) fn parse_line_limit(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("invalid byte count {s:?}"))?;
    if n < 1024 {
        return Err("must be at least 1024".to_string());
    }
    Ok(n)
}

/// Checks a label selector the way the API server's parser does (`labels.Parse`), so that a typo
/// is a usage error instead of a list of no pods (a skip). `Err` says what is wrong.
pub fn check_label_selector(selector: &str) -> Result<(), String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 63
            && n.as_bytes()[0].is_ascii_alphanumeric()
            && n.as_bytes()[n.len() - 1].is_ascii_alphanumeric()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let key_ok = |k: &str| match k.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
                && name_ok(name)
        }
        None => name_ok(k),
    };
    let value_ok = |v: &str| v.is_empty() || name_ok(v);
    let bad = |term: &str, why: &str| {
        Err(format!(
            "--selector {:?}: {why} in {:?}; use e.g. app.kubernetes.io/name=falco or 'app in (falco,falco-audit)'",
            neutralize(selector),
            neutralize(term.trim())
        ))
    };
    // Terms are split on commas outside parentheses.
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    if depth != 0 {
        return bad(selector, "unbalanced parentheses");
    }
    for term in terms {
        let t = term.trim();
        if t.is_empty() {
            return bad(term, "an empty requirement");
        }
        if let Some(k) = t.strip_prefix('!') {
            if !key_ok(k.trim()) {
                return bad(term, "not a label key");
            }
            continue;
        }
        let set_op = [" notin ", " in "]
            .iter()
            .find_map(|op| t.find(op).map(|i| (i, op.len())));
        if let Some((i, len)) = set_op {
            let (k, values) = (t[..i].trim(), t[i + len..].trim());
            let Some(inner) = values.strip_prefix('(').and_then(|v| v.strip_suffix(')')) else {
                return bad(term, "a set needs parentheses");
            };
            if !key_ok(k) || !inner.split(',').all(|v| value_ok(v.trim())) {
                return bad(term, "not a label key or value");
            }
            continue;
        }
        let (k, v) = if let Some((k, v)) = t.split_once("!=") {
            (k, Some(v))
        } else if let Some((k, v)) = t.split_once("==") {
            (k, Some(v))
        } else if let Some((k, v)) = t.split_once('=') {
            (k, Some(v))
        } else {
            (t, None)
        };
        if !key_ok(k.trim()) {
            return bad(term, "not a label key");
        }
        if let Some(v) = v {
            if !value_ok(v.trim()) {
                return bad(term, "not a label value");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h45m"), Ok(Duration::from_secs(9900)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m0.25s"), Ok(Duration::from_millis(60_250)));
        assert_eq!(parse_duration("1500us"), Ok(Duration::from_micros(1500)));
        for bad in [
            "",
            "10",
            "m",
            "5x",
            "-5m",
            "0s",
            "1..5h",
            ".h",
            "1.2.3s",
            "3000000000h",
            "876001h",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_selectors() {
        for ok in [
            "app=falco",
            "app.kubernetes.io/name=falco",
            "app==falco,tier!=web",
            "app in (falco, falco-audit)",
            "app notin (x),!legacy",
            "app",
            "app=",
        ] {
            assert_eq!(check_label_selector(ok), Ok(()), "{ok}");
        }
        for bad in [
            "app=fal co",
            "app=(falco",
            "=falco",
            "app in falco",
            "a,,b",
            "app=falco!",
            "-app=x",
        ] {
            assert!(check_label_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reports() {
        assert_eq!(
            parse_report("JUnit=out/f.xml"),
            Ok((OutputFormat::Junit, PathBuf::from("out/f.xml")))
        );
        // Text is for a person on stdout, never a report.
        for bad in ["text=f", "wide=f", "csv=f", "json=", "json"] {
            assert!(parse_report(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaces() {
        assert!(parse_namespace("shadow-abc123").is_ok());
        for bad in ["Shadow", "-a", "a-", "a_b", "", &"a".repeat(64), "a.b"] {
            assert!(parse_namespace(bad).is_err(), "{bad}");
        }
    }
}
