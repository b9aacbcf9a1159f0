//! A YAML document as a tree of nodes that remember where they were written.
//!
//! serde stops at the first problem of a document. To report every problem of a build file
//! (and to skip unknown keys in pipeline files, as melange does), the decoder takes the
//! problem's field path, removes or neutralises that node in this tree, writes the tree
//! back as YAML and decodes again. Scalars are written back so that they decode exactly as
//! before: plain scalars stay plain (so `3.10` is still the text `3.10`, `~` still null),
//! everything else becomes a double-quoted string with the same value. YAML merge keys
//! (`<<: *anchor`) and aliases are resolved while the tree is built.
//!
//! Only used on the error path (and for pipeline files with unknown keys): a document that
//! decodes at once never gets here.

use std::collections::HashMap;
use std::fmt::Write as _;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::locate::{Seg, split_path};

/// One node and the position (1-based line and column) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub line: usize,
    pub column: usize,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar; `plain` scalars are untyped text (null, numbers, booleans, words).
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    fn new(kind: Kind, m: Marker) -> Node {
        Node {
            kind,
            line: m.line(),
            column: m.col() + 1,
        }
    }

    fn null_like(&self, kind: Kind) -> Node {
        Node {
            kind,
            line: self.line,
            column: self.column,
        }
    }

    /// The text of a scalar key.
    fn key_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Where an error about this node's value points: a block mapping at its first key,
    /// like [`crate::locate::position`].
    pub fn value_position(&self) -> (usize, usize) {
        match &self.kind {
            Kind::Map(entries) if !entries.is_empty() => (entries[0].0.line, entries[0].0.column),
            _ => (self.line, self.column),
        }
    }
}

#[derive(Default)]
struct Collect {
    events: Vec<(Event, Marker)>,
}

impl MarkedEventReceiver for Collect {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        self.events.push((ev, mark));
    }
}

/// Parse the first document of `text`, and say whether it had merge keys (`None`: a
/// syntax error or no document).
pub(crate) fn parse_merged(text: &str) -> Option<(Node, bool)> {
    let mut c = Collect::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut c, false).ok()?;
    let start = c
        .events
        .iter()
        .position(|(e, _)| matches!(e, Event::DocumentStart))?;
    let mut b = Builder {
        events: &c.events,
        pos: start + 1,
        anchors: HashMap::new(),
    };
    let mut root = b.node()?;
    let merged = apply_merges(&mut root);
    Some((root, merged))
}

struct Builder<'a> {
    events: &'a [(Event, Marker)],
    pos: usize,
    anchors: HashMap<usize, Node>,
}

impl Builder<'_> {
    fn node(&mut self) -> Option<Node> {
        let (ev, mark) = self.events.get(self.pos)?.clone();
        self.pos += 1;
        let (node, anchor) = match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain && !is_str_tag(tag.as_ref());
                (Node::new(Kind::Scalar { value, plain }, mark), anchor)
            }
            Event::Alias(id) => return self.anchors.get(&id).cloned(),
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    if matches!(self.events.get(self.pos)?.0, Event::SequenceEnd) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.node()?);
                }
                (Node::new(Kind::Seq(items), mark), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    if matches!(self.events.get(self.pos)?.0, Event::MappingEnd) {
                        self.pos += 1;
                        break;
                    }
                    let k = self.node()?;
                    let v = self.node()?;
                    entries.push((k, v));
                }
                (Node::new(Kind::Map(entries), mark), anchor)
            }
            _ => return None,
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Some(node)
    }
}

fn is_str_tag(tag: Option<&Tag>) -> bool {
    tag.is_some_and(|t| t.suffix == "str" || t.suffix.ends_with(":str"))
}

