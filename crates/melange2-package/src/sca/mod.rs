//! SCA (spec F.1–F.4): automatic dependencies and provides, found in the
//! package trees of one build.
//!
//! Generators (run per package, with read access to every package of the
//! build, main first):
//! * **shared objects** — `PT_INTERP` → depend `so:<basename>` (`ld-musl…`
//!   rewritten to `libc.musl…`); each `DT_NEEDED` containing `.so.` → depend
//!   `so:<lib>` (host-provided NVIDIA/CUDA driver libraries skipped); for
//!   libraries (no interpreter, or a name containing `.so.` / ending in
//!   `.so`) each `DT_SONAME` → provides `so:<soname>=<libver>` and
//!   `so-ver:<soname>=<V>` when the file sits directly in a library
//!   directory, else the same two strings as *vendored*; symlinks whose path
//!   contains `.so` whose target's base name is found in a library directory
//!   of any package of the build → depend `so:<SONAME of that file>`; Go
//!   binaries built with cgo and a FIPS crypto experiment → depend
//!   `openssl-config-fipshardened` and `so:libcrypto.so.3`.
//!   With versioned shlib depends on ([`BuildEnvironment::versioned_shlib_deps`],
//!   melange's `MELANGE_VERSIONED_SHLIB_DEPENDS`) and no
//!   `no-versioned-shlib-deps` option, each `DT_NEEDED` library (except
//!   `ld-linux-*`) whose provider publishes `so-ver:<lib>` also gives depend
//!   `so-ver:<lib>>=<provider version>` (this build's `V` when a package of
//!   the build provides it, else the installed build-environment package's).
//!   **RUNPATH/RPATH** (melange2 extension): a `DT_NEEDED` library found
//!   through the binary's own `DT_RUNPATH`/`DT_RPATH` (`$ORIGIN` expanded)
//!   in a directory that is *not* a library directory is private: found in
//!   the package itself, the depend is dropped; found in a sibling package,
//!   it becomes depend `<sibling>=<V>` (melange leaves an `so:` depend that
//!   nothing provides, since private libraries are only vendored).
//! * **commands** — regular files with mode `0555` bits set directly in
//!   `bin/`, `sbin/`, `usr/bin/`, `usr/sbin/` → provides `cmd:<name>=<V>`.
//! * **-doc** — in a package whose name ends in `-doc`, entries directly in
//!   `usr/share/man` → depend `man-db`, in `usr/share/info` → `texinfo`.
//! * **pkg-config** — regular `*.pc` files directly in a pkg-config
//!   directory → provides `pc:<name>=<V>` and depend `pc:<module>` for every
//!   module of `Requires`, `Requires.private`, `Requires.internal`; elsewhere
//!   → vendored `pc:<name>=<V>`.
//! * **perl** — `usr/lib/perlN*/*_perl` (or `lib/…`) → depend `perl~N`
//!   unless `perl` is declared.
//! * **python** — a `…/pythonX.Y/site-packages` directory → depend
//!   `python-X.Y-base` unless a depend starting with `python` is declared.
//! * **ruby** — `usr/lib/ruby/gems/X.Y.Z/gems` → depend `ruby-X.Y` unless
//!   `ruby` or `ruby-*` is declared.
//! * **shebang** — regular files under `usr/bin/`, `usr/local/bin/`,
//!   `usr/local/sbin/` starting with `#!` → depend `cmd:<interpreter>`
//!   (`env X` and `env -S X` → `X`; `sh`, `awk`, `python`, `python3`,
//!   `luajit` ignored; other `env` forms are warnings).
//! * **kernel** — kernel images in `boot/` → provides `linux:<ver>`;
//!   modules under `lib/modules/`, `usr/lib/modules/` (`.ko`, `.ko.gz`,
//!   `.ko.xz`, `.ko.zst`) → depend `linux:<ver>` from their `vermagic`.
//!
//! Library directories are `lib/`, `usr/lib/`, `lib64/`, `usr/lib64/` plus
//! every absolute line of any regular `etc/ld.so.conf.d/*.conf` file of any
//! package of the build. `V` is the package's `<version>-r<epoch>`.
//!
//! Then ([`merge`]): lists sorted and de-duplicated; package options
//! `no-commands` (every `cmd:` entry), `no-depends`, `no-provides` applied to
//! the generated lists; generated depends satisfied by a vendored entry
//! dropped; declared and generated lists merged, sorted, de-duplicated;
//! depends that name something the package provides itself dropped.
//! Dependencies on other packages of the same build are kept (apk resolves
//! them to the sibling through its provides, as melange leaves them) and
//! listed in [`ScaReport::provided_in_build`].
//!
//! Finally, with a repository lookup ([`BuildEnvironment::repositories`]),
//! every `so:` depend provided neither in the build nor by any package of
//! the build's repositories is reported ([`ScaReport::unresolved`] and a
//! warning naming the files that need it).
//!
//! Every entry records the file and the reason it came from
//! ([`ScaFinding`]), for `--dependency-log`.

pub(crate) mod elf;
pub(crate) mod generators;
pub(crate) mod pkgconfig;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use melange2_apk::PackageTree;
use melange2_apk::tree::{EntryKind, TreeEntry};
use melange2_config::model::PackageOption;
use melange2_config::plan::PackageInfo;
use serde::Serialize;

use crate::ingest;

