//! What the environment needs to know about each package, read once per package checksum.
//!
//! Reading a package means decompressing it, so the result is kept in a sidecar file next to the
//! `.apk` (`<file>.m2meta.json`), keyed by the package's control checksum. A warm environment
//! assembly reads no package.

use std::io::Read;
use std::path::{Path, PathBuf};

use melange2_apk::{EntryType, IndexEntry, PackageReader, render_installed_entry_from_data};
use serde::{Deserialize, Serialize};

use crate::EnvError;

/// Bumped when the sidecar format changes.
const META_VERSION: u32 = 2;
/// Files whose content the environment needs from packages.
const BUSYBOX_PATHS_DIR: &str = "etc/busybox-paths.d/";
const MAX_CAPTURED: u64 = 1 << 20;

/// Kind of a file-system object, for path resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    #[serde(rename = "d")]
    Dir,
    #[serde(rename = "l")]
    Symlink,
    #[serde(rename = "f")]
    Other,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FsEntry {
    pub path: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link: String,
    /// Permission bits, owner and group (used for directories the metadata layer repeats).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Everything the metadata layer needs from one package.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PackageMeta {
    pub version: u32,
    pub checksum: String,
    /// The package's record in the installed database.
    pub installed: String,
    /// Control entries the unpacked archive leaves at the root (`.PKGINFO`, `.SIGN.*`, scripts).
    pub control_files: Vec<String>,
    /// Data entries (for symlink-aware paths and busybox links).
    pub entries: Vec<FsEntry>,
    /// Applet paths from `etc/busybox-paths.d/*`.
    pub busybox_paths: Vec<String>,
    /// `etc/passwd` and `etc/group` as shipped, if any.
    pub passwd: Option<String>,
    pub group: Option<String>,
}

fn sidecar(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".m2meta.json");
    file.with_file_name(name)
}

/// Metadata of a package, from the sidecar when it is current, else by reading the `.apk`.
pub(crate) fn load(entry: &IndexEntry, file: &Path) -> Result<PackageMeta, EnvError> {
    let side = sidecar(file);
    if let Ok(bytes) = std::fs::read(&side)
        && let Ok(m) = serde_json::from_slice::<PackageMeta>(&bytes)
        && m.version == META_VERSION
        && m.checksum == entry.checksum
    {
        return Ok(m);
    }
    let m = read(entry, file)?;
    // Best effort: a read-only cache only costs speed.
    if let Ok(json) = serde_json::to_vec(&m) {
        let tmp = side.with_extension("json.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, &side);
        }
    }
    Ok(m)
}

fn read(entry: &IndexEntry, file: &Path) -> Result<PackageMeta, EnvError> {
    let pkg_err = |e: melange2_apk::Error| EnvError::Package {
        package: format!("{}-{}", entry.name, entry.version),
        file: file.to_path_buf(),
        reason: e.to_string(),
    };
    let reader = PackageReader::open(file).map_err(pkg_err)?;
    let checksum = reader.checksum();
    if checksum != entry.checksum {
        return Err(EnvError::Package {
            package: format!("{}-{}", entry.name, entry.version),
            file: file.to_path_buf(),
            reason: format!(
                "control checksum {checksum} does not match the index ({})",
                entry.checksum
            ),
        });
    }
    let mut control_files: Vec<String> = vec![".PKGINFO".into()];
    for s in reader.signatures() {
        control_files.push(format!(".SIGN.{}.{}", s.tag, s.key_name));
    }
    control_files.extend(reader.control_files().keys().cloned());
    control_files.sort();
    control_files.dedup();

    let mut entries = Vec::new();
    let mut busybox_paths = Vec::new();
    let mut passwd = None;
    let mut group = None;
    let summary = reader
        .read_data(|e, content| {
            let kind = match e.kind {
                EntryType::Directory => Kind::Dir,
                EntryType::Symlink => Kind::Symlink,
                _ => Kind::Other,
            };
            entries.push(FsEntry {
                path: e.path.clone(),
                kind,
                link: if kind == Kind::Symlink {
                    e.link.clone()
                } else {
                    String::new()
                },
                mode: e.mode,
                uid: u32::try_from(e.uid).unwrap_or(0),
                gid: u32::try_from(e.gid).unwrap_or(0),
            });
            let wanted = e.kind == EntryType::File
                && (e.path.starts_with(BUSYBOX_PATHS_DIR)
                    || e.path == "etc/passwd"
                    || e.path == "etc/group");
            if wanted {
                let mut text = String::new();
                content
                    .take(MAX_CAPTURED)
                    .read_to_string(&mut text)
                    .map_err(|err| melange2_apk::Error::io(&e.path, err))?;
                if e.path.starts_with(BUSYBOX_PATHS_DIR) {
                    busybox_paths.extend(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#'))
                            .map(str::to_string),
                    );
                } else if e.path == "etc/passwd" {
                    passwd = Some(text);
                } else {
                    group = Some(text);
                }
            }
            Ok(())
        })
        .map_err(pkg_err)?;
    Ok(PackageMeta {
        version: META_VERSION,
        checksum,
        installed: render_installed_entry_from_data(entry, &summary.entries),
        control_files,
        entries,
        busybox_paths,
        passwd,
        group,
    })
}
