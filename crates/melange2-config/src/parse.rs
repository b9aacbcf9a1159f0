//! Parse phase: strict decoding, side inputs (vars file, env files), melange's first
//! substitution pass, `data`/`range` expansion, the strict dependency pass, validation
//! and injected defaults. Architecture independent.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

use crate::decode::{self, UnknownKeys};
use crate::error::{At, Error, Problems, Result, Source, suggest};
use crate::limits::{Budget, MAX_SUBPACKAGES, MAX_VALUE_BYTES, MAX_VAR_TRANSFORMS};
use crate::model::*;
use crate::subst;

/// Side inputs of the parse phase.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// `--vars-file`: a YAML map merged over `vars`.
    pub vars_file: Option<PathBuf>,
    /// `--env-file`: dotenv files; `environment.environment` values override them.
    pub env_files: Vec<PathBuf>,
}

/// A parsed build file: the configuration after the parse phase, plus what is needed to
/// report errors against the original text.
#[derive(Debug, Clone)]
pub struct Config {
    /// The configuration (parse-phase substitutions applied, ranges expanded, defaults injected).
    pub configuration: Configuration,
    pub(crate) source: Source,
    /// For every (expanded) subpackage, its index in the file's `subpackages` list.
    pub(crate) sub_origin: Vec<usize>,
    /// Side inputs used, to re-run the parse phase when build options change `vars`.
    pub(crate) parse_options: ParseOptions,
}

impl Config {
    /// The file name this configuration was read from.
    pub fn file_name(&self) -> &str {
        &self.source.name
    }

    /// Field path of subpackage `i` (after expansion) in the original file.
    pub(crate) fn sub_path(&self, i: usize) -> String {
        format!(
            "subpackages[{}]",
            self.sub_origin.get(i).copied().unwrap_or(i)
        )
    }
}

/// Read and parse a build file (a regular file of at most
/// [`MAX_FILE_BYTES`](crate::limits::MAX_FILE_BYTES)).
pub fn load_file(path: &Path, opts: &ParseOptions) -> Result<Config> {
    let text = read_text(path)?;
    parse_str(&path.display().to_string(), &text, opts)
}

/// Decode the text strictly, without any substitution: every problem of the file is
/// reported, not only the first.
pub(crate) fn decode(source: &Source) -> Result<Configuration> {
    let d = decode::decode::<Configuration>(source, UnknownKeys::Error)?;
    if d.errors.is_empty() {
        Ok(d.value)
    } else {
        Err(Error::from_diagnostics(d.errors))
    }
}

/// Parse a build file given as text. `name` is used in error messages.
///
/// Every problem the file has is reported at once (unknown keys, wrong types, invalid
/// values, undefined ranges and variables, …): decoding goes on after an error without the
/// offending node, and the checks that follow skip what could not be decoded.
pub fn parse_str(name: &str, text: &str, opts: &ParseOptions) -> Result<Config> {
    let source = Source::new(name, text);
    let decode::Decoded {
        value,
        errors,
        pruned,
        ..
    } = decode::decode::<Configuration>(&source, UnknownKeys::Error)?;
    let cfg = apply_side_inputs(value, opts)?;
    let (mut c, mut problems) = finish_all(cfg, source);
    // A value that could not be decoded has its default now: say nothing more about it.
    problems.retain(|d| !decode::is_pruned(&pruned, &d.path));
    problems.extend(errors);
    problems.into_result()?;
    c.parse_options = opts.clone();
    Ok(c)
}

/// A side file (build file, `--vars-file`, `--env-file`), within the limits.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    crate::limits::read_text(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Decode strictly and apply `--vars-file` / `--env-file`.
pub(crate) fn decode_with_side_inputs(
    source: &Source,
    opts: &ParseOptions,
) -> Result<Configuration> {
    apply_side_inputs(decode(source)?, opts)
}