/// Default library directories (relative, trailing `/`).
pub const LIB_DIRS: [&str; 4] = ["lib/", "usr/lib/", "lib64/", "usr/lib64/"];
/// Directories whose executables provide `cmd:` names.
pub const BIN_DIRS: [&str; 4] = ["bin/", "sbin/", "usr/bin/", "usr/sbin/"];
/// Directories whose `.pc` files provide `pc:` names.
pub const PKGCONFIG_DIRS: [&str; 5] = [
    "usr/local/lib/pkgconfig/",
    "usr/local/share/pkgconfig/",
    "usr/lib/pkgconfig/",
    "usr/lib64/pkgconfig/",
    "usr/share/pkgconfig/",
];

/// Driver libraries injected by the host; never depended on nor provided.
const HOST_PROVIDED_LIBS: [&str; 27] = [
    "libEGL_nvidia.so.1",
    "libGLESv1_CM_nvidia.so.1",
    "libGLESv2_nvidia.so.1",
    "libGLX_nvidia.so.1",
    "libcuda.so.1",
    "libcudadebugger.so.1",
    "libnvcuvid.so.1",
    "libnvidia-allocator.so.1",
    "libnvidia-cfg.so.1",
    "libnvidia-eglcore.so.1",
    "libnvidia-encode.so.1",
    "libnvidia-fbc.so.1",
    "libnvidia-glcore.so.1",
    "libnvidia-glsi.so.1",
    "libnvidia-glvkspirv.so.1",
    "libnvidia-gpucomp.so.1",
    "libnvidia-ml.so.1",
    "libnvidia-ngx.so.1",
    "libnvidia-nvvm.so.1",
    "libnvidia-opencl.so.1",
    "libnvidia-opticalflow.so.1",
    "libnvidia-pkcs11-openssl3.so.1",
    "libnvidia-pkcs11.so.1",
    "libnvidia-ptxjitcompiler.so.1",
    "libnvidia-rtcore.so.1",
    "libnvidia-tls.so.1",
    "libnvoptix.so.1",
];

/// Which list an SCA entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A runtime dependency (`depend`).
    Depend,
    /// A provided name (`provides`).
    Provide,
    /// A vendored provide (`# vendored` comment; satisfies own depends).
    Vendored,
}

impl FindingKind {
    fn label(self) -> &'static str {
        match self {
            FindingKind::Depend => "depend",
            FindingKind::Provide => "provides",
            FindingKind::Vendored => "vendored",
        }
    }
}

/// One thing a generator found: which file produced which entry and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ScaFinding {
    /// List the entry goes to.
    pub kind: FindingKind,
    /// The entry (`so:libz.so.1`, `cmd:hello=2.12-r1`, …).
    pub value: String,
    /// File of the package tree (relative path) that produced it.
    pub file: String,
    /// Generator: `shared-object`, `symlink`, `go-fips`, `cmd`, `doc`,
    /// `pkg-config`, `perl`, `python`, `ruby`, `shebang`, `kernel`.
    pub generator: String,
    /// Human-readable reason (`DT_NEEDED libz.so.1`, …).
    pub reason: String,
}

/// A generated or declared entry that is not in the final lists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DroppedEntry {
    /// List it was dropped from.
    pub kind: FindingKind,
    /// The entry.
    pub value: String,
    /// Why (`option no-depends`, `provided by the package itself (…)`, …).
    pub reason: String,
}

/// What the SCA found for one package and how the final lists came about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScaReport {
    /// Package name.
    pub package: String,
    /// Full version used for `cmd:`/`pc:`/`so-ver:` provides.
    pub version: String,
    /// Library directories added by `etc/ld.so.conf.d/*.conf` files of the build.
    pub extra_library_dirs: Vec<String>,
    /// Everything the generators found, sorted by file, list and entry.
    pub findings: Vec<ScaFinding>,
    /// Dependencies declared in the build file.
    pub declared_depends: Vec<String>,
    /// Provides declared in the build file.
    pub declared_provides: Vec<String>,
    /// Final `depend` lines.
    pub depends: Vec<String>,
    /// Final `provides` lines.
    pub provides: Vec<String>,
    /// Final `# vendored` lines.
    pub vendored: Vec<String>,
    /// Entries left out, with the reason.
    pub dropped: Vec<DroppedEntry>,
    /// Final depends satisfied by another package of the same build
    /// (depend → packages providing it).
    pub provided_in_build: BTreeMap<String, Vec<String>>,
    /// Final `so:` depends that neither this build nor the build's
    /// repositories provide (depend → files needing it). Only filled when
    /// the repositories were given.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unresolved: BTreeMap<String, Vec<String>>,
    /// Things the generators could not handle (an unreadable `#!` line, a
    /// declared interpreter dependency that switched a generator off).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ScaReport {
    /// Findings that produced `value` (any list).
    pub fn explain<'a>(&'a self, value: &'a str) -> impl Iterator<Item = &'a ScaFinding> + 'a {
        self.findings.iter().filter(move |f| f.value == value)
    }

    /// Files behind every final depend and provide (entry → files), the
    /// shape of melange's JSON dependency log.
    pub fn sources(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for v in self.depends.iter().chain(&self.provides) {
            let mut files: Vec<&str> = self
                .findings
                .iter()
                .filter(|f| &f.value == v && f.kind != FindingKind::Vendored)
                .map(|f| f.file.as_str())
                .collect();
            files.sort_unstable();
            files.dedup();
            if !files.is_empty() {
                out.insert(v.as_str(), files);
            }
        }
        out
    }

    /// Human-readable log: every final entry with the files it came from,
    /// then what was dropped.
    pub fn render_text(&self) -> String {
        let mut s = format!("{}-{}:\n", self.package, self.version);
        let lists = [
            (FindingKind::Depend, &self.depends, &self.declared_depends),
            (
                FindingKind::Provide,
                &self.provides,
                &self.declared_provides,
            ),
            (FindingKind::Vendored, &self.vendored, &Vec::new()),
        ];
        for (kind, list, declared) in lists {
            for v in list {
                let _ = write!(s, "  {} {v}", kind.label());
                let mut why: Vec<String> = self
                    .findings
                    .iter()
                    .filter(|f| f.kind == kind && &f.value == v)
                    .map(|f| format!("{} ({})", f.file, f.reason))
                    .collect();
                if declared.contains(v) {
                    why.insert(0, "declared in the build file".to_string());
                }
                if !why.is_empty() {
                    let _ = write!(s, " <- {}", why.join("; "));
                }
                if let Some(p) = self.provided_in_build.get(v) {
                    let _ = write!(s, " [provided by {} in this build]", p.join(", "));
                }
                s.push('\n');
            }
        }
        for d in &self.dropped {
            let _ = writeln!(s, "  dropped {} {}: {}", d.kind.label(), d.value, d.reason);
        }
        for (d, files) in &self.unresolved {
            let _ = writeln!(
                s,
                "  unresolved depend {d}: provided by nothing in this build or its repositories (needed by {})",
                files.join(", ")
            );
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        s
    }
}

