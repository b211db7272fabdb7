//! Which events count: the namespace scope, the time window, the threshold, and a byte
//! prefilter that lets the decoder skip lines that cannot matter.

use std::sync::Arc;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    #[default]
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

    /// "NS" or "all namespaces": the scope as a name (report titles).
    pub fn label(&self) -> &str {
        self.namespace().unwrap_or("all namespaces")
    }

    /// "for namespace NS" or "in any namespace", after "no alert".
    pub fn whose(&self) -> String {
        match self {
            Scope::Namespace(n) => format!("for namespace {n}"),
            Scope::All => "in any namespace".to_string(),
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
    /// What marks a canary's alert (expected, never counted).
    pub canary_rules: Vec<super::canary::CanaryRule>,
    /// This run's canary nonce (`--canary`): an unlabelled alert of one of its canaries is
    /// the canary's.
    pub canary_nonce: Option<String>,
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
            canary_rules: vec![super::canary::CanaryRule::default()],
            canary_nonce: None,
            needle,
            drop_needle: memmem::Finder::new(b"syscall event drop").into_owned(),
        }
    }

    /// True when the bytes could hold an alert for the namespace or a Falco drop report, or an
    /// alert about a container Falco did not label (it may be the namespace's). The name must
    /// stand as a whole token: a namespace is a DNS label, so wherever an alert names it (a JSON
    /// string, a `k8s_ns_name=` token) the bytes around it are not label bytes, and the lines of
    /// a sibling (`shadow-abc1234`) are never parsed.
    pub fn may_match(&self, raw: &[u8]) -> bool {
        match &self.needle {
            Some(_) => self.facts(raw, false, false, true).wanted(),
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
        n.find_iter(raw)
            .any(|at| token_at(raw, at, len, false, false) == Some(true))
    }

    /// What a stretch of a line shows. An open edge is a cut inside the line: a fact whose
    /// context reaches it is left undecided here (a [`Scan`] decides it in the stretch that
    /// holds it whole). With `short`, stops at the first fact that makes the line wanted.
    fn facts(&self, raw: &[u8], open_start: bool, open_end: bool, short: bool) -> Facts {
        let mut f = Facts::default();
        if let Some(n) = &self.needle {
            let len = n.needle().len();
            f.named = n
                .find_iter(raw)
                .any(|at| token_at(raw, at, len, open_start, open_end) == Some(true));
        }
        f.drop = self.drop_needle.find(raw).is_some();
        if short && (f.named || f.drop) {
            return f;
        }
        unlabelled_facts(raw, !open_start && !open_end, &mut f);
        f
    }
}

/// Facts about a line (or a stretch of it) that decide whether it is wanted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Facts {
    /// The namespace as a whole token.
    named: bool,
    /// A syscall event drop notice.
    drop: bool,
    /// `k8s_ns=<NA>` (or another text namespace key with `<NA>`).
    na_after_key: bool,
    /// `"k8s.ns.name":null` (or `"<NA>"`, `""`).
    json_null: bool,
    /// `"k8s.ns.name":` with any value.
    json_key: bool,
    /// A container id key (`container_id=`, `"container.id"`).
    container: bool,
    /// A text namespace key or `ka.target.namespace`.
    other_ns_key: bool,
}

impl Facts {
    fn or(&mut self, o: Facts) {
        self.named |= o.named;
        self.drop |= o.drop;
        self.na_after_key |= o.na_after_key;
        self.json_null |= o.json_null;
        self.json_key |= o.json_key;
        self.container |= o.container;
        self.other_ns_key |= o.other_ns_key;
    }

    /// An alert about a container whose namespace Falco did not resolve (`k8s_ns=<NA>`,
    /// `"k8s.ns.name":null`, or no namespace key at all beside a container id): it may be the
    /// namespace's, so it is parsed and counted, never skipped.
    fn unlabelled(&self) -> bool {
        self.na_after_key
            || self.json_null
            || (!self.json_key && self.container && !self.other_ns_key)
    }

    fn wanted(&self) -> bool {
        self.named || self.drop || self.unlabelled()
    }
}

const TEXT_NS_KEYS: [&[u8]; 4] = [b"k8s_ns=", b"k8s.ns=", b"k8s_ns_name=", b"k8s.ns.name="];
const JSON_NS_KEY: &[u8] = b"\"k8s.ns.name\":";

use crate::falco::needle::{needle, Needle};

