//! The dependency resolver (spec part E): deterministic and non-backtracking,
//! following apko's algorithm (E.4) and candidate ranking (E.4.1).
//!
//! * Every package contributes its own name (at its version) and each of its
//!   provides; a versioned provide (`name=ver`) behaves like a package `name`
//!   at `ver`, a virtual provide (`name`) only satisfies unversioned
//!   dependencies. Any provider is a candidate (apko does not require
//!   `provider_priority` for virtual providers).
//! * Requested constraints are applied first: `!x` disqualifies every
//!   provider of `x`, `name op ver` disqualifies packages (and versioned
//!   provides) of `name` at other versions. The constraint with the fewest
//!   candidates is resolved first, then its dependencies depth-first (again
//!   fewest candidates first, ties by dependency text); the dependencies of a
//!   selected package constrain the rest of the resolution the same way.
//! * One package per name: selecting a package rules out every other
//!   package with the same name, and packages that share a versioned provide
//!   with it (two packages with the same virtual provide may coexist, and a
//!   package name never clashes with a virtual provide of the same name).
//! * Pinned repositories (`@tag`): their packages are only candidates for a
//!   constraint pinned to the tag (`name@tag`) and for the dependencies
//!   resolved below it.
//! * `install_if`: once the request is resolved, packages all of whose
//!   `install_if` conditions are met by the selection are added (with their
//!   dependencies) until nothing changes.
//! * Output: install order, every package after its dependencies, ties by
//!   name; dependency cycles are installed together, ordered by name.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use melange2_apk::IndexEntry;

use crate::dep::{Dependency, Provide, normalize_version};
use crate::error::{Error, Result, Unsatisfiable};

/// At most this many refused candidates are listed in an error.
const MAX_LISTED: usize = 6;

/// A package available for resolution.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its index record.
    pub entry: IndexEntry,
    /// Position of its repository in the configured list.
    pub repository: usize,
    /// Tag of its repository when pinned (`@tag`).
    pub tag: Option<String>,
}

/// One name a package answers to.
#[derive(Debug, Clone)]
struct NameRef {
    pkg: usize,
    /// Version under this name; `None` for a virtual provide.
    version: Option<String>,
    /// The package's own name (not a provide).
    own: bool,
}

/// All packages of the configured repositories for one architecture, with
/// a name → providers map.
#[derive(Debug, Clone, Default)]
pub struct Universe {
    packages: Vec<Candidate>,
    provides: Vec<Vec<Provide>>,
    by_name: HashMap<String, Vec<NameRef>>,
    install_if: Vec<usize>,
}

impl Universe {
    /// Index the candidates (in repository order, then index order; the
    /// position is the last tie-breaker). Malformed provides are skipped
    /// with a warning.
    pub fn new(packages: Vec<Candidate>) -> Self {
        let mut by_name: HashMap<String, Vec<NameRef>> = HashMap::new();
        let mut provides = Vec::with_capacity(packages.len());
        let mut install_if = Vec::new();
        let (mut bad_provides, mut first_bad) = (0usize, String::new());
        for (i, c) in packages.iter().enumerate() {
            let e = &c.entry;
            by_name.entry(e.name.clone()).or_default().push(NameRef {
                pkg: i,
                version: Some(e.version.clone()),
                own: true,
            });
            let mut list = Vec::with_capacity(e.provides.len());
            for p in &e.provides {
                match Provide::parse(p, &format!("{}-{}", e.name, e.version)) {
                    Ok(p) if p.name == e.name => {}
                    Ok(p) => {
                        let refs = by_name.entry(p.name.clone()).or_default();
                        if !refs.iter().any(|r| r.pkg == i) {
                            refs.push(NameRef {
                                pkg: i,
                                version: p.version.clone(),
                                own: false,
                            });
                        }
                        list.push(p);
                    }
                    Err(err) => {
                        tracing::debug!("ignoring provide: {err}");
                        if bad_provides == 0 {
                            first_bad = err.to_string();
                        }
                        bad_provides += 1;
                    }
                }
            }
            provides.push(list);
            if !e.install_if.is_empty() {
                install_if.push(i);
            }
        }
        if bad_provides > 0 {
            tracing::warn!("ignored {bad_provides} malformed provides (first: {first_bad})");
        }
        Universe {
            packages,
            provides,
            by_name,
            install_if,
        }
    }

