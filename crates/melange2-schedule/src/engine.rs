//! The run loop: nodes are checked as soon as their dependencies are done, stale ones queue
//! for a daemon slot (longest chain of dependents first), failures skip their dependents.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use melange2_build::{BuildContext, BuildError, NodeInputs, NodeOutput, Reason};
use melange2_buildkit::progress::ProgressMode;
use melange2_graph::{Graph, NodeId};
use tokio::task::JoinSet;

use crate::TreeOptions;
use crate::pool::{Pool, Slot};
use crate::report::{NodeReport, NodeResult, TreeReport};
use crate::view::View;

/// What checking a node found.
enum Check {
    UpToDate,
    Stale(Box<NodeInputs>, Vec<String>),
}

enum Msg {
    Checked(NodeId, Result<Check, BuildError>),
    /// A build ended on a daemon slot; the last field says why the daemon is gone, when the
    /// build failed because it went away.
    Built(
        NodeId,
        usize,
        Result<NodeOutput, BuildError>,
        Duration,
        Option<String>,
    ),
}

/// Attempts on other daemons after a daemon went away mid-build.
const MAX_RETRIES: usize = 2;

/// A step failed (it ran and exited non-zero): never retried.
fn is_step_failure(e: &BuildError) -> bool {
    match e {
        BuildError::Buildkit(melange2_buildkit::BuildkitError::Solve(s)) => {
            s.exit_code.is_some() || s.step.is_some()
        }
        BuildError::Buildkit(_) => false,
        // Input, resolve, packaging problems are ours, not the daemon's.
        _ => true,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    Waiting,
    Busy,
    Running,
    Done,
}

pub(crate) struct Engine<'g> {
    graph: &'g Graph,
    order: Vec<NodeId>,
    selected: BTreeSet<NodeId>,
    ctx: Arc<BuildContext>,
    pool: Arc<Pool>,
    force: bool,
    dry_run: bool,
    fail_fast: bool,
    view: View,
    /// Node → position in `order` (and in the view).
    pos: BTreeMap<NodeId, usize>,
    state: BTreeMap<NodeId, St>,
    pending: BTreeMap<NodeId, usize>,
    /// Dependencies that are rebuilt (dry run: would be).
    rebuilt_deps: BTreeMap<NodeId, Vec<String>>,
    reports: BTreeMap<NodeId, NodeReport>,
    queue: BinaryHeap<(usize, std::cmp::Reverse<usize>, NodeId)>,
    queued: BTreeMap<NodeId, (Box<NodeInputs>, Vec<String>)>,
    height: BTreeMap<NodeId, usize>,
    stopped: Option<String>,
    /// Rows of recipes that did not load (listed first).
    extra: Vec<NodeReport>,
    /// A node could not be checked (e.g. its environment does not resolve): the daemons are
    /// checked too, so an architecture none runs is reported as such.
    check_failed: bool,
    /// Nodes whose last build ended because its daemon went away: `daemon ADDR went away
    /// (WHY)`, for the error when no daemon is left to retry on.
    went_away: BTreeMap<NodeId, String>,
}

/// Longest chain of dependents below each node (within the selection): the priority.
fn heights(
    graph: &Graph,
    order: &[NodeId],
    selected: &BTreeSet<NodeId>,
) -> BTreeMap<NodeId, usize> {
    let mut h = BTreeMap::new();
    for &id in order.iter().rev() {
        let below = graph
            .dependents(id)
            .filter(|d| selected.contains(d))
            .filter_map(|d| h.get(&d).copied())
            .max()
            .map_or(0, |m: usize| m + 1);
        h.insert(id, below);
    }
    h
}

