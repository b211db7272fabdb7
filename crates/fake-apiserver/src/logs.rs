//! `GET .../pods/NAME/log`: parameter handling as the API server and the kubelet do it, and a
//! lazily produced, chunked body.
//!
//! With `follow=true` the body is live, as a kubelet serves it: first the selected lines whose
//! kubelet time has come (`<= Utc::now()`), then, polling every [`FOLLOW_POLL`], each later line
//! once its time comes. The response stays open after the last line until the client goes away
//! or the server shuts down, except for a container that is not running (terminated, or its
//! previous instance is served): that stream ends after its last line.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::Stream;

use super::model::{ContainerState, FakeCluster, FakePod, LogSource};
use super::timefmt::push_rfc3339_nano;

/// Body chunk size.
pub const CHUNK: usize = 64 * 1024;

/// How often a `follow=true` stream looks for lines whose time has come.
pub const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Clone, Debug, Default)]
pub struct LogParams {
    pub container: Option<String>,
    pub previous: bool,
    pub since: Option<DateTime<Utc>>,
    pub timestamps: bool,
    pub limit_bytes: Option<u64>,
    pub tail_lines: Option<u64>,
    pub follow: bool,
}

/// An error answer: HTTP code and Status message.
pub type Refusal = (u16, String);

/// Go `strconv.ParseBool`.
fn parse_bool(query: &BTreeMap<String, String>, key: &str) -> Result<bool, Refusal> {
    match query.get(key).map(String::as_str) {
        None => Ok(false),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => Err((
            400,
            format!("strconv.ParseBool: parsing {other:?}: invalid syntax"),
        )),
    }
}

fn parse_int(query: &BTreeMap<String, String>, key: &str) -> Result<Option<i64>, Refusal> {
    match query.get(key) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            (
                400,
                format!("strconv.ParseInt: parsing {v:?}: invalid syntax"),
            )
        }),
    }
}

/// Parses and validates the query of a log request for pod `pod_name`.
pub fn parse_params(
    query: &BTreeMap<String, String>,
    pod_name: &str,
    now: DateTime<Utc>,
) -> Result<LogParams, Refusal> {
    let invalid = |field: &str, value: i64, why: &str| {
        (
            422,
            format!(
                "PodLogOptions {pod_name:?} is invalid: {field}: Invalid value: {value}: {why}"
            ),
        )
    };
    let since_seconds = parse_int(query, "sinceSeconds")?;
    let limit_bytes = parse_int(query, "limitBytes")?;
    let tail_lines = parse_int(query, "tailLines")?;
    let since_time = match query.get("sinceTime") {
        None => None,
        Some(s) => {
            let t = DateTime::parse_from_rfc3339(s).map_err(|_| {
                (
                    400,
                    format!(
                        "parsing time {s:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {s:?} as \"2006\""
                    ),
                )
            })?;
            // metav1.Time travels to the kubelet as RFC3339 seconds: fractions are truncated.
            let t = t.with_timezone(&Utc);
            Some(t.duration_trunc(Duration::seconds(1)).unwrap_or(t))
        }
    };
    if since_seconds.is_some() && since_time.is_some() {
        return Err((
            422,
            format!(
                "PodLogOptions {pod_name:?} is invalid: sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
            ),
        ));
    }
    if let Some(s) = since_seconds {
        if s < 1 {
            return Err(invalid("sinceSeconds", s, "must be greater than 0"));
        }
    }
    if let Some(l) = limit_bytes {
        if l < 1 {
            return Err(invalid("limitBytes", l, "must be greater than 0"));
        }
    }
    if let Some(t) = tail_lines {
        if t < 0 {
            return Err(invalid(
                "tailLines",
                t,
                "must be greater than or equal to 0",
            ));
        }
    }
    let since = since_time.or_else(|| since_seconds.map(|s| now - Duration::seconds(s)));
    Ok(LogParams {
        container: query.get("container").filter(|c| !c.is_empty()).cloned(),
        previous: parse_bool(query, "previous")?,
        since,
        timestamps: parse_bool(query, "timestamps")?,
        limit_bytes: limit_bytes.map(|v| v as u64),
        tail_lines: tail_lines.map(|v| v as u64),
        follow: parse_bool(query, "follow")?,
    })
}

/// Which log a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogChoice {
    /// `containers[index]`, its `previous_log` if `previous`.
    Container { index: usize, previous: bool },
    /// An init container: completed, nothing logged.
    Empty,
}

