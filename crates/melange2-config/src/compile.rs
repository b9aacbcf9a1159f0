//! Compile phase: per architecture and package context, expand `uses:`, resolve inputs,
//! substitute every variable, decide `if:` conditions and gather `needs.packages`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::arch::{Arch, targets_arch};
use crate::cond;
use crate::error::{At, Diagnostic, Error, Problems, Result, Source, suggest};
use crate::limits::{Budget, MAX_REFERENCE_DEPTH, MAX_STEPS};
use crate::model::{self, Configuration, Pipeline};
use crate::parse::{Config, apply_var_transforms};
use crate::pipelines::{LoadedPipeline, LookupError, PipelineRegistry};
use crate::plan::*;
use crate::subst::{self, Mode};

/// What [`compile`] refuses beyond what loading a file refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strictness {
    /// As `melange build`: a file melange loads but refuses to build is refused too. Today
    /// that is a `package.version` that is not an APK version (melange builds fail with
    /// "unable to parse version"). The default, and what the build uses.
    #[default]
    Build,
    /// As melange loading a file (`melange compile`, `melange query`): only what melange
    /// refuses when it loads a file is refused.
    Load,
}

/// Options of one compilation.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Target architecture.
    pub arch: Arch,
    /// `--build-option` names to enable.
    pub build_options: Vec<String>,
    /// libc flavour of `${{host.triplet.*}}` (`gnu` unless told otherwise).
    pub libc: String,
    /// What is refused ([`Strictness::Build`] unless told otherwise).
    pub strictness: Strictness,
}

impl CompileOptions {
    /// Defaults for `arch`: no build option, `gnu` flavour, build strictness.
    pub fn new(arch: Arch) -> Self {
        CompileOptions {
            arch,
            build_options: Vec::new(),
            libc: "gnu".to_string(),
            strictness: Strictness::Build,
        }
    }
}

/// The check melange makes when it starts a build, not when it loads a file:
/// `package.version` must be an APK version (without `-r`).
pub(crate) fn check_version(config: &Config) -> Result<()> {
    let v = &config.configuration.package.version;
    if v.is_empty() || crate::version::is_valid_version(v) {
        return Ok(());
    }
    Err(config.source.error(
        "package.version",
        At::Value,
        format!(
            "invalid version {v:?}: must be an APK version without release (e.g. 1.2.3, 1.2_rc1); use var-transforms for upstream spellings (the file can be compiled and queried, as melange loads it, but not built)"
        ),
    ))
}

const MAX_DEPTH: usize = 64;

