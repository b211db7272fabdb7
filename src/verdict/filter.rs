//! Which events count: the namespace scope, the time window, the threshold, and a byte
//! prefilter that lets the decoder skip lines that cannot matter.

use chrono::{DateTime, Utc};
use memchr::memmem;

use super::breakdown::GroupBy;
use super::ignore::Ignores;
use crate::falco::Priority;

/// The time window: events at or after `start` (inclusive) and, when set, before `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.start && self.end.is_none_or(|e| t < e)
    }
}

/// Whose alerts count: one namespace (exact match) or every namespace (`-A`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    All,
}

impl Scope {
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Namespace(n) => Some(n),
            Scope::All => None,
        }
    }

    /// `namespace_filter` in the JSON contract: the name, or `"*"` for every namespace.
    pub fn as_filter(&self) -> &str {
        self.namespace().unwrap_or("*")
    }

    /// "namespace NS" or "all namespaces", for messages.
    pub fn describe(&self) -> String {
        match self {
            Scope::Namespace(n) => format!("namespace {n}"),
            Scope::All => "all namespaces".to_string(),
        }
    }
}

/// What to look for: alerts in the scope, in the window, blocking from `threshold` up unless
/// accepted as noise.
#[derive(Debug)]
pub struct AlertFilter {
    pub scope: Scope,
    pub window: Window,
    pub threshold: Priority,
    pub ignores: Ignores,
    pub group_by: Option<GroupBy>,
    /// Most lines belong to other namespaces: a line without these bytes is not parsed.
    needle: Option<memmem::Finder<'static>>,
    drop_needle: memmem::Finder<'static>,
}

impl AlertFilter {
    pub fn new(namespace: &str, window: Window, threshold: Priority) -> Self {
        Self::for_scope(Scope::Namespace(namespace.to_string()), window, threshold)
    }

    pub fn for_scope(scope: Scope, window: Window, threshold: Priority) -> Self {
        let needle = scope
            .namespace()
            .map(|n| memmem::Finder::new(n.as_bytes()).into_owned());
        AlertFilter {
            scope,
            window,
            threshold,
            ignores: Ignores::default(),
            group_by: None,
            needle,
            drop_needle: memmem::Finder::new(b"syscall event drop").into_owned(),
        }
    }

    /// True when the bytes could hold an alert for the namespace or a Falco drop report. The
    /// name must stand as a whole token: a namespace is a DNS label, so wherever an alert names
    /// it (a JSON string, a `k8s_ns_name=` token) the bytes around it are not label bytes, and
    /// the lines of a sibling (`shadow-abc1234`) are never parsed.
    pub fn may_match(&self, raw: &[u8]) -> bool {
        match &self.needle {
            Some(_) => {
                self.names_as_token(raw)
                    || self.drop_needle.find(raw).is_some()
                    || may_be_unlabelled(raw)
            }
            None => true,
        }
    }

    /// True when the bytes name the namespace as a whole token: not inside a longer name
    /// (`shadow-abc1234`, `xshadow-abc123`). Every namespace for `-A`: no line can be ruled out.
    pub fn names_as_token(&self, raw: &[u8]) -> bool {
        let Some(n) = &self.needle else {
            // `-A`: a line that carries one of Falco's namespace keys.
            const KEYS: [&[u8]; 5] = [
                b"k8s_ns_name=",
                b"k8s_ns=",
                b"k8s.ns=",
                b"k8s.ns.name",
                b"ka.target.namespace",
            ];
            return KEYS.iter().any(|k| memmem::find(raw, k).is_some())
                || memmem::find_iter(raw, b"ns=")
                    .any(|at| at == 0 || matches!(raw[at - 1], b' ' | b'(' | b','));
        };
        let len = n.needle().len();
        n.find_iter(raw).any(|at| {
            let after = raw.get(at + len).copied();
            starts_token(raw, at) && !after.is_some_and(is_label_byte)
        })
    }
}