fn names(list: impl Iterator<Item = impl AsRef<str>>) -> String {
    list.map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The API server's container checks, then the kubelet's `validateContainerLogStatus`.
pub fn choose(pod: &FakePod, params: &LogParams) -> Result<LogChoice, Refusal> {
    let name = match &params.container {
        Some(n) => n.clone(),
        None if pod.containers.len() == 1 => pod.containers[0].name.clone(),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                pod.name,
                names(pod.containers.iter().map(|c| c.name.as_str()))
            );
            if !pod.init_containers.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    names(pod.init_containers.iter())
                ));
            }
            return Err((400, msg));
        }
    };
    let index = pod.containers.iter().position(|c| c.name == name);
    let is_init = pod.init_containers.contains(&name);
    if index.is_none() && !is_init {
        return Err((
            400,
            format!("container {name} is not valid for pod {}", pod.name),
        ));
    }
    let waiting = |reason: &str| {
        let what = match reason {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            other => other.to_string(),
        };
        (
            400,
            format!(
                "container {name:?} in pod {:?} is waiting to start: {what}",
                pod.name
            ),
        )
    };
    let Some(index) = index else {
        // init container
        if pod.node.is_none() {
            return Err(waiting("PodInitializing"));
        }
        if params.previous {
            return Err((
                400,
                format!(
                    "previous terminated container {name:?} in pod {:?} not found",
                    pod.name
                ),
            ));
        }
        return Ok(LogChoice::Empty);
    };
    let c = &pod.containers[index];
    if pod.node.is_none() {
        let reason = match &c.state {
            ContainerState::Waiting { reason } if !reason.is_empty() => reason.as_str(),
            _ => "ContainerCreating",
        };
        return Err(waiting(reason));
    }
    if params.previous {
        if c.last_terminated.is_none() {
            return Err((
                400,
                format!(
                    "previous terminated container {name:?} in pod {:?} not found",
                    pod.name
                ),
            ));
        }
        return Ok(LogChoice::Container {
            index,
            previous: true,
        });
    }
    match &c.state {
        ContainerState::Running { .. } | ContainerState::Terminated { .. } => {
            Ok(LogChoice::Container {
                index,
                previous: false,
            })
        }
        // CrashLoopBackOff and friends: the kubelet serves the last terminated instance.
        ContainerState::Waiting { .. } if c.last_terminated.is_some() => Ok(LogChoice::Container {
            index,
            previous: true,
        }),
        ContainerState::Waiting { reason } => Err(waiting(reason)),
    }
}

/// Everything needed to stream one log response.
pub struct LogStreamSpec {
    pub cluster: Arc<FakeCluster>,
    pub pod: usize,
    pub choice: LogChoice,
    pub params: LogParams,
    pub reset_after: Option<usize>,
    pub bytes_per_sec: Option<u64>,
    /// Set just before the connection is aborted (the connection then closes with RST).
    pub abort: Arc<AtomicBool>,
    /// Lines written while the server runs: served after the log's own (current log only).
    pub appended: Option<(crate::model::Appended, String)>,
}

struct LogStreamState {
    cluster: Arc<FakeCluster>,
    pod: usize,
    choice: LogChoice,
    next: u64,
    end: u64,
    timestamps: bool,
    limit_left: Option<u64>,
    reset_left: Option<usize>,
    reset_pending: bool,
    rate: Option<u64>,
    sent: u64,
    started: tokio::time::Instant,
    pending: Bytes,
    exhausted: bool,
    done: bool,
    abort: Arc<AtomicBool>,
    /// `follow=true`: lines are sent once their kubelet time has come; the body stays open.
    follow: bool,
    /// `follow=true` on a container that is not running: the body ends after the last line.
    follow_ends: bool,
    appended: Option<(crate::model::Appended, String)>,
    appended_next: usize,
    since: Option<DateTime<Utc>>,
}

/// Whether a `follow=true` stream of this log ends after its last line (the container is not
/// running, or its previous instance is served), as the kubelet's follow does.
fn follow_ends(cluster: &FakeCluster, pod: usize, choice: LogChoice) -> bool {
    match choice {
        LogChoice::Empty => true,
        LogChoice::Container { index, previous } => {
            previous || !cluster.pods[pod].containers[index].is_running()
        }
    }
}

fn source(cluster: &FakeCluster, pod: usize, choice: LogChoice) -> Option<&LogSource> {
    match choice {
        LogChoice::Empty => None,
        LogChoice::Container { index, previous } => {
            let c = &cluster.pods[pod].containers[index];
            Some(if previous { &c.previous_log } else { &c.log })
        }
    }
}

