//! Build a tree of recipes as one dependency graph: what is up to date is skipped without
//! contacting BuildKit, the rest is built in dependency order on a pool of daemon slots, each
//! result feeding the next builds' environments through the out-dir (see `docs/tree.md`).
//!
//! Contract:
//! * [`build_tree`] discovers and compiles the recipes ([`melange2_graph`]), refuses an
//!   unbreakable cycle before anything is built, then runs every selected node (one per
//!   recipe and architecture): its inputs are computed and compared with the out-dir's record
//!   ([`melange2_build::BuildContext::up_to_date`]); a node that is not up to date waits for a
//!   free slot of a daemon that runs its architecture and is built there.
//! * A node starts only when every dependency finished; a failed node marks everything that
//!   depends on it as skipped, and the rest goes on (`fail_fast` stops at the first failure).
//! * The daemon is contacted only when something must be built; `dry_run` never contacts it.
//! * Progress names the package of every line (tty, plain, rawjson); each build's full log is
//!   written to `<out-dir>/logs/<arch>/<name>.log`; the [`TreeReport`] has one row per node.

mod engine;
mod pool;
mod report;
mod view;

use std::collections::BTreeSet;
use std::path::PathBuf;

use melange2_build::{BuildContext, BuildError, BuildOptions};
use melange2_graph::{Discovery, Graph, GraphError, LoadOptions, NodeId, Offered};

pub use pool::{DaemonSpec, Pool, Probe, ProbeInfo};
pub use report::{NodeReport, NodeResult, TreeReport};

/// Everything `melange2 build` takes for a tree.
#[derive(Clone, Debug, Default)]
pub struct TreeOptions {
    /// Build files and directories of build files (empty: `melange.yaml` in the cwd).
    pub inputs: Vec<PathBuf>,
    /// Build only these recipes and what they need (`--select`).
    pub select: Vec<String>,
    /// Rebuild even what is up to date (`--force`).
    pub force: bool,
    /// Say what would be built, in which order and why; build nothing (`--dry-run`).
    pub dry_run: bool,
    /// Stop at the first failure (`--fail-fast`).
    pub fail_fast: bool,
    /// Builds at once (0: [`default_jobs`]).
    pub jobs: usize,
    /// The flags of every build.
    pub build: BuildOptions,
}

/// The default of `--jobs`: the client's cores, at least 2 (BuildKit runs each build's steps
/// itself; the client packages, which is what the cores are for).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// Errors that stop a run before or outside the builds.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Bad arguments.
    #[error("{0}")]
    Input(String),
    /// Discovery or selection failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The graph has cycles no repository can break.
    #[error("{0}")]
    Cycles(String),
    /// Setting up the run failed (signing key, …).
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// The graph of a tree, with what discovery skipped and what failed to load.
pub struct TreeGraph {
    /// The graph.
    pub graph: Graph,
    /// Files and recipes found.
    pub discovery: Discovery,
    /// Recipes that did not compile: (file, arch, error).
    pub failures: Vec<(PathBuf, Option<String>, String)>,
    /// Recipes `target-architecture` excludes: (name, arch).
    pub disabled: Vec<(String, String)>,
}

fn inputs_of(opts: &TreeOptions) -> Result<Vec<PathBuf>, ScheduleError> {
    if !opts.inputs.is_empty() {
        return Ok(opts.inputs.clone());
    }
    let default = melange2_build::find_config(None)?;
    Ok(vec![default])
}

fn archs_of(opts: &BuildOptions) -> Vec<String> {
    if opts.archs.is_empty() {
        let host = melange2_llb::Platform::host();
        return vec![host.apk_arch().unwrap_or("x86_64").to_string()];
    }
    let mut seen = BTreeSet::new();
    opts.archs
        .iter()
        .filter(|a| seen.insert(a.to_string()))
        .cloned()
        .collect()
}

