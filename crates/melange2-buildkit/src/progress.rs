//! Status tracking and progress rendering (`auto`, `tty`, `plain`, `rawjson`, `quiet`).
//!
//! [`Tracker`] folds BuildKit's Status stream into per-vertex state (name, cached, timings,
//! error, the last lines of its log). [`Progress`] renders the same stream for people:
//! `plain` in the style of `buildctl --progress=plain`, `tty` as live spinners (indicatif),
//! `rawjson` as one JSON object per status message. [`Progress::finish`] prints a summary.
//!
//! Work the client does itself (packaging the export stream) is shown as a [`ClientStep`]: a
//! vertex of the same Status stream whose digest starts with [`CLIENT_STEP_PREFIX`], so every
//! renderer and log shows it like a BuildKit step, with its bytes and duration; it is not a
//! BuildKit step and is left out of the step counts. Byte counters of a step (BuildKit's
//! transfers of local sources, the packager's reads) are shown as they go: throttled lines in
//! `plain`, on the step's line in `tty`. In `tty` mode the last [`LIVE_TAIL_LINES`] lines of
//! a running step's output are shown under its line and disappear when it ends. Styles go
//! through [`style`], which follows stderr's colour setting (a terminal, no `NO_COLOR`), and
//! `tty` on a stderr that is not a terminal is `plain` ([`ProgressMode::on_stderr`]); see
//! docs/build.md, "Progress".

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard_buildkit_proto::google::protobuf::Timestamp;
use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How many log lines of each vertex are kept for error reports.
const TAIL_LINES: usize = 40;

/// How many lines of a running step's output `tty` mode shows under its line.
pub const LIVE_TAIL_LINES: usize = 6;

/// Digest prefix of the vertices of [`ClientStep`]s.
pub const CLIENT_STEP_PREFIX: &str = "melange2-client:";

/// `d` styled for stderr, where every renderer writes: coloured only when colours are
/// enabled for stderr (`console::set_colors_enabled_stderr`, which `melange2` sets from
/// stderr being a terminal and `NO_COLOR`). `console::style` alone follows stdout's setting,
/// which put colour into a redirected stderr when stdout was a terminal.
pub fn style<D>(d: D) -> console::StyledObject<D> {
    console::style(d).for_stderr()
}

/// Whether a vertex digest is a [`ClientStep`]'s.
pub fn is_client_step(digest: &str) -> bool {
    digest.starts_with(CLIENT_STEP_PREFIX)
}

/// Work the client does itself, reported as a vertex of the Status stream so every renderer
/// shows it: [`ClientStep::started`], byte counts ([`ClientStep::progress`]), output lines
/// ([`ClientStep::log`]) and the end ([`ClientStep::completed`]).
#[derive(Clone, Debug)]
pub struct ClientStep {
    digest: String,
    name: String,
    started: SystemTime,
}

fn timestamp(t: SystemTime) -> Option<Timestamp> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    Some(Timestamp {
        seconds: i64::try_from(d.as_secs()).ok()?,
        nanos: i32::try_from(d.subsec_nanos()).ok()?,
    })
}

impl ClientStep {
    /// A step named `name`, started at `started`; `id` makes its digest unique in a build.
    pub fn new(id: &str, name: &str, started: SystemTime) -> Self {
        ClientStep {
            digest: format!("{CLIENT_STEP_PREFIX}{id}"),
            name: name.to_string(),
            started,
        }
    }