impl<'g> Engine<'g> {
    pub fn new(
        graph: &'g Graph,
        selected: BTreeSet<NodeId>,
        ctx: BuildContext,
        mut pool: Pool,
        opts: &TreeOptions,
        jobs: usize,
        extra: Vec<NodeReport>,
    ) -> Engine<'g> {
        pool.set_default_jobs(jobs);
        let order: Vec<NodeId> = graph
            .order
            .iter()
            .copied()
            .filter(|id| selected.contains(id))
            .collect();
        let names: Vec<(String, String)> = order
            .iter()
            .map(|&id| {
                let n = graph.node(id);
                (n.name.clone(), n.arch.clone())
            })
            .collect();
        let view = View::new(
            ctx.opts.progress,
            ctx.opts.debug,
            &names,
            order.len(),
            &ctx.opts.out_dir,
        );
        let pending = order
            .iter()
            .map(|&id| (id, graph.deps(id).filter(|d| selected.contains(d)).count()))
            .collect();
        Engine {
            graph,
            pos: order.iter().enumerate().map(|(i, &id)| (id, i)).collect(),
            state: order.iter().map(|&id| (id, St::Waiting)).collect(),
            height: heights(graph, &order, &selected),
            order,
            selected,
            ctx: Arc::new(ctx),
            pool: Arc::new(pool),
            force: opts.force,
            dry_run: opts.dry_run,
            fail_fast: opts.fail_fast,
            view,
            pending,
            rebuilt_deps: BTreeMap::new(),
            reports: BTreeMap::new(),
            queue: BinaryHeap::new(),
            queued: BTreeMap::new(),
            stopped: None,
            extra,
            check_failed: false,
            went_away: BTreeMap::new(),
        }
    }

    fn name(&self, id: NodeId) -> &str {
        &self.graph.node(id).name
    }

    fn label(&self, id: NodeId) -> String {
        let n = self.graph.node(id);
        if self.graph.archs().len() > 1 {
            format!("{} ({})", n.name, n.arch)
        } else {
            n.name.clone()
        }
    }

    fn start_check(&mut self, id: NodeId, set: &mut JoinSet<Msg>) {
        self.state.insert(id, St::Busy);
        let node = self.graph.node(id);
        let (plan, source) = (node.plan.clone(), self.source_dir(id));
        let cycle_broken = self.cycle_broken(id);
        let ctx = Arc::clone(&self.ctx);
        let force = self.force;
        set.spawn(async move {
            let r = async {
                let inputs = ctx.inputs(plan, source, &cycle_broken).await?;
                if force {
                    return Ok(Check::Stale(
                        Box::new(inputs),
                        vec![Reason::Forced.to_string()],
                    ));
                }
                Ok(match ctx.up_to_date(&inputs) {
                    Ok(()) => Check::UpToDate,
                    Err(reasons) => Check::Stale(
                        Box::new(inputs),
                        reasons.iter().map(|r| r.to_string()).collect(),
                    ),
                })
            }
            .await;
            Msg::Checked(id, r)
        });
    }

    /// Packages of the recipes this node takes from the repositories to break a cycle.
    fn cycle_broken(&self, id: NodeId) -> BTreeSet<String> {
        self.graph
            .dropped
            .iter()
            .filter(|e| e.from == id)
            .flat_map(|e| self.graph.node(e.to).plan.package_names())
            .map(str::to_string)
            .collect()
    }

    fn source_dir(&self, id: NodeId) -> Option<std::path::PathBuf> {
        self.ctx
            .opts
            .source_dir
            .clone()
            .or_else(|| self.graph.node(id).source_dir.clone())
    }

    /// A node reached its end: record it, release its dependents or skip them.
    fn done(&mut self, id: NodeId, mut report: NodeReport, set: &mut JoinSet<Msg>) {
        let was_running = self.state.get(&id) == Some(&St::Running);
        self.state.insert(id, St::Done);
        let i = self.pos[&id];
        self.view.finished(i, &mut report, was_running);
        let result = report.result.clone();
        self.reports.insert(id, report);
        let dependents: Vec<NodeId> = self
            .graph
            .dependents(id)
            .filter(|d| self.selected.contains(d))
            .collect();
        match result {
            NodeResult::Failed(_) | NodeResult::Skipped(_) => {
                let why = match result {
                    NodeResult::Skipped(w) => w,
                    _ => format!("{} failed", self.label(id)),
                };
                if self.fail_fast && self.stopped.is_none() {
                    self.stopped = Some(format!("--fail-fast: {why}"));
                }
                for d in dependents {
                    if self.state.get(&d) == Some(&St::Waiting) {
                        let n = self.graph.node(d);
                        let r = NodeReport::new(&n.name, &n.arch, NodeResult::Skipped(why.clone()));
                        self.done(d, r, set);
                    }
                }
            }
            ref r => {
                if matches!(r, NodeResult::Built | NodeResult::WouldBuild) {
                    let label = self.label(id);
                    for &d in &dependents {
                        self.rebuilt_deps.entry(d).or_default().push(label.clone());
                    }
                }
                for d in dependents {
                    let left = self.pending.entry(d).or_insert(1);
                    *left = left.saturating_sub(1);
                    if *left == 0
                        && self.state.get(&d) == Some(&St::Waiting)
                        && self.stopped.is_none()
                    {
                        self.start_check(d, set);
                    }
                }
            }
        }
    }

    fn checked(&mut self, id: NodeId, r: Result<Check, BuildError>, set: &mut JoinSet<Msg>) {
        let (name, arch) = {
            let n = self.graph.node(id);
            (n.name.clone(), n.arch.clone())
        };
        let deps_rebuilt = self.rebuilt_deps.get(&id).cloned().unwrap_or_default();
        match r {
            Err(e) => {
                self.check_failed = true;
                self.done(
                    id,
                    NodeReport::new(&name, &arch, NodeResult::Failed(e.to_string())),
                    set,
                )
            }
            Ok(Check::UpToDate) if !self.dry_run || deps_rebuilt.is_empty() => {
                if self.ctx.opts.workspace_dir.is_some() || self.ctx.opts.dependency_log.is_some() {
                    tracing::warn!(
                        "{name} ({arch}) is up to date: --workspace-dir/--dependency-log are not \
                         refreshed for it (use --force to rebuild)"
                    );
                }
                self.done(id, NodeReport::new(&name, &arch, NodeResult::UpToDate), set)
            }
            Ok(check) => {
                let (inputs, mut reasons) = match check {
                    Check::Stale(i, r) => (Some(i), r),
                    Check::UpToDate => (None, vec![]),
                };
                if self.dry_run {
                    for d in deps_rebuilt {
                        reasons.push(Reason::DependencyRebuilt { recipe: d }.to_string());
                    }
                    let mut r = NodeReport::new(&name, &arch, NodeResult::WouldBuild);
                    r.reasons = reasons;
                    return self.done(id, r, set);
                }
                let Some(inputs) = inputs else { return };
                let i = self.pos[&id];
                self.view.queued(i, &reasons);
                let h = self.height.get(&id).copied().unwrap_or(0);
                self.queue.push((h, std::cmp::Reverse(i), id));
                self.queued.insert(id, (inputs, reasons));
            }
        }
    }

    /// Start queued builds while daemon slots are free (highest priority first; a node whose
    /// architecture has no free slot does not hold up the others).
    fn dispatch(
        &mut self,
        set: &mut JoinSet<Msg>,
        tx: &tokio::sync::mpsc::UnboundedSender<(NodeId, StatusResponse)>,
    ) {
        if self.stopped.is_some() {
            return;
        }
        let mut waiting = Vec::new();
        while let Some(entry) = self.queue.pop() {
            let id = entry.2;
            let Some((inputs, _)) = self.queued.get(&id) else {
                continue;
            };
            match self
                .pool
                .acquire(&inputs.plan.arch, &inputs.plan.package.name)
            {
                Slot::Got(slot) => self.start_build(id, slot, set, tx),
                Slot::Wait => waiting.push(entry),
            }
        }
        self.queue.extend(waiting);
    }

    fn start_build(
        &mut self,
        id: NodeId,
        slot: usize,
        set: &mut JoinSet<Msg>,
        tx: &tokio::sync::mpsc::UnboundedSender<(NodeId, StatusResponse)>,
    ) {
        let Some((inputs, reasons)) = self.queued.get(&id).cloned() else {
            self.pool.release(slot);
            return;
        };
        self.state.insert(id, St::Running);
        let daemon = self.pool.name(slot);
        let retry = self.reports.contains_key(&id);
        self.view.started(self.pos[&id], &daemon, &reasons, retry);
        if !retry {
            let mut report = NodeReport::new(self.name(id), &inputs.plan.arch, NodeResult::Built);
            report.reasons = reasons;
            self.reports.insert(id, report);
        }
        let (ctx, pool, tx) = (Arc::clone(&self.ctx), Arc::clone(&self.pool), tx.clone());
        set.spawn(async move {
            let t0 = Instant::now();
            let status = move |s: StatusResponse| {
                let _ = tx.send((id, s));
            };
            let r = async {
                let client = pool.client(slot)?;
                melange2_build::execute(&ctx, &client, &inputs, "", &status).await
            }
            .await;
            // A failure that is not a step's: is the daemon still there?
            let gone = match &r {
                Err(e) if !is_step_failure(e) => pool.still_up(slot).await.err(),
                _ => None,
            };
            pool.release(slot);
            Msg::Built(id, slot, r, t0.elapsed(), gone)
        });
    }

    fn built(
        &mut self,
        id: NodeId,
        slot: usize,
        r: Result<NodeOutput, BuildError>,
        took: Duration,
        gone: Option<String>,
        set: &mut JoinSet<Msg>,
    ) {
        let daemon = self.pool.name(slot);
        if let (Err(e), Some(why)) = (&r, &gone) {
            self.pool.mark_down(slot, why);
            let attempts = self.reports.get(&id).map_or(0, |r| r.retries.len());
            self.went_away
                .insert(id, format!("daemon {daemon} went away ({why})"));
            if attempts < MAX_RETRIES && self.stopped.is_none() {
                let note = format!("{daemon} went away ({why}): {e}");
                if let Some(rep) = self.reports.get_mut(&id) {
                    rep.retries.push(note.clone());
                }
                self.view.retrying(self.pos[&id], &note);
                let h = self.height.get(&id).copied().unwrap_or(0);
                self.queue.push((h, std::cmp::Reverse(self.pos[&id]), id));
                self.state.insert(id, St::Busy);
                return;
            }
        }
        let n = self.graph.node(id);
        let mut report = self
            .reports
            .remove(&id)
            .unwrap_or_else(|| NodeReport::new(&n.name, &n.arch, NodeResult::Built));
        self.queued.remove(&id);
        let (cached, executed) = self.view.steps(self.pos[&id]);
        report.cached = cached;
        report.executed = executed;
        report.duration = took;
        report.daemon = Some(daemon.clone());
        match r {
            Ok(out) => {
                report.result = NodeResult::Built;
                report.packages = out.packages.iter().map(|p| p.path.clone()).collect();
                report.attestations = out.attestations;
                report.index = out.index;
            }
            Err(e) => {
                let text = match gone {
                    // the transport's own error says less than this; it is in the retries
                    Some(why) => format!(
                        "daemon {daemon} went away ({why}) mid-build, after {} earlier \
                         attempt(s) on daemons that went away too; the out-dir is unchanged for \
                         this package",
                        report.retries.len()
                    ),
                    None => e.to_string(),
                };
                report.result = NodeResult::Failed(text);
            }
        }
        self.done(id, report, set);
    }

    /// Queued nodes no daemon can run any more (all down for good): they fail.
    fn fail_unrunnable(&mut self, set: &mut JoinSet<Msg>) {
        let stuck: Vec<NodeId> = self
            .queued
            .iter()
            .filter(|(id, (inputs, _))| {
                self.state.get(id) != Some(&St::Running) && !self.pool.can_run(&inputs.plan.arch)
            })
            .map(|(id, _)| *id)
            .collect();
        if stuck.is_empty() || self.pool.next_probe().is_some() {
            return;
        }
        for id in stuck {
            self.queued.remove(&id);
            self.queue.retain(|e| e.2 != id);
            let n = self.graph.node(id);
            let mut r = self
                .reports
                .remove(&id)
                .unwrap_or_else(|| NodeReport::new(&n.name, &n.arch, NodeResult::Built));
            r.result = NodeResult::Failed(match self.went_away.get(&id) {
                Some(gone) => format!(
                    "{gone} mid-build and no other daemon runs {}; the out-dir is unchanged \
                     for this package",
                    n.arch
                ),
                None => format!("no daemon that runs {} is available any more", n.arch),
            });
            self.done(id, r, set);
        }
    }

    /// Architectures of the selected nodes.
    fn archs(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .order
            .iter()
            .map(|&id| self.graph.node(id).arch.clone())
            .collect();
        set.into_iter().collect()
    }

    /// Run every selected node; returns the report (rows in build order). Fails before
    /// anything is built when a daemon cannot run an architecture of the run.
    pub async fn run(mut self) -> Result<TreeReport, BuildError> {
        let mut set = JoinSet::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(NodeId, StatusResponse)>();
        let ready: Vec<NodeId> = self
            .order
            .iter()
            .copied()
            .filter(|id| self.pending.get(id) == Some(&0))
            .collect();
        for id in ready {
            self.start_check(id, &mut set);
        }
        let mut prepared = false;
        loop {
            if !prepared && !self.dry_run && (!self.queue.is_empty() || self.check_failed) {
                prepared = true;
                if let Err(e) = self.pool.prepare(&self.archs()).await {
                    set.abort_all();
                    self.view.finish();
                    return Err(e);
                }
            }
            self.dispatch(&mut set, &tx);
            if self.stopped.is_some() && !set.is_empty() {
                set.abort_all();
            }
            self.fail_unrunnable(&mut set);
            let probe_at = self.pool.next_probe().filter(|_| !self.queue.is_empty());
            if set.is_empty() && probe_at.is_none() {
                break;
            }
            let wake = probe_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                joined = set.join_next(), if !set.is_empty() => match joined {
                    Some(Ok(Msg::Checked(id, r))) => self.checked(id, r, &mut set),
                    Some(Ok(Msg::Built(id, slot, r, took, gone))) => {
                        self.built(id, slot, r, took, gone, &mut set)
                    }
                    Some(Err(e)) if e.is_cancelled() => {}
                    Some(Err(e)) => tracing::error!("a build task failed: {e}"),
                    None => {}
                },
                Some((id, s)) = rx.recv() => {
                    let i = self.pos[&id];
                    self.view.status(i, &s);
                }
                _ = tokio::time::sleep_until(wake.into()) => self.pool.reprobe().await,
            }
        }
        while let Ok((id, s)) = rx.try_recv() {
            let i = self.pos[&id];
            self.view.status(i, &s);
        }
        Ok(self.finish())
    }

    /// Nodes left when the run stops (fail-fast) are reported as skipped.
    fn finish(mut self) -> TreeReport {
        let why = self
            .stopped
            .clone()
            .unwrap_or_else(|| "not started".to_string());
        let left: Vec<NodeId> = self
            .order
            .iter()
            .copied()
            .filter(|id| self.state.get(id) != Some(&St::Done))
            .collect();
        let mut set = JoinSet::new();
        for id in left {
            let n = self.graph.node(id);
            let r = NodeReport::new(&n.name, &n.arch, NodeResult::Skipped(why.clone()));
            self.done(id, r, &mut set);
        }
        self.view.finish();
        let mut report = TreeReport {
            duration: self.view.elapsed(),
            nodes: std::mem::take(&mut self.extra),
            ..Default::default()
        };
        for id in &self.order {
            if let Some(r) = self.reports.remove(id) {
                report.nodes.push(r);
            }
        }
        if matches!(self.view.mode(), ProgressMode::Plain | ProgressMode::Tty) {
            eprint!("{}", report.table());
        }
        report
    }
}