/// Raw generator output for one package.
#[derive(Debug, Default, Clone)]
pub(crate) struct Generated {
    pub findings: Vec<ScaFinding>,
    /// `DT_NEEDED` libraries that became `so:` depends → files needing them.
    pub needed: BTreeMap<String, BTreeSet<String>>,
    /// Depends never generated because the package finds the library itself
    /// through a RUNPATH.
    pub dropped: Vec<DroppedEntry>,
    /// Problems for the report.
    pub warnings: Vec<String>,
}

impl Generated {
    fn add(
        &mut self,
        kind: FindingKind,
        value: String,
        file: &str,
        generator: &str,
        reason: String,
    ) {
        self.findings.push(ScaFinding {
            kind,
            value,
            file: file.to_string(),
            generator: generator.to_string(),
            reason,
        });
    }

    fn list(&self, kind: FindingKind) -> Vec<String> {
        let set: BTreeSet<&String> = self
            .findings
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| &f.value)
            .collect();
        set.into_iter().cloned().collect()
    }
}

/// Every package tree of one build, in build order (main first).
pub(crate) struct BuildTrees<'a> {
    pub packages: Vec<(&'a str, &'a PackageTree)>,
    /// Extra library dirs from `etc/ld.so.conf.d` (relative, no leading `/`).
    pub extra_lib_dirs: Vec<String>,
}

impl<'a> BuildTrees<'a> {
    /// Collect the trees and scan `etc/ld.so.conf.d` of every package.
    pub fn new(packages: Vec<(&'a str, &'a PackageTree)>) -> Self {
        let mut extra = Vec::new();
        for (_, tree) in &packages {
            for e in tree.entries() {
                // `etc/ld.so.conf.d/*.conf`: direct children only
                let Some(name) = e.path.strip_prefix("etc/ld.so.conf.d/") else {
                    continue;
                };
                if name.contains('/') || !name.ends_with(".conf") {
                    continue;
                }
                if !matches!(e.kind, EntryKind::File { .. }) {
                    continue;
                }
                let Ok(Some(data)) = ingest::read_all(e) else {
                    continue;
                };
                for line in String::from_utf8_lossy(&data).lines() {
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    if let Some(dir) = line.strip_prefix('/') {
                        extra.push(dir.to_string());
                    }
                }
            }
        }
        BuildTrees {
            packages,
            extra_lib_dirs: extra,
        }
    }

    fn lib_dirs(&self) -> Vec<String> {
        LIB_DIRS
            .iter()
            .map(|s| (*s).to_string())
            .chain(self.extra_lib_dirs.iter().cloned())
            .collect()
    }
}

/// melange's `isInDir`: the file's immediate parent equals one of `dirs`
/// (trailing `/` optional); `D/...` matches recursively.
pub(crate) fn is_in_dir(path: &str, dirs: &[impl AsRef<str>]) -> bool {
    let mydir = match path.rsplit_once('/') {
        Some((d, _)) => d,
        None => ".",
    };
    dirs.iter().any(|d| {
        let d = d.as_ref();
        if let Some(prefix) = d.strip_suffix("/...") {
            mydir == prefix
                || mydir
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('/'))
        } else {
            mydir == d || d.strip_suffix('/') == Some(mydir)
        }
    })
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `libver` of a SONAME: the text after the first `.so.` when it is only
/// digits and dots, else `0`.
pub(crate) fn soname_libver(soname: &str) -> String {
    match soname.split_once(".so.") {
        Some((_, v)) => {
            // melange splits on every ".so."; only the second piece counts
            let v = v.split(".so.").next().unwrap_or(v);
            if v.chars().all(|c| c == '.' || c.is_ascii_digit()) {
                v.to_string()
            } else {
                "0".to_string()
            }
        }
        None => "0".to_string(),
    }
}

/// Resolve `path` inside one tree, following symlinks (relative to their
/// directory; absolute ones from the package root; `..` stops at the root).
/// Returns the final path when every component exists.
pub(crate) fn resolve_in_tree(tree: &PackageTree, path: &str) -> Option<String> {
    let mut pending: VecDeque<String> = path.split('/').map(str::to_string).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = pending.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        cur.push(c);
        let p = cur.join("/");
        match tree.get(&p) {
            None => return None,
            Some(TreeEntry {
                kind: EntryKind::Symlink(target),
                ..
            }) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                for part in target.split('/').rev() {
                    pending.push_front(part.to_string());
                }
            }
            Some(_) => {}
        }
    }
    if cur.is_empty() {
        return None;
    }
    Some(cur.join("/"))
}