/// Resolve `<<` merge keys: keys of the merged mappings that the mapping does not set
/// itself are appended (earlier sources win), as Go's YAML decoder does. True when there
/// was one.
fn apply_merges(node: &mut Node) -> bool {
    match &mut node.kind {
        Kind::Scalar { .. } => false,
        Kind::Seq(items) => items.iter_mut().fold(false, |m, i| apply_merges(i) | m),
        Kind::Map(entries) => {
            let mut merged = false;
            for (_, v) in entries.iter_mut() {
                merged |= apply_merges(v);
            }
            let is_merge =
                |k: &Node| matches!(&k.kind, Kind::Scalar { value, plain: true } if value == "<<");
            if !entries.iter().any(|(k, _)| is_merge(k)) {
                return merged;
            }
            let mut sources = Vec::new();
            let mut own = Vec::new();
            for (k, v) in std::mem::take(entries) {
                if is_merge(&k) {
                    match v.kind {
                        Kind::Map(m) => sources.push(m),
                        Kind::Seq(items) => {
                            sources.extend(items.into_iter().filter_map(|i| match i.kind {
                                Kind::Map(m) => Some(m),
                                _ => None,
                            }))
                        }
                        Kind::Scalar { .. } => {}
                    }
                } else {
                    own.push((k, v));
                }
            }
            for src in sources {
                for (k, v) in src {
                    let dup = own
                        .iter()
                        .any(|(o, _)| o.key_text().is_some() && o.key_text() == k.key_text());
                    if !dup {
                        own.push((k, v));
                    }
                }
            }
            *entries = own;
            true
        }
    }
}

/// Write the tree as block-style YAML that decodes to the same values.
pub(crate) fn emit(node: &Node) -> String {
    let mut out = String::new();
    match &node.kind {
        Kind::Scalar { .. } => {
            out.push_str(&scalar(node));
            out.push('\n');
        }
        _ => block(&mut out, node, 0),
    }
    out
}

fn scalar(n: &Node) -> String {
    match &n.kind {
        Kind::Scalar { value, plain: true } if value.is_empty() => "~".to_string(),
        Kind::Scalar { value, plain: true } if !value.contains(['\n', '\r', '\t']) => value.clone(),
        Kind::Scalar { value, .. } => {
            serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_string())
        }
        Kind::Seq(_) => "[]".to_string(),
        Kind::Map(_) => "{}".to_string(),
    }
}

fn inline(n: &Node) -> Option<String> {
    match &n.kind {
        Kind::Scalar { .. } => Some(scalar(n)),
        Kind::Seq(v) if v.is_empty() => Some("[]".into()),
        Kind::Map(m) if m.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn block(out: &mut String, node: &Node, indent: usize) {
    let pad = " ".repeat(indent);
    match &node.kind {
        Kind::Map(entries) => {
            for (k, v) in entries {
                let key = match &k.kind {
                    Kind::Scalar { .. } => scalar(k),
                    _ => "\"?\"".to_string(),
                };
                match inline(v) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}{key}: {s}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}{key}:");
                        block(out, v, indent + 2);
                    }
                }
            }
        }
        Kind::Seq(items) => {
            for it in items {
                match inline(it) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}- {s}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}-");
                        block(out, it, indent + 2);
                    }
                }
            }
        }
        Kind::Scalar { .. } => {
            let _ = writeln!(out, "{pad}{}", scalar(node));
        }
    }
}

/// What to do with the node a decoding error points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fix {
    /// Remove a mapping entry (the field falls back to its default), or a list item.
    Remove,
    /// Replace a list item with null.
    Null,
    /// Replace a list item with an empty mapping.
    EmptyMap,
}

impl Node {
    fn walk_mut(&mut self, segs: &[Seg]) -> Option<&mut Node> {
        let Some((first, rest)) = segs.split_first() else {
            return Some(self);
        };
        let next = match (&mut self.kind, first) {
            (Kind::Map(entries), Seg::Key(k)) => entries
                .iter_mut()
                .rev()
                .find(|(key, _)| key.key_text() == Some(k.as_str()))
                .map(|(_, v)| v)?,
            (Kind::Seq(items), Seg::Index(i)) => items.get_mut(*i)?,
            _ => return None,
        };
        next.walk_mut(rest)
    }

