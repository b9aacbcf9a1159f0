//! The FileSync sender: serves a local directory to the daemon (`local://NAME` sources).
//!
//! Protocol (fsutil "diffcopy"): we send one STAT per entry, depth-first with children sorted
//! byte-wise, then an empty STAT; the daemon sends REQ for the files it needs while we are still
//! listing; we answer each with DATA chunks and an empty DATA; the daemon sends FIN, we answer
//! FIN and end the stream.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard_buildkit_proto::fsutil::types::{Packet, Stat, packet::PacketType};
use globset::{Glob, GlobMatcher};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc};
use tonic::Status;

const CHUNK: usize = 32 * 1024;
const PARALLEL_FILES: usize = 4;

/// One entry of the listing.
#[derive(Clone)]
pub(crate) struct Entry {
    path: PathBuf,
    stat: Stat,
    regular: bool,
}

/// Filters given by the daemon from the source's attributes.
#[derive(Default, Debug)]
pub(crate) struct Filters {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub follow: Vec<String>,
}

struct Pattern {
    glob: GlobMatcher,
    negate: bool,
}

fn compile(patterns: &[String]) -> Result<Vec<Pattern>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let (negate, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p.as_str()),
        };
        let clean = p.trim_start_matches("./").trim_start_matches('/');
        let clean = clean.trim_end_matches('/');
        if clean.is_empty() || clean == "." {
            // Matches everything.
            out.push(Pattern {
                glob: Glob::new("**")
                    .map_err(|e| e.to_string())?
                    .compile_matcher(),
                negate,
            });
            continue;
        }
        let glob = globset::GlobBuilder::new(clean)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("bad pattern {p:?}: {e}"))?
            .compile_matcher();
        out.push(Pattern { glob, negate });
    }
    Ok(out)
}

/// True when `rel` or one of its parent directories matches the pattern.
fn matches_self_or_parent(p: &Pattern, rel: &str) -> bool {
    if p.glob.is_match(rel) {
        return true;
    }
    let mut cur = rel;
    while let Some((parent, _)) = cur.rsplit_once('/') {
        if p.glob.is_match(parent) {
            return true;
        }
        cur = parent;
    }
    false
}

/// Go `os.FileMode` bits for a unix mode with its file type.
fn go_mode(mode: u32) -> u32 {
    let mut m = melange2_llb::go_file_mode(mode);
    match mode & 0o170000 {
        0o040000 => m |= 1 << 31,
        0o120000 => m |= 1 << 27,
        0o060000 => m |= 1 << 26,
        0o020000 => m |= (1 << 26) | (1 << 21),
        0o010000 => m |= 1 << 25,
        0o140000 => m |= 1 << 24,
        _ => {}
    }
    m
}