/// ELF facts per (package, path), so files reached through several
/// symlinks are read once.
type ElfCache = HashMap<(String, String), Option<elf::ElfFacts>>;

fn cached_elf(cache: &mut ElfCache, pkg: &str, entry: &TreeEntry) -> Option<elf::ElfFacts> {
    cache
        .entry((pkg.to_string(), entry.path.clone()))
        .or_insert_with(|| elf_of(entry))
        .clone()
}

fn elf_of(entry: &TreeEntry) -> Option<elf::ElfFacts> {
    let prefix = ingest::read_prefix(entry, 4).ok()??;
    if !elf::has_elf_magic(&prefix) {
        return None;
    }
    ingest::with_content(entry, elf::analyze).ok()??
}

/// Run every generator for one package (`declared_runtime`: its declared
/// depends, which switch the language generators off).
pub(crate) fn generate(
    build: &BuildTrees<'_>,
    package: &str,
    version: &str,
    declared_runtime: &[String],
) -> Generated {
    let mut g = Generated::default();
    let Some(tree) = build
        .packages
        .iter()
        .find(|(n, _)| *n == package)
        .map(|(_, t)| *t)
    else {
        return g;
    };
    let lib_dirs = build.lib_dirs();
    let mut cache = ElfCache::new();
    for entry in tree.entries() {
        let ctx = ScanCtx {
            build,
            package,
            tree,
            version,
            lib_dirs: &lib_dirs,
        };
        shared_objects(&ctx, entry, &mut cache, &mut g);
        commands(entry, version, &mut g);
        generators::doc(package, entry, &mut g);
        pkg_config(entry, version, &mut g);
        generators::shebang(entry, &mut g);
        generators::kernel(entry, &mut g);
    }
    let entries: Vec<&TreeEntry> = tree.entries().collect();
    generators::perl(&entries, declared_runtime, &mut g);
    generators::python(&entries, declared_runtime, &mut g);
    generators::ruby(&entries, declared_runtime, &mut g);
    g.findings.sort();
    g.findings.dedup();
    g.dropped.sort();
    g.dropped.dedup();
    g
}

/// Expand one `DT_RUNPATH`/`DT_RPATH` directory of a file in `origin_dir`
/// into a path relative to the package root (`None` for relative entries
/// and other `$` tokens, which cannot be resolved here).
pub(crate) fn expand_search_path(dir: &str, origin_dir: &str) -> Option<String> {
    let origin = format!("/{origin_dir}");
    let expanded = dir
        .replace("${ORIGIN}", &origin)
        .replace("$ORIGIN", &origin);
    if expanded.contains('$') || !expanded.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in expanded.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Where a `DT_NEEDED` library is found through a RUNPATH outside the
/// library directories.
enum PrivateLib {
    /// In the package itself, at this path.
    Own(String),
    /// In another package of the build (package, path).
    Sibling(String, String),
}

fn find_private_lib(ctx: &ScanCtx<'_>, search_dirs: &[String], lib: &str) -> Option<PrivateLib> {
    for dir in search_dirs {
        let as_lib_dir = format!("{dir}/");
        if ctx.lib_dirs.iter().any(|d| d == dir || *d == as_lib_dir) {
            // a library directory: the ordinary `so:` rules apply
            continue;
        }
        let test = if dir.is_empty() {
            lib.to_string()
        } else {
            format!("{dir}/{lib}")
        };
        let own = std::iter::once((ctx.package, ctx.tree));
        let others = ctx
            .build
            .packages
            .iter()
            .filter(|(n, _)| *n != ctx.package)
            .map(|(n, t)| (*n, *t));
        for (pkg, tree) in own.chain(others) {
            let Some(real) = resolve_in_tree(tree, &test) else {
                continue;
            };
            if !matches!(
                tree.get(&real).map(|e| &e.kind),
                Some(EntryKind::File { .. })
            ) {
                continue;
            }
            return Some(if pkg == ctx.package {
                PrivateLib::Own(test)
            } else {
                PrivateLib::Sibling(pkg.to_string(), test)
            });
        }
    }
    None
}

/// What the shared-object generator needs about the package being scanned.
struct ScanCtx<'a> {
    build: &'a BuildTrees<'a>,
    package: &'a str,
    tree: &'a PackageTree,
    version: &'a str,
    lib_dirs: &'a [String],
}