    /// Its vertex digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    fn vertex(&self, completed: Option<SystemTime>, error: &str) -> StatusResponse {
        StatusResponse {
            vertexes: vec![bollard_buildkit_proto::moby::buildkit::v1::Vertex {
                digest: self.digest.clone(),
                name: self.name.clone(),
                started: timestamp(self.started),
                completed: completed.and_then(timestamp),
                error: error.to_string(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// The step started.
    pub fn started(&self) -> StatusResponse {
        self.vertex(None, "")
    }

    /// `current` bytes of `total` (0: unknown) done on counter `id` (e.g. `read`).
    pub fn progress(&self, id: &str, current: u64, total: u64, done: bool) -> StatusResponse {
        let now = timestamp(SystemTime::now());
        StatusResponse {
            statuses: vec![bollard_buildkit_proto::moby::buildkit::v1::VertexStatus {
                id: id.to_string(),
                vertex: self.digest.clone(),
                name: id.to_string(),
                current: i64::try_from(current).unwrap_or(i64::MAX),
                total: i64::try_from(total).unwrap_or(i64::MAX),
                timestamp: now,
                started: timestamp(self.started),
                completed: if done { now } else { None },
            }],
            ..Default::default()
        }
    }

    /// One line of output.
    pub fn log(&self, line: &str) -> StatusResponse {
        StatusResponse {
            logs: vec![bollard_buildkit_proto::moby::buildkit::v1::VertexLog {
                vertex: self.digest.clone(),
                stream: 1,
                timestamp: timestamp(SystemTime::now()),
                msg: format!("{line}\n").into_bytes(),
            }],
            ..Default::default()
        }
    }

    /// The step ended now, with `error` when it failed.
    pub fn completed(&self, error: Option<&str>) -> StatusResponse {
        self.vertex(Some(SystemTime::now()), error.unwrap_or(""))
    }
}

fn to_time(t: &Option<Timestamp>) -> Option<SystemTime> {
    let t = t.as_ref()?;
    if t.seconds <= 0 && t.nanos <= 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos.max(0) as u32))
}

/// What the daemon told us about one vertex so far.
#[derive(Clone, Debug, Default)]
pub struct VertexState {
    /// Digest.
    pub digest: String,
    /// Display name.
    pub name: String,
    /// Digests of the vertices it depends on.
    pub inputs: Vec<String>,
    /// Taken from the cache.
    pub cached: bool,
    /// Start time.
    pub started: Option<SystemTime>,
    /// Completion time.
    pub completed: Option<SystemTime>,
    /// Error message, if it failed.
    pub error: String,
    tail: VecDeque<String>,
    partial: BTreeMap<i64, Vec<u8>>,
    /// Byte/item counters by id: (current, total, done).
    counters: BTreeMap<String, (i64, i64, bool)>,
}

impl VertexState {
    /// The last lines the vertex printed (complete lines plus any unterminated rest), without
    /// colour codes: they go into error messages, JSON and files.
    pub fn log_tail(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tail.iter().cloned().collect();
        for p in self.partial.values() {
            if !p.is_empty() {
                v.push(uncoloured(&String::from_utf8_lossy(p)));
            }
        }
        let skip = v.len().saturating_sub(TAIL_LINES);
        v.split_off(skip)
    }
    /// The last `n` lines of output, ready for a terminal line each: control characters and
    /// ANSI sequences removed, at most `width` characters.
    pub fn live_tail(&self, n: usize, width: usize) -> Vec<String> {
        let all = self.log_tail();
        let skip = all.len().saturating_sub(n);
        all[skip..]
            .iter()
            .map(|l| {
                let clean: String = console::strip_ansi_codes(l)
                    .chars()
                    .map(|c| if c == '\t' { ' ' } else { c })
                    .filter(|c| !c.is_control())
                    .collect();
                truncate(&clean, width)
            })
            .collect()
    }

    /// Its counters as text (`52.40MB`, `3.00MB / 10.00MB`), for a step's line.
    pub fn counters_text(&self) -> String {
        self.counters
            .values()
            .map(|&(current, total, _)| amount(current, total))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Bytes (or items) its counters reached so far, summed.
    pub fn bytes(&self) -> i64 {
        self.counters.values().map(|c| c.0.max(0)).sum()
    }

    /// A client step, not a BuildKit one ([`ClientStep`]).
    pub fn is_client_step(&self) -> bool {
        is_client_step(&self.digest)
    }

    /// Time between start and completion.
    pub fn duration(&self) -> Option<Duration> {
        let (s, c) = (self.started?, self.completed?);
        c.duration_since(s).ok()
    }
    fn internal(&self) -> bool {
        self.name.starts_with("[internal]")
    }
    /// The daemon reading a cache manifest (`--cache-from`). Its failure (a tag not pushed
    /// yet, an unreachable registry) does not fail the build, which goes on without it.
    pub fn is_cache_import(&self) -> bool {
        is_cache_import(&self.name)
    }
}

fn is_cache_import(name: &str) -> bool {
    name.starts_with("importing cache manifest from ")
}

/// A finished vertex, for results and summaries.
#[derive(Clone, Debug)]
pub struct VertexSummary {
    /// Digest.
    pub digest: String,
    /// Display name.
    pub name: String,
    /// Digests of the vertices it depends on. BuildKit reports vertices without inputs
    /// (sources, input-less file ops) as started and completed, uncached, while it computes
    /// their cache keys, even when everything that depends on them is a cache hit.
    pub inputs: Vec<String>,
    /// Taken from the cache.
    pub cached: bool,
    /// How long it ran.
    pub duration: Option<Duration>,
    /// Error, if it failed.
    pub error: Option<String>,
}

/// A change the tracker saw, for renderers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A vertex started running.
    Started(String),
    /// A vertex finished (done, cached or failed).
    Completed(String),
    /// A complete log line of a vertex.
    Log(String, String),
    /// A sub-progress item (e.g. a transfer) of a vertex.
    Status {
        /// Vertex digest.
        vertex: String,
        /// Item id (e.g. "transferring context:").
        id: String,
        /// Bytes or items done.
        current: i64,
        /// Total, 0 if unknown.
        total: i64,
        /// Whether the item finished.
        done: bool,
    },
}

/// Folds status messages into per-vertex state.
#[derive(Default)]
pub struct Tracker {
    vertices: BTreeMap<String, VertexState>,
    order: Vec<String>,
}

impl Tracker {
    /// Apply one status message; return what changed.
    pub fn update(&mut self, resp: &StatusResponse) -> Vec<Change> {
        let mut changes = Vec::new();
        for v in &resp.vertexes {
            let st = self.vertices.entry(v.digest.clone()).or_insert_with(|| {
                self.order.push(v.digest.clone());
                VertexState {
                    digest: v.digest.clone(),
                    ..Default::default()
                }
            });
            let was_started = st.started.is_some();
            let was_completed = st.completed.is_some();
            st.name = v.name.clone();
            st.inputs = v.inputs.clone();
            // A cache hit whose result lives in an imported cache is reported again, uncached,
            // while the daemon pulls it: it stays a cache hit.
            st.cached |= v.cached;
            if let Some(s) = to_time(&v.started) {
                st.started = Some(s);
            }
            st.completed = to_time(&v.completed);
            st.error = v.error.clone();
            if st.started.is_some() && !was_started {
                changes.push(Change::Started(v.digest.clone()));
            }
            if st.completed.is_some() && !was_completed {
                // Flush unterminated log output of a finished vertex.
                for (_, p) in std::mem::take(&mut st.partial) {
                    if !p.is_empty() {
                        let line = String::from_utf8_lossy(&p).into_owned();
                        push_tail(&mut st.tail, uncoloured(&line));
                        changes.push(Change::Log(v.digest.clone(), line));
                    }
                }
                changes.push(Change::Completed(v.digest.clone()));
            }
        }
        for s in &resp.statuses {
            if let Some(st) = self.vertices.get_mut(&s.vertex) {
                st.counters
                    .insert(s.id.clone(), (s.current, s.total, s.completed.is_some()));
            }
            changes.push(Change::Status {
                vertex: s.vertex.clone(),
                id: s.id.clone(),
                current: s.current,
                total: s.total,
                done: s.completed.is_some(),
            });
        }
        for l in &resp.logs {
            let Some(st) = self.vertices.get_mut(&l.vertex) else {
                continue;
            };
            let buf = st.partial.entry(l.stream).or_default();
            buf.extend_from_slice(&l.msg);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let rest = buf.split_off(pos + 1);
                let mut line = std::mem::replace(buf, rest);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let line = String::from_utf8_lossy(&line).into_owned();
                push_tail(&mut st.tail, uncoloured(&line));
                changes.push(Change::Log(l.vertex.clone(), line));
            }
        }
        changes
    }

    /// State of one vertex.
    pub fn get(&self, digest: &str) -> Option<&VertexState> {
        self.vertices.get(digest)
    }

    /// The first vertex that reported an error.
    pub fn failed_vertex(&self) -> Option<&str> {
        self.order
            .iter()
            .find(|d| {
                self.vertices
                    .get(*d)
                    .is_some_and(|v| !v.error.is_empty() && !v.is_cache_import())
            })
            .map(String::as_str)
    }

    /// All vertices in first-seen order.
    pub fn summaries(&self) -> Vec<VertexSummary> {
        self.order
            .iter()
            .filter_map(|d| self.vertices.get(d))
            .map(|v| VertexSummary {
                digest: v.digest.clone(),
                name: v.name.clone(),
                inputs: v.inputs.clone(),
                cached: v.cached,
                duration: v.duration(),
                error: (!v.error.is_empty()).then(|| v.error.clone()),
            })
            .collect()
    }
}

/// `line` without ANSI escape sequences (colour codes of tools that colour their output).
pub fn uncoloured(line: &str) -> String {
    console::strip_ansi_codes(line).into_owned()
}

fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// Output style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// `tty` on a terminal, else `plain`.
    #[default]
    Auto,
    /// Live spinners, one line per running step.
    Tty,
    /// Line-oriented, in the style of `buildctl --progress=plain`.
    Plain,
    /// One JSON object per status message.
    RawJson,
    /// Nothing but errors.
    Quiet,
}

