//! Build environments assembled inside BuildKit from resolved APK packages.
//!
//! Contract:
//! - Input: the packages of an environment in install order (each an index entry plus the
//!   verified `.apk` in a local directory), the world, repositories, keys and accounts.
//! - Output: an LLB [`State`] of the root filesystem, plus the local directories the solve must
//!   serve. Each package becomes its own layer — a copy-with-unpack of its `.apk` into scratch
//!   with the control entries (`.PKGINFO`, `.SIGN.*`, scripts) removed — and one metadata layer
//!   carries `lib/apk/db/installed`, `etc/apk/{world,repositories,arch,keys/*}`,
//!   `etc/passwd`/`etc/group` (accounts merged into what packages ship) and the busybox applet
//!   links listed in `etc/busybox-paths.d/*`. All layers are combined with one MergeOp.
//! - Nothing is extracted on the client: packages reach the daemon through a local source whose
//!   include patterns name exactly the needed files, and each layer's cache key follows the
//!   package's content, so adding a package leaves every other package's layer cached.
//! - The same request gives the same graph (same digests).
//! - Over a [`Base`] (a bootstrap root filesystem, `docs/build.md`): the base is the first
//!   layer, paths resolve through its symlinks too, the accounts merge into its
//!   `/etc/passwd`/`/etc/group`, and the installed database lists its packages followed by the
//!   added ones. Without added packages only the account files are written.

mod fsview;
mod meta;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use melange2_apk::IndexEntry;
use melange2_llb::{ChownOpt, CopyOptions, FileActions, LocalSource, OpOptions, State};
use sha2::{Digest, Sha256};

use crate::fsview::FsView;
use crate::meta::PackageMeta;

/// Errors of environment assembly.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A package file could not be read or does not match its index entry.
    #[error("package {package} ({}): {reason}", file.display())]
    Package {
        /// `name-version`.
        package: String,
        /// The `.apk`.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A keyring file could not be read.
    #[error("cannot read key {}: {source}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// Building the graph failed.
    #[error(transparent)]
    Llb(#[from] melange2_llb::LlbError),
}

/// One package of the environment.
#[derive(Clone, Debug)]
pub struct PackageFile {
    /// Its index entry (the checksum must match the file).
    pub entry: IndexEntry,
    /// The verified `.apk` on the client.
    pub file: PathBuf,
}

/// A user of `/etc/passwd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub username: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory (default `/home/<username>`).
    pub home: Option<String>,
    /// Login shell (default `/bin/sh`).
    pub shell: Option<String>,
}

/// A group of `/etc/group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub groupname: String,
    /// Group id.
    pub gid: u32,
    /// Member user names.
    pub members: Vec<String>,
}

/// A root filesystem the packages are layered over (`--bootstrap-rootfs`).
#[derive(Clone, Debug)]
pub struct Base {
    /// Its layer.
    pub rootfs: State,
    /// What the client read from it.
    pub scan: Arc<melange2_rootfs::Scan>,
}

/// What to assemble.
#[derive(Clone, Debug, Default)]
pub struct EnvironmentRequest {
    /// The root filesystem to layer the packages over (None: scratch).
    pub base: Option<Base>,
    /// Packages in install order (dependencies first).
    pub packages: Vec<PackageFile>,
    /// The requested constraints (`/etc/apk/world`).
    pub world: Vec<String>,
    /// Repository lines (`/etc/apk/repositories`).
    pub repositories: Vec<String>,
    /// Trusted public keys (copied to `/etc/apk/keys/`).
    pub keys: Vec<PathBuf>,
    /// Users to add (or replace by name).
    pub users: Vec<User>,
    /// Groups to add (or replace by name).
    pub groups: Vec<Group>,
    /// APK architecture (`/etc/apk/arch`).
    pub arch: String,
    /// mtime (unix seconds) of the files the metadata layer writes.
    pub source_date_epoch: i64,
}

/// An assembled environment.
#[derive(Clone, Debug)]
pub struct Environment {
    /// The root filesystem.
    pub rootfs: State,
    /// Directories the solve must serve (local source name → directory).
    pub local_dirs: BTreeMap<String, PathBuf>,
    /// Each package's layer, by `name-version`, in install order.
    pub package_layers: Vec<(String, State)>,
    /// The metadata layer.
    pub metadata: State,
}

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..8])
}

/// Read what each package needs (in parallel, cached per checksum).
fn load_metas(packages: &[PackageFile]) -> Result<Vec<PackageMeta>, EnvError> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(8);
    let chunk = packages.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = packages
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|p| meta::load(&p.entry, &p.file))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(packages.len());
        for h in handles {
            match h.join() {
                Ok(r) => out.extend(r?),
                Err(_) => {
                    return Err(EnvError::Package {
                        package: "(reader thread)".into(),
                        file: PathBuf::new(),
                        reason: "reader thread panicked".into(),
                    });
                }
            }
        }
        Ok(out)
    })
}

