//! Compiling the discovered recipes into per-architecture build nodes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use melange2_config::{
    Arch, CompileOptions, ParseOptions, PipelineRegistry, Plan, compile, load_file,
    plan::PackageInfo,
};
use melange2_resolve::Provide;
use serde::Serialize;

use crate::{Discovery, NodeId, RecipeFile, display_path};

/// How to compile the recipes.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// APK (or Go) architecture names, e.g. `["x86_64"]`. Empty: the host's architecture.
    pub archs: Vec<String>,
    /// `--pipeline-dir` directories. When empty, each recipe uses its
    /// [`RecipeFile::pipeline_dir`] (if any).
    pub pipeline_dirs: Vec<PathBuf>,
    /// `--build-option` names.
    pub build_options: Vec<String>,
    /// `--vars-file`.
    pub vars_file: Option<PathBuf>,
    /// `--env-file` files.
    pub env_files: Vec<PathBuf>,
    /// `--package-append`: extra needs of every node.
    pub package_append: Vec<String>,
}

/// What kind of name a recipe provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvidedKind {
    /// The main package.
    Package,
    /// A subpackage (ranges already expanded).
    Subpackage,
    /// A declared `dependencies.provides` entry.
    Provide,
}

impl ProvidedKind {
    /// Lower-case name (`package`, `subpackage`, `provide`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProvidedKind::Package => "package",
            ProvidedKind::Subpackage => "subpackage",
            ProvidedKind::Provide => "provide",
        }
    }

    /// A package or subpackage name (not a declared provide).
    pub fn is_package(self) -> bool {
        self != ProvidedKind::Provide
    }
}

/// A name a node makes available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provided {
    /// Package, subpackage or provided name.
    pub name: String,
    /// `<version>-r<epoch>` for packages, the declared version for `name=version`
    /// provides, `None` for a virtual provide.
    pub version: Option<String>,
    /// Which package of the recipe provides it.
    pub package: String,
    /// What kind of name it is.
    pub kind: ProvidedKind,
}

/// One recipe compiled for one architecture.
#[derive(Debug, Clone)]
pub struct Node {
    /// Index in [`crate::Graph::nodes`].
    pub id: NodeId,
    /// `package.name` of the recipe.
    pub name: String,
    /// APK architecture name.
    pub arch: String,
    /// The build file.
    pub recipe: RecipeFile,
    /// `recipe.root/<name>` when that directory exists.
    pub source_dir: Option<PathBuf>,
    /// The pipeline directories the plan was compiled with.
    pub pipeline_dirs: Vec<PathBuf>,
    /// The compiled plan.
    pub plan: Plan,
    /// Main package, every subpackage, every declared provide of each.
    pub provides: Vec<Provided>,
    /// The build environment's packages (pipeline needs included) plus
    /// `--package-append`, de-duplicated, order kept.
    pub needs: Vec<String>,
}

impl Node {
    /// `name (arch)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.arch)
    }
}

/// A recipe that could not be turned into a node.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// The build file.
    pub recipe: RecipeFile,
    /// The architecture, when the failure is specific to one.
    pub arch: Option<String>,
    /// What went wrong (names the file).
    pub error: String,
}

/// The result of [`load`].
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Nodes in recipe order, then architecture order; `id` is the index.
    pub nodes: Vec<Node>,
    /// Recipes (or recipe/architecture pairs) that failed.
    pub failures: Vec<LoadFailure>,
    /// (recipe, package name, architecture) excluded by `package.target-architecture`.
    pub disabled: Vec<(RecipeFile, String, String)>,
}

/// Result of compiling one recipe: a load error, or one result per architecture.
type RecipeResult = Result<Vec<Result<Plan, String>>, String>;

fn with_file(recipe: &RecipeFile, msg: String) -> String {
    let f = display_path(&recipe.path);
    if msg.contains(&f) {
        msg
    } else {
        format!("{f}: {msg}")
    }
}

fn compile_recipe(
    recipe: &RecipeFile,
    archs: &[Arch],
    reg: &PipelineRegistry,
    popts: &ParseOptions,
    build_options: &[String],
) -> RecipeResult {
    let cfg = load_file(&recipe.path, popts).map_err(|e| with_file(recipe, e.to_string()))?;
    Ok(archs
        .iter()
        .map(|&a| {
            let mut co = CompileOptions::new(a);
            co.build_options = build_options.to_vec();
            compile(&cfg, reg, &co).map_err(|e| with_file(recipe, e.to_string()))
        })
        .collect())
}

fn provides_of(plan: &Plan, recipe: &RecipeFile) -> Vec<Provided> {
    let mut out = Vec::new();
    let mut add = |info: &PackageInfo, kind: ProvidedKind| {
        out.push(Provided {
            name: info.name.clone(),
            version: Some(info.full_version.clone()),
            package: info.name.clone(),
            kind,
        });
        for p in &info.dependencies.provides {
            match Provide::parse(p, &info.name) {
                Ok(pr) => out.push(Provided {
                    name: pr.name,
                    version: pr.version,
                    package: info.name.clone(),
                    kind: ProvidedKind::Provide,
                }),
                Err(e) => tracing::warn!(
                    "{}: ignoring provide {p:?} of {}: {e}",
                    display_path(&recipe.path),
                    info.name
                ),
            }
        }
    };
    add(&plan.package, ProvidedKind::Package);
    for sp in &plan.subpackages {
        add(&sp.package, ProvidedKind::Subpackage);
    }
    out
}

fn needs_of(plan: &Plan, append: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    plan.environment
        .packages
        .iter()
        .chain(append)
        .filter(|n| !n.trim().is_empty() && seen.insert(n.as_str()))
        .cloned()
        .collect()
}

