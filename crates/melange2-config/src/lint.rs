//! `melange2 lint-config`: fast checks over many build files.
//!
//! Rules:
//! * `parse` (error): strict decoding and parse-phase validation (unknown keys with a
//!   suggestion, wrong types, bad names/versions, undefined ranges, …);
//! * `compile` (error): compiling for x86_64 fails (unknown `with:` inputs, missing
//!   required inputs, undefined variables, bad checksums, unknown pipelines, …);
//! * `missing-checksum` (error): `uses: fetch` without `expected-sha256`,
//!   `expected-sha512` or `expected-none`; (warning) `uses: git-checkout` without
//!   `expected-commit`;
//! * `unused-var` (warning): a `vars` entry or `var-transforms` output never referenced;
//! * `background-process` (warning): a `runs` line that starts a background job (`cmd &`)
//!   without redirecting its output.
//!
//! Files are checked in parallel; the result is sorted by file name.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::arch::Arch;
use crate::compile::{CompileOptions, compile};
use crate::error::{At, Error, Source};
use crate::model::{Configuration, Pipeline};
use crate::parse::{ParseOptions, decode, parse_str};
use crate::pipelines::PipelineRegistry;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}[{}]: {}",
            self.file, self.line, self.column, self.rule, self.message
        )
    }
}

fn from_error(file: &str, rule: &'static str, e: &Error) -> Finding {
    match e.diagnostic() {
        Some(d) => {
            let mut msg = if d.path.is_empty() {
                d.message.clone()
            } else {
                format!("{}: {}", d.path, d.message)
            };
            if let Some(s) = &d.suggestion {
                msg.push_str(&format!(" (did you mean {s:?}?)"));
            }
            Finding {
                file: d.file.clone(),
                line: d.line,
                column: d.column,
                rule,
                severity: Severity::Error,
                message: msg,
            }
        }
        None => Finding {
            file: file.to_string(),
            line: 1,
            column: 1,
            rule,
            severity: Severity::Error,
            message: e.to_string(),
        },
    }
}

/// Lint one file given as text.
pub fn lint_text(name: &str, text: &str, registry: &PipelineRegistry) -> Vec<Finding> {
    let src = Source::new(name, text);
    let raw = match decode(&src) {
        Ok(c) => c,
        Err(e) => return vec![from_error(name, "parse", &e)],
    };
    let mut out = Vec::new();
    let finding = |path: &str, at: At, rule: &'static str, sev: Severity, msg: String| {
        let (line, column) = crate::locate::position(text, path, at);
        Finding {
            file: name.to_string(),
            line,
            column,
            rule,
            severity: sev,
            message: format!("{path}: {msg}"),
        }
    };
    // Structural checks on the raw file.
    for_each_step(&raw, &mut |path, s| {
        if s.uses == "fetch"
            && ["expected-sha256", "expected-sha512", "expected-none"]
                .iter()
                .all(|k| s.with.get(*k).is_none_or(|v| v.is_empty()))
        {
            out.push(finding(
                &format!("{path}.uses"),
                At::Value,
                "missing-checksum",
                Severity::Error,
                "fetch without expected-sha256, expected-sha512 or expected-none".into(),
            ));
        }
        if s.uses == "git-checkout" && s.with.get("expected-commit").is_none_or(|v| v.is_empty()) {
            out.push(finding(
                &format!("{path}.uses"),
                At::Value,
                "missing-checksum",
                Severity::Warning,
                "git-checkout without expected-commit: the source is not pinned".into(),
            ));
        }
        for (ln, line) in s.runs.lines().enumerate() {
            if backgrounds_without_redirect(line) {
                out.push(finding(
                    &format!("{path}.runs"),
                    At::Value,
                    "background-process",
                    Severity::Warning,
                    format!(
                        "line {} of runs starts a background process without redirecting its output: {:?}",
                        ln + 1,
                        line.trim()
                    ),
                ));
            }
        }
    });
    let declared = raw
        .vars
        .keys()
        .map(|k| (k.clone(), format!("vars.{k}")))
        .chain(
            raw.var_transforms
                .iter()
                .enumerate()
                .map(|(i, v)| (v.to.clone(), format!("var-transforms[{i}].to"))),
        );
    for (name_, path) in declared {
        if !references_var(text, &name_) {
            out.push(finding(
                &path,
                At::Key,
                "unused-var",
                Severity::Warning,
                format!("variable {name_:?} is never used"),
            ));
        }
    }
    match parse_str(name, text, &ParseOptions::default()) {
        Err(e) => out.push(from_error(name, "parse", &e)),
        Ok(cfg) => {
            if let Err(e) = compile(&cfg, registry, &CompileOptions::new(Arch::X86_64)) {
                // Undefined build options only matter when the user asks for them.
                if !matches!(e, Error::Usage(_)) {
                    out.push(from_error(name, "compile", &e));
                }
            }
        }
    }
    out.sort_by(|a, b| (a.line, a.column, a.rule).cmp(&(b.line, b.column, b.rule)));
    out
}