impl LogStreamState {
    fn refill(&mut self) {
        if self.exhausted {
            return;
        }
        let cluster = Arc::clone(&self.cluster);
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 2048);
        let now = Utc::now();
        if let Some(log) = source(&cluster, self.pod, self.choice) {
            while buf.len() < CHUNK && self.next < self.end {
                if self.follow && log.time_of(self.next) > now {
                    break; // not written yet
                }
                if self.timestamps {
                    push_rfc3339_nano(&mut buf, log.time_of(self.next));
                    buf.push(b' ');
                }
                buf.extend_from_slice(&log.line(self.next));
                buf.push(b'\n');
                self.next += 1;
            }
        }
        // Then what was written since the server started, once its time has come.
        let mut appended_left = false;
        let current = matches!(
            self.choice,
            LogChoice::Container {
                previous: false,
                ..
            }
        );
        if let (true, true, Some((lines, pod))) = (current, self.next >= self.end, &self.appended) {
            let lines = lines.lock().unwrap_or_else(|p| p.into_inner());
            let mine = lines.get(pod).map(Vec::as_slice).unwrap_or_default();
            while buf.len() < CHUNK && self.appended_next < mine.len() {
                let (t, line) = &mine[self.appended_next];
                if *t > now {
                    appended_left = self.follow;
                    break;
                }
                self.appended_next += 1;
                if self.since.is_some_and(|s| *t < s) {
                    continue;
                }
                if self.timestamps {
                    push_rfc3339_nano(&mut buf, *t);
                    buf.push(b' ');
                }
                buf.extend_from_slice(line);
                buf.push(b'\n');
            }
            appended_left |= self.appended_next < mine.len() && buf.len() >= CHUNK;
        }
        // A followed log is over only when the container is not running; a reset fault still
        // fires when the log is shorter than its byte count.
        if self.next >= self.end
            && !appended_left
            && (!self.follow || self.follow_ends || self.reset_left.is_some())
        {
            self.exhausted = true;
        }
        if let Some(left) = self.limit_left.as_mut() {
            if buf.len() as u64 >= *left {
                buf.truncate(*left as usize);
                *left = 0;
                self.exhausted = true;
            } else {
                *left -= buf.len() as u64;
            }
        }
        if let Some(left) = self.reset_left.as_mut() {
            if buf.len() >= *left {
                buf.truncate(*left);
                *left = 0;
                self.exhausted = true;
            } else {
                *left -= buf.len();
            }
            if self.exhausted {
                self.reset_pending = true;
            }
        }
        self.pending = Bytes::from(buf);
    }
}

/// Line range `[start, end)` the request selects (since filter, then tail).
pub fn line_range(log: Option<&LogSource>, params: &LogParams) -> (u64, u64) {
    let Some(log) = log else { return (0, 0) };
    let end = log.len();
    let mut start = params.since.map_or(0, |t| log.first_at_or_after(t));
    if let Some(n) = params.tail_lines {
        start = start.max(end.saturating_sub(n));
    }
    (start.min(end), end)
}

/// The body: chunks of at most [`CHUNK`] bytes, produced on demand.
pub fn log_stream(spec: LogStreamSpec) -> impl Stream<Item = Result<Bytes, io::Error>> + Send {
    let (next, end) = line_range(source(&spec.cluster, spec.pod, spec.choice), &spec.params);
    let follow_ends = follow_ends(&spec.cluster, spec.pod, spec.choice);
    let state = LogStreamState {
        cluster: spec.cluster,
        pod: spec.pod,
        choice: spec.choice,
        next,
        end,
        timestamps: spec.params.timestamps,
        limit_left: spec.params.limit_bytes,
        reset_left: spec.reset_after,
        reset_pending: false,
        rate: spec.bytes_per_sec.filter(|r| *r > 0),
        sent: 0,
        started: tokio::time::Instant::now(),
        pending: Bytes::new(),
        exhausted: false,
        done: false,
        abort: spec.abort,
        follow: spec.params.follow,
        follow_ends,
        appended: spec.appended,
        appended_next: 0,
        since: spec.params.since,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            if st.pending.is_empty() {
                st.refill();
            }
            if !st.pending.is_empty() {
                break;
            }
            if st.reset_pending {
                // Let hyper flush what was sent, then kill the connection.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                st.abort.store(true, Ordering::SeqCst);
                st.done = true;
                return Some((
                    Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "fake apiserver: injected connection reset",
                    )),
                    st,
                ));
            }
            if !st.follow || st.exhausted {
                return None;
            }
            // Following: wait for the next line's time to come (or the client to go away).
            tokio::time::sleep(FOLLOW_POLL).await;
        }
        let n = match st.rate {
            Some(rate) => st.pending.len().min((rate / 10).max(1) as usize),
            None => st.pending.len(),
        };
        let chunk = st.pending.split_to(n);
        if let Some(rate) = st.rate {
            let due = st.started
                + std::time::Duration::from_secs_f64((st.sent + n as u64) as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
        }
        st.sent += n as u64;
        Some((Ok(chunk), st))
    })
}