/// Discover, compile and link the tree; cycle edges are dropped when the node's configured
/// repositories (or the out-dir) already offer what the edge needs.
pub async fn load_graph(
    opts: &TreeOptions,
    ctx: &BuildContext,
) -> Result<TreeGraph, ScheduleError> {
    let discovery = melange2_graph::discover(&inputs_of(opts)?)?;
    let b = &opts.build;
    let loaded = melange2_graph::load(
        &discovery,
        &LoadOptions {
            archs: archs_of(b),
            pipeline_dirs: b.pipeline_dirs.clone(),
            build_options: b.build_options.clone(),
            vars_file: b.vars_file.clone(),
            env_files: b.env_files.clone(),
            package_append: b.package_append.clone(),
        },
    );
    let single_only = [
        ("--source-dir", b.source_dir.is_some()),
        ("--workspace-dir", b.workspace_dir.is_some()),
        ("--dependency-log", b.dependency_log.is_some()),
    ];
    for (flag, set) in single_only {
        if set && discovery.recipes.len() > 1 {
            return Err(ScheduleError::Input(format!(
                "{flag} applies to one recipe, but {} were given",
                discovery.recipes.len()
            )));
        }
    }
    if !b.generate_index && discovery.recipes.len() > 1 {
        tracing::warn!(
            "--generate-index=false: later recipes of the tree cannot use earlier ones' packages"
        );
    }
    let handle = tokio::runtime::Handle::current();
    let offers = |node: &melange2_graph::Node, need: &str, out_dir: bool| -> bool {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                match ctx.repositories(&node.plan, out_dir).await {
                    Ok(r) => r.solve(&[need]).is_ok(),
                    Err(e) => {
                        tracing::warn!("{}: {e}", node.label());
                        false
                    }
                }
            })
        })
    };
    let external = |node: &melange2_graph::Node, need: &str| -> Offered {
        if b.bootstrap_rootfs.is_some() {
            Offered::No
        } else if offers(node, need, false) {
            Offered::ByRepository
        } else if offers(node, need, true) {
            Offered::ByOutDir
        } else {
            Offered::No
        }
    };
    let graph = melange2_graph::build(loaded.nodes, &external);
    Ok(TreeGraph {
        graph,
        failures: loaded
            .failures
            .into_iter()
            .map(|f| (f.recipe.path, f.arch, f.error))
            .collect(),
        disabled: loaded
            .disabled
            .into_iter()
            .map(|(_, name, arch)| (name, arch))
            .collect(),
        discovery,
    })
}

/// The run's shared context (architectures settled) and the tree's graph.
async fn context_and_graph(opts: &TreeOptions) -> Result<(BuildContext, TreeGraph), ScheduleError> {
    let mut build = opts.build.clone();
    build.archs = archs_of(&build);
    let ctx = BuildContext::new(build)?;
    let tree = load_graph(opts, &ctx).await?;
    Ok((ctx, tree))
}

/// The nodes a run covers: `--select`ed ones and their dependencies, or all.
fn selection(graph: &Graph, select: &[String]) -> Result<BTreeSet<NodeId>, ScheduleError> {
    if select.is_empty() {
        return Ok(graph.nodes.iter().map(|n| n.id).collect());
    }
    Ok(graph.select(select)?)
}

/// Build a tree (or one recipe): see the crate documentation.
pub async fn build_tree(opts: &TreeOptions, pool: Pool) -> Result<TreeReport, ScheduleError> {
    let (ctx, tree) = context_and_graph(opts).await?;
    for s in &tree.discovery.skipped {
        tracing::warn!("skipped {}: {}", s.path.display(), s.reason);
    }
    let unbreakable = tree.graph.unbreakable();
    if !unbreakable.is_empty() {
        let text: Vec<String> = unbreakable
            .iter()
            .map(|c| format!("  {}", tree.graph.cycle_text(c)))
            .collect();
        return Err(ScheduleError::Cycles(format!(
            "dependency cycle{} that no configured repository can break (nothing was built):\n{}",
            if text.len() > 1 { "s" } else { "" },
            text.join("\n")
        )));
    }
    let selected = selection(&tree.graph, &opts.select)?;
    let jobs = if opts.jobs == 0 {
        default_jobs()
    } else {
        opts.jobs
    };
    let failed_loads = report::load_failures(&tree);
    let engine = engine::Engine::new(&tree.graph, selected, ctx, pool, opts, jobs, failed_loads);
    let mut report = engine.run().await?;
    report.add_discovery(&tree);
    Ok(report)
}

