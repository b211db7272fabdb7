//! Turns a Falco pod log, fed as byte chunks of any size, into events.
//!
//! Memory is bounded: one partial line of at most `max_line` bytes, plus one open text record of
//! at most [`MAX_TEXT_RECORD`] bytes. Nothing else of the log is kept.

use chrono::{DateTime, NaiveTime, Utc};
use memchr::memchr;

use super::envelope::{self, Stamp};
use super::event::{parse_json, parse_text, strip_injected_timestamps, Event, RUNTIME_SPLIT};
use super::needle::{needle, Needle};
use super::time::{go_logger_time, logger_time, place_time_of_day, split_alert_time, EventClock};

/// The version a start banner names: `...: Falco version: 0.42.1 (x86_64)` gives `0.42.1`.
pub fn banner_version(line: &[u8]) -> Option<String> {
    const KEY: &[u8] = b": Falco version: ";
    let at = memchr::memmem::find(line, KEY)? + KEY.len();
    let v: Vec<u8> = line[at..]
        .iter()
        .copied()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'))
        .take(40)
        .collect();
    (!v.is_empty()).then(|| String::from_utf8_lossy(&v).into_owned())
}

/// Default bound for one log line.
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;
/// Bound for one text alert with its continuation lines.
pub const MAX_TEXT_RECORD: usize = 256 * 1024;
const MAX_TEXT_LINES: usize = 512;
/// Text alerts held until a dated line places them (beyond this they are counted undated).
const MAX_UNDATED: usize = 1024;
/// The first line naming the namespace that was not understood is kept, this long at most.
const SHOWN_MENTION: usize = 300;
const DROP_NOTICE: &[u8] = b"Falco internal: syscall event drop";
/// A sink's `wants` test over a line that arrives in parts (an over-long line, fed in chunks and
/// not kept): it must answer what `wants` answers for the whole line, wherever the cuts fall.
pub trait LineScan: Send {
    fn feed(&mut self, part: &[u8]);
    /// The answer for all the parts fed.
    fn finish(&mut self) -> bool;
}

/// The scan of a sink that did not say how to scan in parts: every line may matter.
struct AlwaysWanted;

impl LineScan for AlwaysWanted {
    fn feed(&mut self, _: &[u8]) {}
    fn finish(&mut self) -> bool {
        true
    }
}

/// Where decoded events go, and which raw records are worth decoding at all.
pub trait EventSink {
    /// Cheap test on raw bytes: false means no event in them can matter, so they are not parsed.
    fn wants(&self, raw: &[u8]) -> bool;
    /// A rule alert or internal message.
    fn event(&mut self, event: Event);
    /// Whether the bytes name what the sink looks for as a whole token (not a prefix of a
    /// longer name): such a line that is not understood must be reported.
    fn names_exactly(&self, raw: &[u8]) -> bool {
        self.wants(raw)
    }
    /// Whether the sink looks for one namespace (not every one, `-A`).
    fn scoped(&self) -> bool {
        true
    }
    /// `wants` over a line fed in parts (see [`LineScan`]).
    fn line_scan(&self) -> Box<dyn LineScan> {
        Box::new(AlwaysWanted)
    }
}

/// What the decoder saw, beyond the events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Physical lines.
    pub lines: u64,
    /// Lines that looked like JSON and could hold an alert for the sink (they passed `wants`),
    /// but were not a Falco record: malformed, truncated, or of another shape.
    pub malformed: u64,
    /// Lines recognized as Falco's own output (alerts, internal messages, logger lines, the
    /// shutdown stats). Counted only until the first, which is all a caller needs: zero with
    /// `lines > 0` means nothing in the input was understood.
    pub recognized: u64,
    /// Lines longer than the bound, skipped.
    pub oversized: u64,
    /// Of those, lines whose kept part passed the sink's `wants` test: they might have mattered.
    pub oversized_wanted: u64,
    /// Text alerts whose date could not be worked out (no kubelet time, no dated line before).
    pub undated: u64,
    /// Text alerts with a time of day but no kubelet time: dated from nearby lines, clock taken
    /// as UTC.
    pub loosely_dated: u64,
    /// Records that passed `wants` and were parsed fully.
    pub parsed: u64,
    /// Lines that name the sink's namespace as a token but are no Falco record we understand.
    pub unparsed_mentions: u64,
    /// Where the lines that were not understood are (malformed, unparsed, over-long), in the
    /// order read: the first [`SPOTS_KEPT`], so that `-v 4` can list them.
    pub spots: Vec<Spot>,
    /// Drop notices that were not Falco's drop alert itself (logger lines, glued to other
    /// messages); the excess over the drop alerts is reported as drops.
    pub logged_drops: u64,
    /// Falco's drop alerts handed to the sink.
    pub drop_alerts: u64,
    /// The kubelet times of the first and last line, when the log carries them.
    pub first_line_time: Option<DateTime<Utc>>,
    pub last_line_time: Option<DateTime<Utc>>,
    /// The versions Falco's start banners name (`Falco version: 0.42.1 (x86_64)`).
    pub falco_versions: std::collections::BTreeSet<String>,
}

