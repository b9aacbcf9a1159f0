//! Corpus tests: golden compiled plans, expected error messages, the recipe collection and
//! the built-in pipelines.
//!
//! Regenerate goldens with `UPDATE_GOLDEN=1 cargo test -p melange2-config --test corpus`
//! and review the diff by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use melange2_config::{
    Arch, CompileOptions, ParseOptions, PipelineRegistry, Plan, compile, parse_str, pipelines,
};
use serde_json::Value;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `# key: value` header directives at the top of a corpus file.
fn directives(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# ") else {
            if line.starts_with('#') {
                continue;
            }
            break;
        };
        if let Some((k, v)) = rest.split_once(": ")
            && matches!(
                k,
                "arch" | "build-option" | "pipeline-dir" | "vars-file" | "env-file" | "expect"
            )
        {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    m
}

struct Run {
    plan: Result<Plan, melange2_config::Error>,
}

fn run(path: &Path, arch: Arch, d: &BTreeMap<String, Vec<String>>) -> Run {
    let dir = path.parent().unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let rel = path
        .strip_prefix(crate_dir())
        .unwrap()
        .display()
        .to_string();
    let opts = ParseOptions {
        vars_file: d
            .get("vars-file")
            .and_then(|v| v.first())
            .map(|f| dir.join(f)),
        env_files: d
            .get("env-file")
            .map(|v| v.iter().map(|f| dir.join(f)).collect())
            .unwrap_or_default(),
    };
    let reg = PipelineRegistry::new(
        d.get("pipeline-dir")
            .map(|v| v.iter().map(|f| dir.join(f)).collect())
            .unwrap_or_default(),
    );
    let mut co = CompileOptions::new(arch);
    co.build_options = d.get("build-option").cloned().unwrap_or_default();
    let plan = parse_str(&rel, &text, &opts).and_then(|cfg| compile(&cfg, &reg, &co));
    Run { plan }
}

/// The reviewed form of a plan: step environments reduced to what differs from the
/// environment's base, and scripts that come from built-in pipeline files replaced by a
/// marker (their substituted inputs stay visible in `with`).
fn golden_view(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(plan).unwrap();
    fn walk_steps(steps: &mut Value, base: &serde_json::Map<String, Value>, builtin: Option<&str>) {
        let Some(arr) = steps.as_array_mut() else {
            return;
        };
        for s in arr {
            let origin = s
                .get("uses_origin")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(o) = &origin {
                // Paths of --pipeline-dir files are made relative to the crate.
                let root = format!("{}/", crate_dir().display());
                if let Some(rel) = o.strip_prefix(&root) {
                    s["uses_origin"] = Value::String(rel.to_string());
                }
            }
            let inside = origin
                .as_deref()
                .filter(|o| o.starts_with("builtin:"))
                .or(builtin);
            if let Some(env) = s.get_mut("env").and_then(Value::as_object_mut) {
                env.retain(|k, val| base.get(k) != Some(val));
                if env.is_empty() {
                    s.as_object_mut().unwrap().remove("env");
                }
            }
            if let Some(o) = builtin
                && s.get("runs").is_some()
            {
                s["runs"] = Value::String(format!("<script from {o}>"));
            }
            if let Some(children) = s.get_mut("pipeline") {
                walk_steps(children, base, inside);
            }
        }
    }
    fn base_of(envv: &Value) -> serde_json::Map<String, Value> {
        let mut b = envv["env"].as_object().cloned().unwrap_or_default();
        b.insert(
            "PATH".into(),
            Value::String(melange2_config::plan::STEP_PATH.into()),
        );
        b
    }
    let base = base_of(&v["environment"]);
    walk_steps(&mut v["pipeline"], &base, None);
    if let Some(subs) = v["subpackages"].as_array_mut() {
        for sp in subs {
            walk_steps(&mut sp["pipeline"], &base, None);
            if sp.get("test").is_some() {
                let tb = base_of(&sp["test"]["environment"]);
                walk_steps(&mut sp["test"]["pipeline"], &tb, None);
            }
        }
    }
    if v.get("test").is_some() {
        let tb = base_of(&v["test"]["environment"]);
        walk_steps(&mut v["test"]["pipeline"], &tb, None);
    }
    v
}