    /// The packages, in the order given to [`Universe::new`].
    pub fn packages(&self) -> &[Candidate] {
        &self.packages
    }

    /// Number of packages.
    pub fn len(&self) -> usize {
        self.packages.len()
    }

    /// True when there are no packages.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// Resolve constraints (E.1 syntax) into an install order.
    ///
    /// # Errors
    /// [`Error::Dependency`] for malformed constraints, [`Error::Unsatisfiable`]
    /// with the dependency chain when no consistent selection is found.
    pub fn solve<S: AsRef<str>>(&self, request: &[S]) -> Result<Solution> {
        let mut deps = Vec::new();
        for r in request {
            let r = r.as_ref().trim();
            if r.is_empty() {
                continue;
            }
            deps.push(Dependency::parse(r, "request")?);
        }
        deps.sort();
        deps.dedup();
        let mut s = State::new(self);
        s.solve(&deps)?;
        Ok(s.finish())
    }

    /// [`Universe::solve`] over packages already installed (a bootstrap root filesystem's
    /// apk database): they answer every dependency they satisfy, no other version of their
    /// names is chosen, and the solution holds only the packages to add. A request an
    /// installed package cannot satisfy (`busybox>=2` over busybox 1.36) is unsatisfiable.
    ///
    /// # Errors
    /// As [`Universe::solve`].
    pub fn solve_over<S: AsRef<str>>(
        &self,
        request: &[S],
        installed: &[IndexEntry],
    ) -> Result<Solution> {
        if installed.is_empty() {
            return self.solve(request);
        }
        let n = installed.len();
        let mut all: Vec<Candidate> = installed
            .iter()
            .map(|e| Candidate {
                entry: e.clone(),
                repository: INSTALLED,
                tag: None,
            })
            .collect();
        all.extend(self.packages.iter().cloned());
        let u = Universe::new(all);
        let mut deps = Vec::new();
        for r in request {
            let r = r.as_ref().trim();
            if !r.is_empty() {
                deps.push(Dependency::parse(r, "request")?);
            }
        }
        deps.sort();
        deps.dedup();
        let mut s = State::new(&u);
        for p in 0..n {
            s.mark_selected(p);
        }
        s.solve(&deps)?;
        let sol = s.finish();
        let added = |p: usize| p.checked_sub(n);
        Ok(Solution {
            order: sol.order.into_iter().filter_map(added).collect(),
            dependencies: sol
                .dependencies
                .into_iter()
                .filter_map(|(p, d)| Some((added(p)?, d.into_iter().filter_map(added).collect())))
                .collect(),
        })
    }

    fn label(&self, p: usize) -> String {
        let e = &self.packages[p].entry;
        format!("{}-{}", e.name, e.version)
    }

    fn entry(&self, p: usize) -> &IndexEntry {
        &self.packages[p].entry
    }

    /// The version under which `p` answers to `d.name` if it satisfies `d`
    /// (`Some(None)` for a virtual provide), else `None`.
    fn satisfies(&self, d: &Dependency, p: usize) -> Option<Option<&str>> {
        let e = self.entry(p);
        if e.name == d.name {
            return d
                .version_matches(Some(&e.version), &e.checksum)
                .then_some(Some(e.version.as_str()));
        }
        self.provides[p]
            .iter()
            .find(|pr| pr.name == d.name && d.version_matches(pr.version.as_deref(), &e.checksum))
            .map(|pr| pr.version.as_deref())
    }
}

/// A resolution: install order and the dependency edges used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// Package positions (into [`Universe::packages`]) in install order.
    pub order: Vec<usize>,
    /// For each selected package, the selected packages it depends on.
    pub dependencies: BTreeMap<usize, BTreeSet<usize>>,
}

#[derive(Clone)]
struct State<'u> {
    u: &'u Universe,
    selected: Vec<usize>,
    chosen: HashSet<usize>,
    /// Name (own name or versioned provide) → (owner, owns it by its own name).
    owners: HashMap<String, (usize, bool)>,
    /// Virtual provide name → selected providers.
    virtuals: HashMap<String, Vec<usize>>,
    /// (origin, version) of selected packages.
    origins: HashSet<(String, String)>,
    /// Refused packages and why.
    disqualified: HashMap<usize, String>,
    /// Conflicts (`!x`) and who declared them (`None`: the request).
    conflicts: Vec<(Dependency, Option<usize>)>,
    edges: BTreeMap<usize, BTreeSet<usize>>,
    /// Parsed dependencies (or why they do not parse).
    parsed: HashMap<usize, std::result::Result<Vec<Dependency>, String>>,
}