/// How `melange2 graph` prints the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    /// The build order, one line per node, then cycles and dropped edges.
    Text,
    /// Graphviz.
    Dot,
    /// JSON.
    Json,
}

/// The graph of a tree, rendered; `Ok((text, true))` when it has unbreakable cycles.
pub async fn render_graph(
    opts: &TreeOptions,
    format: GraphFormat,
) -> Result<(String, bool), ScheduleError> {
    let (_, tree) = context_and_graph(opts).await?;
    let mut text = match format {
        GraphFormat::Text => tree.graph.to_text(),
        GraphFormat::Dot => tree.graph.to_dot(),
        GraphFormat::Json => {
            let mut v = tree.graph.to_json();
            if let Some(o) = v.as_object_mut() {
                let skipped: Vec<serde_json::Value> = tree
                    .discovery
                    .skipped
                    .iter()
                    .map(|s| serde_json::json!({"path": s.path, "reason": s.reason}))
                    .collect();
                o.insert("skipped".into(), skipped.into());
                let failures: Vec<serde_json::Value> = tree
                    .failures
                    .iter()
                    .map(|(p, a, e)| serde_json::json!({"file": p, "arch": a, "error": e}))
                    .collect();
                o.insert("failures".into(), failures.into());
            }
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
    };
    if format == GraphFormat::Text {
        for s in &tree.discovery.skipped {
            text.push_str(&format!("skipped {}: {}\n", s.path.display(), s.reason));
        }
        for (p, a, e) in &tree.failures {
            let arch = a.as_deref().map(|a| format!(" ({a})")).unwrap_or_default();
            text.push_str(&format!("does not load: {}{arch}: {e}\n", p.display()));
        }
    }
    Ok((text, !tree.graph.unbreakable().is_empty()))
}

/// `--builders FILE`: a YAML list of daemons (or a mapping with a `builders:` list), each
/// with `address`, optional `tls` (`ca`, `cert`, `key`, `server-name`), `max-jobs` and
/// `labels`. Unknown keys are errors naming the file.
pub fn load_builders(path: &std::path::Path) -> Result<Vec<DaemonSpec>, ScheduleError> {
    pool::load_builders(path).map_err(ScheduleError::Input)
}

/// `melange2 buildkit info` over a pool: every daemon probed, as text or JSON; also the number
/// of reachable daemons.
pub async fn pool_info(pool: &Pool, json: bool) -> (String, usize) {
    let probes = pool.probe().await;
    let reachable = probes.iter().filter(|p| p.result.is_ok()).count();
    let specs = pool.specs();
    if json {
        let items: Vec<serde_json::Value> = probes
            .iter()
            .zip(&specs)
            .map(|(p, s)| match &p.result {
                Ok(i) => serde_json::json!({
                    "address": p.name, "reachable": true, "version": i.version,
                    "native": i.native, "emulated": i.emulated,
                    "max-jobs": s.max_jobs, "labels": s.labels,
                }),
                Err(e) => serde_json::json!({
                    "address": p.name, "reachable": false, "error": e,
                    "max-jobs": s.max_jobs, "labels": s.labels,
                }),
            })
            .collect();
        let text = serde_json::to_string_pretty(&items).unwrap_or_default() + "\n";
        return (text, reachable);
    }
    let mut text = String::new();
    for (p, s) in probes.iter().zip(&specs) {
        let jobs = if s.max_jobs == 0 {
            "--jobs".to_string()
        } else {
            s.max_jobs.to_string()
        };
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match &p.result {
            Ok(i) => {
                let native: Vec<&str> = i.native.iter().map(String::as_str).collect();
                let emulated: Vec<&str> = i.emulated.iter().map(String::as_str).collect();
                text.push_str(&format!(
                    "{}: BuildKit {}, native {}, emulated {}, max jobs {jobs}{}\n",
                    p.name,
                    i.version,
                    native.join(" "),
                    if emulated.is_empty() {
                        "none".to_string()
                    } else {
                        emulated.join(" ")
                    },
                    if labels.is_empty() {
                        String::new()
                    } else {
                        format!(", labels {}", labels.join(" "))
                    }
                ));
            }
            Err(e) => text.push_str(&format!("{}: UNREACHABLE: {e}\n", p.name)),
        }
    }
    (text, reachable)
}