/// Apply `--vars-file` / `--env-file` to a decoded file.
fn apply_side_inputs(mut cfg: Configuration, opts: &ParseOptions) -> Result<Configuration> {
    if let Some(vf) = &opts.vars_file {
        let t = read_text(vf)?;
        let vsrc = Source::new(vf.display().to_string(), t);
        let m: BTreeMap<String, Option<String>> = if vsrc.text.trim().is_empty() {
            BTreeMap::new()
        } else {
            let dups = crate::scan::check(&vsrc)?;
            if !dups.is_empty() {
                return Err(Error::from_diagnostics(dups));
            }
            serde_norway::from_str(&vsrc.text).map_err(|e| vsrc.yaml_error(&e))?
        };
        for (k, v) in m {
            cfg.vars.insert(k, v.unwrap_or_default());
        }
    }
    for ef in &opts.env_files {
        let t = read_text(ef)?;
        for (k, v) in parse_dotenv(&t) {
            cfg.environment.environment.entry(k).or_insert(v);
        }
    }
    Ok(cfg)
}

/// The `KEY=VALUE` pairs of `--env-file` files, in order (a file that cannot be read, or
/// is not a regular file within the size limit, is an error naming it). The build keeps
/// these values out of what it writes (docs/build.md, "Secrets").
pub fn env_file_values(files: &[PathBuf]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for ef in files {
        let t = read_text(ef)?;
        out.extend(parse_dotenv(&t));
    }
    Ok(out)
}

/// Everything after decoding and side inputs: validation, parse-phase substitution,
/// range expansion, the strict pass and injected defaults.
pub(crate) fn finish(cfg: Configuration, source: Source) -> Result<Config> {
    let (c, problems) = finish_all(cfg, source);
    problems.into_result()?;
    Ok(c)
}

