//! Edges, cycles and the build order.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

use melange2_apk::version;
use melange2_resolve::Dependency;

use crate::{GraphError, Node, NodeId, Provided, display_path};

/// `from` needs `to`: `to` must be built before `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The dependent.
    pub from: NodeId,
    /// The dependency.
    pub to: NodeId,
    /// The need strings of `from` that `to` satisfies (sorted).
    pub via: Vec<String>,
}

/// A dependency cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// `a → b → c → a`: the first node is repeated at the end.
    pub path: Vec<NodeId>,
    /// The dropped edge `(from, to)`; `None` when the cycle could not be broken.
    pub broken: Option<(NodeId, NodeId)>,
}

/// The dependency graph.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Nodes; `nodes[i].id == NodeId(i)`.
    pub nodes: Vec<Node>,
    /// Edges left after breaking cycles, sorted by (from, to).
    pub edges: Vec<Edge>,
    /// Edges dropped to break cycles (their needs come from the repositories).
    pub dropped: Vec<Edge>,
    /// Every cycle found: broken ones (in the order they were broken) and unbreakable
    /// ones (`broken: None`, one per strongly connected component).
    pub cycles: Vec<Cycle>,
    /// Topological order, dependencies first. Nodes of unbreakable cycles, and nodes that
    /// depend on them, are left out.
    pub order: Vec<NodeId>,
}

/// Preference among providers of one need: a package/subpackage name over a declared
/// provide, then the highest version, then the lowest recipe name (then arch and id).
fn better(a: (&Node, &Provided), b: (&Node, &Provided)) -> Ordering {
    let (na, pa) = a;
    let (nb, pb) = b;
    pb.kind
        .is_package()
        .cmp(&pa.kind.is_package())
        .then_with(|| match (&pa.version, &pb.version) {
            (Some(x), Some(y)) => version::compare(y, x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| na.name.cmp(&nb.name))
        .then_with(|| na.id.cmp(&nb.id))
}

fn satisfies(dep: &Dependency, p: &Provided) -> bool {
    p.name == dep.name && dep.version_matches(p.version.as_deref(), "")
}

/// Where something a node needs is already available outside the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Offered {
    /// Nowhere: an edge needing it cannot be dropped.
    No,
    /// Only by the out-dir (an earlier build of the tree).
    ByOutDir,
    /// By a configured repository.
    ByRepository,
}

/// Link `nodes` (see the crate docs). `external(node, need)` tells whether the configured
/// repositories or the out-dir already offer `need` to `node`; only such edges may be dropped
/// to break a cycle. Edges the configured repositories satisfy are preferred, so the choice
/// does not change once the out-dir holds the cycle's packages. Node ids are reassigned to
/// the positions in `nodes`.
pub fn build(mut nodes: Vec<Node>, external: &dyn Fn(&Node, &str) -> Offered) -> Graph {
    for (i, n) in nodes.iter_mut().enumerate() {
        n.id = NodeId(i);
    }
    let edges = link(&nodes);
    let mut g = Graph {
        nodes,
        edges,
        dropped: Vec::new(),
        cycles: Vec::new(),
        order: Vec::new(),
    };
    g.break_cycles(external);
    g.order = g.topo_order();
    g
}

/// Every edge, merged per (from, to), sorted.
fn link(nodes: &[Node]) -> Vec<Edge> {
    // (arch, provided name) -> providers
    let mut index: HashMap<(&str, &str), Vec<(usize, usize)>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for (j, p) in n.provides.iter().enumerate() {
            index
                .entry((n.arch.as_str(), p.name.as_str()))
                .or_default()
                .push((i, j));
        }
    }
    let mut merged: BTreeMap<(usize, usize), BTreeSet<String>> = BTreeMap::new();
    for (x, n) in nodes.iter().enumerate() {
        for need in &n.needs {
            let dep = match Dependency::parse(need, &n.name) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(
                        "{} ({}): cannot parse need {need:?}: {e}; no edge for it",
                        display_path(&n.recipe.path),
                        n.arch
                    );
                    continue;
                }
            };
            if dep.conflict {
                continue;
            }
            let Some(cands) = index.get(&(n.arch.as_str(), dep.name.as_str())) else {
                continue;
            };
            // A recipe needing one of its own packages is no edge.
            let own = cands.iter().any(|&(i, j)| {
                i == x
                    && nodes[i].provides[j].kind.is_package()
                    && satisfies(&dep, &nodes[i].provides[j])
            });
            if own {
                continue;
            }
            let best = cands
                .iter()
                .filter(|&&(i, j)| i != x && satisfies(&dep, &nodes[i].provides[j]))
                .min_by(|&&(i, j), &&(k, l)| {
                    better(
                        (&nodes[i], &nodes[i].provides[j]),
                        (&nodes[k], &nodes[k].provides[l]),
                    )
                });
            if let Some(&(y, _)) = best {
                merged.entry((x, y)).or_default().insert(need.clone());
            }
        }
    }
    merged
        .into_iter()
        .map(|((f, t), via)| Edge {
            from: NodeId(f),
            to: NodeId(t),
            via: via.into_iter().collect(),
        })
        .collect()
}

