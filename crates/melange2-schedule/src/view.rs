//! Progress of a run for people and machines: every line names its package. `tty` keeps one
//! line per running package (its current step and elapsed time) under counters and an ETA;
//! `plain` prefixes BuildKit's plain progress with the package; `rawjson` adds `package` and
//! `arch` to every status message and emits one `node` event per state change. Each build's
//! full plain log also goes to `<out-dir>/logs/<arch>/<name>.log` (written aside, renamed at
//! the end). In `tty` mode the last lines of a package's running step are shown under its
//! line. Client steps (packaging, see `melange2_buildkit::progress::ClientStep`) show in
//! every mode with their bytes and duration; in `rawjson` they are `client-step` events, not
//! status messages (docs/build.md, "Progress").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use melange2_buildkit::progress::{
    Change, LIVE_TAIL_LINES, LiveTail, Progress, ProgressMode, Tracker, is_client_step, style,
    tail_width, uncoloured,
};

use crate::report::{NodeReport, NodeResult};

/// Writes whole lines to stderr, each prefixed.
struct Prefixed {
    prefix: String,
    buf: Vec<u8>,
}

impl Write for Prefixed {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if !text.is_empty() {
                eprintln!("{}{text}", self.prefix);
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A log file written aside and renamed into place when the build ends.
struct LogFile {
    progress: Progress,
    tmp: PathBuf,
    path: PathBuf,
}

#[derive(Default)]
struct NodeView {
    label: String,
    name: String,
    arch: String,
    tracker: Tracker,
    console: Option<Progress>,
    log: Option<LogFile>,
    bar: Option<ProgressBar>,
    tail: LiveTail,
    started: Option<Instant>,
    /// Vertices whose result line was printed (BuildKit may report one twice).
    printed: std::collections::BTreeSet<String>,
}

#[derive(Default, Clone, Copy)]
struct Counters {
    built: usize,
    up_to_date: usize,
    running: usize,
    queued: usize,
    failed: usize,
    skipped: usize,
    total: usize,
}

/// The run's progress renderer.
pub(crate) struct View {
    mode: ProgressMode,
    debug: bool,
    nodes: Vec<NodeView>,
    counters: Counters,
    multi: Option<MultiProgress>,
    header: Option<ProgressBar>,
    start: Instant,
    built_time: Duration,
    log_dir: PathBuf,
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl View {
    /// A view over `nodes` (name, arch); labels carry the arch only when there are several.
    pub fn new(
        mode: ProgressMode,
        debug: bool,
        nodes: &[(String, String)],
        total: usize,
        out_dir: &Path,
    ) -> View {
        let mode = mode.on_stderr();
        let multi_arch = nodes.iter().any(|(_, a)| a != &nodes[0].1);
        let views = nodes
            .iter()
            .map(|(name, arch)| NodeView {
                label: if multi_arch {
                    format!("{name}/{arch}")
                } else {
                    name.clone()
                },
                name: name.clone(),
                arch: arch.clone(),
                ..Default::default()
            })
            .collect();
        let (multi, header) = if mode == ProgressMode::Tty {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let header = multi.add(ProgressBar::new_spinner());
            header.set_style(bar_style("{msg}"));
            (Some(multi), Some(header))
        } else {
            (None, None)
        };
        let v = View {
            mode,
            debug,
            nodes: views,
            counters: Counters {
                total,
                ..Default::default()
            },
            multi,
            header,
            start: Instant::now(),
            built_time: Duration::ZERO,
            log_dir: out_dir.join("logs"),
        };
        v.redraw_header();
        v
    }

    fn println(&self, line: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn event(&self, i: usize, event: &str, extra: serde_json::Value) {
        let n = &self.nodes[i];
        let mut v = serde_json::json!({"event": event, "package": n.name, "arch": n.arch});
        if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        eprintln!("{v}");
    }

    fn eta(&self) -> String {
        let done = self.counters.built + self.counters.failed;
        let left = self.counters.queued + self.counters.running;
        if done == 0 || left == 0 {
            return String::new();
        }
        let per = self.built_time / done as u32;
        let parallel = self.counters.running.max(1) as u32;
        let eta = per * left as u32 / parallel;
        format!("  ETA {}s", eta.as_secs())
    }

    fn redraw_header(&self) {
        if let Some(h) = &self.header {
            let c = self.counters;
            h.set_message(format!(
                "{} built · {} up to date · {} running · {} queued · {} failed · {} skipped  ({} of {}){}",
                c.built,
                c.up_to_date,
                c.running,
                c.queued,
                c.failed,
                c.skipped,
                c.built + c.up_to_date + c.failed + c.skipped,
                c.total,
                self.eta()
            ));
        }
    }

    /// A node is not up to date and waits for a slot.
    pub fn queued(&mut self, i: usize, reasons: &[String]) {
        self.counters.queued += 1;
        match self.mode {
            ProgressMode::Plain => self.println(format!(
                "[{}] to build: {}",
                self.nodes[i].label,
                reasons.join("; ")
            )),
            ProgressMode::RawJson => {
                self.event(i, "queued", serde_json::json!({"reasons": reasons}))
            }
            _ => {}
        }
        self.redraw_header();
    }

    /// A node's build lost its daemon and goes back to the queue.
    pub fn retrying(&mut self, i: usize, note: &str) {
        self.counters.running = self.counters.running.saturating_sub(1);
        self.counters.queued += 1;
        if let Some(m) = &self.multi {
            self.nodes[i].tail.clear(m);
        }
        if let Some(pb) = self.nodes[i].bar.take() {
            pb.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&pb);
            }
        }
        match self.mode {
            ProgressMode::Plain | ProgressMode::Tty => {
                self.println(format!("[{}] retrying: {note}", self.nodes[i].label))
            }
            ProgressMode::RawJson => self.event(i, "retrying", serde_json::json!({"why": note})),
            _ => {}
        }
        self.redraw_header();
    }

