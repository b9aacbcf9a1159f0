//! The linters of spec F.5: registry (names, default severities,
//! explanations) and checks.
//!
//! Every check looks at one package. Paths are relative to the package root
//! (`usr/bin/foo`); "under `D/`" means anywhere below `D`. Entries below
//! `var/lib/db/sbom/` (the SBOM melange writes into every package) are seen
//! only by the `sbom` linter.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest as _, Sha256};

use crate::elf::{self, Header};
use crate::input::{FileEntry, FileType, PackageFiles};
use crate::policy::Severity;
use crate::report::Offender;

/// Static description of one linter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinterInfo {
    /// Name used by `--lint-require`, `--lint-warn` and `checks:`.
    pub name: &'static str,
    /// melange's default severity.
    pub default: Severity,
    /// What the linter reports (used as the finding's message).
    pub description: &'static str,
    /// How to fix it.
    pub explain: &'static str,
}

const fn l(
    name: &'static str,
    default: Severity,
    description: &'static str,
    explain: &'static str,
) -> LinterInfo {
    LinterInfo {
        name,
        default,
        description,
        explain,
    }
}

use Severity::{Ignored as I, Required as R, Warn as W};

/// Every linter, in the order they run and are reported.
pub const LINTERS: &[LinterInfo] = &[
    l(
        "dev",
        R,
        "package writes to /dev",
        "create device nodes at runtime (udev, tmpfiles.d) instead of shipping files in /dev",
    ),
    l(
        "setuidgid",
        R,
        "files with the setuid, setgid or sticky bit",
        "clear the setuid/setgid/sticky bits in the pipeline, or disable the linter for this package",
    ),
    l(
        "tempdir",
        R,
        "package writes to a temporary or runtime directory",
        "remove files from /tmp, /var/tmp, /run and /var/run in the pipeline; create runtime directories with tmpfiles.d",
    ),
    l(
        "varempty",
        R,
        "package writes to /var/empty",
        "remove the files from /var/empty in the pipeline",
    ),
    l(
        "worldwrite",
        R,
        "world-writable files",
        "remove the world-writable bit (chmod o-w), disable the linter, or make this a -compat package",
    ),
    l(
        "infodir",
        R,
        "package ships /usr/share/info/dir",
        "remove /usr/share/info/dir (it is generated on the installed system)",
    ),
    l(
        "usrmerge",
        R,
        "paths outside the merged /usr (bin, sbin, lib, lib64, usr/sbin)",
        "install into /usr/bin and /usr/lib instead",
    ),
    l(
        "libtool/la-files",
        R,
        "libtool .la archives",
        "remove the .la files in the pipeline (e.g. find ${{targets.destdir}} -name '*.la' -delete)",
    ),
    l(
        "opt",
        W,
        "files in /opt",
        "install into /usr, or make this a -compat package",
    ),
    l(
        "srv",
        W,
        "files in /srv",
        "install into /usr or /var, or make this a -compat package",
    ),
    l(
        "usrlocal",
        W,
        "files in /usr/local",
        "install into /usr (e.g. --prefix=/usr), or make this a -compat package",
    ),
    l(
        "object",
        W,
        "intermediate object files (.o)",
        "remove the .o files in the pipeline",
    ),
    l(
        "staticarchive",
        W,
        "static archives (.a) outside a -dev or -static package",
        "move static archives into a -static or -dev subpackage, or remove them",
    ),
    l(
        "maninfo",
        W,
        "man or info pages in a package that is not -doc",
        "move documentation into a -doc subpackage (uses: split/manpages, split/infodir)",
    ),
    l(
        "strip",
        W,
        "ELF files with debug information (.debug*/.zdebug* sections)",
        "strip the debug information (uses: strip, or split/debug into a -dbg package) or build without -g",
    ),
    l(
        "sbom",
        W,
        "files in /var/lib/db/sbom other than *.spdx.json",
        "remove the files from /var/lib/db/sbom; the SBOM is written by melange2",
    ),
    l(
        "python/docs",
        W,
        "docs directory in Python site-packages",
        "remove the docs directory from site-packages",
    ),
    l(
        "python/test",
        W,
        "test directory in Python site-packages",
        "remove the test(s) directory from site-packages",
    ),
    l(
        "python/multiple",
        W,
        "more than one top-level Python package in site-packages",
        "split the package up, and check that pip does not install unrelated packages",
    ),
    l(
        "pkgconf",
        W,
        "pkg-config files without a test/pkgconf test",
        "add `uses: test/pkgconf` to the package's test pipeline",
    ),
    l(
        "lddcheck",
        W,
        "shared libraries without an ldd-check test",
        "add `uses: test/ldd-check` (or test/tw/ldd-check) to the package's test pipeline",
    ),
    l(
        "cudaruntimelib",
        W,
        "CUDA driver libraries, which must come from the host",
        "do not ship driver libraries (libcuda, libnvidia-*); link against a stub library instead",
    ),
    l(
        "dll",
        W,
        "Windows libraries (.dll)",
        "remove the Windows libraries",
    ),
    l(
        "dylib",
        W,
        "macOS libraries (.dylib)",
        "remove the macOS libraries",
    ),
    l(
        "nonlinux",
        W,
        "paths naming a non-Linux operating system",
        "remove files built for other operating systems",
    ),
    l(
        "unsupportedarch",
        W,
        "paths naming an unsupported architecture (only x86_64 and aarch64 are supported)",
        "remove files built for other architectures",
    ),
    l(
        "binaryarch",
        W,
        "ELF files for an unsupported architecture (only x86_64 and aarch64 are supported)",
        "remove binaries built for other architectures",
    ),
    l(
        "duplicate",
        W,
        "identical files (same name and content) in different directories",
        "keep one copy and replace the others with symlinks",
    ),
    l(
        "documentation",
        I,
        "documentation files in a package that is not -doc",
        "move documentation into a -doc subpackage or remove it",
    ),
    l(
        "empty",
        I,
        "package contains no files",
        "check the build; if the package is meant to be empty, disable this linter",
    ),
];