/// Compile a parsed build file for one architecture.
pub fn compile(
    config: &Config,
    registry: &PipelineRegistry,
    opts: &CompileOptions,
) -> Result<Plan> {
    let src = &config.source;
    if opts.strictness == Strictness::Build {
        check_version(config)?;
    }

    // Build options: their vars are merged before the parse phase runs (so that every
    // `${{vars.X}}` sees them), their package lists are edited afterwards.
    let mut enabled: Vec<String> = opts.build_options.clone();
    enabled.sort();
    enabled.dedup();
    let mut reparsed: Option<Config> = None;
    if !enabled.is_empty() {
        let mut raw = crate::parse::decode_with_side_inputs(src, &config.parse_options)?;
        let mut add_remove = Vec::new();
        for name in &enabled {
            let Some(bo) = raw.options.get(name).cloned() else {
                let avail: Vec<&str> = raw.options.keys().map(String::as_str).collect();
                let hint = suggest(name, avail.iter().copied());
                return Err(src.error_suggest(
                    "options",
                    At::Key,
                    format!(
                        "build option {name:?} is not defined (defined: {})",
                        if avail.is_empty() {
                            "none".to_string()
                        } else {
                            avail.join(", ")
                        }
                    ),
                    hint,
                ));
            };
            for (k, v) in bo.vars {
                raw.vars.insert(k, v);
            }
            add_remove.push(bo.environment.contents.packages);
        }
        let mut c = crate::parse::finish(raw, src.clone())?;
        c.parse_options = config.parse_options.clone();
        let pk = &mut c.configuration.environment.contents.packages;
        for lo in add_remove {
            pk.extend(lo.add);
            pk.retain(|p| !lo.remove.contains(p));
        }
        reparsed = Some(c);
    }
    let config: &Config = reparsed.as_ref().unwrap_or(config);
    let cfg: &Configuration = &config.configuration;

    let budget = Budget::new();
    let base = base_map(config, cfg, opts, &enabled, &budget)?;
    let no_overrides = HashMap::new();
    let main_vars = Vars::new(&base, &no_overrides);
    let mut env_base = cfg.environment.environment.clone();
    env_base.insert("PATH".to_string(), STEP_PATH.to_string());

    let mut c = Compiler {
        reg: registry,
        budget: &budget,
        steps: 0,
        recipe: src.name.to_string(),
        problems: Problems::default(),
    };

    // Main pipeline.
    let mut build_needs = Vec::new();
    let pipeline = c.compile_list(
        src,
        "pipeline",
        &cfg.pipeline,
        main_vars,
        &env_base,
        &mut build_needs,
    );

    // Subpackages.
    let main_info = match package_info(cfg, src) {
        Ok(i) => i,
        Err(e) => {
            c.problems.push(e);
            return Err(c
                .problems
                .into_result()
                .expect_err("a problem was recorded"));
        }
    };
    let mut subpackages = Vec::new();
    for (i, sp) in cfg.subpackages.iter().enumerate() {
        let spath = config.sub_path(i);
        let mut over = HashMap::with_capacity(4);
        let dir = format!("{WORKSPACE}/melange-out/{}", sp.name);
        over.insert("targets.subpkgdir".into(), dir.clone());
        over.insert("targets.contextdir".into(), dir);
        over.insert("context.name".into(), sp.name.clone());
        over.insert("subpkg.name".into(), sp.name.clone());
        let m = Vars::new(&base, &over);
        let active = if sp.if_.is_empty() {
            true
        } else {
            let r = subst::substitute(&sp.if_, Mode::Quote, &budget, |k| m.get(k))
                .map_err(|n| undefined(src, &format!("{spath}.if"), &n))
                .and_then(|c| {
                    cond::evaluate(&c).map_err(|e| {
                        src.error(
                            &format!("{spath}.if"),
                            At::Value,
                            format!("invalid condition: {e}"),
                        )
                    })
                });
            c.problems.check(r).unwrap_or(false)
        };
        // melange gathers the needs of every subpackage pipeline, even of dropped ones.
        let steps = c.compile_list(
            src,
            &format!("{spath}.pipeline"),
            &sp.pipeline,
            m,
            &env_base,
            &mut build_needs,
        );
        let test = sp
            .test
            .as_ref()
            .map(|t| c.compile_test(src, &format!("{spath}.test"), t, m, &sp.name));
        if !active {
            continue;
        }
        if let Some(package) = c.problems.check(sub_info(&main_info, sp, src, &spath)) {
            subpackages.push(SubpackagePlan {
                package,
                pipeline: steps,
                test,
            });
        }
    }

    let test = cfg
        .test
        .as_ref()
        .map(|t| c.compile_test(src, "test", t, main_vars, &cfg.package.name));
    c.problems.into_result()?;

    let mut packages = cfg.environment.contents.packages.clone();
    packages.extend(build_needs);
    let environment = environment_of(&cfg.environment, packages);

    let p = &cfg.package;
    Ok(Plan {
        file: src.name.to_string(),
        arch: opts.arch.apk().to_string(),
        goarch: opts.arch.go().to_string(),
        enabled: targets_arch(&p.target_architecture, opts.arch),
        build_options: enabled,
        package: main_info,
        environment,
        pipeline,
        subpackages,
        test,
        capabilities: CapabilitySet {
            add: cfg.capabilities.add.clone(),
            drop: cfg.capabilities.drop.clone(),
        },
        timeout_seconds: p.timeout,
        resources: p.resources.clone(),
        test_resources: p.test_resources.clone(),
    })
}

fn undefined(src: &Source, path: &str, name: &str) -> Error {
    src.error(path, At::Value, subst::describe_failure(name))
}