fn references_var(text: &str, name: &str) -> bool {
    let needle = format!("vars.{name}");
    let mut from = 0;
    while let Some(i) = text[from..].find(&needle) {
        let at = from + i;
        let after = text[at + needle.len()..].trim_start_matches([' ', '\t']);
        let before = text[..at].trim_end_matches([' ', '\t']);
        if after.starts_with("}}") && before.ends_with("${{") {
            return true;
        }
        from = at + needle.len();
    }
    false
}

/// A background job (`cmd &`, not `&&`, `>&`, `&>`) whose command has no `>` redirection.
fn backgrounds_without_redirect(line: &str) -> bool {
    let b = line.as_bytes();
    let (mut sq, mut dq) = (false, false);
    let mut seg_start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' if !sq => {
                i += 2;
                continue;
            }
            b'\'' if !dq => sq = !sq,
            b'"' if !sq => dq = !dq,
            b'#' if !sq && !dq && (i == 0 || b[i - 1].is_ascii_whitespace()) => break,
            b';' | b'|' if !sq && !dq => seg_start = i + 1,
            b'&' if !sq && !dq => {
                let prev = if i > 0 { b[i - 1] } else { b' ' };
                let next = b.get(i + 1).copied().unwrap_or(b' ');
                if next == b'&' {
                    i += 2;
                    seg_start = i;
                    continue;
                }
                if prev != b'>' && prev != b'<' && next != b'>' {
                    if !line[seg_start..i].contains('>') && !line[seg_start..i].trim().is_empty() {
                        return true;
                    }
                    seg_start = i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

fn for_each_step(cfg: &Configuration, f: &mut dyn FnMut(&str, &Pipeline)) {
    fn walk(base: &str, steps: &[Pipeline], f: &mut dyn FnMut(&str, &Pipeline)) {
        for (i, s) in steps.iter().enumerate() {
            let p = format!("{base}[{i}]");
            f(&p, s);
            walk(&format!("{p}.pipeline"), &s.pipeline, f);
        }
    }
    walk("pipeline", &cfg.pipeline, f);
    for (i, sp) in cfg.subpackages.iter().enumerate() {
        walk(&format!("subpackages[{i}].pipeline"), &sp.pipeline, f);
        if let Some(t) = &sp.test {
            walk(&format!("subpackages[{i}].test.pipeline"), &t.pipeline, f);
        }
    }
    if let Some(t) = &cfg.test {
        walk("test.pipeline", &t.pipeline, f);
    }
}

/// Expand directories into the `*.yaml` files below them (sorted); files are kept.
pub fn expand_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = walkdir::WalkDir::new(p)
                .into_iter()
                .flatten()
                .filter(|e| {
                    e.file_type().is_file()
                        && e.path()
                            .extension()
                            .is_some_and(|x| x == "yaml" || x == "yml")
                })
                .map(|e| e.into_path())
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Result of linting many files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Number of files checked.
    pub files: usize,
    /// Findings, grouped by file in argument order.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Number of error findings.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Number of warning findings.
    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }
}

/// Lint many files (directories are expanded) in parallel. Unreadable files yield one
/// error finding.
pub fn lint_files(paths: &[PathBuf], registry: &PipelineRegistry) -> Report {
    let files = expand_paths(paths);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len().max(1));
    let mut all: Vec<Vec<Finding>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(p) = files.get(i) else { break };
                        mine.push((i, lint_path(p, registry)));
                    }
                    mine
                })
            })
            .collect();
        let mut v: Vec<(usize, Vec<Finding>)> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        v.sort_by_key(|(i, _)| *i);
        v.into_iter().map(|(_, f)| f).collect()
    });
    Report {
        files: files.len(),
        findings: all.drain(..).flatten().collect(),
    }
}

fn lint_path(p: &Path, registry: &PipelineRegistry) -> Vec<Finding> {
    let name = p.display().to_string();
    match std::fs::read_to_string(p) {
        Ok(t) => lint_text(&name, &t, registry),
        Err(e) => vec![Finding {
            file: name,
            line: 1,
            column: 1,
            rule: "read",
            severity: Severity::Error,
            message: e.to_string(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_detection() {
        assert!(backgrounds_without_redirect("  ./server &"));
        assert!(!backgrounds_without_redirect(
            "  ./server > /tmp/log 2>&1 &"
        ));
        assert!(!backgrounds_without_redirect("  a && b"));
        assert!(!backgrounds_without_redirect("  # ./server &"));
        assert!(!backgrounds_without_redirect("  foo 2>&1"));
        assert!(backgrounds_without_redirect("./daemon & echo started"));
        assert!(!backgrounds_without_redirect(
            "./daemon >/dev/null 2>&1 & echo started"
        ));
        assert!(!backgrounds_without_redirect("echo 'a & b'"));
        assert!(!backgrounds_without_redirect("cmd &> log &"));
        assert!(backgrounds_without_redirect("a && b &"));
    }

    #[test]
    fn var_references() {
        assert!(references_var("x ${{vars.foo}} y", "foo"));
        assert!(references_var("x ${{ vars.foo }} y", "foo"));
        assert!(!references_var("vars:\n  foo: 1\n", "foo"));
        assert!(!references_var("${{vars.foobar}}", "foo"));
    }
}
