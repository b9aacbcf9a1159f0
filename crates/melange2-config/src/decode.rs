//! Decoding that does not stop at the first problem.
//!
//! A document is decoded with serde. When that fails, the field path of the error says
//! which node is wrong; the node is removed (or, in a list, neutralised) in a
//! [`tree`](crate::tree) of the document, the tree is written back as YAML and decoded
//! again, until it decodes. Every error met on the way is kept, with its position in the
//! original text, so one pass reports every unknown key and wrong type of a build file.
//! Unknown keys can also be skipped instead of reported: pipeline files are read that
//! way, as melange reads them.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::error::{Diagnostic, Error, Problem, Result, Source};
use crate::tree::{self, Fix, Node};

/// What to do with a key the schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnknownKeys {
    /// An error (build files, as melange decodes them with known fields only).
    Error,
    /// Skip it and remember it (pipeline files, which melange decodes leniently).
    Ignore,
}

/// A decoded document and what was wrong with it.
#[derive(Debug)]
pub(crate) struct Decoded<T> {
    /// The value, decoded from the document without the nodes that were wrong.
    pub value: T,
    /// Every problem found (unknown keys too, with [`UnknownKeys::Error`]).
    pub errors: Vec<Diagnostic>,
    /// Unknown keys that were skipped ([`UnknownKeys::Ignore`]).
    pub ignored: Vec<Diagnostic>,
    /// Field paths whose node was removed or replaced because of an error: later checks
    /// must not complain about the defaults that took their place.
    pub pruned: Vec<String>,
}

/// `true` when `path` is one of the `pruned` paths or lies below one.
pub(crate) fn is_pruned(pruned: &[String], path: &str) -> bool {
    pruned.iter().any(|p| {
        path == p
            || path
                .strip_prefix(p.as_str())
                .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
    })
}

/// More rounds than any real file needs; a guard against a fix that changes nothing.
const MAX_ROUNDS: usize = 500;

/// Most text re-read while going on after problems (each round re-reads the whole
/// document): 500 rounds of a file up to 128 KiB, a handful of a 16 MiB one. Past it the
/// problems found so far are reported, with a note that the search stopped.
const MAX_RECOVERY_BYTES: usize = 64 << 20;

/// Decode `source` as a `T`, going on after errors. `Err` only when nothing could be
/// decoded (a YAML syntax error, a document of the wrong shape) or after too many
/// problems; it then carries every problem found so far.
pub(crate) fn decode<T: DeserializeOwned>(
    source: &Source,
    unknown: UnknownKeys,
) -> Result<Decoded<T>> {
    // Duplicate keys are reported with everything else; too deep a nesting stops here.
    let duplicates = crate::scan::check(source)?;
    let mut decoded = decode_checked::<T>(source, unknown)?;
    if !duplicates.is_empty() {
        decoded.errors.extend(duplicates);
        decoded.errors.sort_by_key(|d| (d.line, d.column));
        decoded.errors.dedup();
    }
    Ok(decoded)
}

fn decode_checked<T: DeserializeOwned>(
    source: &Source,
    unknown: UnknownKeys,
) -> Result<Decoded<T>> {
    let text: &str = &source.text;
    let has_merge = text.contains("<<:");
    // The common case: the document decodes as it is. Merge keys need the tree.
    let mut first: Option<(Diagnostic, Problem)> = None;
    if !has_merge {
        match serde_norway::from_str::<T>(text) {
            Ok(value) => {
                return Ok(Decoded {
                    value,
                    errors: Vec::new(),
                    ignored: Vec::new(),
                    pruned: Vec::new(),
                });
            }
            Err(e) => first = Some(source.yaml_problem(&e)),
        }
    }
    let Some((mut tree, merged)) = tree::parse_merged(text) else {
        // Not even YAML: report what serde says about the original text.
        let e = serde_norway::from_str::<T>(text)
            .err()
            .map(|e| source.yaml_error(&e))
            .unwrap_or_else(|| source.error("", crate::error::At::Value, "not a YAML document"));
        return Err(e);
    };
    if merged {
        // serde saw the merge keys themselves (`<<` is no field): start from the merged
        // document instead.
        first = None;
    }
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut ignored = Vec::new();
    let mut pruned = Vec::new();
    let mut attempts: HashMap<String, usize> = HashMap::new();
    let mut reread = 0usize;
    for _ in 0..MAX_ROUNDS {
        // The first problem comes with serde's own position in the original text; later
        // ones are decoded from re-written text and placed with the tree.
        let (mut d, problem, exact) = match first.take() {
            Some((d, p)) => (d, p, true),
            None => {
                let emitted = tree::emit(&tree);
                reread = reread.saturating_add(emitted.len());
                if reread > MAX_RECOVERY_BYTES && !(errors.is_empty() && ignored.is_empty()) {
                    errors.push(stopped_looking(source, reread));
                    return Err(Error::from_diagnostics(errors));
                }
                match serde_norway::from_str::<T>(&emitted) {
                    Ok(value) => {
                        return Ok(Decoded {
                            value,
                            errors,
                            ignored,
                            pruned,
                        });
                    }
                    Err(e) => {
                        let (d, p) = Source::new(source.name.clone(), emitted).yaml_problem(&e);
                        (d, p, false)
                    }
                }
            }
        };
        let fixed = match &problem {
            Problem::UnknownKey { parent, key } => {
                if !exact && let Some(pos) = tree.key_position(parent, key, false) {
                    (d.line, d.column) = pos;
                }
                let ok = tree.remove_key(parent, key, false);
                match unknown {
                    UnknownKeys::Error => errors.push(d),
                    UnknownKeys::Ignore => {
                        d.message = format!("unknown key {key:?} ignored");
                        d.suggestion = None;
                        ignored.push(d);
                    }
                }
                ok
            }
            Problem::Duplicate { parent, key } => {
                if let Some(pos) = tree.key_position(parent, key, true) {
                    (d.line, d.column) = pos;
                }
                let ok = tree.remove_key(parent, key, true);
                errors.push(d);
                ok
            }
            Problem::Other => {
                let path = d.path.clone();
                let n = attempts.entry(path.clone()).or_insert(0);
                *n += 1;
                let fix = match *n {
                    1 => Fix::Null,
                    2 => Fix::EmptyMap,
                    3 => Fix::Remove,
                    _ => {
                        errors.push(d);
                        return Err(Error::from_diagnostics(errors));
                    }
                };
                if *n == 1 {
                    if !exact && let Some(pos) = position_of(&tree, &path) {
                        (d.line, d.column) = pos;
                    }
                    errors.push(d);
                    pruned.push(path.clone());
                }
                tree.fix(&path, fix)
            }
        };
        if !fixed {
            if errors.is_empty() {
                // An unknown key that could not be removed: report it rather than loop.
                errors.append(&mut ignored);
            }
            return Err(Error::from_diagnostics(errors));
        }
    }
    Err(Error::from_diagnostics(errors))
}