/// The compile-phase substitution map of the main package (B in the spec).
fn base_map(
    config: &Config,
    cfg: &Configuration,
    opts: &CompileOptions,
    enabled: &[String],
    budget: &Budget,
) -> Result<HashMap<String, String>> {
    let src = &config.source;
    let p = &cfg.package;
    let mut m: HashMap<String, String> = HashMap::with_capacity(48 + cfg.vars.len());
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("package.name", p.name.clone());
    put("package.version", p.version.clone());
    put("package.epoch", p.epoch.to_string());
    put("package.description", p.description.clone());
    put(
        "package.full-version",
        format!("{}-r{}", p.version, p.epoch),
    );
    put("package.srcdir", WORKSPACE.to_string());
    put("targets.outdir", format!("{WORKSPACE}/melange-out"));
    put(
        "targets.destdir",
        format!("{WORKSPACE}/melange-out/{}", p.name),
    );
    put(
        "targets.contextdir",
        format!("{WORKSPACE}/melange-out/{}", p.name),
    );
    put("context.name", p.name.clone());
    let a = opts.arch;
    put("build.arch", a.apk().to_string());
    put("build.goarch", a.go().to_string());
    put("host.triplet.gnu", a.gnu_triplet(&opts.libc));
    put("host.triplet.rust", a.rust_triplet(&opts.libc));
    put("cross.triplet.gnu.glibc", a.gnu_triplet("gnu"));
    put("cross.triplet.gnu.musl", a.gnu_triplet("musl"));
    put("cross.triplet.rust.glibc", a.rust_triplet("gnu"));
    put("cross.triplet.rust.musl", a.rust_triplet("musl"));
    for name in std::iter::once(&p.name).chain(cfg.subpackages.iter().map(|s| &s.name)) {
        m.insert(
            format!("targets.package.{name}"),
            format!("{WORKSPACE}/melange-out/{name}"),
        );
    }
    for k in cfg.options.keys() {
        m.insert(format!("options.{k}.enabled"), "false".to_string());
    }
    for k in enabled {
        m.insert(format!("options.{k}.enabled"), "true".to_string());
    }
    // vars: each value substituted against the map (other vars resolved recursively).
    let raw: HashMap<String, &str> = cfg
        .vars
        .iter()
        .map(|(k, v)| (format!("vars.{k}"), v.as_str()))
        .collect();
    let mut resolved: HashMap<String, String> = HashMap::new();
    for k in cfg.vars.keys() {
        let key = format!("vars.{k}");
        resolve_var(&key, &raw, &m, budget, &mut resolved, &mut Vec::new())
            .map_err(|name| undefined(src, &key, &name))?;
    }
    m.extend(resolved);
    apply_var_transforms(cfg, &mut m, Mode::Strict, budget)
        .map_err(|(i, msg)| src.error(&format!("var-transforms[{i}].from"), At::Value, msg))?;
    Ok(m)
}

fn resolve_var(
    key: &str,
    raw: &HashMap<String, &str>,
    fixed: &HashMap<String, String>,
    budget: &Budget,
    done: &mut HashMap<String, String>,
    stack: &mut Vec<String>,
) -> std::result::Result<String, String> {
    if let Some(v) = done.get(key) {
        return Ok(v.clone());
    }
    let Some(text) = raw.get(key) else {
        return fixed.get(key).cloned().ok_or_else(|| key.to_string());
    };
    if stack.iter().any(|s| s == key) {
        return Err(format!("{key} (circular reference)"));
    }
    if stack.len() >= MAX_REFERENCE_DEPTH {
        return Err(subst::failure_message(&reference_depth(key)));
    }
    stack.push(key.to_string());
    let mut err = None;
    let mut out = String::new();
    if subst::has_refs(text) {
        // Resolve referenced vars first, then substitute.
        for r in subst::refs(text) {
            if raw.contains_key(r)
                && !done.contains_key(r)
                && let Err(e) = resolve_var(r, raw, fixed, budget, done, stack)
            {
                err = Some(e);
                break;
            }
        }
        if err.is_none() {
            match subst::substitute(text, Mode::Strict, budget, |k| {
                done.get(k).or_else(|| fixed.get(k)).map(String::as_str)
            }) {
                Ok(s) => out = s,
                Err(e) => err = Some(e),
            }
        }
    } else {
        out = (*text).to_string();
    }
    stack.pop();
    if let Some(e) = err {
        return Err(e);
    }
    done.insert(key.to_string(), out.clone());
    Ok(out)
}

/// The message for a chain of references deeper than [`MAX_REFERENCE_DEPTH`] at `key`.
fn reference_depth(key: &str) -> String {
    format!("{key}: more than {MAX_REFERENCE_DEPTH} variables referring to each other in a chain")
}