/// [`finish`], going on after problems: the configuration and every problem found.
fn finish_all(mut cfg: Configuration, source: Source) -> (Config, Problems) {
    let mut problems = Problems::default();
    // Validate step shapes before substitution so positions match the file.
    validate_steps(&source, "pipeline", &cfg.pipeline, &mut problems);
    for (i, sp) in cfg.subpackages.iter().enumerate() {
        validate_steps(
            &source,
            &format!("subpackages[{i}].pipeline"),
            &sp.pipeline,
            &mut problems,
        );
        if let Some(t) = &sp.test {
            validate_steps(
                &source,
                &format!("subpackages[{i}].test.pipeline"),
                &t.pipeline,
                &mut problems,
            );
        }
    }
    if let Some(t) = &cfg.test {
        validate_steps(&source, "test.pipeline", &t.pipeline, &mut problems);
    }
    if cfg.var_transforms.len() > MAX_VAR_TRANSFORMS {
        problems.push(source.error(
            &format!("var-transforms[{MAX_VAR_TRANSFORMS}]"),
            At::Value,
            crate::limits::too_many_var_transforms(),
        ));
    }
    for (i, vt) in cfg
        .var_transforms
        .iter()
        .take(MAX_VAR_TRANSFORMS)
        .enumerate()
    {
        if let Err(e) = Regex::new(&vt.match_) {
            problems.push(source.error(
                &format!("var-transforms[{i}].match"),
                At::Value,
                format!(
                    "invalid regular expression {:?}: {}",
                    vt.match_,
                    regex_error(&e)
                ),
            ));
        }
        if vt.to.is_empty() {
            problems.push(source.error(
                &format!("var-transforms[{i}]"),
                At::Value,
                "`to` is required",
            ));
        }
    }

    // Parse-phase map P; everything it inserts is taken from one budget.
    let budget = Budget::new();
    let p = parse_phase_map(&cfg, &budget);
    let look = |k: &str| {
        let v = p.get(k)?;
        budget
            .spend_for(v.len(), &format!("${{{{{k}}}}}"))
            .then_some(v.as_str())
    };

    // Literal replacement of P in the places melange replaces.
    replace_package(&mut cfg.package, &look);
    for s in &mut cfg.pipeline {
        replace_step(s, &look);
    }
    replace_image(&mut cfg.environment, &look);
    if let Some(t) = &mut cfg.test {
        replace_test(t, &look);
    }

    // data/range expansion.
    let data: HashMap<&str, &BTreeMap<String, String>> = cfg
        .data
        .iter()
        .map(|d| (d.name.as_str(), &d.items))
        .collect();
    let mut subs = Vec::with_capacity(cfg.subpackages.len());
    let mut sub_origin = Vec::with_capacity(cfg.subpackages.len());
    let mut expanded = 0usize;
    for (i, sp) in cfg.subpackages.iter().enumerate() {
        let count = if sp.range.is_empty() {
            1
        } else {
            data.get(sp.range.as_str()).map_or(0, |items| items.len())
        };
        expanded += count;
        if expanded > MAX_SUBPACKAGES {
            problems.push(source.error(
                &format!("subpackages[{i}]"),
                At::Value,
                format!("more than {MAX_SUBPACKAGES} subpackages (after `range` expansion)"),
            ));
            break;
        }
        if count > 1 {
            let copy = serde_json::to_vec(sp).map_or(0, |v| v.len());
            if !budget.spend_for(
                copy.saturating_mul(count),
                &format!("subpackages[{i}].range"),
            ) {
                break;
            }
        }
        if sp.range.is_empty() {
            let mut sp = sp.clone();
            replace_subpackage(&mut sp, &look);
            subs.push(sp);
            sub_origin.push(i);
            continue;
        }
        let Some(items) = data.get(sp.range.as_str()) else {
            problems.push(source.error_suggest(
                &format!("subpackages[{i}].range"),
                At::Value,
                format!("range {:?} is not defined in `data`", sp.range),
                suggest(&sp.range, data.keys().copied()),
            ));
            continue;
        };
        for (k, v) in items.iter() {
            let mut c = sp.clone();
            c.range.clear();
            let rl = |name: &str| match name {
                "range.key" => Some(k.as_str()),
                "range.value" => Some(v.as_str()),
                other => look(other),
            };
            replace_subpackage(&mut c, &rl);
            subs.push(c);
            sub_origin.push(i);
        }
    }
    cfg.subpackages = subs;
    cfg.data.clear();
    if budget.exhausted() {
        let what = budget
            .failure()
            .unwrap_or_else(|| "var-transforms".to_string());
        problems.push(source.error(
            "",
            At::Value,
            crate::limits::total_exceeded(&format!("at {what}")),
        ));
    }

    let mut config = Config {
        configuration: cfg,
        source,
        sub_origin,
        parse_options: ParseOptions::default(),
    };
    strict_pass(&mut config, &p, &budget, &mut problems);
    validate(&config, &mut problems);
    inject_defaults(&mut config.configuration);
    (config, problems)
}

/// `re.replace_all(hay, rep)` (Go's expansion rules for `$1`, `${name}`), or `None` as soon
/// as the result is larger than [`MAX_VALUE_BYTES`]: an empty match replaced by a long
/// text at every position of a long value would otherwise take gigabytes first.
fn replace_bounded(re: &Regex, hay: &str, rep: &str) -> Option<String> {
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(hay) {
        let m = caps.get(0)?;
        out.push_str(&hay[last..m.start()]);
        caps.expand(rep, &mut out);
        last = m.end();
        if out.len() > MAX_VALUE_BYTES {
            return None;
        }
    }
    out.push_str(&hay[last..]);
    (out.len() <= MAX_VALUE_BYTES).then_some(out)
}

/// P = package.{name,version,epoch,description,full-version} + vars (raw) + var-transforms.
pub(crate) fn parse_phase_map(cfg: &Configuration, budget: &Budget) -> HashMap<String, String> {
    let mut p = HashMap::new();
    let pk = &cfg.package;
    p.insert("package.name".to_string(), pk.name.clone());
    p.insert("package.version".to_string(), pk.version.clone());
    p.insert("package.epoch".to_string(), pk.epoch.to_string());
    p.insert("package.description".to_string(), pk.description.clone());
    p.insert(
        "package.full-version".to_string(),
        format!("{}-r{}", pk.version, pk.epoch),
    );
    for (k, v) in &cfg.vars {
        p.insert(format!("vars.{k}"), v.clone());
    }
    apply_var_transforms(cfg, &mut p, subst::Mode::Lenient, budget).ok();
    p
}