/// Strongly connected components with more than one node, over the nodes with
/// `active[v]`, following `adj` (iterative Tarjan).
fn sccs(adj: &[Vec<usize>], active: &[bool]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = adj.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut calls: Vec<(usize, usize)> = Vec::new();
    let mut counter = 0usize;
    let mut out = Vec::new();
    for s in 0..n {
        if !active[s] || index[s] != UNSEEN {
            continue;
        }
        index[s] = counter;
        low[s] = counter;
        counter += 1;
        stack.push(s);
        on_stack[s] = true;
        calls.push((s, 0));
        while let Some(&mut (v, ref mut pos)) = calls.last_mut() {
            if *pos < adj[v].len() {
                let w = adj[v][*pos];
                *pos += 1;
                if !active[w] {
                    continue;
                }
                if index[w] == UNSEEN {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() > 1 {
                        out.push(comp);
                    }
                }
            }
        }
    }
    out
}

impl Graph {
    fn key(&self, v: usize) -> (&str, &str, usize) {
        (&self.nodes[v].name, &self.nodes[v].arch, v)
    }

    /// The remaining edge `from → to` (edges are sorted by (from, to)).
    fn edge(&self, from: usize, to: usize) -> Option<&Edge> {
        self.edges
            .binary_search_by_key(&(from, to), |e| (e.from.0, e.to.0))
            .ok()
            .map(|i| &self.edges[i])
    }