fn environment_of(img: &model::ImageConfiguration, mut packages: Vec<String>) -> Environment {
    packages.retain(|p| !p.is_empty());
    packages.sort();
    packages.dedup();
    Environment {
        packages,
        repositories: img.contents.repositories.clone(),
        build_repositories: img.contents.build_repositories.clone(),
        keyring: img.contents.keyring.clone(),
        env: img.environment.clone(),
        accounts: Accounts {
            run_as: img.accounts.run_as.clone(),
            users: img.accounts.users.clone(),
            groups: img.accounts.groups.clone(),
        },
    }
}

fn parse_priority(src: &Source, path: &str, v: &str) -> Result<Option<i64>> {
    if v.is_empty() {
        return Ok(None);
    }
    v.trim()
        .parse::<i64>()
        .map(Some)
        .map_err(|_| src.error(path, At::Value, format!("{v:?} is not an integer")))
}

fn deps_of(src: &Source, base: &str, d: &model::Dependencies) -> Result<Dependencies> {
    Ok(Dependencies {
        runtime: d.runtime.clone(),
        provides: d.provides.clone(),
        replaces: d.replaces.clone(),
        provider_priority: parse_priority(
            src,
            &format!("{base}.provider-priority"),
            &d.provider_priority,
        )?,
        replaces_priority: parse_priority(
            src,
            &format!("{base}.replaces-priority"),
            &d.replaces_priority,
        )?,
    })
}

fn cpe_string(p: &model::Package) -> Option<String> {
    let c = p.cpe.as_ref()?;
    if c.vendor.is_empty() || c.product.is_empty() {
        return None;
    }
    let f = |s: &str| {
        if s.is_empty() {
            "*".to_string()
        } else {
            s.to_string()
        }
    };
    Some(format!(
        "cpe:2.3:{}:{}:{}:{}:*:{}:{}:{}:{}:{}:{}",
        if c.part.is_empty() { "a" } else { &c.part },
        c.vendor,
        c.product,
        p.version,
        f(&c.edition),
        f(&c.language),
        f(&c.sw_edition),
        f(&c.target_sw),
        f(&c.target_hw),
        f(&c.other)
    ))
}

fn package_info(cfg: &Configuration, src: &Source) -> Result<PackageInfo> {
    let p = &cfg.package;
    Ok(PackageInfo {
        name: p.name.clone(),
        version: p.version.clone(),
        epoch: p.epoch,
        full_version: format!("{}-r{}", p.version, p.epoch),
        origin: p.name.clone(),
        description: p.description.clone(),
        url: p.url.clone(),
        commit: p.commit.clone(),
        copyright: p.copyright.clone(),
        license: p
            .copyright
            .iter()
            .map(|c| c.license.as_str())
            .collect::<Vec<_>>()
            .join(" AND "),
        dependencies: deps_of(src, "package.dependencies", &p.dependencies)?,
        options: p.options.clone().unwrap_or_default(),
        scriptlets: p.scriptlets.clone(),
        checks: p.checks.clone(),
        cpe: cpe_string(p),
        setcap: p.setcap.clone(),
        annotations: p.annotations.clone(),
        target_architecture: p.target_architecture.clone(),
    })
}

fn sub_info(
    main: &PackageInfo,
    sp: &model::Subpackage,
    src: &Source,
    spath: &str,
) -> Result<PackageInfo> {
    Ok(PackageInfo {
        name: sp.name.clone(),
        version: main.version.clone(),
        epoch: main.epoch,
        full_version: main.full_version.clone(),
        origin: main.name.clone(),
        description: sp.description.clone(),
        url: sp.url.clone(),
        commit: if sp.commit.is_empty() {
            main.commit.clone()
        } else {
            sp.commit.clone()
        },
        copyright: main.copyright.clone(),
        license: main.license.clone(),
        dependencies: deps_of(src, &format!("{spath}.dependencies"), &sp.dependencies)?,
        options: sp.options.clone().unwrap_or_default(),
        scriptlets: sp.scriptlets.clone(),
        checks: sp.checks.clone(),
        cpe: None,
        setcap: sp.setcap.clone(),
        annotations: sp.annotations.clone(),
        target_architecture: Vec::new(),
    })
}

