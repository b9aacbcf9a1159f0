//! Text, Graphviz and JSON renderings of a [`Graph`].

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::{Cycle, Edge, Graph, NodeId, display_path};

fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Graph {
    fn names(&self, ids: impl Iterator<Item = NodeId>) -> Vec<String> {
        ids.map(|i| self.nodes[i.0].name.clone()).collect()
    }

    fn cycle_status(&self, c: &Cycle) -> String {
        match c.broken {
            Some((f, t)) => format!(
                "broken: {} takes {} from the repositories",
                self.display_name(f),
                self.display_name(t)
            ),
            None => "unbreakable".to_string(),
        }
    }

    /// The build order, one line per node (`N. name (arch)  <- dep1, dep2`), then the
    /// nodes left out of the order, the cycles and the dropped edges.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (i, &id) in self.order.iter().enumerate() {
            let n = &self.nodes[id.0];
            let mut deps = self.names(self.deps(id));
            deps.sort();
            let _ = write!(s, "{}. {}", i + 1, n.label());
            if !deps.is_empty() {
                let _ = write!(s, "  <- {}", deps.join(", "));
            }
            s.push('\n');
        }
        let ordered: BTreeSet<NodeId> = self.order.iter().copied().collect();
        let mut left: Vec<NodeId> = (0..self.nodes.len())
            .map(NodeId)
            .filter(|i| !ordered.contains(i))
            .collect();
        left.sort_by(|a, b| {
            let (x, y) = (&self.nodes[a.0], &self.nodes[b.0]);
            (&x.name, &x.arch).cmp(&(&y.name, &y.arch))
        });
        if !left.is_empty() {
            s.push_str("\nnot ordered (in or behind an unbreakable cycle):\n");
            for id in left {
                let _ = writeln!(s, "  {}", self.nodes[id.0].label());
            }
        }
        if !self.cycles.is_empty() {
            s.push_str("\ncycles:\n");
            for c in &self.cycles {
                let _ = writeln!(s, "  {}  ({})", self.cycle_text(c), self.cycle_status(c));
            }
        }
        if !self.dropped.is_empty() {
            s.push_str("\ndropped edges (taken from the repositories):\n");
            for e in &self.dropped {
                let _ = writeln!(
                    s,
                    "  {} -> {}  via {}",
                    self.nodes[e.from.0].label(),
                    self.nodes[e.to.0].name,
                    e.via.join(", ")
                );
            }
        }
        s
    }

    /// Graphviz: node labels `name\narch`, edges dependent → dependency labelled with
    /// their needs, dropped edges dashed, edges of unbreakable cycles red.
    pub fn to_dot(&self) -> String {
        let mut red: BTreeSet<(NodeId, NodeId)> = BTreeSet::new();
        for c in self.unbreakable() {
            for w in c.path.windows(2) {
                red.insert((w[0], w[1]));
            }
        }
        let mut s = String::from("digraph melange {\n  node [shape=box];\n");
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "  {} [label={}];",
                n.id,
                dot_quote(&format!("{}\n{}", n.name, n.arch))
            );
        }
        let edge = |s: &mut String, e: &Edge, extra: &str| {
            let _ = writeln!(
                s,
                "  {} -> {} [label={}{extra}];",
                e.from,
                e.to,
                dot_quote(&e.via.join(", "))
            );
        };
        for e in &self.edges {
            let extra = if red.contains(&(e.from, e.to)) {
                ", color=red, fontcolor=red"
            } else {
                ""
            };
            edge(&mut s, e, extra);
        }
        for e in &self.dropped {
            edge(&mut s, e, ", style=dashed");
        }
        s.push_str("}\n");
        s
    }

    /// JSON: `nodes` (name, arch, file, provides, needs), `edges` and `dropped`
    /// (from/to names, arch, via), `cycles` (name paths, broken, unbreakable), `order`
    /// (names) and `order_nodes` (indices into `nodes`).
    pub fn to_json(&self) -> Value {
        let edge = |e: &Edge| {
            json!({
                "from": self.nodes[e.from.0].name,
                "to": self.nodes[e.to.0].name,
                "arch": self.nodes[e.from.0].arch,
                "via": e.via,
            })
        };
        json!({
            "nodes": self.nodes.iter().map(|n| json!({
                "name": n.name,
                "arch": n.arch,
                "file": display_path(&n.recipe.path),
                "provides": n.provides,
                "needs": n.needs,
            })).collect::<Vec<_>>(),
            "edges": self.edges.iter().map(edge).collect::<Vec<_>>(),
            "dropped": self.dropped.iter().map(edge).collect::<Vec<_>>(),
            "cycles": self.cycles.iter().map(|c| json!({
                "path": self.names(c.path.iter().copied()),
                "arch": c.path.first().map(|i| self.nodes[i.0].arch.clone()),
                "broken": c.broken.map(|(f, t)| json!({
                    "from": self.nodes[f.0].name,
                    "to": self.nodes[t.0].name,
                })),
                "unbreakable": c.broken.is_none(),
            })).collect::<Vec<_>>(),
            "order": self.names(self.order.iter().copied()),
            "order_nodes": self.order.iter().map(|i| i.0).collect::<Vec<_>>(),
        })
    }
}