#[cfg(test)]
mod tests {
    use super::super::model::FakeContainer;
    use super::*;
    use chrono::TimeZone;

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 15, 10, 0, s)
            .single()
            .expect("valid date")
    }

    #[test]
    fn range_since_and_tail() {
        let log = LogSource::generated(10, t(0), Duration::seconds(1), |i| {
            format!("{i}").into_bytes()
        });
        let p = |since: Option<DateTime<Utc>>, tail: Option<u64>| LogParams {
            since,
            tail_lines: tail,
            ..LogParams::default()
        };
        assert_eq!(line_range(Some(&log), &p(None, None)), (0, 10));
        assert_eq!(line_range(Some(&log), &p(Some(t(3)), None)), (3, 10));
        assert_eq!(line_range(Some(&log), &p(Some(t(3)), Some(2))), (8, 10));
        assert_eq!(line_range(Some(&log), &p(Some(t(30)), None)), (10, 10));
        assert_eq!(line_range(Some(&log), &p(None, Some(0))), (10, 10));
        let lines = LogSource::at(t(5), &["a", "b", "c"]);
        assert_eq!(line_range(Some(&lines), &p(Some(t(5)), None)), (0, 3));
        assert_eq!(line_range(Some(&lines), &p(Some(t(6)), None)), (3, 3));
    }

    /// What a stream sends within `wait`: the chunks' text, and whether it ended.
    async fn take(
        stream: &mut (impl Stream<Item = Result<Bytes, io::Error>> + Unpin),
        wait: std::time::Duration,
    ) -> (String, bool) {
        use futures::StreamExt;
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(b))) => text.push_str(&String::from_utf8_lossy(&b)),
                Ok(Some(Err(e))) => panic!("stream error: {e}"),
                Ok(None) => return (text, true),
                Err(_) => return (text, false),
            }
        }
    }

    fn stream_of(
        pod: FakePod,
        follow: bool,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Send {
        let cluster = Arc::new(FakeCluster::new(vec![pod]));
        let params = LogParams {
            follow,
            ..LogParams::default()
        };
        let choice = choose(&cluster.pods[0], &params).expect("log choice");
        log_stream(LogStreamSpec {
            cluster,
            pod: 0,
            choice,
            params,
            reset_after: None,
            bytes_per_sec: None,
            abort: Arc::new(AtomicBool::new(false)),
            appended: None,
        })
    }

    #[tokio::test]
    async fn follow_sends_lines_when_their_time_comes_and_stays_open() {
        let now = Utc::now();
        let log = LogSource::lines(vec![
            (now - Duration::seconds(1), "past"),
            (now + Duration::milliseconds(400), "soon"),
        ]);
        let ms = std::time::Duration::from_millis;
        // Without follow: everything at once, then the end (as before).
        let mut s = Box::pin(stream_of(
            FakePod::new("p", "ns")
                .with_node("n")
                .with_container(FakeContainer::running("c", now, log.clone())),
            false,
        ));
        assert_eq!(
            take(&mut s, ms(100)).await,
            ("past\nsoon\n".to_string(), true)
        );
        // Following a running container: the past line now, the next when its time comes, and
        // the stream stays open after it.
        let running = FakeContainer::running("c", now, log.clone());
        let pod = FakePod::new("p", "ns")
            .with_node("n")
            .with_container(running);
        let mut s = Box::pin(stream_of(pod.clone(), true));
        assert_eq!(take(&mut s, ms(100)).await, ("past\n".to_string(), false));
        assert_eq!(take(&mut s, ms(700)).await, ("soon\n".to_string(), false));
        // Following a container that is not running: ends after its last line.
        let stopped = pod.map_container("c", |c| {
            c.state = ContainerState::Terminated {
                started_at: now,
                finished_at: now,
                exit_code: 0,
            };
            c.log = LogSource::lines(vec![(now - Duration::seconds(1), "last")]);
        });
        let mut s = Box::pin(stream_of(stopped, true));
        assert_eq!(take(&mut s, ms(300)).await, ("last\n".to_string(), true));
    }
}
