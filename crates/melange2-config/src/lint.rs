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
//! * `version` (error): `package.version` is not an APK version: melange loads such a file
//!   (so `compile` and `query` accept it) but refuses to build it;
//! * `background-process` (warning): a `runs` line that starts a background job (`cmd &`)
//!   without redirecting its output (here-document bodies are data and are skipped);
//! * `pipeline-unknown-key` (note): a pipeline file the build file uses has a key the
//!   schema does not know; it is ignored, as melange ignores it.
//!
//! Every problem of a file is reported, not only the first; a problem inside a pipeline
//! file is reported at the step of the build file that uses it. Files are checked in
//! parallel; the result is grouped by file in argument order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::arch::Arch;
use crate::compile::{CompileOptions, Strictness, check_version, compile};
use crate::decode::{self, UnknownKeys};
use crate::error::{At, Error, Source};
use crate::model::{Configuration, Pipeline};
use crate::parse::{ParseOptions, parse_str};
use crate::pipelines::{PipelineRegistry, used_pipelines};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    /// Worth knowing, never a failure (not even with `--strict`).
    Note,
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
            Severity::Note => "note",
        };
        write!(
            f,
            "{}:{}:{}: {sev}[{}]: {}",
            self.file, self.line, self.column, self.rule, self.message
        )
    }
}

/// One finding per diagnostic of `e` (one for an error that points nowhere).
fn from_error(file: &str, rule: &'static str, e: &Error) -> Vec<Finding> {
    let diags = e.diagnostics();
    if diags.is_empty() {
        return vec![Finding {
            file: file.to_string(),
            line: 1,
            column: 1,
            rule,
            severity: Severity::Error,
            message: e.to_string(),
        }];
    }
    diags
        .iter()
        .map(|d| Finding {
            file: d.file.clone(),
            line: d.line,
            column: d.column,
            rule,
            severity: Severity::Error,
            message: d.detail(),
        })
        .collect()
}

/// Lint one file given as text.
pub fn lint_text(name: &str, text: &str, registry: &PipelineRegistry) -> Vec<Finding> {
    let src = Source::new(name, text);
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
    // Structural checks on the raw file: what could be decoded of it (the parse rule below
    // reports what could not).
    let raw = decode::decode::<Configuration>(&src, UnknownKeys::Error)
        .map(|d| d.value)
        .ok();
    if let Some(raw) = &raw {
        structural_checks(raw, text, &finding, &mut out);
    }
    match parse_str(name, text, &ParseOptions::default()) {
        Err(e) => out.extend(from_error(name, "parse", &e)),
        Ok(cfg) => {
            if let Err(e) = check_version(&cfg) {
                out.extend(from_error(name, "version", &e));
            }
            // The version has its own rule: compile as melange loads the file.
            let mut co = CompileOptions::new(Arch::X86_64);
            co.strictness = Strictness::Load;
            if let Err(e) = compile(&cfg, registry, &co) {
                // Undefined build options only matter when the user asks for them.
                if !matches!(e, Error::Usage(_)) {
                    out.extend(from_error(name, "compile", &e));
                }
            }
        }
    }
    out.sort_by(|a, b| (a.line, a.column, a.rule).cmp(&(b.line, b.column, b.rule)));
    // Keys the pipeline files this file uses have and that are ignored.
    if let Some(raw) = &raw {
        let mut steps: Vec<Pipeline> = raw.pipeline.clone();
        for sp in &raw.subpackages {
            steps.extend(sp.pipeline.iter().cloned());
            if let Some(t) = &sp.test {
                steps.extend(t.pipeline.iter().cloned());
            }
        }
        if let Some(t) = &raw.test {
            steps.extend(t.pipeline.iter().cloned());
        }
        for l in used_pipelines(registry, &steps) {
            for k in &l.ignored_keys {
                out.push(Finding {
                    file: k.file.clone(),
                    line: k.line,
                    column: k.column,
                    rule: "pipeline-unknown-key",
                    severity: Severity::Note,
                    message: format!(
                        "{} (pipeline files are read leniently, as melange reads them; used by {name} through `uses: {}`)",
                        k.detail(),
                        l.name
                    ),
                });
            }
        }
    }
    out
}