fn dev_major(rdev: u64) -> i64 {
    (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as i64
}

fn dev_minor(rdev: u64) -> i64 {
    ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as i64
}

/// Walk `root` in fsutil order and apply the filters.
pub(crate) fn list(root: &Path, filters: &Filters) -> Result<Vec<Entry>, String> {
    let mut include = compile(&filters.include)?;
    include.extend(compile(&filters.follow)?);
    let exclude = compile(&filters.exclude)?;

    let mut all: Vec<(String, PathBuf, std::fs::Metadata)> = Vec::new();
    let walker = walkdir_sorted(root)?;
    for (rel, path) in walker {
        match std::fs::symlink_metadata(&path) {
            Ok(md) => all.push((rel, path, md)),
            // Gone since the directory was read (another process's temporary file): the
            // listing is of what exists now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }

    // Select entries, then keep the directories leading to them.
    let mut selected: BTreeSet<String> = BTreeSet::new();
    for (rel, _, _) in &all {
        let included = include.is_empty()
            || include
                .iter()
                .any(|p| !p.negate && matches_self_or_parent(p, rel));
        let excluded = exclude
            .iter()
            .rev()
            .find(|p| matches_self_or_parent(p, rel))
            .is_some_and(|p| !p.negate);
        if included && !excluded {
            selected.insert(rel.clone());
        }
    }
    let mut with_parents = selected.clone();
    for rel in &selected {
        let mut cur = rel.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            if !with_parents.insert(parent.to_string()) {
                break;
            }
            cur = parent;
        }
    }

    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    let mut out = Vec::new();
    for (rel, path, md) in all {
        if !with_parents.contains(&rel) {
            continue;
        }
        let ft = md.file_type();
        let mut stat = Stat {
            path: rel.clone(),
            mode: go_mode(md.mode()),
            uid: md.uid(),
            gid: md.gid(),
            size: 0,
            mod_time: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            linkname: String::new(),
            devmajor: 0,
            devminor: 0,
            xattrs: Default::default(),
        };
        let mut regular = false;
        if ft.is_symlink() {
            let target =
                std::fs::read_link(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            stat.linkname = String::from_utf8_lossy(target.as_os_str().as_bytes()).into_owned();
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = inodes.get(&(md.dev(), md.ino())) {
                    stat.linkname = first.clone();
                } else {
                    inodes.insert((md.dev(), md.ino()), rel.clone());
                }
            }
            if stat.linkname.is_empty() {
                stat.size = md.len() as i64;
                regular = true;
            }
        } else if !ft.is_dir() {
            stat.devmajor = dev_major(md.rdev());
            stat.devminor = dev_minor(md.rdev());
        }
        if let Ok(names) = xattr::list(&path) {
            for n in names {
                let key = String::from_utf8_lossy(n.as_bytes()).into_owned();
                if key.starts_with("com.apple.") {
                    continue;
                }
                if let Ok(Some(v)) = xattr::get(&path, &n) {
                    stat.xattrs.insert(key, v);
                }
            }
        }
        out.push(Entry {
            path,
            stat,
            regular,
        });
    }
    Ok(out)
}

/// Depth-first pre-order walk with children sorted by raw bytes; the root itself is skipped.
fn walkdir_sorted(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, PathBuf)> = Vec::new();
    let push_children = |stack: &mut Vec<(String, PathBuf)>, prefix: &str, dir: &Path| {
        let mut children: BTreeMap<Vec<u8>, PathBuf> = BTreeMap::new();
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !prefix.is_empty() => {
                return Ok(());
            }
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        for ent in rd {
            let ent = ent.map_err(|e| format!("{}: {e}", dir.display()))?;
            children.insert(ent.file_name().as_bytes().to_vec(), ent.path());
        }
        for (name, path) in children.into_iter().rev() {
            let name = String::from_utf8_lossy(&name).into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            stack.push((rel, path));
        }
        Ok::<_, String>(())
    };
    push_children(&mut stack, "", root)?;
    while let Some((rel, path)) = stack.pop() {
        let is_dir = match std::fs::symlink_metadata(&path) {
            Ok(md) => md.is_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        out.push((rel.clone(), path.clone()));
        if is_dir {
            push_children(&mut stack, &rel, &path)?;
        }
    }
    Ok(out)
}

fn packet(t: PacketType) -> Packet {
    Packet {
        r#type: t as i32,
        ..Default::default()
    }
}

/// Serve one DiffCopy call: list, answer requests, finish.
pub(crate) async fn serve(
    root: PathBuf,
    filters: Filters,
    mut inbound: tonic::Streaming<Packet>,
    tx: mpsc::Sender<Result<Packet, Status>>,
    sent: Arc<AtomicU64>,
) -> Result<(), Status> {
    let entries = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || list(&root, &filters))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::internal)?
    };
    let entries = Arc::new(entries);
    tracing::debug!(dir = %root.display(), entries = entries.len(), "filesync: listing");

    let stats = {
        let tx = tx.clone();
        let entries = entries.clone();
        tokio::spawn(async move {
            for e in entries.iter() {
                let mut p = packet(PacketType::PacketStat);
                p.stat = Some(e.stat.clone());
                if tx.send(Ok(p)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(Ok(packet(PacketType::PacketStat))).await;
        })
    };

    let limit = Arc::new(Semaphore::new(PARALLEL_FILES));
    let mut senders = tokio::task::JoinSet::new();
    loop {
        let Some(p) = inbound.message().await? else {
            break;
        };
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketReq) => {
                let id = p.id;
                let entry = entries
                    .get(id as usize)
                    .filter(|e| e.regular)
                    .cloned()
                    .ok_or_else(|| Status::invalid_argument(format!("invalid file id {id}")))?;
                let tx = tx.clone();
                let limit = limit.clone();
                let sent = sent.clone();
                senders.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    send_file(id, &entry.path, &tx, &sent).await
                });
            }
            Ok(PacketType::PacketFin) => {
                let _ = stats.await;
                while let Some(r) = senders.join_next().await {
                    r.map_err(|e| Status::internal(e.to_string()))??;
                }
                let _ = tx.send(Ok(packet(PacketType::PacketFin))).await;
                return Ok(());
            }
            Ok(PacketType::PacketErr) => {
                let msg = String::from_utf8_lossy(&p.data).into_owned();
                return Err(Status::aborted(format!("receiver error: {msg}")));
            }
            _ => {}
        }
    }
    stats.abort();
    Ok(())
}