/// The compile-phase map of one package context: the map of the main package and the
/// few names a subpackage sets differently. Looked up in layers rather than copied, so a
/// file with many subpackages costs time in proportion to their number.
#[derive(Clone, Copy)]
struct Vars<'a> {
    base: &'a HashMap<String, String>,
    over: &'a HashMap<String, String>,
}

impl<'a> Vars<'a> {
    fn new(base: &'a HashMap<String, String>, over: &'a HashMap<String, String>) -> Self {
        Vars { base, over }
    }

    fn get(&self, k: &str) -> Option<&'a str> {
        self.over
            .get(k)
            .or_else(|| self.base.get(k))
            .map(String::as_str)
    }
}

/// Where a field of a step comes from, for error positions.
#[derive(Clone, Copy)]
struct FieldAt<'a> {
    src: &'a Source,
    base: &'a str,
}

impl FieldAt<'_> {
    fn path(&self, field: &str) -> String {
        if self.base.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.base)
        }
    }
}

struct Compiler<'r> {
    reg: &'r PipelineRegistry,
    /// What substitution may still produce (docs/config.md, "Limits").
    budget: &'r Budget,
    /// Steps compiled so far, at most [`MAX_STEPS`].
    steps: usize,
    /// Name of the build file being compiled.
    recipe: String,
    /// Every problem found so far (compilation goes on with the next step).
    problems: Problems,
}

/// Inputs visible in a scope: `inputs.NAME` → value.
type Inputs = HashMap<String, String>;

fn hex_ok(v: &str, len: usize) -> bool {
    v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit())
}