/// True when the bytes may hold an alert about a container whose namespace Falco did not
/// resolve (`k8s_ns=<NA>`, `"k8s.ns.name":null`, or no namespace key at all beside a container
/// id): such an alert may be the namespace's, so it is parsed and counted, never skipped.
pub fn may_be_unlabelled(raw: &[u8]) -> bool {
    const TEXT_KEYS: [&[u8]; 4] = [b"k8s_ns=", b"k8s.ns=", b"k8s_ns_name=", b"k8s.ns.name="];
    let na_after_key =
        memmem::find_iter(raw, b"<NA>").any(|at| TEXT_KEYS.iter().any(|k| raw[..at].ends_with(k)));
    if na_after_key {
        return true;
    }
    const JSON_KEY: &[u8] = b"\"k8s.ns.name\":";
    let mut json_keyed = false;
    for at in memmem::find_iter(raw, JSON_KEY) {
        json_keyed = true;
        let value = raw[at + JSON_KEY.len()..].trim_ascii_start();
        if value.starts_with(b"null")
            || value.starts_with(b"\"<NA>\"")
            || value.starts_with(b"\"\"")
        {
            return true;
        }
    }
    if json_keyed {
        return false;
    }
    // No namespace key at all: a container alert of a rule that prints none.
    let container = memmem::find(raw, b"container_id=").is_some()
        || memmem::find(raw, b"\"container.id\"").is_some();
    container
        && TEXT_KEYS.iter().all(|k| memmem::find(raw, k).is_none())
        && memmem::find(raw, b"ka.target.namespace").is_none()
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// Whether a name at `at` starts a token. A JSON escape right before it (`\n`, `\t`,
/// `\u0009`) ends in a letter or digit but stands for a separator: it counts as a boundary, so
/// that no alert is dropped for how its text was escaped.
fn starts_token(raw: &[u8], at: usize) -> bool {
    let Some(&b) = at.checked_sub(1).and_then(|i| raw.get(i)) else {
        return true;
    };
    if !is_label_byte(b) {
        return true;
    }
    let escape = at >= 2 && raw[at - 2] == b'\\' && matches!(b, b'n' | b't' | b'r' | b'b' | b'f');
    let unicode = at >= 6
        && raw[at - 6] == b'\\'
        && raw[at - 5] == b'u'
        && raw[at - 4..at].iter().all(u8::is_ascii_hexdigit);
    escape || unicode
}

impl AlertFilter {
    pub(crate) fn wants_namespace(&self, ns: Option<&str>) -> bool {
        match (self.scope.namespace(), ns) {
            (Some(want), Some(got)) => want == got,
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefilter_wants_the_name_as_a_token_only() {
        let f = AlertFilter::new(
            "shadow-abc123",
            Window {
                start: chrono::DateTime::UNIX_EPOCH,
                end: None,
            },
            Priority::Warning,
        );
        let cases: [(&[u8], bool); 11] = [
            (br#""k8s.ns.name":"shadow-abc123""#, true),
            (br#""k8s.ns.name":"shadow-abc1234""#, false),
            (br#""k8s.ns.name":"xshadow-abc123""#, false),
            (b"k8s_ns_name=shadow-abc123 k8s_pod_name=x", true),
            (b"k8s_ns_name=shadow-abc123-runner", false),
            // JSON escapes before the name stand for separators.
            (br#""output":"ns:\nshadow-abc123""#, true),
            (br#""output":"ns:\tshadow-abc123""#, true),
            (br#""output":"ns:\u0009shadow-abc123""#, true),
            (br#""output":"anshadow-abc123""#, false),
            // Both: the sibling first, then the name itself.
            (br#"shadow-abc1234 "k8s.ns.name":"shadow-abc123""#, true),
            (b"Falco internal: syscall event drop", true),
        ];
        for (raw, want) in cases {
            assert_eq!(f.may_match(raw), want, "{}", String::from_utf8_lossy(raw));
        }
    }
}