/// The repository index of a package already installed ([`Universe::solve_over`]).
const INSTALLED: usize = usize::MAX;

fn unsat(chain: &[String], dep: &Dependency, problem: impl Into<String>) -> Error {
    Error::Unsatisfiable(Box::new(Unsatisfiable {
        chain: chain.to_vec(),
        dependency: dep.to_string(),
        problem: problem.into(),
    }))
}

impl<'u> State<'u> {
    fn new(u: &'u Universe) -> Self {
        State {
            u,
            selected: Vec::new(),
            chosen: HashSet::new(),
            owners: HashMap::new(),
            virtuals: HashMap::new(),
            origins: HashSet::new(),
            disqualified: HashMap::new(),
            conflicts: Vec::new(),
            edges: BTreeMap::new(),
            parsed: HashMap::new(),
        }
    }

    fn deps_of(&mut self, p: usize) -> std::result::Result<Vec<Dependency>, String> {
        if let Some(d) = self.parsed.get(&p) {
            return d.clone();
        }
        let e = self.u.entry(p);
        let ctx = self.u.label(p);
        let parsed = e
            .depends
            .iter()
            .map(|d| {
                Dependency::parse(d, &ctx).map(|mut d| {
                    // pins are not allowed in package metadata: ignore them
                    d.tag = None;
                    d
                })
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.to_string());
        self.parsed.insert(p, parsed.clone());
        parsed
    }

    fn disqualify(&mut self, p: usize, why: impl FnOnce() -> String) {
        if !self.chosen.contains(&p) {
            self.disqualified.entry(p).or_insert_with(why);
        }
    }

    /// Apply a constraint to the whole universe (E.4 step 2): conflicts
    /// disqualify every provider they match, versioned constraints every
    /// package/versioned provide of the name at another version.
    fn constrain(&mut self, d: &Dependency, by: Option<usize>, chain: &[String]) -> Result<()> {
        let who = || match by {
            Some(p) => self.u.label(p),
            None => "the request".to_string(),
        };
        let refs = self.u.by_name.get(&d.name).cloned().unwrap_or_default();
        if d.conflict {
            let pos = d.positive();
            if let Some(q) = self
                .selected
                .iter()
                .copied()
                .find(|&q| Some(q) != by && self.u.satisfies(&pos, q).is_some())
            {
                return Err(unsat(
                    chain,
                    d,
                    format!(
                        "conflicts with {}, which is already selected",
                        self.u.label(q)
                    ),
                ));
            }
            let w = who();
            for r in refs {
                if Some(r.pkg) != by && self.u.satisfies(&pos, r.pkg).is_some() {
                    self.disqualify(r.pkg, || format!("conflicts with {w} (!{pos})"));
                }
            }
            self.conflicts.push((pos, by));
            return Ok(());
        }
        if d.version.is_none() {
            return Ok(());
        }
        let w = who();
        for r in refs {
            if Some(r.pkg) == by || r.version.is_none() {
                continue;
            }
            if !d.version_matches(r.version.as_deref(), &self.u.entry(r.pkg).checksum) {
                self.disqualify(r.pkg, || format!("{w} requires {}", d.positive()));
            }
        }
        Ok(())
    }

    /// Why `p` cannot join the current selection, if it cannot.
    fn clash(&mut self, p: usize) -> Option<String> {
        let e = self.u.entry(p);
        if let Some(&(q, own)) = self.owners.get(&e.name)
            && q != p
        {
            return Some(if own {
                format!("{} is already selected", self.u.label(q))
            } else {
                format!("{} is selected and provides {}", self.u.label(q), e.name)
            });
        }
        for pr in &self.u.provides[p] {
            match &pr.version {
                Some(_) => {
                    if let Some(&(q, _)) = self.owners.get(&pr.name)
                        && q != p
                    {
                        return Some(format!(
                            "{} is selected and also provides {}",
                            self.u.label(q),
                            pr.name
                        ));
                    }
                    if let Some(q) = self.virtuals.get(&pr.name).and_then(|v| v.first())
                        && *q != p
                    {
                        return Some(format!(
                            "{} is selected and also provides {}",
                            self.u.label(*q),
                            pr.name
                        ));
                    }
                }
                None => {
                    if let Some(&(q, false)) = self.owners.get(&pr.name)
                        && q != p
                    {
                        return Some(format!(
                            "{} is selected and provides {} with a version",
                            self.u.label(q),
                            pr.name
                        ));
                    }
                }
            }
        }
        for (c, by) in &self.conflicts {
            if Some(p) != *by && self.u.satisfies(c, p).is_some() {
                let w = by.map_or_else(|| "the request".to_string(), |b| self.u.label(b));
                return Some(format!("conflicts with {w} (!{c})"));
            }
        }
        match self.deps_of(p) {
            Err(e) => return Some(format!("malformed dependencies: {e}")),
            Ok(deps) => {
                for d in deps.iter().filter(|d| d.conflict) {
                    let pos = d.positive();
                    if let Some(&q) = self
                        .selected
                        .iter()
                        .find(|&&q| q != p && self.u.satisfies(&pos, q).is_some())
                    {
                        return Some(format!(
                            "declares !{pos}, but {} is selected",
                            self.u.label(q)
                        ));
                    }
                }
            }
        }
        None
    }

    /// The selected package that satisfies `d`, an error if the selected
    /// owner of the name rules it out, `None` if nothing selected answers.
    fn selected_provider(&self, d: &Dependency) -> Option<std::result::Result<usize, String>> {
        if let Some(&(q, _)) = self.owners.get(&d.name) {
            return Some(match self.u.satisfies(d, q) {
                Some(_) => Ok(q),
                None => Err(self.describe_mismatch(d, q, true)),
            });
        }
        if d.version.is_none()
            && let Some(q) = self.virtuals.get(&d.name).and_then(|v| v.first())
        {
            return Some(Ok(*q));
        }
        None
    }

    fn describe_mismatch(&self, d: &Dependency, p: usize, selected: bool) -> String {
        let e = self.u.entry(p);
        let what = if e.name == d.name {
            format!("version {}", e.version)
        } else {
            match self.u.provides[p].iter().find(|pr| pr.name == d.name) {
                Some(Provide {
                    version: Some(v), ..
                }) => format!("provides {}={v}", d.name),
                _ => format!("provides {} without a version", d.name),
            }
        };
        if selected && self.u.packages[p].repository == INSTALLED {
            format!("{} is installed ({what})", self.u.label(p))
        } else if selected {
            format!("{} is already selected ({what})", self.u.label(p))
        } else {
            format!("{} ({what})", self.u.label(p))
        }
    }

    /// Candidates for `d`, and the refused providers with reasons.
    fn candidates(
        &mut self,
        d: &Dependency,
        allowed: &BTreeSet<String>,
        full: bool,
    ) -> (Vec<usize>, Vec<String>) {
        let mut ok = Vec::new();
        let mut refused = Vec::new();
        let Some(refs) = self.u.by_name.get(&d.name) else {
            return (ok, refused);
        };
        for r in refs {
            let p = r.pkg;
            let c = &self.u.packages[p];
            if !d.version_matches(r.version.as_deref(), &c.entry.checksum) {
                if full {
                    refused.push(self.describe_mismatch(d, p, false));
                }
                continue;
            }
            if let Some(t) = &c.tag
                && d.tag.as_ref() != Some(t)
                && !allowed.contains(t)
            {
                if full {
                    refused.push(format!(
                        "{} (only in repository pinned @{t}; request {}@{t})",
                        self.u.label(p),
                        d.name
                    ));
                }
                continue;
            }
            if let Some(why) = self.disqualified.get(&p) {
                if full {
                    refused.push(format!("{} ({why})", self.u.label(p)));
                }
                continue;
            }
            if full && let Some(why) = self.clash(p) {
                refused.push(format!("{} ({why})", self.u.label(p)));
                continue;
            }
            ok.push(p);
        }
        (ok, refused)
    }

    /// Rank two candidates for `d` (E.4.1); `Less` = `a` is better.
    fn rank(&self, d: &Dependency, a: usize, b: usize) -> Ordering {
        let (ea, eb) = (self.u.entry(a), self.u.entry(b));
        let origin_sel = |e: &IndexEntry| {
            !e.origin.is_empty()
                && self
                    .origins
                    .contains(&(e.origin.clone(), e.version.clone()))
        };
        let pinned = |p: usize| d.tag.is_some() && self.u.packages[p].tag == d.tag;
        let ver_for = |p: usize| self.u.satisfies(&d.positive(), p).flatten();
        origin_sel(eb)
            .cmp(&origin_sel(ea))
            .then_with(|| pinned(b).cmp(&pinned(a)))
            .then_with(|| match (ver_for(a), ver_for(b)) {
                (Some(va), Some(vb)) => melange2_apk::version::compare(
                    &normalize_version(&d.name, vb),
                    &normalize_version(&d.name, va),
                ),
                _ => Ordering::Equal,
            })
            .then_with(|| {
                if ea.name == eb.name {
                    melange2_apk::version::compare(&eb.version, &ea.version)
                } else {
                    Ordering::Equal
                }
            })
            .then_with(|| {
                eb.provider_priority
                    .unwrap_or(0)
                    .cmp(&ea.provider_priority.unwrap_or(0))
            })
            .then_with(|| melange2_apk::version::compare(&eb.version, &ea.version))
            .then_with(|| ea.name.cmp(&eb.name))
            .then_with(|| {
                self.u.packages[a]
                    .repository
                    .cmp(&self.u.packages[b].repository)
            })
            .then_with(|| a.cmp(&b))
    }

    fn mark_selected(&mut self, p: usize) {
        self.chosen.insert(p);
        self.selected.push(p);
        self.disqualified.remove(&p);
        let e = self.u.entry(p);
        self.owners.entry(e.name.clone()).or_insert((p, true));
        for pr in &self.u.provides[p] {
            match pr.version {
                Some(_) => {
                    self.owners.entry(pr.name.clone()).or_insert((p, false));
                }
                None => self.virtuals.entry(pr.name.clone()).or_default().push(p),
            }
        }
        if !e.origin.is_empty() {
            self.origins.insert((e.origin.clone(), e.version.clone()));
        }
        // one package per name: every other version is out
        let name = e.name.clone();
        let label = self.u.label(p);
        if let Some(refs) = self.u.by_name.get(&name) {
            for r in refs.clone() {
                if r.own && r.pkg != p {
                    self.disqualify(r.pkg, || format!("{label} is selected"));
                }
            }
        }
    }

    fn solve(&mut self, request: &[Dependency]) -> Result<()> {
        for d in request {
            self.constrain(d, None, &[])?;
        }
        let mut pending: Vec<&Dependency> = request.iter().filter(|d| !d.conflict).collect();
        let no_tags = BTreeSet::new();
        while !pending.is_empty() {
            // constraints already answered by the selection
            let mut rest = Vec::new();
            for d in pending {
                match self.selected_provider(d) {
                    Some(Ok(_)) => {}
                    Some(Err(why)) => return Err(unsat(&[], d, why)),
                    None => rest.push(d),
                }
            }
            pending = rest;
            let Some(i) = self.fewest(&pending, &no_tags) else {
                break;
            };
            let d = pending.remove(i);
            let mut chain = Vec::new();
            self.resolve_one(d, &mut chain, &no_tags)?;
        }
        self.install_if(request)?;
        self.check_conflicts()
    }

    /// Index of the dependency with the fewest candidates (ties: smallest text).
    fn fewest(&mut self, pending: &[&Dependency], allowed: &BTreeSet<String>) -> Option<usize> {
        let mut best: Option<(usize, String, usize)> = None;
        for (i, d) in pending.iter().enumerate() {
            let n = self.candidates(d, allowed, false).0.len();
            let text = d.to_string();
            let better = match &best {
                None => true,
                Some((bn, bt, _)) => n < *bn || (n == *bn && text < *bt),
            };
            if better {
                best = Some((n, text, i));
            }
        }
        best.map(|b| b.2)
    }

    fn resolve_one(
        &mut self,
        d: &Dependency,
        chain: &mut Vec<String>,
        allowed: &BTreeSet<String>,
    ) -> Result<usize> {
        if let Some(r) = self.selected_provider(d) {
            return r.map_err(|why| unsat(chain, d, why));
        }
        let (cands, refused) = self.candidates(d, allowed, true);
        let Some(best) = cands.iter().copied().min_by(|&a, &b| self.rank(d, a, b)) else {
            let problem = if refused.is_empty() {
                "no provider".to_string()
            } else {
                let mut list: Vec<String> = refused.iter().take(MAX_LISTED).cloned().collect();
                if refused.len() > MAX_LISTED {
                    list.push(format!("and {} more", refused.len() - MAX_LISTED));
                }
                format!("no suitable provider: {}", list.join("; "))
            };
            return Err(unsat(chain, d, problem));
        };
        self.mark_selected(best);
        let name = self.u.entry(best).name.clone();
        chain.push(
            if d.name == name && d.version.is_none() && d.tag.is_none() {
                name
            } else {
                format!("{d} ({name})")
            },
        );
        let mut allowed = allowed.clone();
        if let Some(t) = &d.tag {
            allowed.insert(t.clone());
        }
        self.resolve_deps(best, chain, &allowed)?;
        chain.pop();
        Ok(best)
    }

    fn resolve_deps(
        &mut self,
        p: usize,
        chain: &mut Vec<String>,
        allowed: &BTreeSet<String>,
    ) -> Result<()> {
        let deps = self.deps_of(p).map_err(|e| Error::Dependency {
            context: self.u.label(p),
            dependency: self.u.entry(p).depends.join(" "),
            message: e,
        })?;
        for d in &deps {
            if self.u.satisfies(&d.positive(), p).is_none() || d.conflict {
                self.constrain(d, Some(p), chain)?;
            }
        }
        let mut pending: Vec<&Dependency> = deps
            .iter()
            .filter(|d| !d.conflict && self.u.satisfies(d, p).is_none())
            .collect();
        while !pending.is_empty() {
            let mut rest = Vec::new();
            for d in pending {
                match self.selected_provider(d) {
                    Some(Ok(q)) => {
                        self.edges.entry(p).or_default().insert(q);
                    }
                    Some(Err(why)) => return Err(unsat(chain, d, why)),
                    None => rest.push(d),
                }
            }
            pending = rest;
            let Some(i) = self.fewest(&pending, allowed) else {
                break;
            };
            let d = pending.remove(i);
            let q = self.resolve_one(d, chain, allowed)?;
            self.edges.entry(p).or_default().insert(q);
        }
        self.edges.entry(p).or_default();
        Ok(())
    }

    /// Is an `install_if` condition met by the selection?
    fn condition_met(&self, c: &Dependency) -> bool {
        let any = self
            .selected
            .iter()
            .any(|&q| self.u.satisfies(&c.positive(), q).is_some());
        if c.conflict { !any } else { any }
    }

    fn install_if(&mut self, request: &[Dependency]) -> Result<()> {
        let allowed: BTreeSet<String> = request.iter().filter_map(|d| d.tag.clone()).collect();
        if self.u.install_if.is_empty() {
            return Ok(());
        }
        loop {
            // candidates grouped by name, names in order
            let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for &p in &self.u.install_if {
                let c = &self.u.packages[p];
                if self.chosen.contains(&p)
                    || self.owners.contains_key(&c.entry.name)
                    || self.disqualified.contains_key(&p)
                    || c.tag.as_ref().is_some_and(|t| !allowed.contains(t))
                {
                    continue;
                }
                let conds: Option<Vec<Dependency>> = c
                    .entry
                    .install_if
                    .iter()
                    .map(|s| Dependency::parse(s, &self.u.label(p)).ok())
                    .collect();
                let Some(conds) = conds else {
                    tracing::warn!(package = %self.u.label(p), "ignoring malformed install_if");
                    continue;
                };
                if conds.iter().all(|c| self.condition_met(c)) {
                    groups.entry(c.entry.name.as_str()).or_default().push(p);
                }
            }
            let mut changed = false;
            for (name, mut cands) in groups {
                if self.owners.contains_key(name) {
                    continue;
                }
                cands.retain(|&p| !self.disqualified.contains_key(&p));
                let mut usable = Vec::new();
                for p in cands {
                    if self.clash(p).is_none() {
                        usable.push(p);
                    }
                }
                let d = Dependency {
                    conflict: false,
                    name: name.to_string(),
                    version: None,
                    tag: None,
                };
                let Some(best) = usable.into_iter().min_by(|&a, &b| self.rank(&d, a, b)) else {
                    continue;
                };
                let snapshot = self.clone();
                let label = self.u.label(best);
                let mut chain = vec![format!("install_if {label}")];
                self.mark_selected(best);
                match self.resolve_deps(best, &mut chain, &allowed) {
                    Ok(()) => changed = true,
                    Err(e) => {
                        tracing::warn!("not installing {label} (install_if): {e}");
                        *self = snapshot;
                        self.disqualified
                            .insert(best, format!("cannot be installed: {e}"));
                    }
                }
            }
            if !changed {
                return Ok(());
            }
        }
    }

    fn check_conflicts(&self) -> Result<()> {
        for (c, by) in &self.conflicts {
            for &q in &self.selected {
                if Some(q) != *by && self.u.satisfies(c, q).is_some() {
                    let chain: Vec<String> = by.map(|b| self.u.label(b)).into_iter().collect();
                    let mut neg = c.clone();
                    neg.conflict = true;
                    return Err(unsat(
                        &chain,
                        &neg,
                        format!("conflicts with {}, which is selected", self.u.label(q)),
                    ));
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Solution {
        let order = install_order(self.u, &self.selected, &self.edges);
        let dependencies = self
            .selected
            .iter()
            .map(|&p| (p, self.edges.get(&p).cloned().unwrap_or_default()))
            .collect();
        Solution {
            order,
            dependencies,
        }
    }
}

/// Topological order of the selection: dependencies first, ready packages
/// taken by name (then version, then position); strongly connected
/// components (cycles) are placed as one unit, their members by name.
fn install_order(
    u: &Universe,
    selected: &[usize],
    edges: &BTreeMap<usize, BTreeSet<usize>>,
) -> Vec<usize> {
    let key = |p: usize| {
        let e = u.entry(p);
        (e.name.clone(), e.version.clone(), p)
    };
    let comps = tarjan(selected, edges);
    let mut comp_of: HashMap<usize, usize> = HashMap::new();
    for (i, c) in comps.iter().enumerate() {
        for &p in c {
            comp_of.insert(p, i);
        }
    }
    // component c depends on the components of its members' dependencies
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); comps.len()];
    let mut users: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); comps.len()];
    for (&p, ds) in edges {
        let Some(&cp) = comp_of.get(&p) else { continue };
        for q in ds {
            if let Some(&cq) = comp_of.get(q)
                && cq != cp
            {
                deps[cp].insert(cq);
                users[cq].insert(cp);
            }
        }
    }
    let comp_key: Vec<_> = comps
        .iter()
        .map(|c| c.iter().map(|&p| key(p)).min().unwrap_or_default())
        .collect();
    let mut ready: BTreeSet<(_, usize)> = (0..comps.len())
        .filter(|&c| deps[c].is_empty())
        .map(|c| (comp_key[c].clone(), c))
        .collect();
    let mut left: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut out = Vec::with_capacity(selected.len());
    while let Some(first) = ready.iter().next().cloned() {
        ready.remove(&first);
        let c = first.1;
        let mut members = comps[c].clone();
        members.sort_by_key(|&p| key(p));
        if members.len() > 1 {
            tracing::debug!(
                cycle = %members.iter().map(|&p| u.label(p)).collect::<Vec<_>>().join(", "),
                "dependency cycle"
            );
        }
        out.extend(members);
        for &user in &users[c] {
            left[user] -= 1;
            if left[user] == 0 {
                ready.insert((comp_key[user].clone(), user));
            }
        }
    }
    out
}

/// Strongly connected components (iterative Tarjan), deterministic for a
/// given node order.
fn tarjan(nodes: &[usize], edges: &BTreeMap<usize, BTreeSet<usize>>) -> Vec<Vec<usize>> {
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut low: HashMap<usize, usize> = HashMap::new();
    let mut on_stack: HashSet<usize> = HashSet::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut comps = Vec::new();
    let mut next = 0usize;
    let empty = BTreeSet::new();
    for &root in nodes {
        if index.contains_key(&root) {
            continue;
        }
        // (node, iterator position over its successors)
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if *pos == 0 && !index.contains_key(&v) {
                index.insert(v, next);
                low.insert(v, next);
                next += 1;
                stack.push(v);
                on_stack.insert(v);
            }
            let succ: Vec<usize> = edges.get(&v).unwrap_or(&empty).iter().copied().collect();
            if let Some(&w) = succ.get(*pos) {
                *pos += 1;
                if !index.contains_key(&w) {
                    work.push((w, 0));
                } else if on_stack.contains(&w) {
                    let lw = index[&w];
                    let lv = low[&v];
                    low.insert(v, lv.min(lw));
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                let lv = low[&v];
                let lp = low[&parent];
                low.insert(parent, lp.min(lv));
            }
            if low[&v] == index[&v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack.remove(&w);
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comps.push(comp);
            }
        }
    }
    comps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str, deps: &[&str], provides: &[&str]) -> Candidate {
        Candidate {
            entry: IndexEntry {
                name: name.into(),
                version: version.into(),
                arch: "x86_64".into(),
                checksum: format!("Q1{name}{version}"),
                depends: deps.iter().map(|s| s.to_string()).collect(),
                provides: provides.iter().map(|s| s.to_string()).collect(),
                ..IndexEntry::default()
            },
            repository: 0,
            tag: None,
        }
    }