fn structural_checks(
    raw: &Configuration,
    text: &str,
    finding: &dyn Fn(&str, At, &'static str, Severity, String) -> Finding,
    out: &mut Vec<Finding>,
) {
    for_each_step(raw, &mut |path, s| {
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
        for (ln, line) in background_lines(&s.runs) {
            let mut f = finding(
                &format!("{path}.runs"),
                At::Value,
                "background-process",
                Severity::Warning,
                format!(
                    "line {ln} of runs starts a background process without redirecting its output: {:?}",
                    line.trim()
                ),
            );
            // A block scalar (`runs: |`) starts on the line after its key: point at the
            // offending line itself.
            let (key_line, _) = crate::locate::position(text, &format!("{path}.runs"), At::Key);
            if f.line > key_line {
                f.line += ln - 1;
                f.column = 1;
            }
            out.push(f);
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
    let used = referenced_vars(text);
    let unused: Vec<(String, String)> = declared
        .filter(|(name_, _)| !used.contains(name_.as_str()))
        .collect();
    // Each finding is located in the text: list the first ones, count the rest.
    for (name_, path) in unused.iter().take(MAX_UNUSED_LISTED) {
        out.push(finding(
            path,
            At::Key,
            "unused-var",
            Severity::Warning,
            format!("variable {name_:?} is never used"),
        ));
    }
    if unused.len() > MAX_UNUSED_LISTED {
        out.push(finding(
            "vars",
            At::Key,
            "unused-var",
            Severity::Warning,
            format!(
                "and {} more variables never used (not listed)",
                unused.len() - MAX_UNUSED_LISTED
            ),
        ));
    }
}

/// Most `unused-var` findings listed one by one for a file; the rest are counted.
const MAX_UNUSED_LISTED: usize = 100;

/// The names `N` of every `${{vars.N}}` in `text` (spaces or tabs allowed inside the
/// braces), in one pass: the text between each `${{` and the next is looked at once.
fn referenced_vars(text: &str) -> HashSet<&str> {
    let starts: Vec<usize> = text.match_indices("${{").map(|(i, _)| i).collect();
    let mut out = HashSet::new();
    for (n, &at) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(text.len());
        let segment = &text[at + 3..end];
        let line = segment.split('\n').next().unwrap_or_default();
        if let Some(close) = line.find("}}")
            && let Some(name) = line[..close]
                .trim_matches([' ', '\t'])
                .strip_prefix("vars.")
        {
            out.insert(name);
        }
    }
    out
}

/// Lines of a `runs` script (1-based, with their text) that start a background job
/// (`cmd &` at the end of a line, `cmd & other`) whose command has no `>` redirection.
///
/// A small shell scanner: quotes (also across lines), backslash escapes, comments,
/// `$((…))` and `${…}` are skipped, and so are here-document bodies (`<<EOF`, `<<-EOF`,
/// `<<'EOF'`), which are data, not commands (C code in a here-document is full of
/// `&`). An `&` counts only as a control operator followed by a blank, the end of the
/// line, `)`, `}` or a comment; `&&`, `>&`, `<&`, `&>`, `|&` and a word such as `&card`
/// never count.
pub(crate) fn background_lines(script: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = script.split('\n').collect();
    let mut out = Vec::new();
    let (mut sq, mut dq) = (false, false);
    // The current simple command: does it redirect output, does it have any word?
    let (mut redirected, mut nonempty) = (false, false);
    let mut pending: Vec<(String, bool)> = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n];
        let b = line.as_bytes();
        let mut continued = false;
        let mut flagged = false;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if sq {
                sq = c != b'\'';
                i += 1;
                continue;
            }
            if dq {
                match c {
                    b'\\' => i += 1,
                    b'"' => dq = false,
                    _ => {}
                }
                i += 1;
                continue;
            }
            let prev = if i > 0 { b[i - 1] } else { b' ' };
            let next = b.get(i + 1).copied();
            match c {
                b'\\' => {
                    if i + 1 == b.len() {
                        continued = true;
                    }
                    nonempty = true;
                    i += 2;
                    continue;
                }
                b'\'' => {
                    sq = true;
                    nonempty = true;
                }
                b'"' => {
                    dq = true;
                    nonempty = true;
                }
                b'#' if i == 0 || b" \t;&|()".contains(&prev) => break,
                b'$' if next == Some(b'(') && b.get(i + 2) == Some(&b'(') => {
                    i = skip_balanced(b, i + 1, b'(', b')');
                    nonempty = true;
                    continue;
                }
                b'$' if next == Some(b'{') => {
                    i = skip_balanced(b, i + 1, b'{', b'}');
                    nonempty = true;
                    continue;
                }
                b'<' if next == Some(b'<') => {
                    if b.get(i + 2) == Some(&b'<') {
                        // here-string
                        i += 3;
                        continue;
                    }
                    let (delim, strip_tabs, end) = heredoc_word(b, i + 2);
                    if !delim.is_empty() {
                        pending.push((delim, strip_tabs));
                    }
                    nonempty = true;
                    i = end;
                    continue;
                }
                b'>' => redirected = true,
                b';' | b'|' | b'(' | b')' => {
                    if c == b'|' && next == Some(b'&') {
                        i += 2;
                    } else {
                        i += 1;
                    }
                    redirected = false;
                    nonempty = false;
                    continue;
                }
                b'&' => {
                    if next == Some(b'&') {
                        i += 2;
                        redirected = false;
                        nonempty = false;
                        continue;
                    }
                    let operator = !matches!(prev, b'>' | b'<')
                        && next != Some(b'>')
                        && next.is_none_or(|x| b" \t\r)}#".contains(&x));
                    if operator {
                        if nonempty && !redirected {
                            flagged = true;
                        }
                        redirected = false;
                        nonempty = false;
                    } else {
                        nonempty = true;
                    }
                }
                c if c.is_ascii_whitespace() => {}
                _ => nonempty = true,
            }
            i += 1;
        }
        if flagged {
            out.push((n + 1, line.to_string()));
        }
        n += 1;
        if !continued && !sq && !dq {
            redirected = false;
            nonempty = false;
        }
        // Here-document bodies follow the line that opened them, in order.
        if !sq && !dq {
            for (delim, strip_tabs) in std::mem::take(&mut pending) {
                while n < lines.len() {
                    let body = lines[n];
                    n += 1;
                    let body = if strip_tabs {
                        body.trim_start_matches('\t')
                    } else {
                        body
                    };
                    if body.trim_end_matches('\r') == delim {
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Index after the group opened by `b[at] == open`, nested groups included (or the end
/// of the line when it is not closed there).
fn skip_balanced(b: &[u8], at: usize, open: u8, close: u8) -> usize {
    let mut depth = 0usize;
    let mut i = at;
    while i < b.len() {
        if b[i] == open {
            depth += 1;
        } else if b[i] == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    b.len()
}

/// The delimiter word of a here-document operator whose `<<` ends before `at`: the word
/// with its quotes removed, whether `<<-` strips leading tabs, and the index after it.
fn heredoc_word(b: &[u8], mut at: usize) -> (String, bool, usize) {
    let strip_tabs = b.get(at) == Some(&b'-');
    if strip_tabs {
        at += 1;
    }
    while at < b.len() && (b[at] == b' ' || b[at] == b'\t') {
        at += 1;
    }
    let mut word = Vec::new();
    let mut quote = None;
    while at < b.len() {
        let c = b[at];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'\\' => {}
            None if c.is_ascii_whitespace() || b";|&<>()".contains(&c) => break,
            None => word.push(c),
        }
        at += 1;
    }
    (String::from_utf8_lossy(&word).into_owned(), strip_tabs, at)
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

    /// Number of notes.
    pub fn notes(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Note)
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
    // A pipeline file used by many build files is noted once, with the first of them.
    let mut noted = std::collections::HashSet::new();
    let findings = all
        .drain(..)
        .flatten()
        .filter(|f| {
            f.severity != Severity::Note || noted.insert((f.file.clone(), f.line, f.column, f.rule))
        })
        .collect();
    Report {
        files: files.len(),
        findings,
    }
}

fn lint_path(p: &Path, registry: &PipelineRegistry) -> Vec<Finding> {
    let name = p.display().to_string();
    match crate::limits::read_text(p) {
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

    fn bg(script: &str) -> Vec<usize> {
        background_lines(script)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn background_detection() {
        let fires = |s: &str| !bg(s).is_empty();
        assert!(fires("  ./server &"));
        assert!(!fires("  ./server > /tmp/log 2>&1 &"));
        assert!(!fires("  a && b"));
        assert!(!fires("  # ./server &"));
        assert!(!fires("  foo 2>&1"));
        assert!(!fires("  foo >&2"));
        assert!(!fires("  foo &> log"));
        assert!(!fires("  foo |& tee log"));
        assert!(fires("./daemon & echo started"));
        assert!(!fires("./daemon >/dev/null 2>&1 & echo started"));
        assert!(!fires("echo 'a & b'"));
        assert!(!fires("echo \"a & b\""));
        assert!(!fires("echo a \\& b"));
        assert!(!fires("cmd &> log &"));
        assert!(fires("a && b &"));
        assert!(fires("(sleep 1 &)"));
        assert!(fires("sleep 1 &# comment"));
        assert!(!fires("x=$((a & b))"));
        assert!(!fires("echo ${x//&/and}"));
        // a word that merely contains `&` is not an operator
        assert!(!fires("printf '%s' &card"));
        assert!(!fires("url=a?b=1&c=2"));
    }

    #[test]
    fn heredoc_bodies_are_data() {
        let c = "cat > main.c <<EOF\nint main(void) {\n  struct card c;\n  use(&card);\n  return x & 1;\n}\nEOF\n./a.out\n";
        assert_eq!(bg(c), Vec::<usize>::new());
        // quoted and tab-stripping delimiters; the line after the body is a command again
        let c = "cat <<-'END' > f\n\tfoo &\n\tEND\n./server &\n";
        assert_eq!(bg(c), vec![4]);
        let c = "cat <<\"X\" >a; cat <<Y >b\nx & y\nX\ny &\nY\nrun &\n";
        assert_eq!(bg(c), vec![6]);
        // `<<<` is a here-string, not a here-document
        assert_eq!(bg("cat <<< 'a'\nd &\n"), vec![2]);
    }

    #[test]
    fn quotes_and_continuations_span_lines() {
        assert_eq!(bg("echo 'a\n& b'\nc &\n"), vec![3]);
        assert_eq!(
            bg("./server --flag \\\n  > log 2>&1 &\n"),
            Vec::<usize>::new()
        );
        assert_eq!(bg("./server --flag \\\n  &\n"), vec![2]);
    }

    #[test]
    fn var_references() {
        let refs = |t: &str| {
            let mut v: Vec<String> = referenced_vars(t).into_iter().map(String::from).collect();
            v.sort();
            v
        };
        assert_eq!(refs("x ${{vars.foo}} y"), ["foo"]);
        assert_eq!(
            refs("x ${{ vars.foo }} y ${{\tvars.bar\t}}"),
            ["bar", "foo"]
        );
        assert!(refs("vars:\n  foo: 1\n").is_empty());
        assert_eq!(refs("${{vars.foobar}}"), ["foobar"]);
        assert_eq!(
            refs("${{${{vars.a}} ${{vars.b ${{vars.c\n}} ${{{vars.d}}"),
            ["a"]
        );
        assert!(refs(&"${{".repeat(100_000)).is_empty());
    }
}
