//! A quick pass over a YAML document's events before it is decoded, for what serde does
//! not check or checks too slowly:
//! * a key written twice in one mapping is an error, in every mapping (melange's YAML
//!   decoder refuses them; serde would keep the last value of a map silently); the error
//!   points at the second key;
//! * collections nested deeper than [`MAX_DEPTH`] fail at once, block or flow: the
//!   decoder's scanner takes time in proportion to the nesting depth for every token (a
//!   100 000-deep `[[[[…` would take hours before failing) and the decoder recurses once
//!   per level (a few thousand indented levels would overflow the stack);
//! * more than [`MAX_SUBPACKAGES`] entries in the top-level `subpackages` list fail at the
//!   first one over, before the decoder builds every one of them;
//! * aliases that would add more than [`MAX_ALIASED_BYTES`] to the document once expanded
//!   fail at the alias that goes over (nine aliases of nine aliases of … — a "billion laughs" — took every
//!   byte of memory): the expanded size of every anchored node is kept, so this costs
//!   one pass whatever the expansion.
//!
//! Only the first document is looked at, and only when the quick reader accepts the text;
//! what it does not accept is left to the decoder, which reports syntax errors.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::error::{At, Diagnostic, Error, Result, Source};
use crate::limits::{MAX_ALIASED_BYTES, MAX_DEPTH, MAX_SUBPACKAGES};

/// One open collection.
enum Frame {
    Map {
        path: String,
        keys: HashSet<String>,
        /// The next node is a key.
        want_key: bool,
        /// The key of the value being read.
        key: String,
    },
    Seq {
        path: String,
        index: usize,
    },
}

impl Frame {
    /// Field path of the node read next inside this collection.
    fn child_path(&self) -> String {
        match self {
            Frame::Map { path, key, .. } if path.is_empty() => key.clone(),
            Frame::Map { path, key, .. } => format!("{path}.{key}"),
            Frame::Seq { path, index } => format!("{path}[{index}]"),
        }
    }
}

#[derive(Default)]
struct Scan {
    stack: Vec<Frame>,
    /// Inside the first document still.
    done: bool,
    duplicates: Vec<(String, String, Marker)>,
    /// A limit that was gone over: where, the field path and what.
    over: Option<(Marker, String, String)>,
    /// Size of the document so far with every alias expanded (scalar bytes, plus one a
    /// node).
    expanded: usize,
    /// What the aliases so far add to it.
    aliased: usize,
    /// Expanded size of each anchored node, by anchor id.
    anchored: HashMap<usize, usize>,
    /// For each open collection: its anchor id (0: none) and `expanded` when it opened.
    opened: Vec<(usize, usize)>,
}

impl Scan {
    /// A node started or ended at the current position: move the enclosing collection on.
    fn node_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { want_key, .. }) => *want_key = !*want_key,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }

    /// A scalar: a key of the enclosing mapping (checked for duplicates) or a value.
    fn scalar(&mut self, value: &str, mark: Marker) {
        if let Some(Frame::Map {
            path,
            keys,
            want_key: true,
            key,
        }) = self.stack.last_mut()
        {
            // `<<` merges are not keys of their own.
            if value != "<<" && !keys.insert(value.to_string()) {
                self.duplicates
                    .push((path.clone(), value.to_string(), mark));
            }
            value.clone_into(key);
        }
        self.node_done();
    }

    fn open(&mut self, map: bool, mark: Marker) {
        if self.stack.len() >= MAX_DEPTH {
            // No path: it would name every level.
            let what = format!("collections nested more than {MAX_DEPTH} levels deep");
            self.stop(mark, String::new(), what);
            return;
        }
        let path = self.stack.last().map(Frame::child_path).unwrap_or_default();
        if let Some(Frame::Map {
            want_key: true,
            key,
            ..
        }) = self.stack.last_mut()
        {
            // A complex key: not compared.
            key.clear();
        }
        self.stack.push(if map {
            Frame::Map {
                path,
                keys: HashSet::new(),
                want_key: true,
                key: String::new(),
            }
        } else {
            Frame::Seq { path, index: 0 }
        });
    }
}