/// Apply `var-transforms` in order; each `from` is substituted against the map so far.
pub(crate) fn apply_var_transforms(
    cfg: &Configuration,
    map: &mut HashMap<String, String>,
    mode: subst::Mode,
    budget: &Budget,
) -> std::result::Result<(), (usize, String)> {
    if cfg.var_transforms.len() > MAX_VAR_TRANSFORMS {
        return Err((MAX_VAR_TRANSFORMS, crate::limits::too_many_var_transforms()));
    }
    for (i, vt) in cfg.var_transforms.iter().enumerate() {
        let from = subst::substitute(&vt.from, mode, budget, |k| map.get(k).map(String::as_str))
            .map_err(|name| (i, subst::describe_failure(&name)))?;
        if mode == subst::Mode::Lenient && subst::has_refs(&from) {
            // Depends on compile-phase variables: leave `${{vars.<to>}}` for the compile phase.
            continue;
        }
        let re = Regex::new(&vt.match_).map_err(|e| {
            (
                i,
                format!("invalid regular expression: {}", regex_error(&e)),
            )
        })?;
        let Some(out) = replace_bounded(&re, &from, &vt.replace) else {
            return Err((i, crate::limits::value_too_large()));
        };
        if !budget.spend(out.len()) {
            return Err((i, crate::limits::total_exceeded("var-transforms")));
        }
        map.insert(format!("vars.{}", vt.to), out);
    }
    Ok(())
}

/// The one-line reason of a regex error (the crate's message spans several lines).
pub(crate) fn regex_error(e: &regex::Error) -> String {
    let t = e.to_string();
    t.lines()
        .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_string))
        .unwrap_or_else(|| t.lines().last().unwrap_or_default().trim().to_string())
}

type Look<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

fn rs<'a>(s: &mut String, look: &Look<'a>) {
    if s.contains("${{") {
        *s = subst::replace_exact(s, look);
    }
}

fn rl<'a>(v: &mut [String], look: &Look<'a>) {
    for s in v {
        rs(s, look);
    }
}

fn rm<'a>(m: &mut BTreeMap<String, String>, look: &Look<'a>) {
    for v in m.values_mut() {
        rs(v, look);
    }
}

fn replace_deps<'a>(d: &mut Dependencies, look: &Look<'a>) {
    rl(&mut d.runtime, look);
    rl(&mut d.provides, look);
    rl(&mut d.replaces, look);
    rs(&mut d.provider_priority, look);
    rs(&mut d.replaces_priority, look);
}

fn replace_scriptlets<'a>(s: &mut Option<Scriptlets>, look: &Look<'a>) {
    if let Some(s) = s {
        rs(&mut s.trigger.script, look);
        rl(&mut s.trigger.paths, look);
        for f in [
            &mut s.pre_install,
            &mut s.post_install,
            &mut s.pre_deinstall,
            &mut s.post_deinstall,
            &mut s.pre_upgrade,
            &mut s.post_upgrade,
        ] {
            rs(f, look);
        }
    }
}

fn replace_package<'a>(p: &mut Package, look: &Look<'a>) {
    rs(&mut p.description, look);
    rs(&mut p.url, look);
    rs(&mut p.commit, look);
    for c in &mut p.copyright {
        rs(&mut c.license, look);
        rs(&mut c.attestation, look);
        rs(&mut c.license_path, look);
        rl(&mut c.paths, look);
    }
    replace_deps(&mut p.dependencies, look);
    replace_scriptlets(&mut p.scriptlets, look);
    rm(&mut p.annotations, look);
    for s in &mut p.setcap {
        rs(&mut s.path, look);
    }
}

