//! Paths resolved through the tree's own symlinks, never leaving the tree.

use std::collections::BTreeMap;

use crate::{Entry, Kind};

/// Split into components, dropping empty and `.`, applying `..` (never above the root).
pub fn normalize(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

pub(crate) struct View<'a> {
    nodes: BTreeMap<&'a str, &'a Entry>,
}

impl<'a> View<'a> {
    pub(crate) fn new(entries: &'a [Entry]) -> View<'a> {
        View {
            nodes: entries.iter().map(|e| (e.path.as_str(), e)).collect(),
        }
    }

    /// The path of the regular file `path` names, every link followed; `None` when it does
    /// not exist, is not a regular file or the links loop.
    pub(crate) fn resolve(&self, path: &str) -> Option<String> {
        let mut parts = normalize(path);
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while !parts.is_empty() {
            let c = parts.remove(0);
            done.push(c);
            let key = done.join("/");
            let e = self.nodes.get(key.as_str())?;
            if e.kind == Kind::Symlink {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                done.pop();
                let base = if e.link.starts_with('/') {
                    e.link.clone()
                } else {
                    format!("{}/{}", done.join("/"), e.link)
                };
                let mut next = normalize(&base);
                next.extend(parts);
                parts = next;
                done.clear();
            }
        }
        let key = done.join("/");
        (self.nodes.get(key.as_str())?.kind == Kind::Other).then_some(key)
    }
}