impl Scan {
    /// Stop looking at the document: a limit was gone over at `mark`.
    fn stop(&mut self, mark: Marker, path: String, what: String) {
        self.over = Some((mark, path, what));
        self.done = true;
    }

    /// A node starts at `mark`: refuse it when it is one subpackage too many.
    fn starts_node(&mut self, mark: Marker) {
        if let [Frame::Map { .. }, Frame::Seq { path, index }] = self.stack.as_slice()
            && *index >= MAX_SUBPACKAGES
            && path == "subpackages"
        {
            let path = format!("subpackages[{index}]");
            let what = format!("more than {MAX_SUBPACKAGES} subpackages");
            self.stop(mark, path, what);
        }
    }
}

impl Scan {
    /// An alias at `mark` adds `n` bytes to the expanded document; stop past the limit.
    fn alias(&mut self, n: usize, mark: Marker) {
        self.expanded = self.expanded.saturating_add(n);
        self.aliased = self.aliased.saturating_add(n);
        if self.aliased > MAX_ALIASED_BYTES {
            let what = format!(
                "aliases add more than {} MiB to the document once expanded",
                MAX_ALIASED_BYTES >> 20
            );
            self.stop(mark, String::new(), what);
        }
    }

    /// Keep the expansion of what the events do: a scalar or alias adds its size, an
    /// anchored node's size is remembered for its aliases.
    fn measure(&mut self, ev: &Event, mark: Marker) {
        match ev {
            Event::Scalar(value, _, anchor, _) => {
                self.expanded += value.len() + 1;
                if *anchor != 0 {
                    self.anchored.insert(*anchor, value.len() + 1);
                }
            }
            Event::Alias(id) => {
                let n = self.anchored.get(id).copied().unwrap_or(1);
                self.alias(n, mark);
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                self.opened.push((*anchor, self.expanded));
                self.expanded += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((anchor, start)) = self.opened.pop()
                    && anchor != 0
                {
                    self.anchored.insert(anchor, self.expanded - start);
                }
            }
            _ => {}
        }
    }
}

impl MarkedEventReceiver for Scan {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        self.measure(&ev, mark);
        if self.done {
            return;
        }
        if matches!(
            ev,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
        ) {
            self.starts_node(mark);
            if self.done {
                return;
            }
        }
        match ev {
            Event::Scalar(value, ..) => self.scalar(&value, mark),
            Event::Alias(_) => self.node_done(),
            Event::MappingStart(..) => self.open(true, mark),
            Event::SequenceStart(..) => self.open(false, mark),
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.node_done();
            }
            Event::DocumentEnd => self.done = true,
            _ => {}
        }
    }
}

/// Check `source`: the duplicate keys found (empty when none, or when the quick reader
/// does not accept the text), or an error when the document is nested too deeply or has
/// too many subpackages.
pub(crate) fn check(source: &Source) -> Result<Vec<Diagnostic>> {
    let mut scan = Scan::default();
    let mut parser = Parser::new_from_str(&source.text);
    // Event by event: `Parser::load` recurses once per level of nesting.
    let loaded = loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break Ok(()),
            Ok((ev, mark)) => scan.on_event(ev, mark),
            Err(e) => break Err(e),
        }
        if scan.done {
            break Ok(());
        }
    };
    if let Some((m, path, what)) = scan.over {
        if path.starts_with("subpackages[") {
            // Located by its path: a block mapping's marker is at its first key's end.
            let message = format!("{what} (the limit of a build file)");
            return Err(source.error(&path, At::Value, message));
        }
        return Err(limit_error(source, m, path, what));
    }
    if let Err(e) = loaded {
        if e.info().contains("recursion limit") {
            let what = format!("collections nested more than {MAX_DEPTH} levels deep");
            return Err(limit_error(source, *e.marker(), String::new(), what));
        }
        return Ok(Vec::new());
    }
    Ok(scan
        .duplicates
        .into_iter()
        .map(|(parent, key, mark)| {
            let path = if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            };
            let mut d = match source.error(&path, At::Key, format!("duplicate key {key:?}")) {
                Error::Config(d) => *d,
                _ => unreachable!("Source::error gives a diagnostic"),
            };
            (d.line, d.column) = (mark.line(), mark.col() + 1);
            d
        })
        .collect())
}