impl ProgressMode {
    /// The mode to use on this process's stderr: `auto` is `tty` on a terminal, else `plain`;
    /// `tty` on something that is not a terminal (a file, a pipe) is `plain` too, with a
    /// warning, as live bars drawn there would show nothing and colour would end up in a file.
    pub fn on_stderr(self) -> ProgressMode {
        let terminal = std::io::stderr().is_terminal();
        match self {
            ProgressMode::Auto | ProgressMode::Tty if terminal => ProgressMode::Tty,
            ProgressMode::Tty => {
                tracing::warn!("--progress tty: stderr is not a terminal; using plain");
                ProgressMode::Plain
            }
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        }
    }
}

impl std::str::FromStr for ProgressMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Self::Auto,
            "tty" => Self::Tty,
            "plain" => Self::Plain,
            "rawjson" => Self::RawJson,
            "quiet" | "none" => Self::Quiet,
            other => {
                return Err(format!(
                    "unknown progress mode {other:?} (auto, tty, plain, rawjson, quiet)"
                ));
            }
        })
    }
}

/// Totals of a build, printed at the end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Steps seen (internal vertices excluded).
    pub total: usize,
    /// Steps taken from the cache.
    pub cached: usize,
    /// Steps that ran.
    pub executed: usize,
    /// Steps that failed.
    pub errors: usize,
    /// Wall time since the renderer was created.
    pub duration: Duration,
    /// The slowest executed steps (name, duration), longest first, at most 5.
    pub slowest: Vec<(String, Duration)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Build summary:")?;
        writeln!(f, "  Total steps:  {}", self.total)?;
        writeln!(f, "  Cached:       {}", self.cached)?;
        writeln!(f, "  Executed:     {}", self.executed)?;
        if self.errors > 0 {
            writeln!(f, "  Errors:       {}", self.errors)?;
        }
        writeln!(f, "  Duration:     {:.1}s", self.duration.as_secs_f64())?;
        if !self.slowest.is_empty() {
            writeln!(f, "  Slowest steps:")?;
            for (n, d) in &self.slowest {
                writeln!(f, "    {:>7.1}s  {}", d.as_secs_f64(), truncate(n, 72))?;
            }
        }
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max.saturating_sub(3)).collect();
    format!("{cut}...")
}