/// How many places of trouble a decoder keeps (the counts go on past it).
pub const SPOTS_KEPT: usize = 1000;

/// What was not understood at a [`Spot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpotKind {
    /// A JSON line that could hold an alert for the sink but does not parse.
    Malformed,
    /// A line that names the namespace as a token but is no Falco record understood.
    Unparsed,
    /// An over-long line, or an alert spread over too many lines, that mentions the namespace.
    Overlong,
}

/// One place in a log that was not understood: where it ends and its first characters (lossy
/// UTF-8, cut to a few hundred characters; untrusted text; empty for an over-long line, whose
/// bytes were not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    pub kind: SpotKind,
    pub at: LineAt,
    pub excerpt: String,
}

impl DecodeStats {
    /// The first place of this kind.
    pub fn first(&self, kind: SpotKind) -> Option<&Spot> {
        self.spots.iter().find(|s| s.kind == kind)
    }
}

/// Where in a log something was found: the line (1-based, of the bytes this decoder read) and
/// that line's kubelet time when the log carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineAt {
    pub line: u64,
    pub time: Option<DateTime<Utc>>,
}

struct OpenText {
    buf: Vec<u8>,
    /// A continuation line was already reported as naming the namespace.
    flagged: bool,
    stamp: Option<Stamp>,
    origin: Option<(String, String)>,
    lines: usize,
    /// The record reached its bound; later continuation lines are dropped.
    full: bool,
    /// A dropped part passed the sink's `wants` test.
    dropped_wanted: bool,
}

/// A join [`Decoder::join`] refused: the first part as it was, and the later part's decoder
/// (its work to be thrown away).
pub struct Refused<S> {
    pub first: Decoder<S>,
    pub later: Decoder<S>,
}

/// Streaming decoder for one log (one container instance).
pub struct Decoder<S> {
    sink: S,
    max_line: usize,
    carry: Vec<u8>,
    /// While an over-long line is discarded: the sink's test over all of its parts.
    discarding: Option<Box<dyn LineScan>>,
    open: Option<OpenText>,
    /// A JSON record pretty-printed over several lines (as Falco's docs show alerts).
    open_json: Option<OpenJson>,
    /// A recent dated instant of this log, to place date-less text times.
    reference: Option<DateTime<Utc>>,
    /// Text alerts read before any dated line: placed by the first one that comes.
    undated: Vec<(Event, NaiveTime)>,
    last_logged_drop: Option<DateTime<Utc>>,
    stats: DecodeStats,
    /// A date-less time or a year-less stamp was read while no earlier date of this log was
    /// known: decoded from the middle of a log, the lines before would have changed it.
    leaned: bool,
    /// The first line's stamp, and whether that line ended any open text record (a record of
    /// its own) rather than continuing one: how a decoder started mid-log joins the one before.
    first_stamp: Option<Stamp>,
    first_closed: bool,
}

/// A JSON record spread over several lines: bytes so far and where its braces stand.
struct OpenJson {
    buf: Vec<u8>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    lines: usize,
    origin: Option<(String, String)>,
}