    /// A queued node starts building on `daemon` (`retry`: again, after losing a daemon).
    pub fn started(&mut self, i: usize, daemon: &str, reasons: &[String], retry: bool) {
        self.counters.queued = self.counters.queued.saturating_sub(1);
        self.counters.running += 1;
        let (mode, debug) = (self.mode, self.debug);
        let label = self.nodes[i].label.clone();
        let log = match self.nodes[i].log.take() {
            Some(l) if retry => Some(l),
            _ => self.open_log(i, daemon, reasons),
        };
        let n = &mut self.nodes[i];
        n.started = Some(Instant::now());
        n.log = log;
        n.tracker = Tracker::default();
        match mode {
            ProgressMode::Plain => {
                n.console = Some(
                    Progress::to_writer(
                        ProgressMode::Plain,
                        debug,
                        Box::new(Prefixed {
                            prefix: format!("[{label}] "),
                            buf: vec![],
                        }),
                    )
                    .with_colour(console::colors_enabled_stderr()),
                );
                eprintln!("[{label}] building on {daemon}");
            }
            ProgressMode::Tty => {
                if let Some(m) = &self.multi {
                    let pb = m.add(ProgressBar::new_spinner());
                    pb.set_style(bar_style(
                        "{spinner:.cyan} {prefix:.bold} {msg} {elapsed:.dim}",
                    ));
                    pb.set_prefix(label);
                    pb.set_message(format!("on {daemon}"));
                    pb.enable_steady_tick(Duration::from_millis(120));
                    n.bar = Some(pb);
                }
            }
            ProgressMode::RawJson => {
                self.event(
                    i,
                    "started",
                    serde_json::json!({"daemon": daemon, "retry": retry}),
                );
            }
            _ => {}
        }
        self.redraw_header();
    }

    fn open_log(&self, i: usize, daemon: &str, reasons: &[String]) -> Option<LogFile> {
        let n = &self.nodes[i];
        let dir = self.log_dir.join(&n.arch);
        let path = dir.join(format!("{}.log", n.name));
        let tmp = dir.join(format!(".{}.log.tmp", n.name));
        let opened = std::fs::create_dir_all(&dir).and_then(|_| std::fs::File::create(&tmp));
        let mut file = match opened {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("log {}: {e}", tmp.display());
                return None;
            }
        };
        let _ = writeln!(file, "# {} ({}) on {daemon}", n.name, n.arch);
        for r in reasons {
            let _ = writeln!(file, "# why: {r}");
        }
        Some(LogFile {
            progress: Progress::to_writer(ProgressMode::Plain, true, Box::new(file)),
            tmp,
            path,
        })
    }