struct Tty {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
    tails: BTreeMap<String, LiveTail>,
}

/// The live output of a running step in `tty` mode: its last lines, dimmed and indented, on
/// a bar right under the step's own, removed when the step ends.
#[derive(Default)]
pub struct LiveTail {
    bar: Option<ProgressBar>,
    shown: Vec<String>,
}

impl LiveTail {
    /// Show `lines` under `under` (nothing when empty).
    pub fn show(&mut self, multi: &MultiProgress, under: &ProgressBar, lines: Vec<String>) {
        if lines == self.shown {
            return;
        }
        if lines.is_empty() {
            self.clear(multi);
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = multi.insert_after(under, ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b
        });
        let text: Vec<String> = lines
            .iter()
            .map(|l| format!("    {}", style(format!("│ {l}")).dim()))
            .collect();
        bar.set_message(text.join("\n"));
        self.shown = lines;
    }

    /// Remove the lines.
    pub fn clear(&mut self, multi: &MultiProgress) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
            multi.remove(&b);
        }
        self.shown.clear();
    }
}

/// Width left for a tail line on stderr's terminal.
pub fn tail_width() -> usize {
    let cols = console::Term::stderr()
        .size_checked()
        .map_or(80, |(_, c)| usize::from(c));
    cols.max(20) - 8
}

/// Renders a Status stream for people and counts steps for the summary.
pub struct Progress {
    mode: ProgressMode,
    show_logs: bool,
    tracker: Tracker,
    out: Box<dyn Write + Send>,
    seq: BTreeMap<String, usize>,
    headers: std::collections::BTreeSet<String>,
    start: Instant,
    tty: Option<Tty>,
    /// When each (vertex, counter) was last printed in `plain` mode.
    status_printed: BTreeMap<(String, String), Instant>,
    /// How often a running counter is printed in `plain` mode.
    status_interval: Duration,
    /// Whether steps' output keeps its colour codes (else they are removed).
    colour: bool,
}

/// How often `plain` mode prints a running counter.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

impl Progress {
    /// A renderer writing to stderr. `show_logs` prints every step's output live (always on in
    /// `plain` mode).
    pub fn new(mode: ProgressMode, show_logs: bool) -> Self {
        let mode = mode.on_stderr();
        let tty = (mode == ProgressMode::Tty).then(|| Tty {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: BTreeMap::new(),
            tails: BTreeMap::new(),
        });
        Self {
            mode,
            show_logs,
            tracker: Tracker::default(),
            out: Box::new(std::io::stderr()),
            seq: BTreeMap::new(),
            headers: Default::default(),
            start: Instant::now(),
            tty,
            status_printed: BTreeMap::new(),
            status_interval: STATUS_INTERVAL,
            colour: console::colors_enabled_stderr(),
        }
    }

    /// A non-tty renderer writing into `out` (for tests and log files). Steps' output loses
    /// its colour codes unless [`Progress::with_colour`] says otherwise.
    pub fn to_writer(mode: ProgressMode, show_logs: bool, out: Box<dyn Write + Send>) -> Self {
        let mode = match mode {
            ProgressMode::Auto | ProgressMode::Tty => ProgressMode::Plain,
            m => m,
        };
        Self {
            mode,
            show_logs,
            tracker: Tracker::default(),
            out,
            seq: BTreeMap::new(),
            headers: Default::default(),
            start: Instant::now(),
            tty: None,
            status_printed: BTreeMap::new(),
            status_interval: STATUS_INTERVAL,
            colour: false,
        }
    }