#[test]
fn corpus_golden() {
    let dir = crate_dir().join("tests/corpus");
    let golden_dir = dir.join("golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    if update {
        std::fs::create_dir_all(&golden_dir).unwrap();
    }
    let files = yaml_files(&dir);
    let mut failures = Vec::new();
    if files.len() < 30 {
        failures.push(format!(
            "expected a corpus of at least 30 files, found {}",
            files.len()
        ));
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let d = directives(&text);
        let archs = d
            .get("arch")
            .cloned()
            .unwrap_or_else(|| vec!["x86_64".to_string()]);
        for a in archs {
            let arch = Arch::parse(&a).unwrap();
            let stem = f.file_stem().unwrap().to_str().unwrap();
            let gpath = golden_dir.join(format!("{stem}.{}.json", arch.apk()));
            let got = match run(f, arch, &d).plan {
                Ok(p) => serde_json::to_string_pretty(&golden_view(&p)).unwrap() + "\n",
                Err(e) => {
                    failures.push(format!("{}: compile failed: {e}", f.display()));
                    continue;
                }
            };
            if update {
                std::fs::write(&gpath, &got).unwrap();
                continue;
            }
            match std::fs::read_to_string(&gpath) {
                Ok(want) if want == got => {}
                Ok(want) => {
                    let line = want
                        .lines()
                        .zip(got.lines())
                        .position(|(a, b)| a != b)
                        .unwrap_or(want.lines().count().min(got.lines().count()));
                    failures.push(format!(
                        "{}: differs from {} at line {}:\n  want: {}\n  got:  {}",
                        f.display(),
                        gpath.display(),
                        line + 1,
                        want.lines().nth(line).unwrap_or("<end>"),
                        got.lines().nth(line).unwrap_or("<end>")
                    ));
                }
                Err(_) => failures.push(format!(
                    "{}: missing golden {}",
                    f.display(),
                    gpath.display()
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn error_cases() {
    let dir = crate_dir().join("tests/errors");
    let files = yaml_files(&dir);
    let mut failures = Vec::new();
    if files.len() < 15 {
        failures.push(format!(
            "expected at least 15 error cases, found {}",
            files.len()
        ));
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let d = directives(&text);
        let Some(want) = d.get("expect").map(|v| v.join("\n")) else {
            failures.push(format!("{}: no `# expect:` header", f.display()));
            continue;
        };
        let arch = Arch::parse(
            d.get("arch")
                .and_then(|v| v.first())
                .map_or("x86_64", |s| s),
        )
        .unwrap();
        match run(f, arch, &d).plan {
            Ok(_) => failures.push(format!(
                "{}: compiled, expected error\n  want: {want}",
                f.display()
            )),
            Err(e) if e.to_string() == want => {}
            Err(e) => failures.push(format!("{}:\n  want: {want}\n  got:  {e}", f.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} error-case failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn recipes_compile_for_both_arches() {
    let dir = crate_dir().join("tests/recipes");
    let files = yaml_files(&dir);
    let reg = PipelineRegistry::new(Vec::new());
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let cfg = match parse_str(&f.display().to_string(), &text, &ParseOptions::default()) {
            Ok(c) => c,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        for arch in [Arch::X86_64, Arch::Aarch64] {
            match compile(&cfg, &reg, &CompileOptions::new(arch)) {
                Ok(p) => {
                    assert_eq!(p.arch, arch.apk());
                    assert!(
                        !p.environment.packages.is_empty(),
                        "{}: empty environment",
                        f.display()
                    );
                }
                Err(e) => failures.push(format!("[{arch}] {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} recipe failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn dummy_for(name: &str) -> String {
    match name {
        "expected-sha256" => "a".repeat(64),
        "expected-sha512" => "b".repeat(128),
        "expected-commit" => "c".repeat(40),
        "uri" | "repository" => "https://example.invalid/src.tar.gz".to_string(),
        _ => "x".to_string(),
    }
}

/// Every built-in pipeline parses strictly, declares well-formed inputs, references only
/// declared inputs, and compiles for x86_64 and aarch64 with its required inputs set.
#[test]
fn builtin_pipelines_are_well_formed() {
    let names: Vec<&str> = pipelines::builtin_names().collect();
    let reg = PipelineRegistry::new(Vec::new());
    let mut failures = Vec::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    for name in &names {
        let text = pipelines::builtin(name).unwrap();
        let def: melange2_config::model::Pipeline = match serde_norway::from_str(text) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for (k, inp) in &def.inputs {
            if !name_ok(k) {
                failures.push(format!("{name}: input name {k:?} is not lower-case kebab"));
            }
            if inp.required && !inp.default.is_empty() {
                failures.push(format!("{name}: input {k:?} is required but has a default"));
            }
            if inp.description.trim().is_empty() {
                failures.push(format!("{name}: input {k:?} has no description"));
            }
        }
        // Every ${{inputs.X}} used anywhere in the file is declared by the file.
        let mut from = 0;
        while let Some(i) = text[from..].find("${{") {
            let start = from + i + 3;
            let Some(end) = text[start..].find("}}") else {
                break;
            };
            let var = text[start..start + end].trim();
            if let Some(inp) = var.strip_prefix("inputs.")
                && !def.inputs.contains_key(inp)
            {
                failures.push(format!("{name}: references undeclared input {inp:?}"));
            }
            from = start + end;
        }
        // Compiles with required inputs filled in.
        let with: String = def
            .inputs
            .iter()
            .filter(|(_, i)| i.required)
            .map(|(k, _)| format!("      {k}: \"{}\"\n", dummy_for(k)))
            .collect();
        let recipe = format!(
            "package:\n  name: probe\n  version: 1.0.0\n  epoch: 0\nenvironment:\n  contents:\n    packages: [busybox]\npipeline:\n  - uses: {name}\n{}subpackages:\n  - name: probe-sub\n    pipeline:\n      - uses: {name}\n{}",
            if with.is_empty() {
                String::new()
            } else {
                format!("    with:\n{with}")
            },
            if with.is_empty() {
                String::new()
            } else {
                format!("        with:\n{}", with.replace("      ", "          "))
            },
        );
        let cfg = match parse_str(
            &format!("probe-{name}.yaml"),
            &recipe,
            &ParseOptions::default(),
        ) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: probe recipe: {e}"));
                continue;
            }
        };
        for arch in [Arch::X86_64, Arch::Aarch64] {
            if let Err(e) = compile(&cfg, &reg, &CompileOptions::new(arch)) {
                failures.push(format!("{name} [{arch}]: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} pipeline problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The pipelines named in the spec (part B) are all embedded.
#[test]
fn builtin_set_is_complete() {
    let want = [
        "fetch",
        "git-checkout",
        "patch",
        "git-am",
        "autoconf/configure",
        "autoconf/make",
        "autoconf/make-install",
        "cmake/configure",
        "cmake/build",
        "cmake/install",
        "meson/configure",
        "meson/compile",
        "meson/install",
        "perl/make",
        "perl/cleanup",
        "pecl/phpize",
        "pecl/install",
        "R/build",
        "go/build",
        "go/build/v2",
        "go/install",
        "go/bump",
        "go/covdata",
        "cargo/build",
        "python/build",
        "python/install",
        "python/build-wheel",
        "python/import",
        "python/test",
        "ruby/build",
        "ruby/install",
        "ruby/clean",
        "npm/install",
        "maven/configure-mirror",
        "maven/pombump",
        "strip",
        "split/dev",
        "split/static",
        "split/manpages",
        "split/infodir",
        "split/alldocs",
        "split/locales",
        "split/debug",
        "split/lib",
        "split/bin",
        "xcover/profile",
        "xcover/wait",
        "xcover/status",
        "xcover/stop",
        "xcover/ensure",
        "llvm/covreport",
    ];
    let missing: Vec<&str> = want
        .iter()
        .copied()
        .filter(|n| pipelines::builtin(n).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "missing built-in pipelines: {missing:?}"
    );
}