static NA: Needle = needle!(b"<NA>");
static JSON_NS: Needle = needle!(JSON_NS_KEY);
static CONTAINER_TEXT: Needle = needle!(b"container_id=");
static CONTAINER_JSON: Needle = needle!(b"\"container.id\"");
static AUDIT_NS: Needle = needle!(b"ka.target.namespace");
static TEXT_NS: [Needle; 4] = [
    needle!(TEXT_NS_KEYS[0]),
    needle!(TEXT_NS_KEYS[1]),
    needle!(TEXT_NS_KEYS[2]),
    needle!(TEXT_NS_KEYS[3]),
];

/// Adds the facts about unlabelled alerts (see [`Facts::unlabelled`]). Each needs only bytes
/// after its start, and a stretch cut short never shows one that is not there: a cut key or
/// value is simply not seen, and the stretch that holds it whole sees it. Scans stop once the
/// answer is decided: a namespace key anywhere rules the "no key" case out for the whole line,
/// and for a whole line (`whole`) no container id, or a `<NA>` namespace, decides it too.
fn unlabelled_facts(raw: &[u8], whole: bool, f: &mut Facts) {
    f.na_after_key |=
        NA.0.find_iter(raw)
            .any(|at| TEXT_NS_KEYS.iter().any(|k| raw[..at].ends_with(k)));
    if whole && f.na_after_key {
        return;
    }
    for at in JSON_NS.find_iter(raw) {
        f.json_key = true;
        let value = raw[at + JSON_NS_KEY.len()..].trim_ascii_start();
        f.json_null |= value.starts_with(b"null")
            || value.starts_with(b"\"<NA>\"")
            || value.starts_with(b"\"\"");
    }
    if f.json_key {
        return;
    }
    f.container |= CONTAINER_TEXT.find(raw).is_some() || CONTAINER_JSON.find(raw).is_some();
    if whole && !f.container {
        return;
    }
    f.other_ns_key |= TEXT_NS.iter().any(|k| k.find(raw).is_some()) || AUDIT_NS.find(raw).is_some();
}

/// Whether the namespace found at `at` (`len` bytes) stands as a whole token; `None` when an
/// open edge cuts the context that decides it.
fn token_at(raw: &[u8], at: usize, len: usize, open_start: bool, open_end: bool) -> Option<bool> {
    // Up to six bytes before it decide (a `\u0009` escape), one after it.
    if (open_start && at < 6) || (open_end && at + len >= raw.len()) {
        return None;
    }
    let after = raw.get(at + len).copied();
    Some(starts_token(raw, at) && !after.is_some_and(is_label_byte))
}

/// Bytes of a line kept between parts: longer than any fact with its context (a namespace is
/// at most 63 bytes, a key with its value a few dozen), so each is whole in some stretch.
const SCAN_OVERLAP: usize = 1024;

/// [`AlertFilter::may_match`] over a line fed in parts, with the same answer wherever the cuts
/// fall: each stretch scanned is the new part with the last bytes before it, and a fact is
/// taken only from a stretch that holds it whole with its context.
pub struct Scan {
    filter: Arc<AlertFilter>,
    tail: Vec<u8>,
    /// Bytes of the line before `tail`.
    before: u64,
    facts: Facts,
}

impl Scan {
    pub fn new(filter: Arc<AlertFilter>) -> Self {
        Scan {
            filter,
            tail: Vec::new(),
            before: 0,
            facts: Facts::default(),
        }
    }

    /// Decided already: every line for `-A`, or a fact that wants the line whatever follows.
    fn decided(&self) -> bool {
        self.filter.needle.is_none() || self.facts.named || self.facts.drop
    }
}

impl crate::falco::LineScan for Scan {
    fn feed(&mut self, part: &[u8]) {
        if part.is_empty() || self.decided() {
            return;
        }
        let mut stretch = std::mem::take(&mut self.tail);
        stretch.extend_from_slice(part);
        let f = self.filter.facts(&stretch, self.before > 0, true, true);
        self.facts.or(f);
        let keep = stretch.len().min(SCAN_OVERLAP);
        self.before += (stretch.len() - keep) as u64;
        stretch.drain(..stretch.len() - keep);
        self.tail = stretch;
    }

    fn finish(&mut self) -> bool {
        if !self.decided() {
            let f = self.filter.facts(&self.tail, self.before > 0, false, false);
            self.facts.or(f);
        }
        self.filter.needle.is_none() || self.facts.wanted()
    }
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
