//! Falco priorities, most severe first.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A Falco rule priority. The discriminant orders them: a lower value is more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Informational = 6,
    Debug = 7,
}

impl Priority {
    /// All priorities, most severe first.
    pub const ALL: [Priority; 8] = [
        Priority::Emergency,
        Priority::Alert,
        Priority::Critical,
        Priority::Error,
        Priority::Warning,
        Priority::Notice,
        Priority::Informational,
        Priority::Debug,
    ];

    /// The spelling Falco prints (`falco_common::format_priority`).
    pub fn as_falco_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// Upper case, as the seed's `severity_threshold` and our flags show it.
    pub fn as_upper(self) -> &'static str {
        match self {
            Priority::Emergency => "EMERGENCY",
            Priority::Alert => "ALERT",
            Priority::Critical => "CRITICAL",
            Priority::Error => "ERROR",
            Priority::Warning => "WARNING",
            Priority::Notice => "NOTICE",
            Priority::Informational => "INFORMATIONAL",
            Priority::Debug => "DEBUG",
        }
    }

    /// Lower case: the keys of the JSON `summary`.
    pub fn as_lower(self) -> &'static str {
        match self {
            Priority::Emergency => "emergency",
            Priority::Alert => "alert",
            Priority::Critical => "critical",
            Priority::Error => "error",
            Priority::Warning => "warning",
            Priority::Notice => "notice",
            Priority::Informational => "informational",
            Priority::Debug => "debug",
        }
    }

    /// True when `self` is `threshold` or more severe.
    /// 0 for Emergency up to 7 for Debug: smaller is more severe.
    pub fn rank(self) -> u8 {
        match self {
            Priority::Emergency => 0,
            Priority::Alert => 1,
            Priority::Critical => 2,
            Priority::Error => 3,
            Priority::Warning => 4,
            Priority::Notice => 5,
            Priority::Informational => 6,
            Priority::Debug => 7,
        }
    }

    pub fn at_least(self, threshold: Priority) -> bool {
        self <= threshold
    }

    /// Case-insensitive parse of the names Falco itself accepts (`info` included).
    pub fn parse(s: &str) -> Option<Priority> {
        let s = s.trim();
        Priority::ALL
            .into_iter()
            .find(|p| p.as_lower().eq_ignore_ascii_case(s))
            .or_else(|| {
                s.eq_ignore_ascii_case("info")
                    .then_some(Priority::Informational)
            })
    }

    /// Same as [`Priority::parse`] over bytes, without allocating.
    pub fn parse_bytes(b: &[u8]) -> Option<Priority> {
        std::str::from_utf8(b).ok().and_then(Priority::parse)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_falco_str())
    }
}

/// Error for a priority name that Falco does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority {0:?}: use one of emergency, alert, critical, error, warning, notice, informational (info), debug")]
pub struct UnknownPriority(pub String);

impl FromStr for Priority {
    type Err = UnknownPriority;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::parse(s).ok_or_else(|| UnknownPriority(s.to_string()))
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_falco_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_most_severe_first() {
        assert!(Priority::Emergency.at_least(Priority::Warning));
        assert!(Priority::Warning.at_least(Priority::Warning));
        assert!(!Priority::Notice.at_least(Priority::Warning));
        assert!(!Priority::Debug.at_least(Priority::Informational));
        let mut sorted = Priority::ALL;
        sorted.sort();
        assert_eq!(sorted, Priority::ALL);
    }

    #[test]
    fn parse_is_case_insensitive_and_knows_info() {
        assert_eq!(Priority::parse("WARNING"), Some(Priority::Warning));
        assert_eq!(Priority::parse("warning"), Some(Priority::Warning));
        assert_eq!(
            Priority::parse("Informational"),
            Some(Priority::Informational)
        );
        assert_eq!(Priority::parse("info"), Some(Priority::Informational));
        assert_eq!(Priority::parse("INFO"), Some(Priority::Informational));
        assert_eq!(Priority::parse("warn"), None);
        assert_eq!(Priority::parse(""), None);
        assert!("bogus".parse::<Priority>().is_err());
    }
}