fn workdir_abs(wd: &str) -> String {
    let joined = if wd.starts_with('/') {
        wd.to_string()
    } else {
        format!("{WORKSPACE}/{wd}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn collect_needs(steps: &[Step], out: &mut Vec<String>) {
    for s in steps {
        out.extend(s.needs.iter().cloned());
        collect_needs(&s.pipeline, out);
    }
}

impl Compiler<'_> {
    /// Compile a list of steps; a step that fails is recorded in `problems` and left out.
    fn compile_list(
        &mut self,
        src: &Source,
        base: &str,
        steps: &[Pipeline],
        map: Vars<'_>,
        env: &BTreeMap<String, String>,
        needs: &mut Vec<String>,
    ) -> Vec<Step> {
        let inputs = Inputs::new();
        let mut out = Vec::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            if self.budget.exhausted() {
                // Reported once, at the step that spent it.
                break;
            }
            let path = format!("{base}[{i}]");
            let r = self.compile_step(src, &path, s, map, &inputs, "", env, 0);
            if let Some(Some(step)) = self.problems.check(r) {
                out.push(step);
            }
        }
        collect_needs(&out, needs);
        out
    }

    fn compile_test(
        &mut self,
        src: &Source,
        base: &str,
        t: &model::Test,
        map: Vars<'_>,
        under_test: &str,
    ) -> TestPlan {
        let mut env = t.environment.environment.clone();
        env.insert("PATH".to_string(), STEP_PATH.to_string());
        let mut needs = Vec::new();
        let pipeline = self.compile_list(
            src,
            &format!("{base}.pipeline"),
            &t.pipeline,
            map,
            &env,
            &mut needs,
        );
        let mut packages = t.environment.contents.packages.clone();
        packages.extend(needs);
        packages.push(under_test.to_string());
        TestPlan {
            environment: environment_of(&t.environment, packages),
            pipeline,
        }
    }

    /// Compile one step. A problem inside a pipeline file that a step of the build file
    /// uses is reported at that step, with the pipeline file's own diagnostic as its cause.
    #[allow(clippy::too_many_arguments)]
    fn compile_step(
        &mut self,
        src: &Source,
        path: &str,
        step: &Pipeline,
        map: Vars<'_>,
        parent_inputs: &Inputs,
        parent_workdir: &str,
        parent_env: &BTreeMap<String, String>,
        depth: usize,
    ) -> Result<Option<Step>> {
        let r = self.compile_step_inner(
            src,
            path,
            step,
            map,
            parent_inputs,
            parent_workdir,
            parent_env,
            depth,
        );
        let uses_file = !step.uses.is_empty() && step.pipeline.is_empty();
        match r {
            Err(e) if uses_file && *src.name == *self.recipe => Err(used_by(src, path, step, e)),
            r => r,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn compile_step_inner(
        &mut self,
        src: &Source,
        path: &str,
        step: &Pipeline,
        map: Vars<'_>,
        parent_inputs: &Inputs,
        parent_workdir: &str,
        parent_env: &BTreeMap<String, String>,
        depth: usize,
    ) -> Result<Option<Step>> {
        if depth > MAX_DEPTH {
            return Err(src.error(
                path,
                At::Value,
                "pipelines nested too deeply (a `uses:` cycle?)",
            ));
        }
        let here = FieldAt { src, base: path };
        let budget = self.budget;
        self.count_step(src, path)?;
        // Expand `uses:` (a step that already has `pipeline:` counts as expanded).
        let loaded: Option<Arc<LoadedPipeline>> =
            if !step.uses.is_empty() && step.pipeline.is_empty() {
                Some(self.load(src, path, &step.uses)?)
            } else {
                None
            };
        let def = loaded.as_ref().map(|l| &l.def);
        let file_at = loaded.as_ref().map(|l| FieldAt {
            src: &l.source,
            base: "",
        });
        // Field f comes from the pipeline file when the file sets it, else from the step.
        macro_rules! pick {
            ($field:ident, $empty:expr) => {
                match def {
                    Some(d) if !$empty(&d.$field) => (&d.$field, file_at.unwrap_or(here)),
                    _ => (&step.$field, here),
                }
            };
        }
        let (runs, runs_at) = pick!(runs, String::is_empty);
        let (if_, if_at) = pick!(if_, String::is_empty);
        let (wd, wd_at) = pick!(working_directory, String::is_empty);
        let (children, children_at) = pick!(pipeline, Vec::is_empty);
        let (needs, needs_at) = pick!(needs, Option::is_none);
        let (label, _) = pick!(label, String::is_empty);
        let (assertions, _) = pick!(assertions, Option::is_none);
        let (retry, _) = pick!(retry, Option::is_none);

        // Inputs.
        let mut own: BTreeMap<String, String> = BTreeMap::new();
        let scope: Cow<'_, Inputs> = match (&loaded, def) {
            (Some(l), Some(d)) => {
                for k in step.with.keys() {
                    if !d.inputs.contains_key(k) {
                        return Err(src.error_suggest(
                            &here.path(&format!("with.{k}")),
                            At::Key,
                            format!(
                                "undefined input {k:?} to pipeline {:?} (declared: {})",
                                step.uses,
                                if d.inputs.is_empty() {
                                    "none".to_string()
                                } else {
                                    d.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
                                }
                            ),
                            suggest(k, d.inputs.keys().map(String::as_str)),
                        ));
                    }
                }
                let mut raw: BTreeMap<&str, (&str, FieldAt<'_>, String)> = BTreeMap::new();
                for (k, inp) in &d.inputs {
                    let given = step.with.get(k).map(String::as_str).unwrap_or("");
                    let (v, at, p) = if given.is_empty() {
                        (
                            inp.default.as_str(),
                            FieldAt {
                                src: &l.source,
                                base: "",
                            },
                            format!("inputs.{k}.default"),
                        )
                    } else {
                        (given, here, format!("with.{k}"))
                    };
                    if inp.required && v.is_empty() {
                        return Err(src.error(
                            &here.path("uses"),
                            At::Value,
                            format!(
                                "required input {k:?} for pipeline {:?} is missing",
                                step.uses
                            ),
                        ));
                    }
                    raw.insert(k.as_str(), (v, at, p));
                }
                let resolved = resolve_inputs(&raw, parent_inputs, map, budget)?;
                let mut scope = parent_inputs.clone();
                for (k, v) in resolved {
                    let (_, at, p) = &raw[k.as_str()];
                    check_input(k.as_str(), &v, at, p)?;
                    scope.insert(format!("inputs.{k}"), v.clone());
                    own.insert(k, v);
                }
                Cow::Owned(scope)
            }
            _ => Cow::Borrowed(parent_inputs),
        };
        let look = |k: &str| -> Option<&str> {
            if k.starts_with("inputs.") {
                scope.get(k).map(String::as_str)
            } else {
                map.get(k)
            }
        };
        let sub = |text: &str, at: FieldAt<'_>, field: &str, mode: Mode| -> Result<String> {
            subst::substitute(text, mode, budget, look)
                .map_err(|n| undefined(at.src, &at.path(field), &n))
        };

        let mut step_needs = Vec::new();
        if let Some(n) = needs {
            for (i, p) in n.packages.iter().enumerate() {
                let v = sub(p, needs_at, &format!("needs.packages[{i}]"), Mode::Strict)?;
                if !v.trim().is_empty() {
                    step_needs.push(v);
                }
            }
        }
        let wd_sub = if wd.is_empty() {
            parent_workdir.to_string()
        } else {
            sub(wd, wd_at, "working-directory", Mode::Strict)?
        };
        let runs_sub = sub(runs, runs_at, "runs", Mode::Strict)?;
        let active = if if_.is_empty() {
            true
        } else {
            let c = sub(if_, if_at, "if", Mode::Quote)?;
            cond::evaluate(&c).map_err(|e| {
                if_at.src.error(
                    &if_at.path("if"),
                    At::Value,
                    format!("invalid condition: {e}"),
                )
            })?
        };

        let mut env = parent_env.clone();
        for (k, v) in &step.environment {
            env.insert(k.clone(), v.clone());
        }
        if let Some(d) = def {
            for (k, v) in &d.environment {
                env.insert(k.clone(), v.clone());
            }
        }
        let copied: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + own.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if !budget.spend(copied) {
            return Err(here.src.error(
                path,
                At::Value,
                crate::limits::total_exceeded("the environment and inputs of every step"),
            ));
        }

        let mut kids = Vec::with_capacity(children.len());
        for (i, c) in children.iter().enumerate() {
            let cpath = children_at.path(&format!("pipeline[{i}]"));
            if let Some(k) = self.compile_step(
                children_at.src,
                &cpath,
                c,
                map,
                &scope,
                &wd_sub,
                &env,
                depth + 1,
            )? {
                kids.push(k);
            }
        }
        if !active {
            return Ok(None);
        }
        let required = assertions
            .as_ref()
            .map(|a| a.required_steps)
            .filter(|n| *n > 0);
        if let Some(want) = required
            && kids.len() != want as usize
        {
            return Err(src.error(
                &here.path("assertions.required-steps"),
                At::Value,
                format!(
                    "pipeline would not run the required {want} steps, only {}",
                    kids.len()
                ),
            ));
        }
        Ok(Some(Step {
            name: (!step.name.is_empty()).then(|| step.name.clone()),
            uses: loaded
                .as_ref()
                .map(|l| l.name.clone())
                .or_else(|| (!step.uses.is_empty()).then(|| step.uses.clone())),
            uses_origin: loaded.as_ref().map(|l| l.origin.clone()),
            with: own,
            label: (!label.is_empty()).then(|| label.clone()),
            runs: (!runs_sub.is_empty()).then_some(runs_sub),
            workdir: workdir_abs(&wd_sub),
            env,
            needs: step_needs,
            required_steps: required,
            retry: retry.clone(),
            pipeline: kids,
        }))
    }

    /// Count one more step of the plan; an error at `path` past [`MAX_STEPS`].
    fn count_step(&mut self, src: &Source, path: &str) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(src.error(
                path,
                At::Value,
                format!(
                    "the plan has more than {MAX_STEPS} steps (after expanding `uses:`); do pipelines use each other many times over?"
                ),
            ));
        }
        Ok(())
    }

    fn load(&self, src: &Source, path: &str, name: &str) -> Result<Arc<LoadedPipeline>> {
        match self.reg.get(name) {
            Ok(l) => Ok(l),
            Err(LookupError::BadName) => Err(src.error(
                &format!("{path}.uses"),
                At::Value,
                format!(
                    "invalid pipeline name {name:?}: must be relative and must not contain \"..\""
                ),
            )),
            Err(LookupError::NotFound) => {
                let names = self.reg.names();
                let dirs: Vec<String> = self
                    .reg
                    .dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                Err(src.error_suggest(
                    &format!("{path}.uses"),
                    At::Value,
                    format!(
                        "pipeline {name:?} not found (searched: {}built-in pipelines)",
                        dirs.iter().map(|d| format!("{d}, ")).collect::<String>()
                    ),
                    suggest(name, names.iter().map(String::as_str)),
                ))
            }
            Err(LookupError::Invalid(e)) => Err(e),
        }
    }
}