pub(crate) fn replace_step<'a>(s: &mut Pipeline, look: &Look<'a>) {
    rs(&mut s.name, look);
    rm(&mut s.with, look);
    rs(&mut s.runs, look);
    rs(&mut s.if_, look);
    rs(&mut s.working_directory, look);
    rm(&mut s.environment, look);
    if let Some(n) = &mut s.needs {
        rl(&mut n.packages, look);
    }
    for c in &mut s.pipeline {
        replace_step(c, look);
    }
}

fn replace_image<'a>(e: &mut ImageConfiguration, look: &Look<'a>) {
    rl(&mut e.contents.repositories, look);
    rl(&mut e.contents.build_repositories, look);
    rl(&mut e.contents.runtime_repositories, look);
    rl(&mut e.contents.keyring, look);
    rl(&mut e.contents.runtime_keyring, look);
    rl(&mut e.contents.packages, look);
    rm(&mut e.environment, look);
    rm(&mut e.annotations, look);
}

fn replace_test<'a>(t: &mut Test, look: &Look<'a>) {
    replace_image(&mut t.environment, look);
    for s in &mut t.pipeline {
        replace_step(s, look);
    }
}

fn replace_subpackage<'a>(sp: &mut Subpackage, look: &Look<'a>) {
    rs(&mut sp.if_, look);
    rs(&mut sp.name, look);
    rs(&mut sp.description, look);
    rs(&mut sp.url, look);
    rs(&mut sp.commit, look);
    rm(&mut sp.annotations, look);
    replace_deps(&mut sp.dependencies, look);
    replace_scriptlets(&mut sp.scriptlets, look);
    for s in &mut sp.pipeline {
        replace_step(s, look);
    }
    if let Some(t) = &mut sp.test {
        replace_test(t, look);
    }
    for s in &mut sp.setcap {
        rs(&mut s.path, look);
    }
}

/// The strict part of the parse phase: dependency fields and environment package lists may
/// only use `package.*`, `vars.*` (and `range.*`, already expanded).
fn strict_pass(
    config: &mut Config,
    p: &HashMap<String, String>,
    budget: &Budget,
    problems: &mut Problems,
) {
    let look = |k: &str| p.get(k).map(String::as_str);
    let src = config.source.clone();
    let mut strict = |s: &mut String, path: String| {
        // A spent budget is reported once: by `finish_all`, or here by the first failure.
        if !s.contains("${{") || budget.exhausted() {
            return;
        }
        match subst::substitute(s, subst::Mode::Strict, budget, look) {
            Ok(v) => *s = v,
            Err(name) => problems.push(src.error(
                &path,
                At::Value,
                if name.starts_with("${{") || subst::is_message(&name) {
                    subst::describe_failure(&name)
                } else {
                    format!(
                        "variable \"${{{{{name}}}}}\" is not defined here (dependency and environment package lists may only use package.*, vars.* and range.*)"
                    )
                },
            )),
        }
    };
    fn deps(d: &mut Dependencies, base: &str, strict: &mut dyn FnMut(&mut String, String)) {
        for (i, s) in d.runtime.iter_mut().enumerate() {
            strict(s, format!("{base}.runtime[{i}]"));
        }
        for (i, s) in d.provides.iter_mut().enumerate() {
            strict(s, format!("{base}.provides[{i}]"));
        }
        for (i, s) in d.replaces.iter_mut().enumerate() {
            strict(s, format!("{base}.replaces[{i}]"));
        }
        strict(
            &mut d.provider_priority,
            format!("{base}.provider-priority"),
        );
        strict(
            &mut d.replaces_priority,
            format!("{base}.replaces-priority"),
        );
    }
    let cfg = &mut config.configuration;
    deps(
        &mut cfg.package.dependencies,
        "package.dependencies",
        &mut strict,
    );
    for (i, sp) in cfg.subpackages.iter_mut().enumerate() {
        let base = format!("subpackages[{}].dependencies", config.sub_origin[i]);
        deps(&mut sp.dependencies, &base, &mut strict);
    }
    for (i, s) in cfg.environment.contents.packages.iter_mut().enumerate() {
        strict(s, format!("environment.contents.packages[{i}]"));
    }
    if let Some(t) = &mut cfg.test {
        for (i, s) in t.environment.contents.packages.iter_mut().enumerate() {
            strict(s, format!("test.environment.contents.packages[{i}]"));
        }
    }
}