    fn names(u: &Universe, s: &Solution) -> Vec<String> {
        s.order.iter().map(|&p| u.label(p)).collect()
    }

    #[test]
    fn order_dependencies_first_cycles_by_name() {
        let u = Universe::new(vec![
            pkg("top", "1", &["b", "a"], &[]),
            pkg("a", "1", &["c"], &[]),
            pkg("b", "1", &["c"], &[]),
            pkg("c", "1", &["d"], &[]),
            pkg("d", "1", &["c"], &[]),
        ]);
        let s = u.solve(&["top"]).unwrap();
        assert_eq!(names(&u, &s), ["c-1", "d-1", "a-1", "b-1", "top-1"]);
    }

    #[test]
    fn tarjan_finds_cycles() {
        let mut e = BTreeMap::new();
        e.insert(1, BTreeSet::from([2]));
        e.insert(2, BTreeSet::from([3]));
        e.insert(3, BTreeSet::from([1, 4]));
        e.insert(4, BTreeSet::new());
        let mut c = tarjan(&[1, 2, 3, 4], &e);
        for x in &mut c {
            x.sort();
        }
        assert_eq!(c, vec![vec![4], vec![1, 2, 3]]);
    }

    #[test]
    fn chain_in_error() {
        let u = Universe::new(vec![
            pkg("build-base", "1", &["gcc"], &[]),
            pkg("gcc", "13", &["so:libisl.so.23"], &[]),
        ]);
        let e = u.solve(&["build-base"]).unwrap_err();
        assert_eq!(
            e.unsatisfiable().unwrap().to_string(),
            "build-base → gcc → so:libisl.so.23: no provider"
        );
    }