    /// The node at a field path.
    pub fn get(&self, path: &str) -> Option<&Node> {
        let mut n = self;
        for seg in split_path(path) {
            n = match (&n.kind, &seg) {
                (Kind::Map(entries), Seg::Key(k)) => entries
                    .iter()
                    .rev()
                    .find(|(key, _)| key.key_text() == Some(k.as_str()))
                    .map(|(_, v)| v)?,
                (Kind::Seq(items), Seg::Index(i)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(n)
    }

    /// Position of the key `key` of the mapping at `path` (its last occurrence when
    /// `last`, else its first).
    pub fn key_position(&self, path: &str, key: &str, last: bool) -> Option<(usize, usize)> {
        let Kind::Map(entries) = &self.get(path)?.kind else {
            return None;
        };
        let mut it = entries.iter().filter(|(k, _)| k.key_text() == Some(key));
        let found = if last { it.next_back() } else { it.next() };
        found.map(|(k, _)| (k.line, k.column))
    }

    /// Remove the key `key` from the mapping at `path`: every occurrence, or only the
    /// last one (a duplicate). False when there is no such entry.
    pub fn remove_key(&mut self, path: &str, key: &str, only_last: bool) -> bool {
        let Some(Node {
            kind: Kind::Map(entries),
            ..
        }) = self.walk_mut(&split_path(path))
        else {
            return false;
        };
        if only_last {
            match entries.iter().rposition(|(k, _)| k.key_text() == Some(key)) {
                Some(i) => {
                    entries.remove(i);
                    true
                }
                None => false,
            }
        } else {
            let before = entries.len();
            entries.retain(|(k, _)| k.key_text() != Some(key));
            entries.len() != before
        }
    }

    /// Apply `fix` to the node at `path` (a mapping entry is always removed). False when
    /// the path does not lead to a node, or the root is meant.
    pub fn fix(&mut self, path: &str, fix: Fix) -> bool {
        let segs = split_path(path);
        let Some((last, parent)) = segs.split_last() else {
            return false;
        };
        let Some(p) = self.walk_mut(parent) else {
            return false;
        };
        match (&mut p.kind, last) {
            (Kind::Map(entries), Seg::Key(k)) => {
                match entries
                    .iter()
                    .rposition(|(key, _)| key.key_text() == Some(k.as_str()))
                {
                    Some(i) => {
                        entries.remove(i);
                        true
                    }
                    None => false,
                }
            }
            (Kind::Seq(items), Seg::Index(i)) if *i < items.len() => {
                match fix {
                    Fix::Remove => {
                        items.remove(*i);
                    }
                    Fix::Null => {
                        let n = items[*i].null_like(Kind::Scalar {
                            value: String::new(),
                            plain: true,
                        });
                        items[*i] = n;
                    }
                    Fix::EmptyMap => {
                        let n = items[*i].null_like(Kind::Map(Vec::new()));
                        items[*i] = n;
                    }
                }
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Node> {
        parse_merged(text).map(|(n, _)| n)
    }

    fn round_trip(text: &str) -> serde_norway::Value {
        serde_norway::from_str(&emit(&parse(text).unwrap())).unwrap()
    }

    #[test]
    fn emitted_yaml_keeps_scalar_text_and_types() {
        let text = "a: 3.10\nb: ~\nc:\nd: 'x: y'\ne: |\n  line1\n  line2\nf: [1, 'two', {g: h}]\ng: !!str 007\nh: true\ni: \"tab\\there\"\nj: {}\nk: []\nl: -foo # comment\n";
        let want: serde_norway::Value = serde_norway::from_str(text).unwrap();
        assert_eq!(round_trip(text), want);
        // literal text of plain scalars survives (3.10 is not rewritten as 3.1)
        assert!(emit(&parse(text).unwrap()).contains("a: 3.10\n"));
    }

    #[test]
    fn merges_and_aliases() {
        let text =
            "base: &b\n  x: 1\n  y: 2\nuse:\n  <<: *b\n  y: 3\nlist:\n  - &i {k: v}\n  - *i\n";
        let t = parse(text).unwrap();
        let v: serde_norway::Value = serde_norway::from_str(&emit(&t)).unwrap();
        assert_eq!(v["use"]["x"], serde_norway::Value::from(1));
        assert_eq!(v["use"]["y"], serde_norway::Value::from(3));
        assert_eq!(v["list"][1]["k"], serde_norway::Value::from("v"));
        // the merged key keeps its own position (inside the anchor)
        assert_eq!(t.get("use.x").map(|n| (n.line, n.column)), Some((2, 6)));
    }

    #[test]
    fn fixes() {
        let mut t = parse("a:\n  b: 1\n  b: 2\n  c: [x, y]\n").unwrap();
        assert_eq!(t.key_position("a", "b", true), Some((3, 3)));
        assert!(t.remove_key("a", "b", true));
        assert_eq!(t.get("a.b").map(|n| n.line), Some(2));
        assert!(t.fix("a.c[0]", Fix::Null));
        assert!(t.fix("a.c", Fix::Remove));
        assert!(t.get("a.c").is_none());
        assert!(!t.fix("", Fix::Remove));
        assert!(!t.fix("a.zz.q", Fix::Remove));
        assert_eq!(emit(&t), "a:\n  b: 1\n");
    }

    #[test]
    fn syntax_errors_give_no_tree() {
        assert!(parse("a: [\n").is_none());
        assert!(parse("").is_none());
    }
}