fn name_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^[a-zA-Z\d][a-zA-Z\d+_.-]*$").expect("static regex"))
}

fn cpe_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^[a-z\d][a-z\d+_.-]*$").expect("static regex"))
}

/// Step rules: `with` needs `uses`; `runs` excludes `uses` and `with`.
fn validate_steps(src: &Source, base: &str, steps: &[Pipeline], problems: &mut Problems) {
    for (i, s) in steps.iter().enumerate() {
        let path = format!("{base}[{i}]");
        if !s.with.is_empty() && s.uses.is_empty() {
            problems.push(src.error(
                &format!("{path}.with"),
                At::Key,
                "`with` is only valid together with `uses`",
            ));
        }
        if !s.runs.is_empty() && !s.uses.is_empty() {
            problems.push(src.error(
                &format!("{path}.runs"),
                At::Key,
                "`runs` and `uses` are mutually exclusive",
            ));
        }
        if !s.uses.is_empty() && !s.pipeline.is_empty() {
            tracing::debug!(
                "{}: {path}: `uses` together with `pipeline`: treated as already expanded",
                src.name
            );
        }
        validate_steps(src, &format!("{path}.pipeline"), &s.pipeline, problems);
    }
}

const ALLOWED_CAPS: [&str; 5] = [
    "cap_net_bind_service",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_sys_admin",
];

fn validate_setcap(src: &Source, base: &str, caps: &[Capability], problems: &mut Problems) {
    for (i, c) in caps.iter().enumerate() {
        let path = format!("{base}[{i}]");
        if c.path.is_empty() {
            problems.push(src.error(&path, At::Value, "setcap: `path` is required"));
        }
        if c.reason.trim().is_empty() {
            problems.push(src.error(&path, At::Value, "setcap: `reason` is required"));
        }
        if c.add.is_empty() {
            problems.push(src.error(
                &path,
                At::Value,
                "setcap: `add` must list at least one capability",
            ));
        }
        for (names, flags) in &c.add {
            for n in names.split(',').map(str::trim) {
                if !ALLOWED_CAPS.contains(&n) {
                    problems.push(src.error_suggest(
                        &format!("{path}.add"),
                        At::Value,
                        format!(
                            "capability {n:?} is not allowed (allowed: {})",
                            ALLOWED_CAPS.join(", ")
                        ),
                        suggest(n, ALLOWED_CAPS.iter().copied()),
                    ));
                }
            }
            let f = flags.trim_start_matches('+');
            if f.is_empty() || !f.chars().all(|c| matches!(c, 'e' | 'p' | 'i')) {
                problems.push(src.error(
                    &format!("{path}.add"),
                    At::Value,
                    format!("invalid capability flags {flags:?} (letters e, p, i)"),
                ));
            }
        }
    }
}

/// A required `package` field that is missing or null: at its key when the key is written
/// (`name:` with no value), else at the `package:` mapping.
fn required_field(src: &Source, field: &str) -> Error {
    let path = format!("package.{field}");
    let mut e = src.error(&path, At::Key, "is missing or null (required)");
    if crate::locate::find(&src.text, &path, At::Key).is_none()
        && let Error::Config(d) = &mut e
    {
        (d.line, d.column) = crate::locate::position(&src.text, "package", At::Value);
    }
    e
}