/// An error met while expanding `uses:` of the build file's step at `path`: every
/// diagnostic that points into another file (the pipeline file, or one it uses) is
/// reported at the step, with the pipeline file's diagnostic as its cause; so is an
/// unreadable pipeline file.
fn used_by(src: &Source, path: &str, step: &Pipeline, e: Error) -> Error {
    let at_step = |cause: Option<Box<Diagnostic>>, extra: &str| -> Diagnostic {
        let msg = format!("uses: {}{extra}", step.uses);
        match src.error(&format!("{path}.uses"), At::Value, msg) {
            Error::Config(d) => Diagnostic {
                path: path.to_string(),
                cause,
                ..*d
            },
            _ => unreachable!("Source::error gives a diagnostic"),
        }
    };
    match e {
        Error::Io { path: p, source } => Error::Config(Box::new(at_step(
            None,
            &format!(": {}: {source}", p.display()),
        ))),
        Error::Config(_) | Error::Multiple(_) => Error::from_diagnostics(
            e.diagnostics()
                .iter()
                .map(|d| {
                    if d.file == *src.name {
                        d.clone()
                    } else {
                        at_step(Some(Box::new(d.clone())), "")
                    }
                })
                .collect(),
        ),
        other => other,
    }
}

/// Resolve the declared inputs of one `uses:` step. A value may reference the parent's
/// inputs, the package map, and other inputs of the same step; `${{inputs.X}}` inside
/// the value of X itself refers to the parent's X (forwarding).
fn resolve_inputs(
    raw: &BTreeMap<&str, (&str, FieldAt<'_>, String)>,
    parent: &Inputs,
    map: Vars<'_>,
    budget: &Budget,
) -> Result<BTreeMap<String, String>> {
    fn go(
        k: &str,
        raw: &BTreeMap<&str, (&str, FieldAt<'_>, String)>,
        parent: &Inputs,
        map: Vars<'_>,
        budget: &Budget,
        done: &mut BTreeMap<String, String>,
        stack: &mut Vec<String>,
    ) -> Result<String> {
        if let Some(v) = done.get(k) {
            return Ok(v.clone());
        }
        let (text, at, p) = &raw[k];
        if !subst::has_refs(text) {
            done.insert(k.to_string(), (*text).to_string());
            return Ok((*text).to_string());
        }
        if stack.len() >= MAX_REFERENCE_DEPTH {
            let message = reference_depth(&format!("inputs.{k}"));
            return Err(at.src.error(&at.path(p), At::Value, message));
        }
        stack.push(k.to_string());
        for r in subst::refs(text) {
            if let Some(name) = r.strip_prefix("inputs.")
                && name != k
                && raw.contains_key(name)
                && !done.contains_key(name)
                && !stack.iter().any(|s| s == name)
            {
                go(name, raw, parent, map, budget, done, stack)?;
            }
        }
        stack.pop();
        let self_key = format!("inputs.{k}");
        let v = subst::substitute(text, Mode::Strict, budget, |r| {
            if r == self_key {
                return parent.get(r).map(String::as_str);
            }
            if let Some(name) = r.strip_prefix("inputs.") {
                if let Some(v) = done.get(name) {
                    return Some(v.as_str());
                }
                return parent.get(r).map(String::as_str);
            }
            map.get(r)
        })
        .map_err(|n| undefined(at.src, &at.path(p), &n))?;
        done.insert(k.to_string(), v.clone());
        Ok(v)
    }
    let mut done = BTreeMap::new();
    for k in raw.keys() {
        go(k, raw, parent, map, budget, &mut done, &mut Vec::new())?;
    }
    Ok(done)
}

fn check_input(k: &str, v: &str, at: &FieldAt<'_>, p: &str) -> Result<()> {
    let want = match k {
        "expected-sha256" => 64,
        "expected-sha512" => 128,
        "expected-commit" => 40,
        _ => return Ok(()),
    };
    if v.is_empty() || hex_ok(v, want) {
        return Ok(());
    }
    let why = if v.len() == want {
        "contains non-hexadecimal characters".to_string()
    } else {
        format!("has {} characters", v.len())
    };
    Err(at.src.error(
        &at.path(p),
        At::Value,
        format!("{k} must be {want} hexadecimal characters; {v:?} {why}"),
    ))
}