impl OpenJson {
    /// Adds a line; true when the record's outer braces closed.
    fn push(&mut self, line: &[u8]) -> bool {
        // The caller keeps the record within its bound (see `continue_json`).
        if !self.buf.is_empty() {
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(line);
        self.lines += 1;
        for &b in line {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }
}

impl<S: EventSink> Decoder<S> {
    pub fn new(sink: S) -> Self {
        Self::with_max_line(sink, DEFAULT_MAX_LINE)
    }

    pub fn with_max_line(sink: S, max_line: usize) -> Self {
        Decoder {
            sink,
            max_line: max_line.max(64),
            carry: Vec::new(),
            discarding: None,
            open: None,
            open_json: None,
            reference: None,
            undated: Vec::new(),
            last_logged_drop: None,
            stats: DecodeStats::default(),
            leaned: false,
            first_stamp: None,
            first_closed: false,
        }
    }

    /// Whether nothing is open at this point of the log (no partial line, record spread over
    /// lines, or text alert waiting for a date): the lines after it are read alike whatever
    /// came before, but for the date they may borrow (see `leaned`).
    fn at_rest(&self) -> bool {
        self.carry.is_empty()
            && self.discarding.is_none()
            && self.open.is_none()
            && self.open_json.is_none()
            && self.undated.is_empty()
    }

    /// Joins `later`, a decoder started blank on the bytes that follow this one's (the second
    /// half of a file, decoded on another core), with `merge` joining their sinks. When `later`
    /// read exactly what this decoder would have read from here, the result is this decoder
    /// having read both; otherwise both are handed back unchanged, and the caller feeds the
    /// bytes again to this one.
    pub fn join(
        mut self,
        later: Decoder<S>,
        merge: impl FnOnce(&mut S, S),
    ) -> Result<Decoder<S>, Box<Refused<S>>> {
        // A text alert open at the cut ends at the later part's first line when that line is a
        // record of its own (and not its continuation): it ends there in one pass as well.
        if self.open.is_some()
            && later.first_closed
            && !self.continues_open_alert(later.first_stamp)
        {
            // In one pass it ends while that line is read: its spot, if any, names that line.
            let (lines, last) = (self.stats.lines, self.stats.last_line_time);
            self.stats.lines += 1;
            if let Some(s) = later.first_stamp {
                self.stats.last_line_time = Some(s.at);
            }
            self.close_text();
            (self.stats.lines, self.stats.last_line_time) = (lines, last);
        }
        if !self.at_rest() || later.leaned {
            return Err(Box::new(Refused { first: self, later }));
        }
        let Decoder {
            sink,
            carry,
            discarding,
            open,
            open_json,
            reference,
            undated,
            last_logged_drop,
            stats,
            ..
        } = later;
        merge(&mut self.sink, sink);
        let s = &mut self.stats;
        let before = s.lines;
        let room = SPOTS_KEPT.saturating_sub(s.spots.len());
        // Before its first stamped line, the later part knew no time; one pass knew this one's.
        let last_time = s.last_line_time;
        s.spots
            .extend(stats.spots.into_iter().take(room).map(|mut spot| {
                spot.at.line += before;
                spot.at.time = spot.at.time.or(last_time);
                spot
            }));
        s.lines += stats.lines;
        s.malformed += stats.malformed;
        s.recognized = s.recognized.max(stats.recognized);
        s.oversized += stats.oversized;
        s.oversized_wanted += stats.oversized_wanted;
        s.undated += stats.undated;
        s.loosely_dated += stats.loosely_dated;
        s.parsed += stats.parsed;
        s.unparsed_mentions += stats.unparsed_mentions;
        s.logged_drops += stats.logged_drops;
        s.drop_alerts += stats.drop_alerts;
        s.first_line_time = s.first_line_time.or(stats.first_line_time);
        s.last_line_time = stats.last_line_time.or(s.last_line_time);
        s.falco_versions.extend(stats.falco_versions);
        self.carry = carry;
        self.discarding = discarding;
        self.open = open;
        self.open_json = open_json;
        self.reference = reference.or(self.reference);
        self.undated = undated;
        self.last_logged_drop = last_logged_drop.or(self.last_logged_drop);
        Ok(self)
    }

    /// A dated instant of this log: it places date-less text times read before it, and after
    /// it until the next one.
    pub fn set_reference(&mut self, t: DateTime<Utc>) {
        self.reference = Some(t);
        for (mut event, tod) in std::mem::take(&mut self.undated) {
            event.time = Some(place_time_of_day(tod, t, false));
            event.loosely_dated = true;
            self.stats.loosely_dated += 1;
            self.sink.event(event);
        }
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Counts a recognized line while none has been seen yet (cheap: one test per line at most
    /// until the first).
    fn recognize(&mut self, yes: impl FnOnce() -> bool) {
        if self.stats.recognized == 0 && yes() {
            self.stats.recognized = 1;
        }
    }

    /// Feeds the next bytes of the log.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        if !self.carry.is_empty() || self.discarding.is_some() {
            match memchr(b'\n', chunk) {
                None => {
                    self.keep_partial(chunk);
                    return;
                }
                Some(i) => {
                    self.keep_partial(&chunk[..i]);
                    self.end_carried_line();
                    chunk = &chunk[i + 1..];
                }
            }
        }
        while let Some(i) = memchr(b'\n', chunk) {
            let line = &chunk[..i];
            if line.len() > self.max_line {
                // The same test as for a line that arrives in parts.
                let mut scan = self.sink.line_scan();
                scan.feed(line);
                self.oversized(scan.finish());
            } else {
                self.line(line);
            }
            chunk = &chunk[i + 1..];
        }
        if !chunk.is_empty() {
            self.keep_partial(chunk);
        }
    }

    /// Decodes the open text record now instead of waiting for the line after it (a watcher
    /// that needs an alert as soon as it is written; a continuation line after it is then a
    /// line of its own).
    pub fn close_open_record(&mut self) {
        self.close_text();
    }

    /// Ends the log: a last line without a newline and an open text record are decoded.
    pub fn finish(mut self) -> (S, DecodeStats) {
        if !self.carry.is_empty() || self.discarding.is_some() {
            self.end_carried_line();
        }
        self.close_text();
        if let Some(j) = self.open_json.take() {
            // Cut short: what could be an alert for the sink is not understood.
            if self.sink.wants(&j.buf) {
                self.malformed(&j.buf);
            }
        }
        // Nothing dated them: counted as inside the window, said as undated.
        for (event, _) in std::mem::take(&mut self.undated) {
            self.stats.undated += 1;
            self.sink.event(event);
        }
        // Drop notices beyond Falco's drop alerts (logger lines, glued to other messages).
        for _ in self.stats.drop_alerts..self.stats.logged_drops {
            self.sink.event(Event::drop_notice(self.last_logged_drop));
        }
        (self.sink, self.stats)
    }

    fn keep_partial(&mut self, bytes: &[u8]) {
        if let Some(scan) = self.discarding.as_mut() {
            scan.feed(bytes);
            return;
        }
        let room = self.max_line - self.carry.len();
        if bytes.len() > room {
            // Over the bound: the line is scanned as it passes (the part naming the namespace
            // may come late: Falco sorts JSON keys, `output_fields` follows a long `output`),
            // and only its first bytes are kept.
            self.carry.extend_from_slice(&bytes[..room]);
            let mut scan = self.sink.line_scan();
            scan.feed(&self.carry);
            scan.feed(&bytes[room..]);
            self.discarding = Some(scan);
        } else {
            self.carry.extend_from_slice(bytes);
        }
    }

    fn end_carried_line(&mut self) {
        let line = std::mem::take(&mut self.carry);
        match self.discarding.take() {
            Some(mut scan) => self.oversized(scan.finish()),
            None => self.line(&line),
        }
        // Reuse the allocation, but do not keep a huge one around.
        if line.capacity() <= 64 * 1024 {
            self.carry = line;
            self.carry.clear();
        }
    }

    fn oversized(&mut self, wanted: bool) {
        self.stats.lines += 1;
        self.stats.oversized += 1;
        self.close_text();
        if wanted {
            self.overlong();
        }
    }

    /// An over-long line or record that mentions what the sink wants.
    fn overlong(&mut self) {
        self.stats.oversized_wanted += 1;
        self.spot(SpotKind::Overlong, &[]);
    }

    /// Keeps where a line that was not understood is, with its first characters.
    fn spot(&mut self, kind: SpotKind, bytes: &[u8]) {
        if self.stats.spots.len() >= SPOTS_KEPT {
            return;
        }
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN_MENTION * 4)]);
        let excerpt: String = text.chars().take(SHOWN_MENTION).collect();
        let at = self.here();
        self.stats.spots.push(Spot { kind, at, excerpt });
    }

    fn line(&mut self, raw: &[u8]) {
        self.stats.lines += 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let opened = envelope::open(raw, self.reference);
        let stamp = opened.stamp;
        if self.stats.lines == 1 {
            self.first_stamp = stamp;
        }
        self.leaned |= opened.hinted && self.reference.is_none();
        if let Some(s) = stamp {
            if self.stats.first_line_time.is_none() {
                self.stats.first_line_time = Some(s.at);
            }
            self.stats.last_line_time = Some(s.at);
        }
        // The runtime splits lines over 16 KiB and the kubelet may prefix each part: a time stamp
        // can sit inside a field, even inside the namespace's name.
        let repaired;
        let body: &[u8] = match (opened.body.len() > RUNTIME_SPLIT)
            .then(|| strip_injected_timestamps(&opened.body))
            .flatten()
        {
            Some(r) => {
                repaired = r;
                &repaired[..]
            }
            None => &opened.body,
        };
        if self.open_json.is_some() && self.continue_json(body) {
            return;
        }
        if self.continues_open_alert(stamp) {
            self.append(body);
            return;
        }
        let origin = opened.origin.clone();
        match body.first() {
            Some(b'{') => {
                self.close_text();
                if body.trim_ascii_end() == b"{" {
                    self.recognize(|| true);
                    let mut j = OpenJson {
                        buf: Vec::new(),
                        depth: 0,
                        in_string: false,
                        escaped: false,
                        lines: 0,
                        origin,
                    };
                    j.push(body);
                    self.open_json = Some(j);
                    return;
                }
                // The sink wants every line that holds a drop notice: one scan for both.
                if body.len() <= RUNTIME_SPLIT && !self.sink.wants(body) && !is_metrics_json(body) {
                    self.recognize(|| looks_like_falco_json(body));
                    return;
                }
                self.note_glued_drop(body, stamp);
                self.json_record(body, origin);
            }
            Some(b'0'..=b'9') if split_alert_time(body).is_some() => {
                self.recognize(|| true);
                self.close_text();
                if !is_internal_record(body) {
                    self.note_glued_drop(body, stamp);
                }
                self.open = Some(OpenText {
                    buf: body.to_vec(),
                    flagged: false,
                    stamp,
                    origin,
                    lines: 1,
                    dropped_wanted: false,
                    full: false,
                });
            }
            _ => {
                if let Some(t) = logger_time(body) {
                    self.recognize(|| true);
                    self.close_text();
                    if let Some(v) = banner_version(body) {
                        self.stats.falco_versions.insert(v);
                    }
                    let t = chrono::TimeZone::from_utc_datetime(&Utc, &t);
                    self.note_glued_drop(
                        body,
                        Some(Stamp {
                            at: t,
                            zoned: false,
                        }),
                    );
                    self.set_reference(t);
                } else if let Some(t) = go_logger_time(body) {
                    self.recognize(|| true);
                    self.close_text();
                    self.set_reference(t);
                } else if is_shutdown_header(body) {
                    self.recognize(|| true);
                    self.close_text();
                } else if let Some(open) = &self.open {
                    // A newline inside a field: this line continues the open alert. When it
                    // names the namespace and the alert does not, it may as well be a line of
                    // its own (a sidecar's, a forged one): said, not guessed away.
                    if !self.sink.names_exactly(&open.buf) && self.sink.names_exactly(body) {
                        self.unparsed(body);
                        if let Some(o) = self.open.as_mut() {
                            o.flagged = true;
                        }
                    }
                    self.append(body);
                } else {
                    self.note_glued_drop(body, stamp);
                    self.unparsed(body);
                }
            }
        }
        // A stamped line dates the text alerts around it that carry no date of their own (a
        // stamp without a zone or year only when nothing better is known).
        if let (Some(s), None) = (stamp, &self.open) {
            self.leaned |= !s.zoned && self.reference.is_none();
            if s.zoned || self.reference.is_none() {
                self.set_reference(s.at);
            }
        }
    }

    /// One JSON record (a line, or lines joined): to the sink, or counted as not understood.
    fn json_record(&mut self, body: &[u8], origin: Option<(String, String)>) {
        self.stats.parsed += 1;
        match parse_json(body) {
            Some(mut event) => {
                self.recognize(|| true);
                if let Some(t) = event.time {
                    self.set_reference(t);
                }
                if event.is_syscall_drop() {
                    self.stats.drop_alerts += 1;
                }
                if !event.internal && event.namespace.is_none() && self.sink.scoped() {
                    // A field we do not know (a plugin's own key) holding the very namespace.
                    let named = event.output_fields.as_ref().is_some_and(|f| {
                        f.all().iter().any(|(k, v)| {
                            k.contains("ns")
                                && v.as_str().is_some_and(|v| {
                                    self.sink.names_exactly(v.as_bytes()) && v.len() < 64
                                })
                        })
                    });
                    if named || (event.output_fields.is_none() && self.sink.names_exactly(body)) {
                        self.unparsed(body);
                    }
                }
                event.origin = origin;
                self.sink.event(event);
            }
            None if self.sink.wants(body) => self.malformed(body),
            None => {}
        }
    }

    /// The next line of a pretty-printed JSON record; false when the record was given up and
    /// the line must be read as a line of its own.
    fn continue_json(&mut self, body: &[u8]) -> bool {
        let Some(j) = self.open_json.as_mut() else {
            return false;
        };
        // A record that does not close within its bound, or a new record at the start of a
        // line, ends it: what it held is reported, and it swallows nothing more.
        let over = j.buf.len() + body.len() >= MAX_TEXT_RECORD || j.lines >= MAX_TEXT_LINES;
        if over || body.first() == Some(&b'{') {
            let Some(j) = self.open_json.take() else {
                return false;
            };
            if self.sink.wants(&j.buf) {
                if over {
                    self.stats.oversized += 1;
                    self.overlong();
                } else {
                    self.malformed(&j.buf);
                }
            }
            return false;
        }
        if !j.push(body) {
            return true;
        }
        let Some(j) = self.open_json.take() else {
            return true;
        };
        self.json_record(&j.buf, j.origin);
        true
    }

    /// Where the decoder stands: the line just read.
    fn here(&self) -> LineAt {
        LineAt {
            line: self.stats.lines,
            time: self.stats.last_line_time,
        }
    }

    /// A JSON record that could hold an alert for the sink but does not parse.
    fn malformed(&mut self, record: &[u8]) {
        self.stats.malformed += 1;
        self.spot(SpotKind::Malformed, record);
    }

    /// A line that is no Falco record: reported when it names the namespace as a token.
    fn unparsed(&mut self, body: &[u8]) {
        if body.iter().all(u8::is_ascii_whitespace) || !self.sink.names_exactly(body) {
            return;
        }
        self.stats.unparsed_mentions += 1;
        self.spot(SpotKind::Unparsed, body);
    }

    /// A drop notice inside a line that is not Falco's drop alert itself.
    fn note_glued_drop(&mut self, body: &[u8], stamp: Option<Stamp>) {
        static DROP: Needle = needle!(DROP_NOTICE);
        if body.len() < DROP_NOTICE.len() || DROP.find(body).is_none() {
            return;
        }
        if body.first() == Some(&b'{') && parse_json(body).is_some_and(|e| e.is_syscall_drop()) {
            return;
        }
        self.stats.logged_drops += 1;
        self.last_logged_drop = stamp.map(|s| s.at).or(self.last_logged_drop);
    }

    /// A line the kubelet stamped with the very instant of the open text alert's first line,
    /// while that alert has not named a namespace yet, is part of it whatever it looks like: a
    /// newline inside a field (a command line) lets a watched process start the next line with
    /// a forged alert, a `{` or a shutdown header.
    fn continues_open_alert(&self, stamp: Option<Stamp>) -> bool {
        let (Some(open), Some(k)) = (&self.open, stamp) else {
            return false;
        };
        open.stamp == Some(k) && !names_namespace(&open.buf) && !is_internal_record(&open.buf)
    }

    fn append(&mut self, body: &[u8]) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if !open.full
            && open.lines < MAX_TEXT_LINES
            && open.buf.len() + body.len() < MAX_TEXT_RECORD
        {
            open.buf.push(b'\n');
            open.buf.extend_from_slice(body);
            open.lines += 1;
            return;
        }
        // Over the bound: the rest of this alert is dropped, but not unseen.
        open.full = true;
        if !open.dropped_wanted && self.sink.wants(body) {
            open.dropped_wanted = true;
            self.overlong();
        }
    }

    fn close_text(&mut self) {
        // Reached from the first line: that line is a record of its own (see `join`).
        if self.stats.lines == 1 {
            self.first_closed = true;
        }
        let Some(open) = self.open.take() else { return };
        let Some((clock, _)) = split_alert_time(&open.buf) else {
            return;
        };
        let time = match clock {
            EventClock::Absolute(t) => Some(t),
            EventClock::TimeOfDay(tod) => match (open.stamp, self.reference) {
                (Some(s), _) => Some(place_time_of_day(tod, s.at, s.zoned)),
                (None, Some(r)) => Some(place_time_of_day(tod, r, false)),
                (None, None) => {
                    self.leaned = true;
                    None
                }
            },
        };
        if let Some(t) = time {
            self.set_reference(t);
        }
        if !self.sink.wants(&open.buf) && !is_metrics_text(&open.buf) {
            return;
        }
        self.stats.parsed += 1;
        let Some((_, mut event)) = parse_text(&open.buf) else {
            self.unparsed(&open.buf);
            return;
        };
        if event.is_syscall_drop() {
            self.stats.drop_alerts += 1;
        }
        if !event.internal
            && !open.flagged
            && event.namespace.is_none()
            && event.audit_namespaces.is_empty()
            && event.namespace_object.is_none()
            && self.sink.scoped()
        {
            // Named, but by no key Falco prints the workload's namespace with.
            self.unparsed(&open.buf);
        }
        event.loosely_dated =
            matches!(clock, EventClock::TimeOfDay(_)) && open.stamp.is_none_or(|s| !s.zoned);
        event.origin = open.origin;
        let loosely = open.stamp.is_none_or(|s| !s.zoned);
        match (time, clock) {
            (Some(t), _) => {
                if loosely && matches!(clock, EventClock::TimeOfDay(_)) {
                    self.stats.loosely_dated += 1;
                }
                event.time = Some(t);
                self.sink.event(event);
            }
            // Nothing dated it yet: a dated line later in the log may.
            (None, EventClock::TimeOfDay(tod)) if self.undated.len() < MAX_UNDATED => {
                self.undated.push((event, tod));
            }
            (None, _) => {
                self.stats.undated += 1;
                self.sink.event(event);
            }
        }
    }
}

