//! What a run did, node by node, and the summary table.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::TreeGraph;

/// The result of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeResult {
    /// Built and packaged.
    Built,
    /// Skipped: the out-dir's packages are up to date.
    UpToDate,
    /// `--dry-run`: would be built.
    WouldBuild,
    /// Failed, with the error.
    Failed(String),
    /// Not built because a dependency failed (its name), or `--fail-fast` stopped the run.
    Skipped(String),
}

impl NodeResult {
    /// One word or phrase for the table.
    pub fn label(&self) -> String {
        match self {
            NodeResult::Built => "built".into(),
            NodeResult::UpToDate => "up to date".into(),
            NodeResult::WouldBuild => "would build".into(),
            NodeResult::Failed(_) => "FAILED".into(),
            NodeResult::Skipped(why) => format!("skipped: {why}"),
        }
    }
}

/// One row of the summary.
#[derive(Clone, Debug)]
pub struct NodeReport {
    /// Recipe name.
    pub name: String,
    /// Architecture.
    pub arch: String,
    /// What happened.
    pub result: NodeResult,
    /// Why it was (or would be) built.
    pub reasons: Vec<String>,
    /// Wall time of its build (zero when not built).
    pub duration: Duration,
    /// Steps BuildKit had cached.
    pub cached: usize,
    /// Steps that ran.
    pub executed: usize,
    /// Daemon it was built on.
    pub daemon: Option<String>,
    /// Packages written.
    pub packages: Vec<PathBuf>,
    /// Provenance archives written.
    pub attestations: Vec<PathBuf>,
    /// Index written.
    pub index: Option<PathBuf>,
    /// Its log file (when it was built).
    pub log: Option<PathBuf>,
    /// Attempts that ended because their daemon went away (each retried elsewhere).
    pub retries: Vec<String>,
}

impl NodeReport {
    pub(crate) fn new(name: &str, arch: &str, result: NodeResult) -> NodeReport {
        NodeReport {
            name: name.to_string(),
            arch: arch.to_string(),
            result,
            reasons: vec![],
            duration: Duration::ZERO,
            cached: 0,
            executed: 0,
            daemon: None,
            packages: vec![],
            attestations: vec![],
            index: None,
            log: None,
            retries: vec![],
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct TreeReport {
    /// One row per node, in build order.
    pub nodes: Vec<NodeReport>,
    /// Recipes that target-architecture excludes: (name, arch).
    pub disabled: Vec<(String, String)>,
    /// Files skipped by discovery: (path, reason).
    pub skipped_files: Vec<(PathBuf, String)>,
    /// Wall time of the run.
    pub duration: Duration,
}

/// Rows for the recipes that did not load.
pub(crate) fn load_failures(tree: &TreeGraph) -> Vec<NodeReport> {
    tree.failures
        .iter()
        .map(|(file, arch, error)| {
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut r = NodeReport::new(
                &name,
                arch.as_deref().unwrap_or("-"),
                NodeResult::Failed(error.clone()),
            );
            r.reasons.push(format!("{} does not load", file.display()));
            r
        })
        .collect()
}

impl TreeReport {
    pub(crate) fn add_discovery(&mut self, tree: &TreeGraph) {
        self.disabled.clone_from(&tree.disabled);
        self.skipped_files = tree
            .discovery
            .skipped
            .iter()
            .map(|s| (s.path.clone(), s.reason.clone()))
            .collect();
    }

    /// Nodes that failed.
    pub fn failed(&self) -> Vec<&NodeReport> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.result, NodeResult::Failed(_)))
            .collect()
    }

    /// Did everything succeed (nothing failed, nothing skipped for a failure)?
    pub fn success(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| !matches!(n.result, NodeResult::Failed(_) | NodeResult::Skipped(_)))
    }

    /// Count of nodes with a result like `r`.
    pub fn count(&self, f: impl Fn(&NodeResult) -> bool) -> usize {
        self.nodes.iter().filter(|n| f(&n.result)).count()
    }

    /// The summary table: package, arch, result, duration, steps, daemon.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 6]> = vec![[
            "PACKAGE".into(),
            "ARCH".into(),
            "RESULT".into(),
            "TIME".into(),
            "STEPS (cached/executed)".into(),
            "DAEMON".into(),
        ]];
        for n in &self.nodes {
            let built = matches!(n.result, NodeResult::Built | NodeResult::Failed(_));
            rows.push([
                n.name.clone(),
                n.arch.clone(),
                n.result.label(),
                if built {
                    format!("{:.1}s", n.duration.as_secs_f64())
                } else {
                    "-".into()
                },
                if built && n.daemon.is_some() {
                    format!("{}/{}", n.cached, n.executed)
                } else {
                    "-".into()
                },
                n.daemon.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        let mut widths = [0usize; 6];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &rows {
            let mut line = String::new();
            for (i, (w, c)) in widths.iter().zip(r).enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    let _ = write!(line, "{c:<w$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for n in self.nodes.iter().filter(|n| !n.retries.is_empty()) {
            for r in &n.retries {
                let _ = writeln!(out, "{} ({}): retried: {r}", n.name, n.arch);
            }
        }
        let _ = writeln!(
            out,
            "{} built, {} up to date, {} failed, {} skipped{} in {:.1}s",
            self.count(|r| *r == NodeResult::Built),
            self.count(|r| *r == NodeResult::UpToDate),
            self.count(|r| matches!(r, NodeResult::Failed(_))),
            self.count(|r| matches!(r, NodeResult::Skipped(_))),
            match self.count(|r| *r == NodeResult::WouldBuild) {
                0 => String::new(),
                n => format!(", {n} would build"),
            },
            self.duration.as_secs_f64()
        );
        out
    }
}
