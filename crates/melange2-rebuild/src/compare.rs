//! How a rebuilt package differs from the original: `.PKGINFO` fields, other control files,
//! and data entries (added, removed, or changed in type, mode, owner, size, mtime, link
//! target, content digest or extended attributes).

use std::collections::{BTreeMap, BTreeSet};

use crate::original::{Apk, FileMeta};

/// One difference, as a line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// A `.PKGINFO` field: its values in the original and in the rebuild.
    Field {
        /// Field name (`depend`, `size`, …).
        field: String,
        /// Values in the original (several for list fields).
        original: Vec<String>,
        /// Values in the rebuild.
        rebuilt: Vec<String>,
    },
    /// Another control file (`.melange.yaml`, a scriptlet) differs or exists on one side.
    Control {
        /// Its name.
        name: String,
        /// What differs.
        detail: String,
    },
    /// A data entry only in the rebuild.
    Added {
        /// Path.
        path: String,
        /// Its metadata.
        meta: FileMeta,
    },
    /// A data entry only in the original.
    Removed {
        /// Path.
        path: String,
        /// Its metadata.
        meta: FileMeta,
    },
    /// A data entry in both, with these attributes differing (`size 10 → 12`).
    Changed {
        /// Path.
        path: String,
        /// `attribute original → rebuilt`, one per differing attribute.
        changes: Vec<String>,
    },
}

fn short(d: &str) -> &str {
    &d[..d.len().min(16)]
}

fn describe(m: &FileMeta) -> String {
    let mut s = format!("{}, mode {:04o}, {}", m.kind, m.mode, m.owner);
    if m.kind == "file" {
        s.push_str(&format!(", {} bytes, sha256 {}", m.size, short(&m.sha256)));
    }
    if !m.link.is_empty() {
        s.push_str(&format!(" → {}", m.link));
    }
    s
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Field {
                field,
                original,
                rebuilt,
            } => {
                if original.len() <= 1 && rebuilt.len() <= 1 {
                    let v = |l: &[String]| l.first().cloned().unwrap_or_else(|| "(none)".into());
                    return write!(f, ".PKGINFO {field}: {} → {}", v(original), v(rebuilt));
                }
                write!(f, ".PKGINFO {field}:")?;
                let (o, r): (BTreeSet<&String>, BTreeSet<&String>) =
                    (original.iter().collect(), rebuilt.iter().collect());
                for gone in o.difference(&r) {
                    write!(f, " -{gone}")?;
                }
                for new in r.difference(&o) {
                    write!(f, " +{new}")?;
                }
                Ok(())
            }
            Difference::Control { name, detail } => write!(f, "control {name}: {detail}"),
            Difference::Added { path, meta } => write!(f, "added {path} ({})", describe(meta)),
            Difference::Removed { path, meta } => {
                write!(f, "removed {path} ({})", describe(meta))
            }
            Difference::Changed { path, changes } => {
                write!(f, "changed {path}: {}", changes.join(", "))
            }
        }
    }
}

/// `.PKGINFO` as field → values, in the order fields first appear.
fn fields(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let line = line.strip_prefix("# ").map_or(line, |l| l);
        let Some((k, v)) = line.split_once(" = ") else {
            continue;
        };
        match out.iter_mut().find(|(f, _)| f == k) {
            Some((_, vals)) => vals.push(v.to_string()),
            None => out.push((k.to_string(), vec![v.to_string()])),
        }
    }
    out
}