/// A JSON line with Falco's two always-present keys (checked without parsing: the line was
/// skipped by the prefilter).
fn looks_like_falco_json(body: &[u8]) -> bool {
    static PRIORITY: Needle = needle!(b"\"priority\"");
    static RULE: Needle = needle!(b"\"rule\"");
    PRIORITY.find(body).is_some() && RULE.find(body).is_some()
}

/// Falco's metrics snapshot as JSON, tested without parsing (Falco's own message, wanted
/// whatever the filter): the `metrics.output_file` shape (`"sample"` first or, keys sorted,
/// last) or the `Falco internal: metrics snapshot` alert (its rule and output come early).
fn is_metrics_json(body: &[u8]) -> bool {
    let body = body.trim_ascii_end();
    let tail = &body[body.len().saturating_sub(48)..];
    body.starts_with(b"{\"sample\"")
        || SAMPLE.find(tail).is_some()
        || METRICS.find(&body[..body.len().min(512)]).is_some()
}

static SAMPLE: Needle = needle!(b"\"sample\"");
static METRICS: Needle = needle!(b"metrics snapshot");

/// A text record that is Falco's metrics snapshot.
fn is_metrics_text(record: &[u8]) -> bool {
    is_internal_record(record) && METRICS.find(record).is_some()
}