    /// Keep (`true`) or remove the colour codes of steps' output.
    pub fn with_colour(mut self, colour: bool) -> Self {
        self.colour = colour;
        self
    }

    /// The mode in use after `auto` was resolved.
    pub fn mode(&self) -> ProgressMode {
        self.mode
    }

    /// The tracker (vertex states so far).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    fn seq_of(&mut self, d: &str) -> usize {
        let n = self.seq.len() + 1;
        *self.seq.entry(d.to_string()).or_insert(n)
    }

    /// The vertex's number, printing its `#N name` header first if not done yet.
    fn header(&mut self, d: &str, name: &str) -> usize {
        let n = self.seq_of(d);
        if self.headers.insert(d.to_string()) {
            let _ = writeln!(self.out, "#{n} {name}");
        }
        n
    }

    /// Feed one status message.
    pub fn handle(&mut self, resp: &StatusResponse) {
        let changes = self.tracker.update(resp);
        match self.mode {
            ProgressMode::RawJson => {
                let _ = writeln!(self.out, "{}", raw_json(resp));
            }
            ProgressMode::Plain => self.plain(changes),
            ProgressMode::Tty => self.tty(changes),
            ProgressMode::Quiet | ProgressMode::Auto => {}
        }
    }

    fn plain(&mut self, changes: Vec<Change>) {
        for c in changes {
            match c {
                Change::Started(d) => {
                    let Some(v) = self.tracker.get(&d).cloned() else {
                        continue;
                    };
                    if v.internal() {
                        continue;
                    }
                    self.header(&d, &v.name);
                }
                Change::Log(d, line) => {
                    let Some(v) = self.tracker.get(&d).cloned() else {
                        continue;
                    };
                    if v.internal() {
                        continue;
                    }
                    let n = self.header(&d, &v.name);
                    let secs = v
                        .started
                        .and_then(|s| SystemTime::now().duration_since(s).ok())
                        .unwrap_or_default()
                        .as_secs_f64();
                    let ts = if secs < 10.0 {
                        format!("{secs:.3}")
                    } else if secs < 100.0 {
                        format!("{secs:.2}")
                    } else {
                        format!("{secs:.1}")
                    };
                    let line = if self.colour { line } else { uncoloured(&line) };
                    let _ = writeln!(self.out, "#{n} {ts} {line}");
                }
                Change::Status {
                    vertex,
                    id,
                    current,
                    total,
                    done,
                } => self.plain_status(&vertex, &id, amount(current, total), done),
                Change::Completed(d) => {
                    let Some(v) = self.tracker.get(&d).cloned() else {
                        continue;
                    };
                    if v.internal() {
                        continue;
                    }
                    let n = self.header(&d, &v.name);
                    let end = if !v.error.is_empty() && v.is_cache_import() {
                        format!("WARNING: {} (building without this cache)", v.error)
                    } else if !v.error.is_empty() {
                        format!("ERROR: {}", v.error)
                    } else if v.cached {
                        "CACHED".to_string()
                    } else {
                        format!(
                            "DONE {:.1}s",
                            v.duration().unwrap_or_default().as_secs_f64()
                        )
                    };
                    let _ = writeln!(self.out, "#{n} {end}\n");
                }
            }
        }
    }

    /// A counter's line: when it is done, and while it runs at most once a second (the first
    /// after a second), so a long transfer shows its bytes as they go.
    fn plain_status(&mut self, vertex: &str, id: &str, amount: String, done: bool) {
        let Some(v) = self.tracker.get(vertex).filter(|v| !v.internal()).cloned() else {
            return;
        };
        let key = (vertex.to_string(), id.to_string());
        let now = Instant::now();
        let last = *self.status_printed.entry(key.clone()).or_insert(now);
        if !done && now.duration_since(last) < self.status_interval {
            return;
        }
        self.status_printed.insert(key, now);
        let n = self.header(vertex, &v.name);
        let end = if done { " done" } else { "" };
        let _ = writeln!(self.out, "#{n} {id} {amount}{end}");
    }

    fn tty(&mut self, changes: Vec<Change>) {
        let Some(tty) = self.tty.as_mut() else {
            return;
        };
        for c in changes {
            match c {
                Change::Started(d) => {
                    let Some(v) = self.tracker.get(&d) else {
                        continue;
                    };
                    if v.internal() || v.completed.is_some() {
                        continue;
                    }
                    let pb = tty.multi.add(ProgressBar::new_spinner());
                    pb.set_style(
                        ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.set_message(truncate(&v.name, 100));
                    pb.enable_steady_tick(Duration::from_millis(120));
                    tty.bars.insert(d, pb);
                }
                Change::Log(d, line) => {
                    let Some(v) = self.tracker.get(&d).filter(|v| !v.internal()) else {
                        continue;
                    };
                    if self.show_logs {
                        let line = if self.colour { line } else { uncoloured(&line) };
                        let _ = tty.multi.println(format!("    | {line}"));
                    }
                    if let Some(pb) = tty.bars.get(&d) {
                        let lines = v.live_tail(LIVE_TAIL_LINES, tail_width());
                        tty.tails.entry(d).or_default().show(&tty.multi, pb, lines);
                    }
                }
                Change::Status { vertex, .. } => {
                    if let (Some(pb), Some(v)) = (tty.bars.get(&vertex), self.tracker.get(&vertex))
                    {
                        pb.set_message(format!("{} {}", truncate(&v.name, 100), v.counters_text()));
                    }
                }
                Change::Completed(d) => {
                    if let Some(mut t) = tty.tails.remove(&d) {
                        t.clear(&tty.multi);
                    }
                    if let Some(pb) = tty.bars.remove(&d) {
                        pb.finish_and_clear();
                        tty.multi.remove(&pb);
                    }
                    let Some(v) = self.tracker.get(&d) else {
                        continue;
                    };
                    if v.internal() {
                        continue;
                    }
                    let line = if !v.error.is_empty() && v.is_cache_import() {
                        format!(
                            "{} {}  {}",
                            style("!").yellow().bold(),
                            truncate(&v.name, 100),
                            style(format!("{} (building without this cache)", v.error)).yellow()
                        )
                    } else if !v.error.is_empty() {
                        format!(
                            "{} {}  {}",
                            style("✗").red().bold(),
                            truncate(&v.name, 100),
                            style(&v.error).red()
                        )
                    } else if v.cached {
                        format!("{} {}", style("CACHED").dim(), truncate(&v.name, 100))
                    } else {
                        format!(
                            "{} {} {}",
                            style("✓").green(),
                            truncate(&v.name, 100),
                            style(format!(
                                "{:.1}s",
                                v.duration().unwrap_or_default().as_secs_f64()
                            ))
                            .dim()
                        )
                    };
                    let _ = tty.multi.println(line);
                }
            }
        }
    }

    /// Totals so far.
    pub fn summary(&self) -> Summary {
        let steps: Vec<VertexSummary> = self
            .tracker
            .summaries()
            .into_iter()
            .filter(|v| !v.name.starts_with("[internal]") && !is_client_step(&v.digest))
            .collect();
        let cached = steps.iter().filter(|v| v.cached).count();
        let errors = steps
            .iter()
            .filter(|v| v.error.is_some() && !is_cache_import(&v.name))
            .count();
        let mut slowest: Vec<(String, Duration)> = steps
            .iter()
            .filter(|v| !v.cached && v.error.is_none())
            .filter_map(|v| v.duration.map(|d| (v.name.clone(), d)))
            .collect();
        slowest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        slowest.truncate(5);
        // Executed: steps that ran (started and ended, or failed), not the ones a failure
        // left unstarted.
        let executed = steps
            .iter()
            .filter(|v| !v.cached && (v.duration.is_some() || v.error.is_some()))
            .count();
        Summary {
            total: steps.len(),
            cached,
            executed,
            errors,
            duration: self.start.elapsed(),
            slowest,
        }
    }

    /// Stop live output and print the summary (not in `quiet` or `rawjson` mode).
    pub fn finish(&mut self) -> Summary {
        if let Some(tty) = self.tty.as_mut() {
            for (_, mut t) in std::mem::take(&mut tty.tails) {
                t.clear(&tty.multi);
            }
            for (_, pb) in std::mem::take(&mut tty.bars) {
                pb.finish_and_clear();
            }
            let _ = tty.multi.clear();
        }
        let s = self.summary();
        if matches!(self.mode, ProgressMode::Plain | ProgressMode::Tty) {
            let _ = write!(self.out, "{s}");
            let _ = self.out.flush();
        }
        s
    }
}