/// The note closing the problems of a file too large to go on looking for more.
fn stopped_looking(source: &Source, reread: usize) -> Diagnostic {
    Diagnostic {
        file: source.name.to_string(),
        line: source.text.lines().count().max(1),
        column: 1,
        path: String::new(),
        message: format!(
            "stopped looking for more problems after re-reading {} MiB (the file is large; fix these and run again)",
            reread >> 20
        ),
        suggestion: None,
        cause: None,
    }
}

/// Where the node at `path` (or its nearest existing ancestor) starts.
fn position_of(tree: &Node, path: &str) -> Option<(usize, usize)> {
    let mut p = path;
    loop {
        if let Some(n) = tree.get(p) {
            return Some(n.value_position());
        }
        let cut = p.rfind(['.', '['])?;
        p = &p[..cut];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Configuration, Pipeline};

    fn cfg(text: &str) -> Result<Decoded<Configuration>> {
        decode(&Source::new("f.yaml", text), UnknownKeys::Error)
    }

    fn shown(d: &[Diagnostic]) -> Vec<String> {
        d.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_problem_with_its_position() {
        let d = cfg("package:\n  name: a\n  epcho: 1\n  epoch: x\npipeline:\n  - nmae: b\n  - runs: c\n    with: {a: b}\n  - oops\nvars:\n  v: [1]\n").unwrap();
        assert_eq!(
            shown(&d.errors),
            [
                "f.yaml:3:3: package.epcho: unknown key \"epcho\" (valid keys: name, version, epoch, description, url, commit, target-architecture, copyright, dependencies, options, scriptlets, checks, cpe, setcap, timeout, resources, test-resources, annotations) (did you mean \"epoch\"?)",
                "f.yaml:4:10: package.epoch: invalid type: string \"x\", expected u64",
                "f.yaml:6:5: pipeline[0].nmae: unknown key \"nmae\" (valid keys: name, uses, with, runs, pipeline, inputs, needs, label, if, assertions, working-directory, environment, retry) (did you mean \"name\"?)",
                "f.yaml:9:5: pipeline[2]: invalid type: string \"oops\", expected struct Pipeline",
                "f.yaml:11:6: vars.v: invalid type: sequence, expected a string",
            ]
        );
        assert!(is_pruned(&d.pruned, "package.epoch"));
        assert!(is_pruned(&d.pruned, "pipeline[2].runs"));
        assert!(!is_pruned(&d.pruned, "pipeline[1]"));
        assert!(!is_pruned(&d.pruned, "package.epochs"));
        assert_eq!(d.value.package.name, "a");
        assert_eq!(d.value.pipeline[1].runs, "c");
    }

    #[test]
    fn duplicates_point_at_the_second_key() {
        let d = cfg("package:\n  name: a\n  name: b\n").unwrap();
        assert_eq!(
            shown(&d.errors),
            ["f.yaml:3:3: package.name: duplicate key \"name\""]
        );
    }

    #[test]
    fn unknown_keys_can_be_ignored() {
        let src = Source::new(
            "p.yaml",
            "name: x\ndescription: top\ninputs:\n  a:\n    description: a\n    type: string\npipeline:\n  - runs: echo\n    description: step\n",
        );
        let d = decode::<Pipeline>(&src, UnknownKeys::Ignore).unwrap();
        assert!(d.errors.is_empty());
        assert_eq!(
            shown(&d.ignored),
            [
                "p.yaml:2:1: description: unknown key \"description\" ignored",
                "p.yaml:6:5: inputs.a.type: unknown key \"type\" ignored",
                "p.yaml:9:5: pipeline[0].description: unknown key \"description\" ignored",
            ]
        );
        assert_eq!(d.value.pipeline[0].runs, "echo");
    }

    #[test]
    fn merge_keys_however_written() {
        let d = cfg("x: &x\n  name: m\npackage:\n  << : *x\n  version: '1'\n").unwrap();
        // `x` is no key of a build file; the merge itself is fine
        assert_eq!(shown(&d.errors).len(), 1, "{:?}", shown(&d.errors));
        assert!(shown(&d.errors)[0].starts_with("f.yaml:1:1: x: unknown key"));
        assert_eq!(d.value.package.name, "m");
    }

    #[test]
    fn hopeless_documents_fail() {
        assert!(cfg("- a\n").is_err());
        assert!(cfg("a: [\n").is_err());
    }
}