fn shared_objects(ctx: &ScanCtx<'_>, entry: &TreeEntry, cache: &mut ElfCache, g: &mut Generated) {
    const GEN: &str = "shared-object";
    let (tree, version, lib_dirs) = (ctx.tree, ctx.version, ctx.lib_dirs);
    let path = entry.path.as_str();
    let file_entry: &TreeEntry = match &entry.kind {
        EntryKind::Symlink(target) => {
            if path.contains(".so") {
                symlink_so(ctx.build, path, target, lib_dirs, cache, g);
            }
            // the file the link points at, within this package
            let Some(real) = resolve_in_tree(tree, path) else {
                return;
            };
            match tree.get(&real) {
                Some(e) if matches!(e.kind, EntryKind::File { .. }) => e,
                _ => return,
            }
        }
        EntryKind::File { .. } => entry,
        _ => return,
    };
    let Some(facts) = cached_elf(cache, ctx.package, file_entry) else {
        return;
    };
    let base = basename(path);
    if let Some(interp) = &facts.interpreter {
        let name = format!("so:{}", basename(interp)).replace("so:ld-musl", "so:libc.musl");
        g.add(
            FindingKind::Depend,
            name,
            path,
            GEN,
            format!("PT_INTERP {interp}"),
        );
    }
    let origin_dir = file_entry
        .path
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or("");
    let search_dirs: Vec<String> = facts
        .search_paths
        .iter()
        .filter_map(|d| expand_search_path(d, origin_dir))
        .collect();
    for lib in &facts.needed {
        if HOST_PROVIDED_LIBS.contains(&lib.as_str()) || !lib.contains(".so.") {
            continue;
        }
        match find_private_lib(ctx, &search_dirs, lib) {
            Some(PrivateLib::Own(at)) => g.dropped.push(DroppedEntry {
                kind: FindingKind::Depend,
                value: format!("so:{lib}"),
                reason: format!("{path} finds {lib} through its RUNPATH at {at} in the package"),
            }),
            Some(PrivateLib::Sibling(pkg, at)) => g.add(
                FindingKind::Depend,
                format!("{pkg}={version}"),
                path,
                GEN,
                format!(
                    "DT_NEEDED {lib} found through RUNPATH at {pkg}:{at}, outside the library directories"
                ),
            ),
            None => {
                g.add(
                    FindingKind::Depend,
                    format!("so:{lib}"),
                    path,
                    GEN,
                    format!("DT_NEEDED {lib}"),
                );
                g.needed
                    .entry(lib.clone())
                    .or_default()
                    .insert(path.to_string());
            }
        }
    }
    if facts.interpreter.is_none() || base.contains(".so.") || base.ends_with(".so") {
        for soname in &facts.sonames {
            if HOST_PROVIDED_LIBS.contains(&soname.as_str()) {
                continue;
            }
            let libver = soname_libver(soname);
            let (kind, reason) = if is_in_dir(path, lib_dirs) {
                (
                    FindingKind::Provide,
                    format!("DT_SONAME {soname} in a library directory"),
                )
            } else {
                (
                    FindingKind::Vendored,
                    format!("DT_SONAME {soname} outside the library directories"),
                )
            };
            g.add(
                kind,
                format!("so:{soname}={libver}"),
                path,
                GEN,
                reason.clone(),
            );
            g.add(
                kind,
                format!("so-ver:{soname}={version}"),
                path,
                GEN,
                reason,
            );
        }
    }
    if let Some(settings) = &facts.go_settings {
        let cgo = settings.iter().any(|(k, v)| k == "CGO_ENABLED" && v == "1");
        let fips = settings.iter().any(|(k, v)| {
            (k == "GOEXPERIMENT"
                && matches!(
                    v.as_str(),
                    "boringcrypto" | "systemcrypto" | "opensslcrypto"
                ))
                || (k == "microsoft_systemcrypto" && v == "1")
        });
        if cgo && fips {
            for dep in ["openssl-config-fipshardened", "so:libcrypto.so.3"] {
                g.add(
                    FindingKind::Depend,
                    dep.to_string(),
                    path,
                    "go-fips",
                    "Go binary built with cgo and a FIPS crypto experiment".to_string(),
                );
            }
        }
    }
}

/// A `.so` symlink: find its target's base name in a library directory of
/// any package of the build; its SONAMEs become depends.
fn symlink_so(
    build: &BuildTrees<'_>,
    path: &str,
    target: &str,
    lib_dirs: &[String],
    cache: &mut ElfCache,
    g: &mut Generated,
) {
    let base = basename(target);
    for (pkg, tree) in &build.packages {
        for dir in lib_dirs {
            let test = format!("{}/{base}", dir.trim_end_matches('/'));
            let Some(real) = resolve_in_tree(tree, &test) else {
                continue;
            };
            let Some(e) = tree.get(&real) else {
                return;
            };
            let Some(facts) = cached_elf(cache, pkg, e) else {
                return;
            };
            for soname in &facts.sonames {
                g.add(
                    FindingKind::Depend,
                    format!("so:{soname}"),
                    path,
                    "symlink",
                    format!("symlink to {base}, found as {pkg}:{test} with DT_SONAME {soname}"),
                );
            }
            return;
        }
    }
}

fn commands(entry: &TreeEntry, version: &str, g: &mut Generated) {
    if !matches!(entry.kind, EntryKind::File { .. }) || entry.mode & 0o555 != 0o555 {
        return;
    }
    if is_in_dir(&entry.path, &BIN_DIRS) {
        let name = basename(&entry.path);
        let dir = entry.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        g.add(
            FindingKind::Provide,
            format!("cmd:{name}={version}"),
            &entry.path,
            "cmd",
            format!("executable in {dir}"),
        );
    }
}