/// Build the LLB graph of an environment.
pub fn assemble(req: &EnvironmentRequest) -> Result<Environment, EnvError> {
    let metas = load_metas(&req.packages)?;

    // One local source per directory holding packages, sending only the files we need.
    let mut by_dir: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for p in &req.packages {
        let dir = p.file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let name = p
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        by_dir.entry(dir).or_default().insert(name);
    }
    let mut sources: BTreeMap<PathBuf, (String, State)> = BTreeMap::new();
    let mut local_dirs = BTreeMap::new();
    for (dir, files) in &by_dir {
        let key = short_hash(&dir.to_string_lossy());
        let name = format!("apk-{key}");
        let state = LocalSource::new(&name)
            .unique(format!("melange2-apk:{}", dir.display()))
            .shared_key_hint(&name)
            .include(files.iter().cloned().collect())
            .options(OpOptions::named(format!("packages from {}", dir.display())))
            .build();
        local_dirs.insert(name.clone(), dir.clone());
        sources.insert(dir.clone(), (name, state));
    }

    let mut layers = Vec::new();
    let mut view = FsView::default();
    if let Some(b) = &req.base {
        view.add(&base_entries(&b.scan));
    }
    for (p, m) in req.packages.iter().zip(&metas) {
        let dir = p.file.parent().unwrap_or(Path::new("/"));
        let (_, src) = &sources[dir];
        let fname = p
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut fa = FileActions::new().copy(
            src,
            &format!("/{fname}"),
            "/",
            CopyOptions {
                unpack: true,
                ..Default::default()
            },
        );
        for c in &m.control_files {
            fa = fa.rm(&format!("/{c}"));
        }
        let id = format!("{}-{}", p.entry.name, p.entry.version);
        let layer = State::scratch().file(
            fa,
            OpOptions::named(format!("install {id}")).progress_group("environment", "environment"),
        )?;
        layers.push((id, layer));
        view.add(&m.entries);
    }

    let metadata = metadata_layer(req, &metas, &view)?;
    let mut all: Vec<State> = req.base.iter().map(|b| b.rootfs.clone()).collect();
    all.extend(layers.iter().map(|(_, s)| s.clone()));
    all.push(metadata.clone());
    let name = match &req.base {
        Some(_) => format!("environment (bootstrap rootfs + {} packages)", layers.len()),
        None => format!("environment ({} packages)", layers.len()),
    };
    let rootfs = State::merge(&all, OpOptions::named(name));
    Ok(Environment {
        rootfs,
        local_dirs,
        package_layers: layers,
        metadata,
    })
}

/// Files the metadata layer writes, at symlink-resolved paths.
fn metadata_layer(
    req: &EnvironmentRequest,
    metas: &[PackageMeta],
    view: &FsView,
) -> Result<State, EnvError> {
    let ts = Some(req.source_date_epoch.max(0) * 1_000_000_000);
    let mut files: BTreeMap<String, (u32, Vec<u8>)> = BTreeMap::new();
    let mut put = |path: &str, mode: u32, data: Vec<u8>| {
        files.insert(view.resolve_parent(path), (mode, data));
    };

    // Over a base without added packages, only the accounts change.
    let apk = req.base.is_none() || !req.packages.is_empty();
    let mut installed = match &req.base {
        Some(b) if !b.scan.installed_db.trim().is_empty() => {
            format!("{}\n\n", b.scan.installed_db.trim_end_matches('\n'))
        }
        _ => String::new(),
    };
    installed.extend(metas.iter().map(|m| format!("{}\n", m.installed)));
    if apk {
        put("lib/apk/db/installed", 0o644, installed.into_bytes());
        put("etc/apk/world", 0o644, lines(&req.world));
        put("etc/apk/repositories", 0o644, lines(&req.repositories));
        put(
            "etc/apk/arch",
            0o644,
            format!("{}\n", req.arch).into_bytes(),
        );
    }
    for k in req.keys.iter().filter(|_| apk) {
        let data = std::fs::read(k).map_err(|source| EnvError::Key {
            path: k.clone(),
            source,
        })?;
        let name = k
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "key.rsa.pub".into());
        put(&format!("etc/apk/keys/{name}"), 0o644, data);
    }
    let base = req.base.as_ref().map(|b| &b.scan);
    let shipped_passwd = metas
        .iter()
        .rev()
        .find_map(|m| m.passwd.clone())
        .or_else(|| base.and_then(|b| b.passwd.clone()));
    let shipped_group = metas
        .iter()
        .rev()
        .find_map(|m| m.group.clone())
        .or_else(|| base.and_then(|b| b.group.clone()));
    put(
        "etc/passwd",
        0o644,
        merge_passwd(shipped_passwd.as_deref(), &req.users).into_bytes(),
    );
    put(
        "etc/group",
        0o644,
        merge_group(shipped_group.as_deref(), &req.groups).into_bytes(),
    );

    // Directories to create: parents of every file, unless a package already has them.
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    let applets: BTreeSet<&String> = metas.iter().flat_map(|m| &m.busybox_paths).collect();
    for a in applets {
        let at = view.resolve_parent(a);
        if at.is_empty() || view.exists(&at) || files.contains_key(&at) {
            continue;
        }
        links.insert(at, "/bin/busybox".to_string());
    }
    // The layer starts from scratch, so every parent is created in it. Resolved paths never go
    // through a symlink, so these are real directories in the packages too; they keep the
    // packages' mode and owner so the merge changes nothing about them.
    for p in files.keys().chain(links.keys()) {
        let mut cur = p.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            dirs.insert(parent.to_string());
            cur = parent;
        }
    }

    let mut fa = FileActions::new();
    for d in &dirs {
        let (mode, uid, gid) = view.dir_attrs(d).unwrap_or((0o755, 0, 0));
        fa = fa.mkdir_with(
            &format!("/{d}"),
            mode,
            true,
            Some(ChownOpt::Ids(uid, gid)),
            ts,
        );
    }
    for (p, (mode, data)) in files {
        fa = fa.mkfile_with(&format!("/{p}"), mode, data, None, ts);
    }
    for (at, target) in &links {
        fa = fa.symlink_with(target, &format!("/{at}"), None, ts);
    }
    Ok(State::scratch().file(
        fa,
        OpOptions::named("environment metadata (apk db, accounts, busybox links)")
            .progress_group("environment", "environment"),
    )?)
}