/// The error for a limit gone over at `m` (docs/config.md, "Limits").
fn limit_error(source: &Source, m: Marker, path: String, what: String) -> Error {
    Error::Config(Box::new(Diagnostic {
        file: source.name.to_string(),
        line: m.line(),
        column: m.col() + 1,
        path,
        message: format!("{what} (the limit of a build file)"),
        suggestion: None,
        cause: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dups(text: &str) -> Vec<String> {
        check(&Source::new("f.yaml", text))
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn duplicate_keys_in_every_mapping() {
        assert_eq!(
            dups("vars:\n  a: 1\n  b: [x, {c: 1, c: 2}]\n  a: 2\n"),
            [
                "f.yaml:3:17: vars.b[1].c: duplicate key \"c\"",
                "f.yaml:4:3: vars.a: duplicate key \"a\""
            ]
        );
        assert!(dups("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n").is_empty());
        assert!(dups("- a: 1\n- a: 1\n").is_empty());
        assert!(dups("? [a]\n: 1\n? [a]\n: 2\nb: 1\n").is_empty());
    }

    #[test]
    fn deep_nesting_fails_fast() {
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = check(&Source::new("f.yaml", deep)).unwrap_err();
        assert!(e.to_string().contains("nested more than 128"), "{e}");
        let ok = format!("a: {}{}\n", "[".repeat(50), "]".repeat(50));
        assert!(check(&Source::new("f.yaml", ok)).is_ok());
    }

    #[test]
    fn deep_block_nesting_fails_fast() {
        let nest = |n: usize| -> String {
            (0..n)
                .map(|i| format!("{}a{i}:\n", " ".repeat(i)))
                .collect()
        };
        let e = check(&Source::new("f.yaml", nest(5000))).unwrap_err();
        assert!(
            e.to_string().starts_with("f.yaml:129:")
                && e.to_string().contains("nested more than 128"),
            "{e}"
        );
        assert!(check(&Source::new("f.yaml", nest(120))).is_ok());
    }

    #[test]
    fn alias_bombs_fail_at_the_alias_that_goes_over() {
        // Nine aliases of nine aliases, eight levels: 9^9 scalars once expanded.
        let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        let mut prev = 'a';
        for n in "bcdefghi".chars() {
            let refs = vec![format!("*{prev}"); 9].join(", ");
            bomb.push_str(&format!("{n}: &{n} [{refs}]\n"));
            prev = n;
        }
        let e = check(&Source::new("f.yaml", bomb.clone())).unwrap_err();
        assert!(
            e.to_string()
                .contains("aliases add more than 4 MiB to the document once expanded"),
            "{e}"
        );
        // The same aliases a few levels deep are fine.
        let small: String = bomb.lines().take(4).map(|l| format!("{l}\n")).collect();
        assert!(check(&Source::new("f.yaml", small)).is_ok());
    }

    #[test]
    fn subpackage_count_is_capped_at_the_first_one_over() {
        let list = |n: usize| -> String {
            let items: String = (0..n).map(|i| format!("- name: s{i}\n")).collect();
            format!("package: {{name: x}}\nsubpackages:\n{items}")
        };
        let e = check(&Source::new("f.yaml", list(MAX_SUBPACKAGES + 5))).unwrap_err();
        let line = MAX_SUBPACKAGES + 3;
        assert_eq!(
            e.to_string(),
            format!(
                "f.yaml:{line}:3: subpackages[{MAX_SUBPACKAGES}]: more than {MAX_SUBPACKAGES} subpackages (the limit of a build file)"
            )
        );
        assert!(check(&Source::new("f.yaml", list(MAX_SUBPACKAGES))).is_ok());
    }
}