fn pkg_config(entry: &TreeEntry, version: &str, g: &mut Generated) {
    const GEN: &str = "pkg-config";
    let path = entry.path.as_str();
    if !path.ends_with(".pc") || !matches!(entry.kind, EntryKind::File { .. }) {
        return;
    }
    let Ok(Some(data)) = ingest::read_all(entry) else {
        return;
    };
    let pc = match std::str::from_utf8(&data)
        .map_err(|e| e.to_string())
        .and_then(pkgconfig::parse)
    {
        Ok(pc) => pc,
        Err(e) => {
            tracing::warn!(file = path, error = %e, "unable to read pkg-config file; skipped");
            return;
        }
    };
    let name = basename(path).strip_suffix(".pc").unwrap_or(path);
    if is_in_dir(path, &PKGCONFIG_DIRS) {
        g.add(
            FindingKind::Provide,
            format!("pc:{name}={version}"),
            path,
            GEN,
            "pkg-config module in a pkg-config directory".to_string(),
        );
        let lists = [
            ("Requires", &pc.requires),
            ("Requires.private", &pc.requires_private),
            ("Requires.internal", &pc.requires_internal),
        ];
        for (field, list) in lists {
            for r in list {
                g.add(
                    FindingKind::Depend,
                    format!("pc:{}", r.module),
                    path,
                    GEN,
                    format!("{field}: {}", r.module),
                );
            }
        }
    } else {
        g.add(
            FindingKind::Vendored,
            format!("pc:{name}={version}"),
            path,
            GEN,
            "pkg-config file outside the pkg-config directories".to_string(),
        );
    }
}

/// Name part of a provides/vendored entry (text before `=`).
fn provide_name(p: &str) -> &str {
    p.split_once('=').map(|(n, _)| n).unwrap_or(p)
}

/// Name part of a dependency for the self-provided and vendored checks
/// (text before `>=`, as melange strips it from `so-ver:X>=V`).
fn depend_name(d: &str) -> &str {
    d.split_once(">=").map(|(n, _)| n).unwrap_or(d)
}

/// Apply options and merge generated with declared lists (spec F.1).
pub(crate) fn merge(
    package: &str,
    version: &str,
    generated: Generated,
    declared_depends: &[String],
    declared_provides: &[String],
    options: &PackageOption,
    extra_lib_dirs: &[String],
) -> ScaReport {
    let mut dropped: Vec<DroppedEntry> = generated.dropped.clone();
    let mut runtime = generated.list(FindingKind::Depend);
    let mut provides = generated.list(FindingKind::Provide);
    let vendored = generated.list(FindingKind::Vendored);

    if options.no_commands {
        for (kind, list) in [
            (FindingKind::Depend, &mut runtime),
            (FindingKind::Provide, &mut provides),
        ] {
            list.retain(|v| {
                let keep = !v.starts_with("cmd:");
                if !keep {
                    dropped.push(DroppedEntry {
                        kind,
                        value: v.clone(),
                        reason: "option no-commands".into(),
                    });
                }
                keep
            });
        }
    }
    if options.no_depends {
        for v in runtime.drain(..) {
            dropped.push(DroppedEntry {
                kind: FindingKind::Depend,
                value: v,
                reason: "option no-depends".into(),
            });
        }
    }
    if options.no_provides {
        for v in provides.drain(..) {
            dropped.push(DroppedEntry {
                kind: FindingKind::Provide,
                value: v,
                reason: "option no-provides".into(),
            });
        }
    }
    // a vendored library satisfies itself
    let vendored_names: BTreeMap<&str, &str> = vendored
        .iter()
        .map(|v| (provide_name(v), v.as_str()))
        .collect();
    runtime.retain(|d| {
        let name = d.split_once(['>', '=']).map(|(n, _)| n).unwrap_or(d);
        match vendored_names.get(name) {
            Some(v) => {
                dropped.push(DroppedEntry {
                    kind: FindingKind::Depend,
                    value: d.clone(),
                    reason: format!("vendored in the package ({v})"),
                });
                false
            }
            None => true,
        }
    });
    let runtime: BTreeSet<String> = declared_depends.iter().cloned().chain(runtime).collect();
    let provides: BTreeSet<String> = declared_provides.iter().cloned().chain(provides).collect();
    let provided: BTreeMap<&str, &str> = provides
        .iter()
        .map(|p| (provide_name(p), p.as_str()))
        .collect();
    let mut depends = Vec::new();
    for d in &runtime {
        match provided.get(depend_name(d)) {
            Some(p) => dropped.push(DroppedEntry {
                kind: FindingKind::Depend,
                value: d.clone(),
                reason: format!("provided by the package itself ({p})"),
            }),
            None => depends.push(d.clone()),
        }
    }
    dropped.sort();
    dropped.dedup();
    ScaReport {
        package: package.to_string(),
        version: version.to_string(),
        extra_library_dirs: extra_lib_dirs.to_vec(),
        findings: generated.findings,
        declared_depends: declared_depends.to_vec(),
        declared_provides: declared_provides.to_vec(),
        depends,
        provides: provides.into_iter().collect(),
        vendored,
        dropped,
        provided_in_build: BTreeMap::new(),
        unresolved: BTreeMap::new(),
        warnings: generated.warnings,
    }
}

/// A package installed in the build environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledPackage {
    /// Package name.
    pub name: String,
    /// Full version.
    pub version: String,
    /// Its `provides` entries.
    pub provides: Vec<String>,
}

/// Batch lookup into the build's repositories: which of the given names
/// (package names or provided names, without versions) some package
/// provides.
pub type ProvidedLookup = Arc<dyn Fn(&BTreeSet<String>) -> BTreeSet<String> + Send + Sync>;

/// What the build environment and its repositories offer the SCA.
#[derive(Clone, Default)]
pub struct BuildEnvironment {
    /// Packages installed in the build environment (for versioned shlib
    /// depends).
    pub installed: Vec<InstalledPackage>,
    /// Lookup into the build's repositories; `None` (a bootstrap root
    /// filesystem, a library caller without repositories): `so:` depends
    /// are not checked.
    pub repositories: Option<ProvidedLookup>,
    /// Add `so-ver:<lib>>=<version>` depends (melange does so when
    /// `MELANGE_VERSIONED_SHLIB_DEPENDS` is set).
    pub versioned_shlib_deps: bool,
}