fn validate(config: &Config, problems: &mut Problems) {
    let src = &config.source;
    let cfg = &config.configuration;
    let p = &cfg.package;
    if p.name.is_empty() {
        problems.push(required_field(src, "name"));
    } else if !name_re().is_match(&p.name) {
        problems.push(src.error(
            "package.name",
            At::Value,
            format!(
                "invalid package name {:?} (must match ^[a-zA-Z\\d][a-zA-Z\\d+_.-]*$)",
                p.name
            ),
        ));
    }
    // melange only requires a version here; its syntax is checked when building
    // (see `crate::compile::check_version`).
    if p.version.is_empty() {
        problems.push(required_field(src, "version"));
    }
    for (i, c) in p.copyright.iter().enumerate() {
        if c.license.is_empty() {
            problems.push(src.error(
                &format!("package.copyright[{i}]"),
                At::Value,
                "copyright: `license` is required",
            ));
        }
    }
    check_priority(src, "package.dependencies", &p.dependencies, problems);
    check_target_architecture(src, &p.target_architecture, problems);
    if let Some(cpe) = &p.cpe {
        validate_cpe(src, cpe, problems);
    }
    validate_setcap(src, "package.setcap", &p.setcap, problems);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, sp) in cfg.subpackages.iter().enumerate() {
        let path = config.sub_path(i);
        if sp.name.is_empty() {
            problems.push(src.error(&path, At::Value, "subpackage `name` is required"));
        } else if !name_re().is_match(&sp.name) {
            problems.push(src.error(
                &format!("{path}.name"),
                At::Value,
                format!(
                    "invalid subpackage name {:?} (must match ^[a-zA-Z\\d][a-zA-Z\\d+_.-]*$)",
                    sp.name
                ),
            ));
        } else if sp.name == p.name {
            problems.push(src.error(
                &format!("{path}.name"),
                At::Value,
                format!(
                    "subpackage name {:?} is the name of the main package",
                    sp.name
                ),
            ));
        } else if seen.insert(sp.name.as_str(), i).is_some() {
            problems.push(src.error(
                &format!("{path}.name"),
                At::Value,
                format!("duplicate subpackage name {:?}", sp.name),
            ));
        }
        check_priority(
            src,
            &format!("{path}.dependencies"),
            &sp.dependencies,
            problems,
        );
        validate_setcap(src, &format!("{path}.setcap"), &sp.setcap, problems);
    }
}

/// Every `package.target-architecture` entry is `all` or an architecture name (APK or Go
/// spelling): a misspelt one would otherwise disable the package silently.
fn check_target_architecture(src: &Source, archs: &[String], problems: &mut Problems) {
    for (i, a) in archs.iter().enumerate() {
        if a == "all" || crate::arch::Arch::parse(a).is_ok() {
            continue;
        }
        let known = crate::arch::ALL.iter().map(|a| a.apk());
        problems.push(src.error_suggest(
            &format!("package.target-architecture[{i}]"),
            At::Value,
            format!(
                "unknown architecture {a:?} (known: all, {})",
                known.clone().collect::<Vec<_>>().join(", ")
            ),
            suggest(a, known),
        ));
    }
}

fn check_priority(src: &Source, base: &str, d: &Dependencies, problems: &mut Problems) {
    for (field, v) in [
        ("provider-priority", &d.provider_priority),
        ("replaces-priority", &d.replaces_priority),
    ] {
        if !v.is_empty() && v.trim().parse::<i64>().is_err() {
            problems.push(src.error(
                &format!("{base}.{field}"),
                At::Value,
                format!("{field} {v:?} is not an integer"),
            ));
        }
    }
}

fn validate_cpe(src: &Source, c: &Cpe, problems: &mut Problems) {
    if !c.part.is_empty() && c.part != "a" && c.part != "o" {
        problems.push(src.error(
            "package.cpe.part",
            At::Value,
            "cpe.part must be \"a\" or \"o\"",
        ));
    }
    if c.vendor.is_empty() != c.product.is_empty() {
        problems.push(src.error(
            "package.cpe",
            At::Value,
            "cpe: set both `vendor` and `product`, or neither",
        ));
    }
    for (k, v) in [
        ("vendor", &c.vendor),
        ("product", &c.product),
        ("edition", &c.edition),
        ("language", &c.language),
        ("sw_edition", &c.sw_edition),
        ("target_sw", &c.target_sw),
        ("target_hw", &c.target_hw),
        ("other", &c.other),
    ] {
        if !v.is_empty() && (v == "*" || !cpe_re().is_match(v)) {
            problems.push(src.error(
                &format!("package.cpe.{k}"),
                At::Value,
                format!("cpe.{k} {v:?} must match ^[a-z\\d][a-z\\d+_.-]*$"),
            ));
        }
    }
}