    /// Successor lists (dependencies) over `self.edges`, sorted by (name, arch).
    fn adjacency(&self) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); self.nodes.len()];
        for e in &self.edges {
            adj[e.from.0].push(e.to.0);
        }
        for a in &mut adj {
            a.sort_by(|&x, &y| self.key(x).cmp(&self.key(y)));
        }
        adj
    }

    /// The shortest cycle through `s` inside `comp` (BFS, deterministic).
    fn cycle_through(&self, adj: &[Vec<usize>], in_comp: &[bool], s: usize) -> Vec<usize> {
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut q = VecDeque::from([s]);
        while let Some(v) = q.pop_front() {
            for &w in &adj[v] {
                if !in_comp[w] {
                    continue;
                }
                if w == s {
                    let mut path = vec![s];
                    let mut cur = v;
                    while cur != s {
                        path.push(cur);
                        cur = parent[&cur];
                    }
                    path.push(s);
                    path.reverse();
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                    e.insert(v);
                    q.push_back(w);
                }
            }
        }
        // Unreachable for a strongly connected component.
        vec![s, s]
    }

    fn break_cycles(&mut self, external: &dyn Fn(&Node, &str) -> Offered) {
        let n = self.nodes.len();
        let mut cache: HashMap<(usize, String), Offered> = HashMap::new();
        let all = vec![true; n];
        let mut adj = self.adjacency();
        // Components still to examine, smallest (name, arch) member first.
        let mut work: BTreeSet<((String, String, usize), Vec<usize>)> = BTreeSet::new();
        let push = |g: &Graph, work: &mut BTreeSet<_>, comp: Vec<usize>| {
            let m = comp
                .iter()
                .copied()
                .min_by(|&a, &b| g.key(a).cmp(&g.key(b)))
                .unwrap_or(0);
            let (name, arch, _) = g.key(m);
            work.insert(((name.to_string(), arch.to_string(), m), comp));
        };
        for comp in sccs(&adj, &all) {
            push(self, &mut work, comp);
        }
        while let Some(((_, _, start), comp)) = work.pop_first() {
            let mut in_comp = vec![false; n];
            for &v in &comp {
                in_comp[v] = true;
            }
            let path = self.cycle_through(&adj, &in_comp, start);
            let mut cycle_edges: Vec<(usize, usize)> =
                path.windows(2).map(|w| (w[0], w[1])).collect();
            cycle_edges.sort_by(|a, b| {
                (self.key(a.0), self.key(a.1)).cmp(&(self.key(b.0), self.key(b.1)))
            });
            // The edge whose needs are best offered outside the tree (all of them), first in
            // (name, arch) order among equals.
            let mut breakable: Option<((usize, usize), Offered)> = None;
            for &(f, t) in &cycle_edges {
                let Some(e) = self.edge(f, t) else {
                    continue;
                };
                let offered = e
                    .via
                    .iter()
                    .map(|need| {
                        *cache
                            .entry((f, need.clone()))
                            .or_insert_with(|| external(&self.nodes[f], need))
                    })
                    .min()
                    .unwrap_or(Offered::No);
                if offered > Offered::No && breakable.is_none_or(|(_, best)| offered > best) {
                    breakable = Some(((f, t), offered));
                }
            }
            let breakable = breakable.map(|(e, _)| e);
            let path_ids: Vec<NodeId> = path.iter().map(|&v| NodeId(v)).collect();
            match breakable {
                Some((f, t)) => {
                    let cycle = Cycle {
                        path: path_ids,
                        broken: Some((NodeId(f), NodeId(t))),
                    };
                    tracing::warn!(
                        "cycle {}: {} takes {} from the repositories",
                        self.cycle_text(&cycle),
                        self.nodes[f].name,
                        self.nodes[t].name
                    );
                    self.cycles.push(cycle);
                    if let Ok(pos) = self
                        .edges
                        .binary_search_by_key(&(f, t), |e| (e.from.0, e.to.0))
                    {
                        let e = self.edges.remove(pos);
                        self.dropped.push(e);
                    }
                    adj[f].retain(|&w| w != t);
                    for sub in sccs(&adj, &in_comp) {
                        push(self, &mut work, sub);
                    }
                }
                None => {
                    let cycle = Cycle {
                        path: path_ids,
                        broken: None,
                    };
                    tracing::warn!(
                        "cycle {} cannot be broken: no edge of it is satisfied by the repositories",
                        self.cycle_text(&cycle)
                    );
                    self.cycles.push(cycle);
                }
            }
        }
    }

    /// Kahn's algorithm, ties broken by (name, arch).
    fn topo_order(&self) -> Vec<NodeId> {
        let n = self.nodes.len();
        let mut pending = vec![0usize; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in &self.edges {
            pending[e.from.0] += 1;
            dependents[e.to.0].push(e.from.0);
        }
        let mut ready: BinaryHeap<Reverse<(&str, &str, usize)>> = (0..n)
            .filter(|&v| pending[v] == 0)
            .map(|v| Reverse(self.key(v)))
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse((_, _, v))) = ready.pop() {
            order.push(NodeId(v));
            for &d in &dependents[v] {
                pending[d] -= 1;
                if pending[d] == 0 {
                    ready.push(Reverse(self.key(d)));
                }
            }
        }
        order
    }

    /// Cycles that could not be broken.
    pub fn unbreakable(&self) -> Vec<&Cycle> {
        self.cycles.iter().filter(|c| c.broken.is_none()).collect()
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// Direct dependencies of `id` (over the remaining edges).
    pub fn deps(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.edges
            .iter()
            .filter(move |e| e.from == id)
            .map(|e| e.to)
    }

    /// Direct dependents of `id` (over the remaining edges).
    pub fn dependents(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.edges
            .iter()
            .filter(move |e| e.to == id)
            .map(|e| e.from)
    }

    /// Distinct architectures of the nodes, sorted.
    pub fn archs(&self) -> BTreeSet<&str> {
        self.nodes.iter().map(|n| n.arch.as_str()).collect()
    }

    /// `name`, or `name (arch)` when the graph has several architectures.
    pub fn display_name(&self, id: NodeId) -> String {
        let n = &self.nodes[id.0];
        if self.archs().len() > 1 {
            n.label()
        } else {
            n.name.clone()
        }
    }

    /// `a → b → c → a` using node names (with ` (arch)` when there are several archs).
    pub fn cycle_text(&self, c: &Cycle) -> String {
        let multi = self.archs().len() > 1;
        c.path
            .iter()
            .map(|&id| {
                let n = &self.nodes[id.0];
                if multi { n.label() } else { n.name.clone() }
            })
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// Ids of the nodes in unbreakable cycles.
    pub fn in_unbreakable_cycles(&self) -> BTreeSet<NodeId> {
        self.unbreakable()
            .into_iter()
            .flat_map(|c| c.path.iter().copied())
            .collect()
    }

    /// The named recipes (by recipe name, or a package/subpackage name they build), in
    /// every architecture, plus all their transitive dependencies.
    ///
    /// # Errors
    /// [`GraphError::UnknownSelection`] naming every unknown name, with close names.
    pub fn select(&self, names: &[String]) -> Result<BTreeSet<NodeId>, GraphError> {
        let mut picked: Vec<usize> = Vec::new();
        let mut unknown = Vec::new();
        for want in names {
            let hits: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| {
                    let n = &self.nodes[i];
                    n.name == *want
                        || n.provides
                            .iter()
                            .any(|p| p.kind.is_package() && p.name == *want)
                })
                .collect();
            if hits.is_empty() {
                unknown.push(want.as_str());
            }
            picked.extend(hits);
        }
        if !unknown.is_empty() {
            let known: BTreeSet<&str> = self
                .nodes
                .iter()
                .flat_map(|n| {
                    n.provides
                        .iter()
                        .filter(|p| p.kind.is_package())
                        .map(|p| p.name.as_str())
                })
                .collect();
            let msgs: Vec<String> = unknown
                .iter()
                .map(|u| {
                    let close = close_names(u, &known);
                    if close.is_empty() {
                        format!("no recipe builds {u:?}")
                    } else {
                        format!("no recipe builds {u:?} (close names: {})", close.join(", "))
                    }
                })
                .collect();
            return Err(GraphError::UnknownSelection(msgs.join("; ")));
        }
        let mut seen = BTreeSet::new();
        let mut stack: Vec<NodeId> = picked.into_iter().map(NodeId).collect();
        let mut deps: Vec<Vec<NodeId>> = vec![Vec::new(); self.nodes.len()];
        for e in &self.edges {
            deps[e.from.0].push(e.to);
        }
        while let Some(v) = stack.pop() {
            if seen.insert(v) {
                stack.extend(deps[v.0].iter().copied());
            }
        }
        Ok(seen)
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Up to five known names close to `word` (edit distance, or containing it).
fn close_names(word: &str, known: &BTreeSet<&str>) -> Vec<String> {
    let limit = (word.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .iter()
        .filter_map(|&k| {
            let d = levenshtein(word, k);
            if d <= limit {
                Some((d, k))
            } else if word.len() >= 3 && k.contains(word) {
                Some((limit + 1, k))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(5)
        .map(|(_, k)| k.to_string())
        .collect()
}