/// `current` bytes, with `/ total` when the total is known.
fn amount(current: i64, total: i64) -> String {
    if total > 0 {
        format!("{} / {}", human_bytes(current), human_bytes(total))
    } else {
        human_bytes(current)
    }
}

/// Bytes for people (`52.40MB`).
pub fn human_bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    if n < 1024.0 {
        format!("{n}B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.2}kB", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}MB", n / 1024.0 / 1024.0)
    } else {
        format!("{:.2}GB", n / 1024.0 / 1024.0 / 1024.0)
    }
}

fn ts_json(t: &Option<Timestamp>) -> serde_json::Value {
    match t {
        Some(t) => serde_json::json!(t.seconds as f64 + t.nanos as f64 / 1e9),
        None => serde_json::Value::Null,
    }
}

/// One status message as JSON (field names as in BuildKit's Go API, lower-case).
pub fn raw_json(resp: &StatusResponse) -> String {
    use serde_json::json;
    let vertexes: Vec<_> = resp
        .vertexes
        .iter()
        .map(|v| {
            json!({
                "digest": v.digest, "inputs": v.inputs, "name": v.name, "cached": v.cached,
                "started": ts_json(&v.started), "completed": ts_json(&v.completed),
                "error": v.error,
            })
        })
        .collect();
    let statuses: Vec<_> = resp
        .statuses
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "vertex": s.vertex, "name": s.name, "current": s.current,
                "total": s.total, "timestamp": ts_json(&s.timestamp),
                "started": ts_json(&s.started), "completed": ts_json(&s.completed),
            })
        })
        .collect();
    let logs: Vec<_> = resp
        .logs
        .iter()
        .map(|l| {
            json!({
                "vertex": l.vertex, "stream": l.stream, "timestamp": ts_json(&l.timestamp),
                "data": String::from_utf8_lossy(&l.msg),
            })
        })
        .collect();
    let warnings: Vec<_> = resp
        .warnings
        .iter()
        .map(|w| {
            json!({
                "vertex": w.vertex, "level": w.level,
                "short": String::from_utf8_lossy(&w.short), "url": w.url,
            })
        })
        .collect();
    json!({"vertexes": vertexes, "statuses": statuses, "logs": logs, "warnings": warnings})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_buildkit_proto::moby::buildkit::v1::{Vertex, VertexLog};
    use std::sync::{Arc, Mutex};

    fn ts(s: i64) -> Option<Timestamp> {
        Some(Timestamp {
            seconds: s,
            nanos: 0,
        })
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn imported_cache_hits_stay_cached_and_failed_imports_are_warnings() {
        let buf = Buf::default();
        let mut p = Progress::to_writer(ProgressMode::Plain, false, Box::new(buf.clone()));
        let v = |digest: &str, name: &str, completed, cached: bool, err: &str| Vertex {
            digest: digest.into(),
            name: name.into(),
            cached,
            started: ts(100),
            completed,
            error: err.into(),
            ..Default::default()
        };
        let import = "importing cache manifest from 127.0.0.1:1/cache:x";
        for vs in [
            vec![v("sha256:i", import, ts(101), false, "connection refused")],
            vec![v("sha256:a", "run: make", ts(101), true, "")],
            // Pulling the imported result reports the vertex again, uncached.
            vec![v("sha256:a", "run: make", None, false, "")],
            vec![v("sha256:a", "run: make", ts(102), false, "")],
        ] {
            p.handle(&StatusResponse {
                vertexes: vs,
                ..Default::default()
            });
        }
        let s = p.finish();
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("WARNING: connection refused"), "{out}");
        assert!(!out.contains("ERROR"), "{out}");
        assert_eq!((s.total, s.cached, s.errors), (2, 1, 0), "{out}");
        assert!(p.tracker().get("sha256:a").unwrap().cached);
        assert_eq!(p.tracker().failed_vertex(), None);
    }

    #[test]
    fn plain_output_and_tail() {
        let buf = Buf::default();
        let mut p = Progress::to_writer(ProgressMode::Plain, false, Box::new(buf.clone()));
        let v = |started, completed, cached: bool, err: &str| Vertex {
            digest: "sha256:a".into(),
            name: "run: make".into(),
            cached,
            started,
            completed,
            error: err.into(),
            ..Default::default()
        };
        p.handle(&StatusResponse {
            vertexes: vec![v(ts(100), None, false, "")],
            ..Default::default()
        });
        p.handle(&StatusResponse {
            logs: vec![VertexLog {
                vertex: "sha256:a".into(),
                stream: 1,
                msg: b"hello\nwor".to_vec(),
                timestamp: ts(100),
            }],
            ..Default::default()
        });
        p.handle(&StatusResponse {
            logs: vec![VertexLog {
                vertex: "sha256:a".into(),
                stream: 1,
                msg: b"ld\npartial".to_vec(),
                timestamp: ts(100),
            }],
            ..Default::default()
        });
        p.handle(&StatusResponse {
            vertexes: vec![v(ts(100), ts(102), false, "exit code: 2")],
            ..Default::default()
        });
        let s = p.finish();
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(out.starts_with("#1 run: make\n"), "{out}");
        assert!(out.contains(" hello\n") && out.contains(" world\n") && out.contains(" partial\n"));
        assert!(out.contains("#1 ERROR: exit code: 2"), "{out}");
        assert!(out.contains("Errors:       1"), "{out}");
        assert_eq!((s.total, s.cached, s.executed, s.errors), (1, 0, 1, 1));
        // A step the failure left unstarted is counted, but not as executed.
        p.handle(&StatusResponse {
            vertexes: vec![Vertex {
                digest: "sha256:b".into(),
                name: "run: later".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let s = p.summary();
        assert_eq!((s.total, s.cached, s.executed), (2, 0, 1));
        assert_eq!(
            p.tracker().get("sha256:a").unwrap().log_tail(),
            ["hello", "world", "partial"]
        );
        assert_eq!(p.tracker().failed_vertex(), Some("sha256:a"));
    }

    #[test]
    fn rawjson_is_one_object_per_message() {
        let buf = Buf::default();
        let mut p = Progress::to_writer(ProgressMode::RawJson, false, Box::new(buf.clone()));
        p.handle(&StatusResponse {
            vertexes: vec![Vertex {
                digest: "sha256:b".into(),
                name: "x".into(),
                cached: true,
                started: ts(1),
                completed: ts(1),
                ..Default::default()
            }],
            ..Default::default()
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["vertexes"][0]["cached"], true);
    }

    #[test]
    fn client_steps_render_in_plain_and_are_not_counted() {
        let buf = Buf::default();
        let mut p = Progress::to_writer(ProgressMode::Plain, false, Box::new(buf.clone()));
        p.status_interval = Duration::ZERO;
        let step = ClientStep::new("package:a:x86_64", "package a", SystemTime::now());
        p.handle(&step.started());
        p.handle(&step.progress("read", 1 << 20, 0, false));
        p.handle(&step.progress("read", 3 << 20, 0, true));
        p.handle(&step.log("a-1-r0.apk 1.00MB (1048576 bytes)"));
        p.handle(&step.completed(None));
        let s = p.finish();
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            out.starts_with("#1 package a\n#1 read 1.00MB\n#1 read 3.00MB done\n"),
            "{out}"
        );
        assert!(
            out.contains(" a-1-r0.apk 1.00MB (1048576 bytes)\n#1 DONE "),
            "{out}"
        );
        assert_eq!((s.total, s.executed), (0, 0), "{out}");
        let v = p.tracker().get(step.digest()).unwrap();
        assert!(v.is_client_step());
        assert_eq!(
            (v.bytes(), v.counters_text()),
            (3 << 20, "3.00MB".to_string())
        );
    }

    #[test]
    fn plain_prints_running_counters_at_most_once_an_interval() {
        let buf = Buf::default();
        let mut p = Progress::to_writer(ProgressMode::Plain, false, Box::new(buf.clone()));
        let step = ClientStep::new("x", "send source", SystemTime::now());
        p.handle(&step.started());
        // within the interval: only the end is printed
        p.handle(&step.progress("transferring source:", 10, 0, false));
        p.handle(&step.progress("transferring source:", 20, 0, false));
        p.handle(&step.progress("transferring source:", 30, 0, true));
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out, "#1 send source\n#1 transferring source: 30B done\n");
    }

    #[test]
    fn live_tail_is_the_last_lines_cleaned_for_a_terminal() {
        let mut t = Tracker::default();
        let step = ClientStep::new("x", "make", SystemTime::now());
        t.update(&step.started());
        for i in 1..=8 {
            t.update(&step.log(&format!("\x1b[31mline\t{i}\x1b[0m\r")));
        }
        t.update(&step.log(&"x".repeat(50)));
        let tail = t.get(step.digest()).unwrap().live_tail(LIVE_TAIL_LINES, 20);
        assert_eq!(
            tail,
            [
                "line 4",
                "line 5",
                "line 6",
                "line 7",
                "line 8",
                "xxxxxxxxxxxxxxxxx..."
            ]
        );
    }

    #[test]
    fn colour_codes_of_step_output_are_removed_unless_colour_is_on() {
        let step = ClientStep::new("x", "make", SystemTime::now());
        let render = |colour: bool| {
            let buf = Buf::default();
            let mut p = Progress::to_writer(ProgressMode::Plain, false, Box::new(buf.clone()))
                .with_colour(colour);
            p.handle(&step.started());
            p.handle(&step.log("\x1b[1;31merror:\x1b[0m bad"));
            let tail = p.tracker().get(step.digest()).unwrap().log_tail();
            let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
            (out, tail)
        };
        let (out, tail) = render(false);
        assert!(out.ends_with(" error: bad\n"), "{out:?}");
        assert!(!out.contains('\x1b'), "{out:?}");
        assert_eq!(tail, ["error: bad"]);
        let (out, tail) = render(true);
        assert!(out.ends_with(" \x1b[1;31merror:\x1b[0m bad\n"), "{out:?}");
        // the tail goes into errors, JSON and files: always without colour
        assert_eq!(tail, ["error: bad"]);
    }

    #[test]
    fn modes_parse() {
        assert_eq!("plain".parse::<ProgressMode>(), Ok(ProgressMode::Plain));
        assert!("fancy".parse::<ProgressMode>().is_err());
    }
}