async fn send_file(
    id: u32,
    path: &Path,
    tx: &mpsc::Sender<Result<Packet, Status>>,
    sent: &AtomicU64,
) -> Result<(), Status> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| Status::not_found(format!("{}: {e}", path.display())))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
        let mut p = packet(PacketType::PacketData);
        p.id = id;
        p.data = buf[..n].to_vec();
        sent.fetch_add(n as u64, Ordering::Relaxed);
        if tx.send(Ok(p)).await.is_err() {
            return Ok(());
        }
        if n == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rels(v: &[Entry]) -> Vec<String> {
        v.iter().map(|e| e.stat.path.clone()).collect()
    }

    #[test]
    fn order_and_filters() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::fs::create_dir_all(r.join("a-b")).unwrap();
        std::fs::write(r.join("a/b/f.apk"), "x").unwrap();
        std::fs::write(r.join("a/z.txt"), "x").unwrap();
        std::fs::write(r.join("a-b/g.apk"), "x").unwrap();
        std::fs::write(r.join("top.apk"), "x").unwrap();
        std::os::unix::fs::symlink("top.apk", r.join("link")).unwrap();
        std::fs::hard_link(r.join("top.apk"), r.join("hard.apk")).unwrap();

        let all = list(r, &Filters::default()).unwrap();
        // '-' (0x2d) sorts before '/' children are emitted after their parent.
        assert_eq!(
            rels(&all),
            [
                "a",
                "a/b",
                "a/b/f.apk",
                "a/z.txt",
                "a-b",
                "a-b/g.apk",
                "hard.apk",
                "link",
                "top.apk"
            ]
        );
        let link = all.iter().find(|e| e.stat.path == "link").unwrap();
        assert_eq!(link.stat.linkname, "top.apk");
        assert_eq!(link.stat.mode & (1 << 27), 1 << 27);
        let top = all.iter().find(|e| e.stat.path == "top.apk").unwrap();
        assert_eq!(top.stat.linkname, "hard.apk");
        assert!(!top.regular);

        let inc = list(
            r,
            &Filters {
                include: vec!["a/b/f.apk".into(), "top.apk".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(rels(&inc), ["a", "a/b", "a/b/f.apk", "top.apk"]);

        let exc = list(
            r,
            &Filters {
                exclude: vec!["a".into(), "*.apk".into(), "!top.apk".into()],
                ..Default::default()
            },
        )
        .unwrap();
        // As in .dockerignore, `*.apk` only matches at the top level.
        assert_eq!(rels(&exc), ["a-b", "a-b/g.apk", "link", "top.apk"]);
        let top = exc.iter().find(|e| e.stat.path == "top.apk").unwrap();
        assert!(
            top.regular,
            "its hardlink partner was excluded, so it is sent whole"
        );
    }

    /// Files created and removed while a listing runs (concurrent downloads into a shared
    /// cache) are not errors: the listing has what exists.
    #[test]
    fn files_vanishing_during_a_listing_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("keep.apk"), b"x").unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let (dir, stop) = (d.path().to_path_buf(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let p = dir.join(format!(".download-{}", i % 64));
                    let _ = std::fs::write(&p, b"partial");
                    let _ = std::fs::remove_file(&p);
                    i += 1;
                }
            })
        };
        let filters = Filters {
            include: vec!["keep.apk".into()],
            ..Default::default()
        };
        for _ in 0..2000 {
            let l = list(d.path(), &filters).unwrap();
            assert_eq!(rels(&l), ["keep.apk"]);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
    }

    #[test]
    fn go_mode_bits() {
        assert_eq!(go_mode(0o104755), 0o755 | (1 << 23));
        assert_eq!(go_mode(0o040755), 0o755 | (1 << 31));
        assert_eq!(go_mode(0o120777), 0o777 | (1 << 27));
    }
}