/// Whether a text record carries a workload namespace token of Falco's.
fn names_namespace(record: &[u8]) -> bool {
    static KEYS: [Needle; 3] = [
        needle!(b"k8s_ns_name="),
        needle!(b"k8s_ns="),
        needle!(b"k8s.ns="),
    ];
    KEYS.iter().any(|k| k.find(record).is_some())
}

/// `TIME: Priority Falco internal: ...` or a metrics snapshot: Falco's own messages.
fn is_internal_record(record: &[u8]) -> bool {
    let Some((_, rest)) = split_alert_time(record) else {
        return false;
    };
    let message = rest
        .iter()
        .position(|&b| b == b' ')
        .map_or(&rest[..0], |i| &rest[i + 1..]);
    message.starts_with(b"Falco internal:") || message.starts_with(b"Falco metrics snapshot")
}

/// Lines Falco prints at shutdown without a time stamp: they start records that are not alerts.
fn is_shutdown_header(body: &[u8]) -> bool {
    const HEADERS: [&[u8]; 6] = [
        b"SIGINT received",
        b"SIGTERM received",
        b"Events detected:",
        b"Rule counts by severity:",
        b"Triggered rules by rule name:",
        b"Syscall event drop monitoring:",
    ];
    HEADERS.iter().any(|h| body.starts_with(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        needle: Option<&'static [u8]>,
        events: Vec<Event>,
    }
    impl EventSink for Collect {
        fn wants(&self, raw: &[u8]) -> bool {
            self.needle
                .is_none_or(|n| memchr::memmem::find(raw, n).is_some())
        }
        fn event(&mut self, e: Event) {
            self.events.push(e);
        }
    }

    fn decode(input: &[u8], chunk: usize) -> (Collect, DecodeStats) {
        let mut d = Decoder::with_max_line(Collect::default(), 4096);
        for c in input.chunks(chunk.max(1)) {
            d.feed(c);
        }
        d.finish()
    }

    /// A log cut at any line, its halves decoded apart and joined (or the second half fed again
    /// when the join is refused), gives what one pass gives: the same events in the same order,
    /// the same statistics (line numbers of the spots included).
    #[test]
    fn halves_joined_at_any_line_equal_one_pass() {
        let logs: [(&str, &[u8]); 5] = [
            ("json", include_bytes!("../../examples/demo/json.log")),
            ("text", include_bytes!("../../examples/demo/text.log")),
            (
                "kubelet",
                include_bytes!("../../examples/demo/text.kubelet-timestamps.log"),
            ),
            ("gaps", include_bytes!("../../examples/falco-gaps.jsonl")),
            ("syslog and undated", b"10:29:00.000000000: Warning early | k8s_ns_name=a\n<13>Jan 15 10:30:00 host falco: 10:30:01.000000000: Error B | k8s_ns_name=a\ncontinued k8s_ns_name=a\n{\"output\":\"x\",\"output_fields\":{\"k8s.ns.name\":\"a\"},\"priority\":\"Error\",\"rule\":\"R\",\"time\":\"2024-01-15T10:31:00Z\"}\n{\n  \"priority\": \"Error\",\n  \"rule\": \"P\"\n}\nnot falco k8s_ns_name=a\n10:33:00.000000000: Notice C | k8s_ns_name=a\n"),
        ];
        let (mut joined, mut refused) = (0, 0);
        for (name, log) in logs {
            let (whole, whole_stats) = decode(log, log.len());
            for (k, _) in log.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                let cut = k + 1;
                let mut first = Decoder::with_max_line(Collect::default(), 4096);
                first.feed(&log[..cut]);
                let mut second = Decoder::with_max_line(Collect::default(), 4096);
                second.feed(&log[cut..]);
                let both = match first.join(second, |a, b| a.events.extend(b.events)) {
                    Ok(d) => {
                        joined += 1;
                        d
                    }
                    Err(parts) => {
                        refused += 1;
                        let mut first = parts.first;
                        first.feed(&log[cut..]);
                        first
                    }
                };
                let (sink, stats) = both.finish();
                assert_eq!(sink.events, whole.events, "{name} cut at byte {cut}");
                assert_eq!(stats, whole_stats, "{name} cut at byte {cut}");
            }
        }
        // Both ways were taken.
        assert!(
            joined > 100 && refused > 5,
            "{joined} joined, {refused} refused"
        );
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let input = b"Mon Jan 15 09:59:58 2024: Falco version\n10:30:00.000000000: Warning A | k8s_ns_name=a\n{\"output\":\"x\",\"output_fields\":{\"k8s.ns.name\":\"b\"},\"priority\":\"Error\",\"rule\":\"R\",\"time\":\"2024-01-15T10:31:00Z\"}\n10:32:00.000000000: Notice B | cmd=x\ny k8s_ns_name=c\nEvents detected: 3\n   WARNING: 1";
        let (whole, s1) = decode(input, input.len());
        for n in [1, 2, 3, 7, 64] {
            let (part, s2) = decode(input, n);
            assert_eq!(part.events, whole.events, "chunk {n}");
            assert_eq!(s1, s2);
        }
        let ns: Vec<_> = whole
            .events
            .iter()
            .map(|e| e.namespace.clone().unwrap_or_default())
            .collect();
        assert_eq!(ns, ["a", "b", "c"]);
        assert_eq!(s1.lines, 7);
        assert_eq!(
            whole.events[0].time.map(|t| t.to_rfc3339()),
            Some("2024-01-15T10:30:00+00:00".to_string())
        );
    }

    #[test]
    fn a_forged_record_start_on_a_continuation_line_stays_in_the_alert() {
        // A newline in a command line, then what looks like a new Debug alert, a `{` and a
        // shutdown header: all written at the same instant as the Critical alert.
        let k = "2024-01-15T10:31:00.000100000Z";
        let input = format!(
            "{k} 10:31:00.000000000: Critical Shell | command=sh -c x\n{k} 10:31:00.000000000: Debug fake\n{k} {{\n{k} Events detected: 1\n{k} y container_id=1 k8s_ns_name=shadow-abc123\n"
        );
        let (c, _) = decode(input.as_bytes(), 7);
        assert_eq!(c.events.len(), 1, "{:?}", c.events);
        assert_eq!(c.events[0].priority, Some(crate::falco::Priority::Critical));
        assert_eq!(c.events[0].namespace.as_deref(), Some("shadow-abc123"));
    }

    #[test]
    fn an_alert_over_its_line_bound_is_reported_when_the_dropped_part_matters() {
        let mut input = b"10:31:00.000000000: Critical Shell | command=sh -c x".to_vec();
        input.extend(std::iter::repeat_n(b"\n".as_slice(), MAX_TEXT_LINES + 1).flatten());
        input.extend_from_slice(b"\ny k8s_ns_name=shadow-abc123\n");
        let mut d = Decoder::new(Collect {
            needle: Some(b"shadow-abc123"),
            events: vec![],
        });
        d.feed(&input);
        let (_, s) = d.finish();
        assert_eq!(s.oversized_wanted, 1);
    }

    #[test]
    fn kubelet_stamps_injected_into_long_lines_are_removed() {
        let pad = "a".repeat(RUNTIME_SPLIT);
        let text = format!("10:31:00.000000000: Critical Shell | command={pad} k8s_ns_name=shadow-2024-01-15T10:31:00.000200000Z abc123\n");
        let whole = |input: &[u8]| {
            let mut d = Decoder::new(Collect::default());
            d.feed(input);
            d.finish().0
        };
        let c = whole(text.as_bytes());
        assert_eq!(c.events[0].namespace.as_deref(), Some("shadow-abc123"));
        let json = format!(
            r#"{{"output":"{pad}","output_fields":{{"k8s.ns.name":"shadow-2024-01-15T10:31:00.000200000+08:00 abc123"}},"priority":"Critical","rule":"R","time":"2024-01-15T10:31:00Z"}}"#
        );
        let c = whole(format!("{json}\n").as_bytes());
        assert_eq!(c.events[0].namespace.as_deref(), Some("shadow-abc123"));
    }

    #[test]
    fn oversized_lines_are_counted_and_skipped() {
        let mut input = vec![b'{'; 10_000];
        input.extend_from_slice(b"\n{\"output\":\"x\",\"output_fields\":{\"k8s.ns.name\":\"b\"},\"priority\":\"Error\",\"rule\":\"R\",\"time\":\"2024-01-15T10:31:00Z\"}\n");
        for n in [1, 100, 5000, input.len()] {
            let (c, s) = decode(&input, n);
            assert_eq!(
                (s.lines, s.oversized, s.oversized_wanted, c.events.len()),
                (2, 1, 1, 1),
                "chunk {n}"
            );
        }
    }

    #[test]
    fn kubelet_time_dates_text_and_prefilter_skips() {
        let input = b"2024-01-15T10:30:00.000731000Z 10:29:59.999999999: Error X | k8s_ns_name=a\n2024-01-15T10:31:00.000000000Z {\"priority\":\"Error\",\"rule\":\"R\",\"output\":\"zzz\"}\n";
        let mut d = Decoder::new(Collect {
            needle: Some(b"k8s_ns_name=a"),
            events: vec![],
        });
        d.feed(input);
        let (c, s) = d.finish();
        assert_eq!(c.events.len(), 1);
        assert_eq!(
            c.events[0].time.map(|t| t.to_rfc3339()),
            Some("2024-01-15T10:29:59.999999999+00:00".into())
        );
        assert_eq!(s.parsed, 1);
        assert_eq!(
            s.first_line_time.map(|t| t.to_rfc3339()),
            Some("2024-01-15T10:30:00.000731+00:00".into())
        );
        assert_eq!(
            s.last_line_time.map(|t| t.to_rfc3339()),
            Some("2024-01-15T10:31:00+00:00".into())
        );
    }
}