fn parse_archs(names: &[String]) -> (Vec<Arch>, Vec<(String, String)>) {
    let mut archs = Vec::new();
    let mut bad = Vec::new();
    let host;
    let names: &[String] = if names.is_empty() {
        host = [std::env::consts::ARCH.to_string()];
        &host
    } else {
        names
    };
    for n in names {
        match Arch::parse(n) {
            Ok(a) => {
                if !archs.contains(&a) {
                    archs.push(a);
                }
            }
            Err(e) => bad.push((n.clone(), e.to_string())),
        }
    }
    (archs, bad)
}

/// Compile every discovered recipe for every architecture. See the crate docs.
pub fn load(discovery: &Discovery, opts: &LoadOptions) -> Loaded {
    let (archs, bad_archs) = parse_archs(&opts.archs);
    let recipes = &discovery.recipes;
    let popts = ParseOptions {
        vars_file: opts.vars_file.clone(),
        env_files: opts.env_files.clone(),
    };

    // One pipeline registry per distinct directory list, shared by the workers (it caches
    // the decoded pipelines).
    let dirs_of = |r: &RecipeFile| -> Vec<PathBuf> {
        if opts.pipeline_dirs.is_empty() {
            r.pipeline_dir.iter().cloned().collect()
        } else {
            opts.pipeline_dirs.clone()
        }
    };
    let mut registries: HashMap<Vec<PathBuf>, Arc<PipelineRegistry>> = HashMap::new();
    let regs: Vec<Arc<PipelineRegistry>> = recipes
        .iter()
        .map(|r| {
            let d = dirs_of(r);
            registries
                .entry(d.clone())
                .or_insert_with(|| Arc::new(PipelineRegistry::new(d)))
                .clone()
        })
        .collect();

    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(recipes.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<RecipeResult>> = vec![None; recipes.len()];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= recipes.len() {
                            break;
                        }
                        let r = compile_recipe(
                            &recipes[i],
                            &archs,
                            &regs[i],
                            &popts,
                            &opts.build_options,
                        );
                        done.push((i, r));
                    }
                    done
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(done) => {
                    for (i, r) in done {
                        results[i] = Some(r);
                    }
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
    });

    let mut out = Loaded::default();
    // Candidate nodes, in recipe order then architecture order.
    let mut candidates: Vec<(usize, Node)> = Vec::new();
    for (i, (recipe, res)) in recipes.iter().zip(results).enumerate() {
        for (a, e) in &bad_archs {
            out.failures.push(LoadFailure {
                recipe: recipe.clone(),
                arch: Some(a.clone()),
                error: with_file(recipe, e.clone()),
            });
        }
        let plans = match res {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                out.failures.push(LoadFailure {
                    recipe: recipe.clone(),
                    arch: None,
                    error: e,
                });
                continue;
            }
            None => continue,
        };
        for (arch, plan) in archs.iter().zip(plans) {
            let plan = match plan {
                Ok(p) => p,
                Err(e) => {
                    out.failures.push(LoadFailure {
                        recipe: recipe.clone(),
                        arch: Some(arch.apk().to_string()),
                        error: e,
                    });
                    continue;
                }
            };
            let name = plan.package.name.clone();
            if !plan.enabled {
                out.disabled
                    .push((recipe.clone(), name, arch.apk().to_string()));
                continue;
            }
            let sd = recipe.root.join(&name);
            let node = Node {
                id: NodeId(0),
                arch: arch.apk().to_string(),
                recipe: recipe.clone(),
                source_dir: sd.is_dir().then_some(sd),
                pipeline_dirs: regs[i].dirs().to_vec(),
                provides: provides_of(&plan, recipe),
                needs: needs_of(&plan, &opts.package_append),
                name,
                plan,
            };
            candidates.push((i, node));
        }
    }

    // Package-name collisions within one architecture: the later file (by file name) fails.
    let mut by_file: Vec<usize> = (0..candidates.len()).collect();
    by_file.sort_by(|&x, &y| {
        let (a, b) = (&candidates[x].1.recipe, &candidates[y].1.recipe);
        (a.file_name(), &a.path, x).cmp(&(b.file_name(), &b.path, y))
    });
    let mut owner: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut rejected = vec![false; candidates.len()];
    for &c in &by_file {
        let node = &candidates[c].1;
        let names: Vec<&str> = node.plan.package_names();
        let clash = names.iter().find_map(|n| {
            owner
                .get(&(node.arch.clone(), (*n).to_string()))
                .map(|&o| (*n, o))
        });
        if let Some((n, o)) = clash {
            let other = &candidates[o].1;
            rejected[c] = true;
            out.failures.push(LoadFailure {
                recipe: node.recipe.clone(),
                arch: Some(node.arch.clone()),
                error: format!(
                    "{}: package {n:?} ({}) is also built by {}",
                    display_path(&node.recipe.path),
                    node.arch,
                    display_path(&other.recipe.path)
                ),
            });
            continue;
        }
        for n in names {
            owner.insert((node.arch.clone(), n.to_string()), c);
        }
    }
    for (c, (_, mut node)) in candidates.into_iter().enumerate() {
        if !rejected[c] {
            node.id = NodeId(out.nodes.len());
            out.nodes.push(node);
        }
    }
    // Failures in recipe order, then architecture.
    let pos: HashMap<&PathBuf, usize> = recipes
        .iter()
        .enumerate()
        .map(|(i, r)| (&r.path, i))
        .collect();
    out.failures
        .sort_by_key(|f| pos.get(&f.recipe.path).copied());
    out
}