    /// A status message of a running node.
    pub fn status(&mut self, i: usize, resp: &StatusResponse) {
        let (mode, debug) = (self.mode, self.debug);
        let n = &mut self.nodes[i];
        let changes = n.tracker.update(resp);
        if let Some(l) = &mut n.log {
            l.progress.handle(resp);
        }
        match mode {
            ProgressMode::Plain => {
                if let Some(c) = &mut n.console {
                    c.handle(resp);
                }
            }
            ProgressMode::RawJson if is_client_response(resp) => {
                let events = client_step_events(&n.tracker, &changes);
                for e in events {
                    self.event(i, "client-step", e);
                }
            }
            ProgressMode::RawJson => {
                let raw = melange2_buildkit::progress::raw_json(resp);
                let mut v: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("package".into(), n.name.clone().into());
                    o.insert("arch".into(), n.arch.clone().into());
                }
                eprintln!("{v}");
            }
            ProgressMode::Tty => {
                let current = current_step(&n.tracker);
                if let Some(pb) = &n.bar
                    && let Some(step) = &current
                {
                    pb.set_message(format!("› {}", step_text(&n.tracker, step)));
                }
                let lines = step_lines(&n.tracker, &n.label, changes, &mut n.printed, debug);
                if let Some(m) = &self.multi {
                    for l in lines {
                        let _ = m.println(l);
                    }
                    if let Some(pb) = &n.bar {
                        let tail = current
                            .and_then(|d| n.tracker.get(&d))
                            .map(|v| v.live_tail(LIVE_TAIL_LINES, tail_width()))
                            .unwrap_or_default();
                        n.tail.show(m, pb, tail);
                    }
                }
            }
            _ => {}
        }
    }

    /// Steps of a node so far: (cached, executed).
    pub fn steps(&self, i: usize) -> (usize, usize) {
        let s = self.nodes[i].tracker.summaries();
        let steps = s
            .iter()
            .filter(|v| !v.name.starts_with("[internal]") && !is_client_step(&v.digest));
        let (mut cached, mut executed) = (0, 0);
        for v in steps {
            if v.cached {
                cached += 1;
            } else if v.duration.is_some() || v.error.is_some() {
                executed += 1;
            }
        }
        (cached, executed)
    }