/// Look up a linter by name.
pub fn linter(name: &str) -> Option<&'static LinterInfo> {
    LINTERS.iter().find(|l| l.name == name)
}

/// Test pipelines that satisfy `pkgconf`.
pub const PKGCONF_TESTS: &[&str] = &["test/pkgconf", "test/tw/pkgconf"];
/// Test pipelines that satisfy `lddcheck`.
pub const LDDCHECK_TESTS: &[&str] = &["test/ldd-check", "test/tw/ldd-check"];

const SBOM_DIR: &str = "var/lib/db/sbom";

/// Everything a check may look at.
pub(crate) struct Ctx<'a> {
    pub(crate) files: &'a PackageFiles<'a>,
    pub(crate) package: &'a str,
    /// `uses:` of every step of the package's test (None: unknown).
    pub(crate) test_uses: Option<&'a BTreeSet<String>>,
    headers: Vec<OnceCell<Option<Header>>>,
    pub(crate) notes: std::cell::RefCell<Vec<String>>,
}

type Fired = Option<Vec<Offender>>;

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        files: &'a PackageFiles<'a>,
        package: &'a str,
        test_uses: Option<&'a BTreeSet<String>>,
    ) -> Self {
        Ctx {
            headers: (0..files.entries().len())
                .map(|_| OnceCell::new())
                .collect(),
            files,
            package,
            test_uses,
            notes: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Entries with their index, the SBOM directory excluded.
    fn entries(&self) -> impl Iterator<Item = (usize, &'a FileEntry)> + 'a {
        self.files
            .entries()
            .iter()
            .enumerate()
            .filter(|(_, e)| !under(&e.path, SBOM_DIR) && e.path != SBOM_DIR)
    }

    fn note_read_error(&self, e: &FileEntry, err: &std::io::Error) {
        self.notes
            .borrow_mut()
            .push(format!("could not read {}: {err}; skipped", e.path));
    }

    /// The ELF header of a regular file (cached).
    fn elf(&self, i: usize, e: &FileEntry) -> Option<Header> {
        if !e.is_regular() || e.size < 52 {
            return None;
        }
        *self.headers[i].get_or_init(|| match self.files.read_range(i, 0, elf::HEADER_LEN) {
            Ok(b) => elf::parse_header(&b),
            Err(err) => {
                self.note_read_error(e, &err);
                None
            }
        })
    }

    fn ends(&self, suffix: &str) -> bool {
        self.package.ends_with(suffix)
    }
}

/// `path` is strictly below `dir`.
fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

fn offenders<'b>(it: impl Iterator<Item = &'b FileEntry>) -> Fired {
    let v: Vec<Offender> = it.map(|e| Offender::new(&e.path)).collect();
    (!v.is_empty()).then_some(v)
}

fn non_empty(v: Vec<Offender>) -> Fired {
    (!v.is_empty()).then_some(v)
}

/// Run one linter.
pub(crate) fn check(name: &str, c: &Ctx) -> Fired {
    match name {
        "dev" => offenders(c.entries().map(|x| x.1).filter(|e| under(&e.path, "dev"))),
        "setuidgid" => setuidgid(c),
        "tempdir" => tempdir(c),
        "varempty" => offenders(
            c.entries()
                .map(|x| x.1)
                .filter(|e| under(&e.path, "var/empty")),
        ),
        "worldwrite" => worldwrite(c),
        "infodir" => offenders(
            c.entries()
                .map(|x| x.1)
                .filter(|e| e.path == "usr/share/info/dir" && !e.is_dir()),
        ),
        "usrmerge" => usrmerge(c),
        "libtool/la-files" => la_files(c),
        "opt" => compat_dir(c, "opt"),
        "srv" => compat_dir(c, "srv"),
        "usrlocal" => compat_dir(c, "usr/local"),
        "object" => offenders(
            c.entries()
                .map(|x| x.1)
                .filter(|e| e.is_regular() && e.name().ends_with(".o")),
        ),
        "staticarchive" => {
            if c.ends("-dev") || c.ends("-static") {
                return None;
            }
            offenders(
                c.entries()
                    .map(|x| x.1)
                    .filter(|e| e.is_regular() && e.name().ends_with(".a")),
            )
        }
        "maninfo" => {
            if c.ends("-doc") {
                return None;
            }
            offenders(c.entries().map(|x| x.1).filter(|e| {
                !e.is_dir()
                    && [
                        "usr/share/man",
                        "usr/local/share/man",
                        "usr/share/info",
                        "usr/local/share/info",
                    ]
                    .iter()
                    .any(|d| under(&e.path, d))
            }))
        }
        "strip" => strip(c),
        "sbom" => offenders(c.files.entries().iter().filter(|e| {
            !e.is_dir() && under(&e.path, SBOM_DIR) && !e.name().ends_with(".spdx.json")
        })),
        "python/docs" => python_named(c, &["doc", "docs"]),
        "python/test" => python_named(c, &["test", "tests"]),
        "python/multiple" => python_multiple(c),
        "pkgconf" => needs_test(c, "pkgconf", PKGCONF_TESTS, |_, _, e| {
            e.name().ends_with(".pc")
                && !e.is_dir()
                && matches!(
                    e.parent(),
                    "usr/lib/pkgconfig" | "usr/lib64/pkgconfig" | "usr/share/pkgconfig"
                )
        }),
        "lddcheck" => needs_test(c, "lddcheck", LDDCHECK_TESTS, |c, i, e| {
            is_shared_object_name(e.name()) && c.elf(i, e).is_some_and(|h| h.e_type == elf::ET_DYN)
        }),
        "cudaruntimelib" => offenders(c.entries().map(|x| x.1).filter(|e| {
            matches!(e.file_type, FileType::Regular | FileType::Symlink)
                && !e.path.split('/').any(|p| p == "stubs")
                && is_cuda_driver_lib(e.name())
        })),
        "dll" => offenders(c.entries().map(|x| x.1).filter(|e| {
            matches!(e.file_type, FileType::Regular | FileType::Symlink)
                && e.name().to_ascii_lowercase().ends_with(".dll")
        })),
        "dylib" => offenders(c.entries().map(|x| x.1).filter(|e| {
            matches!(e.file_type, FileType::Regular | FileType::Symlink)
                && e.name().to_ascii_lowercase().ends_with(".dylib")
        })),
        "nonlinux" => path_tokens(c, NON_LINUX),
        "unsupportedarch" => path_tokens(c, UNSUPPORTED_ARCH),
        "binaryarch" => binaryarch(c),
        "duplicate" => duplicate(c),
        "documentation" => {
            if c.ends("-doc") {
                return None;
            }
            offenders(
                c.entries()
                    .map(|x| x.1)
                    .filter(|e| e.is_regular() && is_documentation(&e.path, e.name())),
            )
        }
        "empty" => {
            if c.entries().any(|(_, e)| !e.is_dir()) {
                None
            } else {
                Some(Vec::new())
            }
        }
        _ => None,
    }
}

fn setuidgid(c: &Ctx) -> Fired {
    non_empty(
        c.entries()
            .filter(|(_, e)| e.file_type != FileType::Symlink)
            .filter_map(|(_, e)| {
                let mut bits = Vec::new();
                if e.mode & 0o4000 != 0 {
                    bits.push("setuid");
                }
                if e.mode & 0o2000 != 0 {
                    bits.push("setgid");
                }
                if e.mode & 0o1000 != 0 {
                    bits.push("sticky");
                }
                (!bits.is_empty()).then(|| {
                    Offender::with(
                        &e.path,
                        format!("{} (mode {:04o})", bits.join(", "), e.mode & 0o7777),
                    )
                })
            })
            .collect(),
    )
}

fn tempdir(c: &Ctx) -> Fired {
    let tmpfiles = c
        .files
        .entries()
        .iter()
        .any(|e| !e.is_dir() && under(&e.path, "usr/lib/tmpfiles.d"));
    non_empty(
        c.entries()
            .map(|x| x.1)
            .filter_map(|e| {
                let why = if under(&e.path, "var/run") {
                    "in /var/run"
                } else if ["tmp", "var/tmp"].iter().any(|d| under(&e.path, d)) {
                    if e.is_dir() {
                        return None;
                    }
                    "in a temporary directory"
                } else if under(&e.path, "run") {
                    if e.is_dir() {
                        if tmpfiles {
                            return None;
                        }
                        "directory in /run without a usr/lib/tmpfiles.d entry"
                    } else {
                        "in /run"
                    }
                } else {
                    return None;
                };
                Some(Offender::with(&e.path, why))
            })
            .collect(),
    )
}

fn worldwrite(c: &Ctx) -> Fired {
    non_empty(
        c.entries()
            .map(|x| x.1)
            .filter(|e| e.is_regular() && e.mode & 0o002 != 0)
            .map(|e| {
                let why = if e.mode & 0o111 != 0 {
                    "world-writable and executable (security risk)"
                } else {
                    "world-writable"
                };
                Offender::with(&e.path, format!("{why}, mode {:04o}", e.mode & 0o7777))
            })
            .collect(),
    )
}

const NON_USR_DIRS: &[&str] = &["bin", "sbin", "lib", "lib64", "usr/sbin"];

fn usrmerge(c: &Ctx) -> Fired {
    offenders(c.entries().map(|x| x.1).filter(|e| {
        NON_USR_DIRS
            .iter()
            .any(|d| under(&e.path, d) || (e.path == *d && e.file_type != FileType::Symlink))
    }))
}

fn la_files(c: &Ctx) -> Fired {
    non_empty(
        c.entries()
            .filter(|(_, e)| e.is_regular() && e.name().ends_with(".la"))
            .filter(|(i, e)| match c.files.read_range(*i, 0, 512) {
                Ok(b) => b.windows(7).any(|w| w == b"libtool"),
                Err(err) => {
                    c.note_read_error(e, &err);
                    false
                }
            })
            .map(|(_, e)| Offender::new(&e.path))
            .collect(),
    )
}

fn compat_dir(c: &Ctx, dir: &str) -> Fired {
    if c.ends("-compat") {
        return None;
    }
    offenders(
        c.entries()
            .map(|x| x.1)
            .filter(|e| !e.is_dir() && under(&e.path, dir)),
    )
}

fn strip(c: &Ctx) -> Fired {
    non_empty(
        c.entries()
            .filter(|(_, e)| {
                e.is_regular()
                    && !under(&e.path, "usr/lib/debug")
                    && (e.mode & 0o111 != 0 || is_shared_object_name(e.name()))
            })
            .filter_map(|(i, e)| {
                let h = c.elf(i, e)?;
                if !matches!(h.e_type, elf::ET_EXEC | elf::ET_DYN) {
                    return None;
                }
                match elf::sections(c.files, i, &h) {
                    Ok(s) => elf::unstripped_reason(&s).map(|why| Offender::with(&e.path, why)),
                    Err(err) => {
                        c.note_read_error(e, &err);
                        None
                    }
                }
            })
            .collect(),
    )
}

/// `libfoo.so`, `libfoo.so.1`, `libfoo.so.1.2.3`.
fn is_shared_object_name(name: &str) -> bool {
    let Some(i) = name.find(".so") else {
        return false;
    };
    let rest = &name[i + 3..];
    rest.is_empty()
        || rest.strip_prefix('.').is_some_and(|v| {
            v.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Top-level entries of every `usr/lib/pythonX.Y/site-packages/`:
/// site-packages dir → [(name, entry)].
fn site_packages<'a>(c: &Ctx<'a>) -> BTreeMap<String, Vec<&'a FileEntry>> {
    let mut out: BTreeMap<String, Vec<&FileEntry>> = BTreeMap::new();
    for (_, e) in c.entries() {
        let Some(rest) = e.path.strip_prefix("usr/lib/python") else {
            continue;
        };
        let mut parts = rest.splitn(3, '/');
        let (Some(ver), Some("site-packages"), Some(top)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let version_ok = ver.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && (a.bytes().chain(b.bytes())).all(|x| x.is_ascii_digit())
        });
        if !version_ok || top.contains('/') {
            continue;
        }
        out.entry(format!("usr/lib/python{ver}/site-packages"))
            .or_default()
            .push(e);
    }
    out
}

fn python_named(c: &Ctx, names: &[&str]) -> Fired {
    offenders(
        site_packages(c)
            .into_values()
            .flatten()
            .filter(|e| names.contains(&e.name())),
    )
}

fn python_multiple(c: &Ctx) -> Fired {
    let mut out = Vec::new();
    for (dir, tops) in site_packages(c) {
        let pkgs: Vec<&FileEntry> = tops
            .into_iter()
            .filter(|e| {
                let n = e.name();
                let ignored = n == "__pycache__"
                    || n.ends_with(".dist-info")
                    || n.ends_with(".egg-info")
                    || n.ends_with(".egg-link");
                !ignored && (e.is_dir() || (e.is_regular() && n.ends_with(".py")))
            })
            .collect();
        if pkgs.len() > 1 {
            let names: Vec<&str> = pkgs.iter().map(|e| e.name()).collect();
            out.push(Offender::with(
                &dir,
                format!("{} packages: {}", names.len(), names.join(", ")),
            ));
        }
    }
    non_empty(out)
}

fn needs_test(
    c: &Ctx,
    name: &str,
    tests: &[&str],
    matches: impl Fn(&Ctx, usize, &FileEntry) -> bool,
) -> Fired {
    if c.test_uses
        .is_some_and(|u| tests.iter().any(|t| u.contains(*t)))
    {
        return None;
    }
    let found = offenders(c.entries().filter(|(i, e)| matches(c, *i, e)).map(|x| x.1));
    if found.is_some() && c.test_uses.is_none() {
        c.notes.borrow_mut().push(format!(
            "{name}: not checked: the package's test pipeline is unknown (no build configuration)"
        ));
        return None;
    }
    found
}

const CUDA_DRIVER_PREFIXES: &[&str] = &[
    "libcuda.so",
    "libcudadebugger.so",
    "libnvcuvid.so",
    "libnvoptix.so",
    "libnvidia-",
    "libEGL_nvidia.so",
    "libGLESv1_CM_nvidia.so",
    "libGLESv2_nvidia.so",
    "libGLX_nvidia.so",
];

fn is_cuda_driver_lib(name: &str) -> bool {
    CUDA_DRIVER_PREFIXES.iter().any(|p| name.starts_with(p)) && name.contains(".so")
}

const NON_LINUX: &[&str] = &[
    "darwin",
    "macos",
    "macosx",
    "osx",
    "windows",
    "win32",
    "win64",
    "mingw",
    "mingw32",
    "cygwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "solaris",
    "illumos",
    "sunos",
    "aix",
    "android",
];

const UNSUPPORTED_ARCH: &[&str] = &[
    "386",
    "i386",
    "i486",
    "i586",
    "i686",
    "x86",
    "ia32",
    "arm",
    "arm32",
    "armel",
    "armhf",
    "armv5",
    "armv6",
    "armv6l",
    "armv7",
    "armv7l",
    "armv7a",
    "mips",
    "mipsel",
    "mips64",
    "mips64el",
    "mips64le",
    "mipsle",
    "ppc",
    "ppc64",
    "ppc64le",
    "powerpc",
    "powerpc64",
    "powerpc64le",
    "riscv",
    "riscv32",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "loong64",
    "loongarch64",
    "wasm",
    "wasm32",
];

/// Path components split into tokens at `-`, `_` and `.` (`x86_64` and
/// `x86-64` are kept whole as `amd64`).
fn path_tokens(c: &Ctx, words: &[&str]) -> Fired {
    non_empty(
        c.entries()
            .map(|x| x.1)
            .filter(|e| !e.is_dir())
            .filter_map(|e| {
                let lower = e
                    .path
                    .to_ascii_lowercase()
                    .replace("x86_64", "amd64")
                    .replace("x86-64", "amd64");
                let hits: BTreeSet<&str> = lower
                    .split(['/', '-', '_', '.'])
                    .filter_map(|t| words.iter().copied().find(|w| *w == t))
                    .collect();
                (!hits.is_empty()).then(|| {
                    Offender::with(&e.path, hits.into_iter().collect::<Vec<_>>().join(", "))
                })
            })
            .collect(),
    )
}

fn binaryarch(c: &Ctx) -> Fired {
    non_empty(
        c.entries()
            .filter_map(|(i, e)| {
                let h = c.elf(i, e)?;
                if matches!(
                    h.machine,
                    elf::EM_X86_64 | elf::EM_AARCH64 | elf::EM_BPF | elf::EM_NONE
                ) {
                    return None;
                }
                Some(Offender::with(&e.path, elf::machine_name(h.machine)))
            })
            .collect(),
    )
}

fn duplicate(c: &Ctx) -> Fired {
    // candidates: same name and size; hard links of one inode count once
    let mut by_key: BTreeMap<(&str, u64), Vec<(usize, &FileEntry)>> = BTreeMap::new();
    let mut groups_seen = BTreeSet::new();
    for (i, e) in c.entries() {
        if !e.is_regular() || e.size == 0 {
            continue;
        }
        if let Some(g) = e.link_group
            && !groups_seen.insert(g)
        {
            continue;
        }
        by_key.entry((e.name(), e.size)).or_default().push((i, e));
    }
    let mut out = Vec::new();
    for members in by_key.into_values().filter(|m| m.len() > 1) {
        let use_sha1 = members.iter().all(|(_, e)| e.sha1.is_some());
        let mut by_hash: BTreeMap<Vec<u8>, Vec<&FileEntry>> = BTreeMap::new();
        for (i, e) in members {
            let digest = if use_sha1 {
                e.sha1.map(|s| s.to_vec())
            } else {
                hash_content(c, i, e)
            };
            if let Some(d) = digest {
                by_hash.entry(d).or_default().push(e);
            }
        }
        for same in by_hash.into_values().filter(|s| s.len() > 1) {
            let first = &same[0].path;
            for e in &same[1..] {
                out.push(Offender::with(&e.path, format!("same as {first}")));
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    non_empty(out)
}

fn hash_content(c: &Ctx, i: usize, e: &FileEntry) -> Option<Vec<u8>> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut off = 0u64;
    loop {
        match c.files.read_at(i, off, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
                off += n as u64;
            }
            Err(err) => {
                c.note_read_error(e, &err);
                return None;
            }
        }
    }
    Some(h.finalize().to_vec())
}

fn is_documentation(path: &str, name: &str) -> bool {
    if under(path, "usr/share/doc") {
        return true;
    }
    let upper = name.to_ascii_uppercase();
    ["README", "CHANGELOG", "CHANGES", "NEWS", "TODO", "CREDITS"]
        .iter()
        .any(|p| upper == *p || upper.starts_with(&format!("{p}.")))
        || [".md", ".rst", ".markdown"]
            .iter()
            .any(|x| name.to_ascii_lowercase().ends_with(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_object_names() {
        for n in ["libfoo.so", "libfoo.so.1", "libfoo.so.1.2.3", "x.so"] {
            assert!(is_shared_object_name(n), "{n}");
        }
        for n in ["libfoo.so.1a", "libfoo.sock", "foo", "libfoo.so."] {
            assert!(!is_shared_object_name(n), "{n}");
        }
    }

    #[test]
    fn registry_names_are_unique() {
        let names: BTreeSet<&str> = LINTERS.iter().map(|l| l.name).collect();
        assert_eq!(names.len(), LINTERS.len());
        assert!(LINTERS.len() >= 30);
    }

    #[test]
    fn under_is_strict() {
        assert!(under("dev/null", "dev"));
        assert!(!under("dev", "dev"));
        assert!(!under("devices/x", "dev"));
    }
}