    #[test]
    fn malformed_metadata_refuses_only_that_package() {
        let u = Universe::new(vec![
            pkg("tool", "2", &["foo>>1"], &["bad provide=>x"]),
            pkg("tool", "1", &[], &[]),
            pkg("only", "1", &["a b"], &[]),
        ]);
        let s = u.solve(&["tool"]).unwrap();
        assert_eq!(names(&u, &s), ["tool-1"]);
        let e = u.solve(&["only"]).unwrap_err().to_string();
        assert!(
            e.contains("only-1 (malformed dependencies: only-1: dependency \"a b\""),
            "{e}"
        );
    }

    #[test]
    fn checksum_operator() {
        let u = Universe::new(vec![pkg("a", "1", &[], &[]), pkg("a", "2", &[], &[])]);
        let s = u.solve(&["a><Q1a1"]).unwrap();
        assert_eq!(names(&u, &s), ["a-1"]);
    }

    #[test]
    fn installed_packages_answer_requests_and_refuse_other_versions() {
        let u = Universe::new(vec![
            pkg("tool", "1.0", &[], &[]),
            pkg("helper", "1", &["tool", "so:libc.so.6"], &[]),
        ]);
        let installed = [
            pkg("tool", "0.9", &[], &["cmd:tool=0.9"]).entry,
            pkg("libc", "2", &[], &["so:libc.so.6=6"]).entry,
        ];
        // The installed tool and libc answer helper's depends: only helper is added.
        let s = u.solve_over(&["helper", "cmd:tool"], &installed).unwrap();
        assert_eq!(names(&u, &s), ["helper-1"]);
        // A version the installed package rules out names it as installed.
        let e = u.solve_over(&["tool>=1.0"], &installed).unwrap_err();
        let u = e.unsatisfiable().unwrap();
        assert_eq!(u.dependency, "tool>=1.0");
        assert!(u.problem.contains("tool-0.9 is installed"), "{}", u.problem);
    }
}