    /// A node reached its end (`report.result` says how).
    pub fn finished(&mut self, i: usize, report: &mut NodeReport, was_running: bool) {
        if was_running {
            self.counters.running = self.counters.running.saturating_sub(1);
        }
        match &report.result {
            NodeResult::Built => {
                self.counters.built += 1;
                self.built_time += report.duration;
            }
            NodeResult::UpToDate => self.counters.up_to_date += 1,
            NodeResult::Failed(_) => {
                self.counters.failed += 1;
                self.built_time += report.duration;
            }
            NodeResult::Skipped(_) => self.counters.skipped += 1,
            NodeResult::WouldBuild => {}
        }
        report.log = self.close_log(i, &report.result);
        let n = &mut self.nodes[i];
        n.console = None;
        if let Some(m) = &self.multi {
            n.tail.clear(m);
        }
        if let Some(pb) = n.bar.take() {
            pb.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&pb);
            }
        }
        match self.mode {
            ProgressMode::Plain | ProgressMode::Tty => self.println(self.result_line(i, report)),
            ProgressMode::RawJson => {
                let (result, error) = match &report.result {
                    NodeResult::Failed(e) => ("failed".to_string(), Some(e.clone())),
                    r => (r.label(), None),
                };
                self.event(
                    i,
                    "finished",
                    serde_json::json!({
                        "result": result, "error": error, "reasons": report.reasons,
                        "daemon": report.daemon, "duration": report.duration.as_secs_f64(),
                        "retries": report.retries,
                        "cached": report.cached, "executed": report.executed,
                    }),
                );
            }
            _ => {}
        }
        self.redraw_header();
    }

    fn result_line(&self, i: usize, r: &NodeReport) -> String {
        let label = &self.nodes[i].label;
        let tty = self.mode == ProgressMode::Tty;
        let mark = |plain: &'static str, styled: console::StyledObject<&'static str>| {
            if tty {
                styled.to_string()
            } else {
                plain.to_string()
            }
        };
        match &r.result {
            NodeResult::Built => format!(
                "{} {label} built in {:.1}s ({} cached, {} executed)",
                mark("[built]", style("✓").green()),
                r.duration.as_secs_f64(),
                r.cached,
                r.executed
            ),
            NodeResult::UpToDate => {
                format!(
                    "{} {label} up to date",
                    mark("[up to date]", style("=").dim())
                )
            }
            NodeResult::WouldBuild => format!(
                "{} {label}: {}",
                mark("[would build]", style("+").yellow()),
                r.reasons.join("; ")
            ),
            NodeResult::Failed(e) => format!(
                "{} {label} failed: {}",
                mark("[FAILED]", style("✗").red().bold()),
                e.lines().next().unwrap_or("")
            ),
            NodeResult::Skipped(why) => format!(
                "{} {label} skipped: {why}",
                mark("[skipped]", style("-").dim())
            ),
        }
    }

    fn close_log(&mut self, i: usize, result: &NodeResult) -> Option<PathBuf> {
        let mut log = self.nodes[i].log.take()?;
        log.progress.finish();
        drop(log.progress);
        let end = match result {
            NodeResult::Failed(e) => format!("# FAILED: {e}\n"),
            r => format!("# {}\n", r.label()),
        };
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .open(&log.tmp)
            .and_then(|mut f| f.write_all(end.as_bytes()));
        match appended.and_then(|_| std::fs::rename(&log.tmp, &log.path)) {
            Ok(()) => Some(log.path),
            Err(e) => {
                tracing::warn!("log {}: {e}", log.path.display());
                None
            }
        }
    }

    /// Stop live output.
    pub fn finish(&mut self) {
        for n in &mut self.nodes {
            if let Some(m) = &self.multi {
                n.tail.clear(m);
            }
            if let Some(pb) = n.bar.take() {
                pb.finish_and_clear();
            }
        }
        if let Some(h) = self.header.take() {
            h.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
        let _ = std::io::stderr().flush();
    }

    /// The mode in use.
    pub fn mode(&self) -> ProgressMode {
        self.mode
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Lines for the steps that just finished: `✓ [pkg] Build 0.2s`, `CACHED [pkg] …`, `✗ …`;
/// with `debug`, every output line too (`[pkg] | line`).
fn step_lines(
    t: &Tracker,
    label: &str,
    changes: Vec<Change>,
    printed: &mut std::collections::BTreeSet<String>,
    debug: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for c in changes {
        if let Change::Log(d, line) = &c
            && debug
            && t.get(d).is_some_and(|v| !v.name.starts_with("[internal]"))
        {
            let colour = console::colors_enabled_stderr();
            let line = if colour {
                line.clone()
            } else {
                uncoloured(line)
            };
            out.push(format!("[{label}] | {line}"));
        }
        let Change::Completed(d) = c else { continue };
        let Some(v) = t.get(&d) else { continue };
        if v.name.starts_with("[internal]") || !printed.insert(d.clone()) {
            continue;
        }
        let name: String = v.name.chars().take(100).collect();
        out.push(if !v.error.is_empty() {
            format!(
                "{} [{label}] {name}  {}",
                style("✗").red().bold(),
                style(&v.error).red()
            )
        } else if v.cached {
            format!("{} [{label}] {name}", style("CACHED").dim())
        } else {
            let secs = v.duration().unwrap_or_default().as_secs_f64();
            let counters = v.counters_text();
            let sep = if counters.is_empty() { "" } else { " " };
            format!(
                "{} [{label}] {name}{sep}{counters} {}",
                style("✓").green(),
                style(format!("{secs:.1}s")).dim()
            )
        });
    }
    out
}

/// The step a running build is at (its digest): the latest started, not completed,
/// non-internal vertex.
fn current_step(t: &Tracker) -> Option<String> {
    t.summaries()
        .into_iter()
        .filter(|v| !v.name.starts_with("[internal]") && v.duration.is_none() && !v.cached)
        .filter_map(|v| t.get(&v.digest).map(|s| (s.started, v.digest)))
        .filter(|(s, _)| s.is_some())
        .max_by_key(|(s, _)| *s)
        .map(|(_, d)| d)
}

/// A step's name with its counters (`send source 52.40MB`).
fn step_text(t: &Tracker, digest: &str) -> String {
    let Some(v) = t.get(digest) else {
        return String::new();
    };
    let counters = v.counters_text();
    if counters.is_empty() {
        v.name.clone()
    } else {
        format!("{} {counters}", v.name)
    }
}

/// Whether a status message is about client steps only.
fn is_client_response(resp: &StatusResponse) -> bool {
    let digests: Vec<&str> = resp
        .vertexes
        .iter()
        .map(|v| v.digest.as_str())
        .chain(resp.statuses.iter().map(|s| s.vertex.as_str()))
        .chain(resp.logs.iter().map(|l| l.vertex.as_str()))
        .collect();
    !digests.is_empty() && digests.into_iter().all(is_client_step)
}

/// `client-step` events for the changes of a client step: `started`, `progress` (bytes so
/// far), `done`/`failed` (bytes, duration, output lines, error).
fn client_step_events(t: &Tracker, changes: &[Change]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for c in changes {
        let (d, state) = match c {
            Change::Started(d) => (d, "started"),
            Change::Status { vertex, .. } => (vertex, "progress"),
            Change::Completed(d) => (d, "completed"),
            Change::Log(..) => continue,
        };
        let Some(v) = t.get(d) else { continue };
        let mut e = serde_json::json!({"step": v.name, "state": state, "bytes": v.bytes()});
        if state == "completed" {
            let failed = !v.error.is_empty();
            e["state"] = if failed { "failed" } else { "done" }.into();
            e["duration"] = v.duration().unwrap_or_default().as_secs_f64().into();
            e["output"] = v.log_tail().into();
            if failed {
                e["error"] = v.error.clone().into();
            }
        }
        out.push(e);
    }
    out
}