/// Default build user/group and environment variables melange injects after parsing.
pub(crate) fn inject_defaults(cfg: &mut Configuration) {
    inject_accounts(&mut cfg.environment.accounts);
    let env = &mut cfg.environment.environment;
    for (k, v) in DEFAULT_ENV {
        let e = env.entry((*k).to_string()).or_default();
        if e.is_empty() {
            *e = (*v).to_string();
        }
    }
    if let Some(t) = &mut cfg.test {
        inject_accounts(&mut t.environment.accounts);
    }
    for sp in &mut cfg.subpackages {
        if let Some(t) = &mut sp.test
            && !t.pipeline.is_empty()
        {
            inject_accounts(&mut t.environment.accounts);
        }
    }
}

/// Environment variables set when empty.
pub const DEFAULT_ENV: &[(&str, &str)] = &[
    ("HOME", "/home/build"),
    ("GOPATH", "/home/build/.cache/go"),
    ("GOMODCACHE", "/var/cache/melange/gomodcache"),
    ("UV_CACHE_DIR", "/var/cache/melange/uv"),
    ("PIP_CACHE_DIR", "/var/cache/melange/pip"),
    ("COMPOSER_CACHE_DIR", "/var/cache/melange/composer"),
    ("npm_config_cache", "/var/cache/melange/npm"),
];

fn inject_accounts(a: &mut ImageAccounts) {
    if !a.groups.iter().any(|g| g.groupname == "build") {
        a.groups.push(Group {
            groupname: "build".into(),
            gid: 1000,
            members: vec!["build".into()],
        });
    }
    if !a.users.iter().any(|u| u.username == "build") {
        a.users.push(User {
            username: "build".into(),
            uid: Some(1000),
            gid: Some(1000),
            shell: String::new(),
            homedir: String::new(),
        });
    }
}

/// Minimal dotenv reader: `KEY=VALUE`, optional `export `, quotes, `#` comments.
pub(crate) fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            let inner = &v[1..v.len() - 1];
            if v.starts_with('"') {
                inner.replace("\\n", "\n").replace("\\\"", "\"")
            } else {
                inner.to_string()
            }
        } else {
            match v.find(" #") {
                Some(i) => v[..i].trim_end().to_string(),
                None => v.to_string(),
            }
        };
        out.push((k.to_string(), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_bounded_is_replace_all_within_the_limit() {
        for (pat, hay, rep) in [
            (r"(\d+)\.(\d+)", "v1.2 and 3.4", "$2_$1"),
            (r"(\d+)\.(\d+)", "v1.2 and 3.4", "${2}_$1"),
            (r"(?P<x>a)", "banana", "[$x]"),
            ("", "abc", "-"),
            ("z", "abc", "y"),
        ] {
            let re = Regex::new(pat).unwrap();
            assert_eq!(
                replace_bounded(&re, hay, rep).as_deref(),
                Some(re.replace_all(hay, rep).as_ref()),
                "{pat} {hay} {rep}"
            );
        }
        let hay = "a".repeat(1 << 20);
        assert!(replace_bounded(&Regex::new("").unwrap(), &hay, "xxxxx").is_none());
    }

    #[test]
    fn env_file_values_read_only_regular_files() {
        let e = env_file_values(&[PathBuf::from("/dev/zero")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero: a device, not a regular file (only regular files are read)"
        );
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("env");
        std::fs::write(&f, "A=1\nexport B='two'\n").unwrap();
        assert_eq!(
            env_file_values(&[f]).unwrap(),
            [("A".into(), "1".into()), ("B".into(), "two".into())]
        );
    }

    #[test]
    fn dotenv() {
        let v = parse_dotenv("# c\nA=1\nexport B=\"x y\"\nC='z' \nD=v # comment\n");
        assert_eq!(
            v,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x y".into()),
                ("C".into(), "z".into()),
                ("D".into(), "v".into())
            ]
        );
    }
}