fn pkginfo_differences(a: &Apk, b: &Apk, out: &mut Vec<Difference>) {
    let (fa, fb) = (fields(&a.pkginfo.render()), fields(&b.pkginfo.render()));
    let mut names: Vec<&String> = fa.iter().map(|(k, _)| k).collect();
    for (k, _) in &fb {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    let get = |l: &[(String, Vec<String>)], k: &str| {
        l.iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for k in names {
        let (o, r) = (get(&fa, k), get(&fb, k));
        if o != r {
            out.push(Difference::Field {
                field: k.clone(),
                original: o,
                rebuilt: r,
            });
        }
    }
}

/// Top-level keys of two JSON documents whose values differ.
fn json_keys_differing(a: &[u8], b: &[u8]) -> Option<Vec<String>> {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (
        serde_json::from_slice(a).ok()?,
        serde_json::from_slice(b).ok()?,
    ) else {
        return None;
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    Some(
        keys.into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect(),
    )
}

fn control_differences(a: &Apk, b: &Apk, out: &mut Vec<Difference>) {
    let names: BTreeSet<&String> = a.control.keys().chain(b.control.keys()).collect();
    for name in names {
        let detail = match (a.control.get(name), b.control.get(name)) {
            (Some(x), Some(y)) if x == y => continue,
            (Some(x), Some(y)) => match json_keys_differing(x, y) {
                Some(keys) if !keys.is_empty() => format!("differs in {}", keys.join(", ")),
                _ => format!("differs ({} → {} bytes)", x.len(), y.len()),
            },
            (Some(_), None) => "only in the original".to_string(),
            (None, Some(_)) => "only in the rebuild".to_string(),
            (None, None) => continue,
        };
        out.push(Difference::Control {
            name: name.clone(),
            detail,
        });
    }
}

fn file_changes(a: &FileMeta, b: &FileMeta) -> Vec<String> {
    let mut c = Vec::new();
    let mut diff = |what: &str, x: String, y: String| {
        if x != y {
            c.push(format!("{what} {x} → {y}"));
        }
    };
    diff("type", a.kind.into(), b.kind.into());
    diff("mode", format!("{:04o}", a.mode), format!("{:04o}", b.mode));
    diff("owner", a.owner.clone(), b.owner.clone());
    diff("size", a.size.to_string(), b.size.to_string());
    diff("mtime", a.mtime.to_string(), b.mtime.to_string());
    diff("link", a.link.clone(), b.link.clone());
    diff(
        "sha256",
        short(&a.sha256).to_string(),
        short(&b.sha256).to_string(),
    );
    if a.xattrs != b.xattrs {
        let keys: BTreeSet<&String> = a.xattrs.keys().chain(b.xattrs.keys()).collect();
        let differing: Vec<&str> = keys
            .into_iter()
            .filter(|k| a.xattrs.get(*k) != b.xattrs.get(*k))
            .map(String::as_str)
            .collect();
        c.push(format!("xattrs {}", differing.join(", ")));
    }
    c
}

fn data_differences(a: &Apk, b: &Apk, out: &mut Vec<Difference>) {
    let paths: BTreeSet<&String> = a.files.keys().chain(b.files.keys()).collect();
    for path in paths {
        let d = match (a.files.get(path), b.files.get(path)) {
            (Some(x), Some(y)) => {
                let changes = file_changes(x, y);
                if changes.is_empty() {
                    continue;
                }
                Difference::Changed {
                    path: path.clone(),
                    changes,
                }
            }
            (Some(x), None) => Difference::Removed {
                path: path.clone(),
                meta: x.clone(),
            },
            (None, Some(y)) => Difference::Added {
                path: path.clone(),
                meta: y.clone(),
            },
            (None, None) => continue,
        };
        out.push(d);
    }
}

/// Every difference between an original package and its rebuild (signatures aside: they
/// depend on the key, not on the build).
pub fn compare(original: &Apk, rebuilt: &Apk) -> Vec<Difference> {
    let mut out = Vec::new();
    pkginfo_differences(original, rebuilt, &mut out);
    control_differences(original, rebuilt, &mut out);
    data_differences(original, rebuilt, &mut out);
    out
}

/// Differences of the environment lock, one line per package: another version or
/// checksum (`name 1-r0 (Q1…) → 2-r0 (Q1…)`), the same package from another repository
/// (`name 1-r0 (Q1…) from A → from B`), newly installed, or no longer installed.
pub fn environment_changes(
    original: &melange2_resolve::Lock,
    rebuilt: &melange2_resolve::Lock,
) -> Vec<String> {
    let map = |l: &melange2_resolve::Lock| -> BTreeMap<String, (String, String)> {
        l.packages
            .iter()
            .map(|p| {
                let id = format!("{} ({})", p.version, p.checksum);
                (p.name.clone(), (id, p.repository.clone()))
            })
            .collect()
    };
    let (a, b) = (map(original), map(rebuilt));
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for n in names {
        match (a.get(n), b.get(n)) {
            (Some((x, _)), Some((y, _))) if x != y => out.push(format!("{n} {x} → {y}")),
            (Some((x, ra)), Some((_, rb))) if ra != rb => {
                out.push(format!("{n} {x} from {ra} → from {rb}"));
            }
            (Some((x, _)), None) => out.push(format!("{n} {x} no longer installed")),
            (None, Some((y, _))) => out.push(format!("{n} {y} newly installed")),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: u32, size: u64, sha: &str) -> FileMeta {
        FileMeta {
            kind: "file",
            mode,
            owner: "root:root".into(),
            size,
            mtime: 0,
            link: String::new(),
            sha256: sha.into(),
            xattrs: BTreeMap::new(),
        }
    }

    fn apk(files: &[(&str, FileMeta)], depends: &[&str], control: &[(&str, &str)]) -> Apk {
        let mut pkginfo = melange2_apk::PkgInfo::new("p", "1-r0", "x86_64");
        pkginfo.depends = depends.iter().map(|d| d.to_string()).collect();
        Apk {
            path: "p-1-r0.apk".into(),
            pkginfo,
            control: control
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            files: files
                .iter()
                .map(|(p, m)| (p.to_string(), m.clone()))
                .collect(),
            signers: Vec::new(),
            sha256: String::new(),
        }
    }

    #[test]
    fn identical_packages_have_no_differences() {
        let f = [("usr/bin/p", meta(0o755, 3, "aa"))];
        let a = apk(&f, &["so:libc.so.6"], &[(".melange.yaml", "{\"plan\":1}")]);
        assert!(compare(&a, &a.clone()).is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_one_line() {
        let a = apk(
            &[
                ("usr/bin/p", meta(0o755, 3, "aaaa")),
                ("usr/share/gone", meta(0o644, 1, "bb")),
            ],
            &["so:libc.so.6", "busybox"],
            &[
                (
                    ".melange.yaml",
                    r#"{"plan":1,"build":{"a":1},"environment-lock":[]}"#,
                ),
                (".pre-install", "#!/bin/sh\n"),
            ],
        );
        let b = apk(
            &[
                ("usr/bin/p", meta(0o700, 4, "cccc")),
                ("usr/share/new", meta(0o644, 1, "dd")),
            ],
            &["so:libc.so.6", "so:libz.so.1"],
            &[(
                ".melange.yaml",
                r#"{"plan":1,"build":{"a":2},"environment-lock":[1]}"#,
            )],
        );
        let lines: Vec<String> = compare(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                ".PKGINFO depend: -busybox +so:libz.so.1",
                "control .melange.yaml: differs in build, environment-lock",
                "control .pre-install: only in the original",
                "changed usr/bin/p: mode 0755 → 0700, size 3 → 4, sha256 aaaa → cccc",
                "removed usr/share/gone (file, mode 0644, root:root, 1 bytes, sha256 bb)",
                "added usr/share/new (file, mode 0644, root:root, 1 bytes, sha256 dd)",
            ]
        );
    }

    fn lock(pkgs: &[(&str, &str, &str, &str)]) -> melange2_resolve::Lock {
        melange2_resolve::Lock {
            arch: "x86_64".into(),
            packages: pkgs
                .iter()
                .map(|(n, v, c, r)| melange2_resolve::LockedPackage {
                    name: n.to_string(),
                    version: v.to_string(),
                    arch: "x86_64".into(),
                    checksum: c.to_string(),
                    repository: r.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn environment_changes_name_versions_checksums_and_repositories() {
        let a = lock(&[
            ("busybox", "1-r0", "Q1a", "A"),
            ("gone", "1-r0", "Q1g", "A"),
            ("moved", "1-r0", "Q1m", "A"),
            ("other", "1-r0", "Q1o", "A"),
        ]);
        let b = lock(&[
            ("busybox", "1-r0", "Q1a", "A"),
            ("moved", "1-r0", "Q1m", "B"),
            ("new", "1-r0", "Q1n", "A"),
            ("other", "1-r0", "Q1x", "A"),
        ]);
        assert_eq!(
            environment_changes(&a, &b),
            [
                "gone 1-r0 (Q1g) no longer installed",
                "moved 1-r0 (Q1m) from A → from B",
                "new 1-r0 (Q1n) newly installed",
                "other 1-r0 (Q1o) → 1-r0 (Q1x)",
            ]
        );
        assert!(environment_changes(&a, &a).is_empty());
    }
}