impl std::fmt::Debug for BuildEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildEnvironment")
            .field("installed", &self.installed.len())
            .field("repositories", &self.repositories.is_some())
            .field("versioned_shlib_deps", &self.versioned_shlib_deps)
            .finish()
    }
}

/// Name of a dependency (`so:libz.so.1>=1` → `so:libz.so.1`).
fn dependency_name(d: &str) -> &str {
    d.split_once(['<', '>', '=', '~'])
        .map(|(n, _)| n)
        .unwrap_or(d)
}

/// Add the `so-ver:<lib>>=<version>` depends of every package (spec F.2).
fn versioned_shlib_deps(
    generated: &mut [Generated],
    packages: &[&PackageInfo],
    installed: &[InstalledPackage],
) {
    // so-ver providers inside the build (packages that publish provides)
    let mut in_build: BTreeMap<String, &str> = BTreeMap::new();
    for (g, p) in generated.iter().zip(packages) {
        if p.options.no_provides {
            continue;
        }
        for f in &g.findings {
            if f.kind == FindingKind::Provide
                && let Some(rest) = f.value.strip_prefix("so-ver:")
            {
                in_build
                    .entry(provide_name(rest).to_string())
                    .or_insert(p.name.as_str());
            }
        }
    }
    for (g, p) in generated.iter_mut().zip(packages) {
        if p.options.no_versioned_shlib_deps {
            continue;
        }
        let needed = g.needed.clone();
        for (lib, files) in needed {
            if lib.starts_with("ld-linux-") {
                continue;
            }
            let provider = match in_build.get(&lib) {
                Some(pkg) => Some(((*pkg).to_string(), p.full_version.clone())),
                None => {
                    let so = format!("so:{lib}");
                    let so_ver = format!("so-ver:{lib}");
                    installed
                        .iter()
                        .find(|i| i.provides.iter().any(|v| provide_name(v) == so))
                        .filter(|i| i.provides.iter().any(|v| provide_name(v) == so_ver))
                        .map(|i| (i.name.clone(), i.version.clone()))
                }
            };
            let Some((pkg, ver)) = provider else { continue };
            for file in &files {
                g.add(
                    FindingKind::Depend,
                    format!("so-ver:{lib}>={ver}"),
                    file,
                    "shared-object",
                    format!("DT_NEEDED {lib}, versioned after its provider {pkg}-{ver}"),
                );
            }
        }
        g.findings.sort();
        g.findings.dedup();
    }
}

/// Report `so:` depends that neither the build nor the repositories
/// provide; returns one warning per depend and package.
fn check_repositories(reports: &mut [ScaReport], lookup: &ProvidedLookup) -> Vec<String> {
    let mut wanted = BTreeSet::new();
    for r in reports.iter() {
        for d in &r.depends {
            if d.starts_with("so:") && !r.provided_in_build.contains_key(d) {
                wanted.insert(dependency_name(d).to_string());
            }
        }
    }
    if wanted.is_empty() {
        return Vec::new();
    }
    let found = lookup(&wanted);
    let mut warnings = Vec::new();
    for r in reports.iter_mut() {
        let mut unresolved = BTreeMap::new();
        for d in &r.depends {
            if !d.starts_with("so:")
                || r.provided_in_build.contains_key(d)
                || found.contains(dependency_name(d))
            {
                continue;
            }
            let mut files: Vec<String> = r
                .findings
                .iter()
                .filter(|f| f.kind == FindingKind::Depend && &f.value == d)
                .map(|f| f.file.clone())
                .collect();
            files.dedup();
            let needed_by = if files.is_empty() {
                "declared in the build file".to_string()
            } else {
                format!("needed by {}", files.join(", "))
            };
            warnings.push(format!(
                "package {}: depend {d} ({needed_by}) is provided by no package of this build or of its repositories",
                r.package
            ));
            unresolved.insert(d.clone(), files);
        }
        r.unresolved = unresolved;
    }
    warnings
}

/// The whole SCA of one build: every generator for every package, the
/// versioned depends, the merge with the declared lists, siblings and the
/// repository check. Returns one report per package (in `packages` order)
/// and the warnings (generator problems, unresolved `so:` depends).
pub(crate) fn analyze(
    build: &BuildTrees<'_>,
    packages: &[&PackageInfo],
    env: &BuildEnvironment,
) -> (Vec<ScaReport>, Vec<String>) {
    let mut generated: Vec<Generated> = packages
        .iter()
        .map(|p| generate(build, &p.name, &p.full_version, &p.dependencies.runtime))
        .collect();
    if env.versioned_shlib_deps {
        versioned_shlib_deps(&mut generated, packages, &env.installed);
    }
    let mut reports: Vec<ScaReport> = generated
        .into_iter()
        .zip(packages)
        .map(|(g, p)| {
            merge(
                &p.name,
                &p.full_version,
                g,
                &p.dependencies.runtime,
                &p.dependencies.provides,
                &p.options,
                &build.extra_lib_dirs,
            )
        })
        .collect();
    link_siblings(&mut reports);
    let mut warnings: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.warnings
                .iter()
                .map(move |w| format!("package {}: {w}", r.package))
        })
        .collect();
    if let Some(lookup) = &env.repositories {
        warnings.extend(check_repositories(&mut reports, lookup));
    }
    (reports, warnings)
}