/// A base's entries as the view's.
fn base_entries(scan: &melange2_rootfs::Scan) -> Vec<meta::FsEntry> {
    scan.entries
        .iter()
        .map(|e| meta::FsEntry {
            path: e.path.clone(),
            kind: match e.kind {
                melange2_rootfs::Kind::Dir => meta::Kind::Dir,
                melange2_rootfs::Kind::Symlink => meta::Kind::Symlink,
                melange2_rootfs::Kind::Other => meta::Kind::Other,
            },
            link: e.link.clone(),
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
        })
        .collect()
}

fn lines(items: &[String]) -> Vec<u8> {
    items
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

/// `/etc/passwd`: what packages ship (or a root entry), with configured users added or replaced.
pub fn merge_passwd(shipped: Option<&str>, users: &[User]) -> String {
    let lines = users.iter().map(|u| {
        let line = format!(
            "{}:x:{}:{}:{}:{}:{}",
            u.username,
            u.uid,
            u.gid,
            u.username,
            u.home
                .clone()
                .unwrap_or_else(|| format!("/home/{}", u.username)),
            u.shell.clone().unwrap_or_else(|| "/bin/sh".into()),
        );
        (u.username.clone(), line)
    });
    merge_by_name(shipped, "root:x:0:0:root:/root:/bin/sh", lines)
}

/// `/etc/group`: what packages ship (or a root entry), with configured groups added or replaced.
pub fn merge_group(shipped: Option<&str>, groups: &[Group]) -> String {
    let lines = groups.iter().map(|g| {
        let line = format!("{}:x:{}:{}", g.groupname, g.gid, g.members.join(","));
        (g.groupname.clone(), line)
    });
    merge_by_name(shipped, "root:x:0:root", lines)
}

/// Colon-separated records keyed by their first field: the shipped ones in order (a root
/// record first when missing), then `added` replacing records of the same name or appended.
fn merge_by_name(
    shipped: Option<&str>,
    root: &str,
    added: impl Iterator<Item = (String, String)>,
) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for l in shipped
        .unwrap_or(root)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let name = l.split(':').next().unwrap_or("").to_string();
        if by_name.insert(name.clone(), l.to_string()).is_none() {
            order.push(name);
        }
    }
    if !by_name.contains_key("root") {
        order.insert(0, "root".into());
        by_name.insert("root".into(), root.to_string());
    }
    for (name, line) in added {
        if by_name.insert(name.clone(), line).is_none() {
            order.push(name);
        }
    }
    order.iter().map(|n| format!("{}\n", by_name[n])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_merge() {
        let users = [User {
            username: "build".into(),
            uid: 1000,
            gid: 1000,
            home: None,
            shell: None,
        }];
        assert_eq!(
            merge_passwd(None, &users),
            "root:x:0:0:root:/root:/bin/sh\nbuild:x:1000:1000:build:/home/build:/bin/sh\n"
        );
        let shipped = "root:x:0:0:root:/root:/bin/ash\nnobody:x:65534:65534:nobody:/:/sbin/nologin\nbuild:x:1:1::/:/bin/false\n";
        let merged = merge_passwd(Some(shipped), &users);
        assert_eq!(
            merged,
            "root:x:0:0:root:/root:/bin/ash\nnobody:x:65534:65534:nobody:/:/sbin/nologin\nbuild:x:1000:1000:build:/home/build:/bin/sh\n"
        );
        let groups = [Group {
            groupname: "build".into(),
            gid: 1000,
            members: vec!["build".into()],
        }];
        assert_eq!(
            merge_group(None, &groups),
            "root:x:0:root\nbuild:x:1000:build\n"
        );
    }
}
