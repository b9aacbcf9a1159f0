//! The file-system view of all package layers merged: which paths exist and which are
//! symlinks, so files we add land behind symlinked directories (`/lib` → `usr/lib` in usrmerged
//! distributions) instead of replacing them.

use std::collections::BTreeMap;

use crate::meta::{FsEntry, Kind};

#[derive(Default)]
pub(crate) struct FsView {
    nodes: BTreeMap<String, (Kind, String)>,
    dir_attrs: BTreeMap<String, (u32, u32, u32)>,
}

impl FsView {
    /// Apply a package's entries on top (later packages win, as in the MergeOp).
    pub fn add(&mut self, entries: &[FsEntry]) {
        for e in entries {
            self.nodes.insert(e.path.clone(), (e.kind, e.link.clone()));
            if e.kind == Kind::Dir {
                self.dir_attrs
                    .insert(e.path.clone(), (e.mode, e.uid, e.gid));
            } else {
                self.dir_attrs.remove(&e.path);
            }
        }
    }

    /// Mode, uid and gid of a directory some package ships.
    pub fn dir_attrs(&self, path: &str) -> Option<(u32, u32, u32)> {
        self.dir_attrs.get(path).copied()
    }

    /// Whether `path` (relative, resolved) exists.
    pub fn exists(&self, path: &str) -> bool {
        path.is_empty() || self.nodes.contains_key(path)
    }

    /// Resolve every directory component of `path` through symlinks; the last component is
    /// kept as is. Returns a relative path without `.`/`..`.
    pub fn resolve_parent(&self, path: &str) -> String {
        let mut parts: Vec<String> = normalize(path);
        let Some(last) = parts.pop() else {
            return String::new();
        };
        let mut dir = self.resolve_dir(&parts, 0);
        dir.push(last);
        dir.join("/")
    }

    fn resolve_dir(&self, parts: &[String], depth: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            out.push(p.clone());
            let key = out.join("/");
            if let Some((Kind::Symlink, target)) = self.nodes.get(&key)
                && depth < 40
            {
                let base = if target.starts_with('/') {
                    target.clone()
                } else {
                    let mut b = out[..out.len() - 1].join("/");
                    b.push('/');
                    b.push_str(target);
                    b
                };
                let mut next = normalize(&base);
                next.extend(parts[i + 1..].iter().cloned());
                return self.resolve_dir(&next, depth + 1);
            }
        }
        out
    }
}

/// Split into components, dropping empty and `.`, applying `..`.
fn normalize(path: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str, kind: Kind, link: &str) -> FsEntry {
        FsEntry {
            path: path.into(),
            kind,
            link: link.into(),
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn resolves_usrmerge_links() {
        let mut v = FsView::default();
        v.add(&[
            e("usr", Kind::Dir, ""),
            e("usr/lib", Kind::Dir, ""),
            e("lib", Kind::Symlink, "usr/lib"),
            e("bin", Kind::Symlink, "/usr/bin"),
            e("usr/bin", Kind::Dir, ""),
            e("usr/bin/ls", Kind::Other, ""),
        ]);
        assert_eq!(
            v.resolve_parent("lib/apk/db/installed"),
            "usr/lib/apk/db/installed"
        );
        assert_eq!(v.resolve_parent("/bin/ls"), "usr/bin/ls");
        assert!(v.exists(&v.resolve_parent("/bin/ls")));
        assert_eq!(v.resolve_parent("etc/passwd"), "etc/passwd");
        // A link loop does not hang.
        v.add(&[e("a", Kind::Symlink, "b"), e("b", Kind::Symlink, "a")]);
        let _ = v.resolve_parent("a/x");
    }
}