/// Fill [`ScaReport::provided_in_build`]: which final depends of each
/// package another package of the build provides (by provides name or
/// package name).
pub(crate) fn link_siblings(reports: &mut [ScaReport]) {
    let mut providers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in reports.iter() {
        providers
            .entry(r.package.clone())
            .or_default()
            .insert(r.package.clone());
        for p in &r.provides {
            providers
                .entry(provide_name(p).to_string())
                .or_default()
                .insert(r.package.clone());
        }
    }
    for r in reports.iter_mut() {
        let mut map = BTreeMap::new();
        for d in &r.depends {
            if let Some(ps) = providers.get(dependency_name(d)) {
                let others: Vec<String> = ps.iter().filter(|p| **p != r.package).cloned().collect();
                if !others.is_empty() {
                    map.insert(d.clone(), others);
                }
            }
        }
        r.provided_in_build = map;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs() {
        assert!(is_in_dir("usr/lib/libfoo.so.1", &LIB_DIRS));
        assert!(!is_in_dir("usr/lib/foo/libfoo.so.1", &LIB_DIRS));
        assert!(is_in_dir("usr/lib/foo/libfoo.so.1", &["usr/lib/foo"]));
        assert!(is_in_dir("usr/x/y/z", &["usr/..."]));
        assert!(!is_in_dir("usrx/y", &["usr/..."]));
        assert!(is_in_dir("bin/sh", &BIN_DIRS));
    }

    #[test]
    fn libver() {
        assert_eq!(soname_libver("libfoo.so.1"), "1");
        assert_eq!(soname_libver("libfoo.so.1.2"), "1.2");
        assert_eq!(soname_libver("libfoo.so"), "0");
        assert_eq!(soname_libver("libfoo.so.1a"), "0");
        assert_eq!(soname_libver("libc.musl-x86_64.so.1"), "1");
    }

    #[test]
    fn resolve() {
        let mut t = PackageTree::new();
        t.add_file("usr/lib/libfoo.so.1.2.3", 0o755, "x").unwrap();
        t.add_symlink("usr/lib/libfoo.so.1", "libfoo.so.1.2.3")
            .unwrap();
        t.add_symlink("lib", "usr/lib").unwrap();
        t.add_symlink("usr/lib/abs", "/usr/lib/libfoo.so.1")
            .unwrap();
        t.add_symlink("usr/lib/loop", "loop").unwrap();
        assert_eq!(
            resolve_in_tree(&t, "lib/libfoo.so.1").as_deref(),
            Some("usr/lib/libfoo.so.1.2.3")
        );
        assert_eq!(
            resolve_in_tree(&t, "usr/lib/abs").as_deref(),
            Some("usr/lib/libfoo.so.1.2.3")
        );
        assert_eq!(resolve_in_tree(&t, "usr/lib/loop"), None);
        assert_eq!(resolve_in_tree(&t, "usr/lib/missing"), None);
    }

    fn finding(kind: FindingKind, value: &str) -> ScaFinding {
        ScaFinding {
            kind,
            value: value.into(),
            file: "f".into(),
            generator: "t".into(),
            reason: "r".into(),
        }
    }

    #[test]
    fn merge_rules() {
        let g = Generated {
            findings: vec![
                finding(FindingKind::Depend, "so:libc.so.6"),
                finding(FindingKind::Depend, "so:libfoo.so.1"),
                finding(FindingKind::Depend, "so:libvend.so.2"),
                finding(FindingKind::Depend, "cmd:sh"),
                finding(FindingKind::Provide, "so:libfoo.so.1=1"),
                finding(FindingKind::Provide, "cmd:foo=1-r0"),
                finding(FindingKind::Vendored, "so:libvend.so.2=2"),
            ],
            ..Default::default()
        };
        let declared = vec!["busybox".to_string(), "virt".to_string()];
        let declared_p = vec!["virt=1".to_string()];
        let r = merge(
            "foo",
            "1-r0",
            g.clone(),
            &declared,
            &declared_p,
            &PackageOption::default(),
            &[],
        );
        assert_eq!(r.depends, ["busybox", "cmd:sh", "so:libc.so.6"]);
        assert_eq!(r.provides, ["cmd:foo=1-r0", "so:libfoo.so.1=1", "virt=1"]);
        assert_eq!(r.vendored, ["so:libvend.so.2=2"]);
        let reasons: Vec<(&str, &str)> = r
            .dropped
            .iter()
            .map(|d| (d.value.as_str(), d.reason.as_str()))
            .collect();
        assert!(reasons.contains(&(
            "so:libfoo.so.1",
            "provided by the package itself (so:libfoo.so.1=1)"
        )));
        assert!(reasons.contains(&("virt", "provided by the package itself (virt=1)")));
        assert!(reasons.contains(&(
            "so:libvend.so.2",
            "vendored in the package (so:libvend.so.2=2)"
        )));

        let opts = PackageOption {
            no_commands: true,
            ..Default::default()
        };
        let r = merge("foo", "1-r0", g.clone(), &[], &[], &opts, &[]);
        assert!(
            r.depends
                .iter()
                .chain(&r.provides)
                .all(|v| !v.starts_with("cmd:"))
        );
        let opts = PackageOption {
            no_depends: true,
            no_provides: true,
            ..Default::default()
        };
        let r = merge("foo", "1-r0", g, &declared, &declared_p, &opts, &[]);
        assert_eq!(r.depends, ["busybox"]);
        assert_eq!(r.provides, ["virt=1"]);
        assert_eq!(r.vendored, ["so:libvend.so.2=2"]);
    }
}
