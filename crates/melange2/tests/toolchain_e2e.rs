//! The real-toolchain tier (docs/toolchain.md): real C software built with the standard
//! pipelines on a Debian root filesystem with gcc, autotools, cmake and meson, made by
//! `scripts/toolchain-rootfs.sh` and given with `--bootstrap-rootfs`. `make test` makes the
//! rootfs (cached) and passes its path in `MELANGE2_TOOLCHAIN_ROOTFS`; without it these tests
//! fail and say how to get it.
//!
//! Three projects written here: an autotools library and program (fetched from 127.0.0.1 as a
//! tarball, `autoconf/*`, `strip`, `split/dev`, `split/manpages`), a CMake one and a Meson one.
//! Each is built, its `test:` blocks run with `melange2 test`, the SCA results of its packages
//! checked, and a forced rebuild must come entirely from the cache, byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use common::{apks, daemon, differing, extract, melange2, serve, vertices};
use melange2_apk::{Keyring, PkgInfo, verify_package};

/// The toolchain rootfs of `make test`, checked to hold a compiler.
fn rootfs() -> PathBuf {
    let Some(dir) = std::env::var_os("MELANGE2_TOOLCHAIN_ROOTFS") else {
        panic!(
            "MELANGE2_TOOLCHAIN_ROOTFS is not set: the real-toolchain tests need the Debian rootfs \
             made by scripts/toolchain-rootfs.sh. Run `make test`, or \
             `export MELANGE2_TOOLCHAIN_ROOTFS=$(scripts/toolchain-rootfs.sh)` before `cargo test` \
             (docs/toolchain.md)"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("usr/bin/gcc").exists() && dir.join("usr/bin/cmake").exists(),
        "MELANGE2_TOOLCHAIN_ROOTFS={} has no usr/bin/gcc or usr/bin/cmake: make it with \
         scripts/toolchain-rootfs.sh (docs/toolchain.md)",
        dir.display()
    );
    let db = std::fs::read_to_string(dir.join("usr/lib/apk/db/installed")).unwrap_or_default();
    assert!(
        db.contains("\nP:man-db\n") && db.contains("P:debian-rootfs\n"),
        "MELANGE2_TOOLCHAIN_ROOTFS={} was made by an older scripts/toolchain-rootfs.sh (its apk \
         database lacks man-db or debian-rootfs): use the path the script prints now \
         (docs/toolchain.md)",
        dir.display()
    );
    dir
}

/// A work directory with a signing key (`melange.rsa`).
struct Work {
    dir: tempfile::TempDir,
    rootfs: PathBuf,
}

impl Work {
    fn new() -> Work {
        let rootfs = rootfs();
        let dir = tempfile::tempdir().unwrap();
        let o = melange2()
            .args(["keygen", "--key-size", "2048"])
            .arg(dir.path().join("melange.rsa"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Work { dir, rootfs }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn out(&self) -> PathBuf {
        self.path().join("packages")
    }

    fn keyring(&self) -> Keyring {
        let mut kr = Keyring::new();
        kr.add_file(&self.path().join("melange.rsa.pub")).unwrap();
        kr
    }

    /// `melange2 build` over the toolchain rootfs, progress as rawjson.
    fn build(&self, recipe: &Path, extra: &[&str]) -> Output {
        melange2()
            .arg("build")
            .arg(recipe)
            .args(["--arch", "x86_64", "--progress", "rawjson"])
            .arg("--bootstrap-rootfs")
            .arg(&self.rootfs)
            .arg("--out-dir")
            .arg(self.out())
            .arg("--signing-key")
            .arg(self.path().join("melange.rsa"))
            .args(["--buildkit-addr", &daemon()])
            .args(extra)
            .current_dir(self.path())
            .output()
            .unwrap()
    }

    /// `melange2 test` of the built packages over the toolchain rootfs.
    fn test(&self, recipe: &Path) -> Output {
        melange2()
            .arg("test")
            .arg(recipe)
            .args(["--arch", "x86_64", "--progress", "plain"])
            .arg("--bootstrap-rootfs")
            .arg(&self.rootfs)
            .arg("-r")
            .arg(self.out())
            .arg("-k")
            .arg(self.path().join("melange.rsa.pub"))
            .arg("--apk-cache-dir")
            .arg(self.path().join("apk-cache"))
            .args(["--buildkit-addr", &daemon()])
            .current_dir(self.path())
            .output()
            .unwrap()
    }

    /// The `.PKGINFO` of a built package, its signature checked.
    fn pkginfo(&self, file: &str) -> PkgInfo {
        let apk = self.out().join("x86_64").join(file);
        verify_package(&apk, &self.keyring(), None)
            .unwrap_or_else(|e| panic!("{}: {e}", apk.display()))
            .pkginfo
    }

    /// The data paths of a built package.
    fn files(&self, file: &str) -> Vec<String> {
        let apk = self.out().join("x86_64").join(file);
        verify_package(&apk, &self.keyring(), None)
            .unwrap_or_else(|e| panic!("{}: {e}", apk.display()))
            .data
            .entries
            .into_iter()
            .map(|e| e.path)
            .collect()
    }
}

fn ok<'a>(what: &str, o: &'a Output) -> &'a Output {
    assert!(
        o.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Write `files` (relative path, text) under `dir`.
fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
}

/// A `.tar.gz` of `files` under `<top>/`, fixed mtimes and modes: the same bytes every run.
fn tarball(top: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut sorted = files.to_vec();
    sorted.sort();
    for (rel, text) in sorted {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, format!("{top}/{rel}"), text.as_bytes())
            .unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// Build, test, and rebuild with `--force`: the second build runs no step (every step vertex
/// cached) and writes the same packages and index, byte for byte. Returns the packages.
fn build_test_rebuild(w: &Work, recipe: &Path, extra: &[&str]) -> BTreeMap<String, Vec<u8>> {
    ok("melange2 build", &w.build(recipe, extra));
    let first = apks(&w.out());
    assert!(first.contains_key("APKINDEX.tar.gz"), "{:?}", first.keys());
    ok("melange2 test", &w.test(recipe));

    let mut force = extra.to_vec();
    force.push("--force");
    let again = w.build(recipe, &force);
    ok("melange2 build --force", &again);
    let v = vertices(&again);
    let steps: BTreeMap<&String, &bool> = v.iter().filter(|(n, _)| !is_plumbing(n)).collect();
    let ran: Vec<&&String> = steps
        .iter()
        .filter(|(_, c)| !***c)
        .map(|(n, _)| n)
        .collect();
    assert!(
        ran.is_empty(),
        "steps ran again on an unchanged rebuild: {ran:?}\nall: {v:?}"
    );
    for want in ["prepare workspace", "collect package trees", "uses: strip"] {
        assert!(
            steps.keys().any(|n| n.as_str() == want),
            "no {want:?} step in the progress: {v:?}"
        );
    }
    let second = apks(&w.out());
    assert_eq!(
        differing(&first, &second),
        Vec::<String>::new(),
        "a rebuild changed these files"
    );
    second
}

/// Vertices that are not build steps: moving local files into BuildKit (the rootfs, the
/// source, the packages; they run on every build by nature, only their content is cached),
/// the environment's file operations (BuildKit may evaluate these again while it checks the
/// content-based cache keys of the steps over them) and the export of the package trees.
fn is_plumbing(name: &str) -> bool {
    [
        "send ",
        "local://",
        "copy ",
        "environment",
        "install ",
        "packages from ",
        "exporting ",
    ]
    .iter()
    .any(|p| name.starts_with(p))
        || name.contains("[internal]")
        || name == "mkdir /tmp"
}

fn has_debug_sections(bytes: &[u8]) -> bool {
    bytes
        .windows(b".debug_info".len())
        .any(|w| w == b".debug_info")
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

// --- autotools: fetch, autoconf/*, strip, split/dev, split/manpages ---

const GREET_FILES: &[(&str, &str)] = &[
    (
        "configure.ac",
        "AC_INIT([greet], [1.0])\nAC_CONFIG_SRCDIR([greet.c])\nAM_INIT_AUTOMAKE([foreign])\n\
         AC_PROG_CC\nLT_INIT\nAC_CONFIG_FILES([Makefile greet.pc])\nAC_OUTPUT\n",
    ),
    (
        "Makefile.am",
        "lib_LTLIBRARIES = libgreet.la\nlibgreet_la_SOURCES = greet.c\n\
         libgreet_la_LDFLAGS = -version-info 1:0:0\ninclude_HEADERS = greet.h\n\
         bin_PROGRAMS = greet\ngreet_SOURCES = main.c\ngreet_LDADD = libgreet.la\n\
         pkgconfigdir = $(libdir)/pkgconfig\npkgconfig_DATA = greet.pc\n\
         dist_man_MANS = greet.1\n",
    ),
    (
        "greet.h",
        "#ifndef GREET_H\n#define GREET_H\nconst char *greet_word(void);\n\
         int greet_print(const char *who);\n#endif\n",
    ),
    (
        "greet.c",
        "#include <stdio.h>\n#include \"greet.h\"\n\
         const char *greet_word(void) { return \"Hello\"; }\n\
         int greet_print(const char *who) { return printf(\"%s, %s!\\n\", greet_word(), who) < 0; }\n",
    ),
    (
        "main.c",
        "#include \"greet.h\"\n\
         int main(int argc, char **argv) { return greet_print(argc > 1 ? argv[1] : \"world\"); }\n",
    ),
    (
        "greet.pc.in",
        "prefix=@prefix@\nexec_prefix=@exec_prefix@\nlibdir=@libdir@\nincludedir=@includedir@\n\n\
         Name: greet\nDescription: Greetings\nVersion: @VERSION@\n\
         Libs: -L${libdir} -lgreet\nCflags: -I${includedir}\n",
    ),
    (
        "greet.1",
        ".TH GREET 1\n.SH NAME\ngreet \\- print a greeting\n.SH SYNOPSIS\n.B greet\n[NAME]\n",
    ),
];

const GREET_RECIPE: &str = r#"package:
  name: greet
  version: "1.0"
  epoch: 0
  description: greets people
  copyright:
    - license: MIT
pipeline:
  - uses: fetch
    with:
      uri: @URL@
      expected-sha256: @SHA256@
  - uses: autoconf/configure
  - uses: autoconf/make
  - uses: autoconf/make-install
  - uses: strip
subpackages:
  - name: greet-dev
    description: greet headers, pkg-config file and static library
    pipeline:
      - uses: split/dev
    test:
      pipeline:
        - name: link a program with pkg-config
          runs: |
            cat > /tmp/use.c <<'EOF'
            #include <string.h>
            #include <greet.h>
            int main(void) { return strcmp(greet_word(), "Hello") != 0; }
            EOF
            cc -o /tmp/use /tmp/use.c $(pkg-config --cflags --libs greet)
            /tmp/use
  - name: greet-doc
    description: greet manual pages
    pipeline:
      - uses: split/manpages
test:
  pipeline:
    - name: run the program
      runs: |
        greet tester | grep -x 'Hello, tester!'
        test -e /usr/lib/libgreet.so.1
"#;

#[test]
fn autotools_library_fetch_strip_split_sca_and_cached_rebuild() {
    use sha2::Digest;
    let w = Work::new();
    let tgz = tarball("greet-1.0", GREET_FILES);
    let sum = hex::encode(sha2::Sha256::digest(&tgz));
    let url = serve(tgz, "greet-1.0.tar.gz");
    let recipe = w.path().join("greet.yaml");
    std::fs::write(
        &recipe,
        GREET_RECIPE
            .replace("@URL@", &url)
            .replace("@SHA256@", &sum),
    )
    .unwrap();
    build_test_rebuild(&w, &recipe, &[]);

    // What went where: library and program in the main package, the rest split off.
    let main = w.files("greet-1.0-r0.apk");
    for p in [
        "usr/bin/greet",
        "usr/lib/libgreet.so.1",
        "usr/lib/libgreet.so.1.0.0",
    ] {
        assert!(main.iter().any(|f| f == p), "greet lacks {p}: {main:?}");
    }
    assert!(
        !main.iter().any(|f| f.ends_with(".la")),
        "libtool archives removed: {main:?}"
    );
    let dev = w.files("greet-dev-1.0-r0.apk");
    for p in [
        "usr/include/greet.h",
        "usr/lib/pkgconfig/greet.pc",
        "usr/lib/libgreet.so",
        "usr/lib/libgreet.a",
    ] {
        assert!(dev.iter().any(|f| f == p), "greet-dev lacks {p}: {dev:?}");
    }
    let doc = w.files("greet-doc-1.0-r0.apk");
    assert!(
        doc.iter().any(|f| f == "usr/share/man/man1/greet.1"),
        "{doc:?}"
    );

    // `strip` removed the debug sections autoconf's default -g put in.
    let tree = extract(&w.out().join("x86_64/greet-1.0-r0.apk"), w.path());
    for f in ["usr/bin/greet", "usr/lib/libgreet.so.1.0.0"] {
        let bytes = std::fs::read(tree.join(f)).unwrap();
        assert!(!has_debug_sections(&bytes), "{f} still has debug sections");
    }

    // SCA: so: and cmd: provides of the main package, pc: in -dev, and the depends that follow.
    let greet = w.pkginfo("greet-1.0-r0.apk");
    assert_eq!(
        sorted(&greet.provides),
        [
            "cmd:greet=1.0-r0",
            "so-ver:libgreet.so.1=1.0-r0",
            "so:libgreet.so.1=1"
        ]
    );
    assert_eq!(
        sorted(&greet.depends),
        ["so:ld-linux-x86-64.so.2", "so:libc.so.6"]
    );
    let dev = w.pkginfo("greet-dev-1.0-r0.apk");
    assert_eq!(dev.provides, ["pc:greet=1.0-r0"]);
    assert_eq!(dev.depends, ["so:libgreet.so.1"]);
    let doc = w.pkginfo("greet-doc-1.0-r0.apk");
    assert_eq!(doc.depends, ["man-db"]);
}

// --- CMake: cmake/configure, cmake/build, cmake/install from a source directory ---

const CALC_FILES: &[(&str, &str)] = &[
    (
        "CMakeLists.txt",
        "cmake_minimum_required(VERSION 3.13)\nproject(calc VERSION 2.3.0 LANGUAGES C)\n\
         include(GNUInstallDirs)\nadd_library(calc SHARED calc.c)\n\
         set_target_properties(calc PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION 2 \
         PUBLIC_HEADER calc.h)\nadd_executable(calc-cli main.c)\n\
         set_target_properties(calc-cli PROPERTIES OUTPUT_NAME calc)\n\
         target_link_libraries(calc-cli calc)\nconfigure_file(calc.pc.in calc.pc @ONLY)\n\
         install(TARGETS calc calc-cli LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} \
         RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} \
         PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})\n\
         install(FILES ${CMAKE_CURRENT_BINARY_DIR}/calc.pc \
         DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)\n",
    ),
    ("calc.h", "int calc_sum(int a, int b);\n"),
    (
        "calc.c",
        "#include \"calc.h\"\nint calc_sum(int a, int b) { return a + b; }\n",
    ),
    (
        "main.c",
        "#include <stdio.h>\n#include <stdlib.h>\n#include \"calc.h\"\n\
         int main(int argc, char **argv) {\n  if (argc != 3) return 2;\n\
         printf(\"%d\\n\", calc_sum(atoi(argv[1]), atoi(argv[2])));\n  return 0;\n}\n",
    ),
    // Requires.private on a module of the rootfs: the -dev package depends on pc:libcrypt.
    (
        "calc.pc.in",
        "prefix=@CMAKE_INSTALL_PREFIX@\nlibdir=${prefix}/@CMAKE_INSTALL_LIBDIR@\n\
         includedir=${prefix}/@CMAKE_INSTALL_INCLUDEDIR@\n\nName: calc\n\
         Description: Sums numbers\nVersion: @PROJECT_VERSION@\nRequires.private: libcrypt\n\
         Libs: -L${libdir} -lcalc\nCflags: -I${includedir}\n",
    ),
];

const CALC_RECIPE: &str = r#"package:
  name: calc
  version: "2.3"
  epoch: 1
  description: sums numbers
  copyright:
    - license: Apache-2.0
pipeline:
  - uses: cmake/configure
  - uses: cmake/build
  - uses: cmake/install
  - uses: strip
subpackages:
  - name: calc-dev
    description: calc headers and pkg-config file
    pipeline:
      - uses: split/dev
    test:
      pipeline:
        - runs: |
            printf '#include <calc.h>\nint main(void) { return calc_sum(2, 2) != 4; }\n' > /tmp/t.c
            cc -o /tmp/t /tmp/t.c $(pkg-config --cflags --libs calc)
            /tmp/t
test:
  pipeline:
    - runs: |
        test "$(calc 40 2)" = 42
"#;

#[test]
fn cmake_library_and_program_sca_and_cached_rebuild() {
    let w = Work::new();
    let src = w.path().join("calc-src");
    write_tree(&src, CALC_FILES);
    let recipe = w.path().join("calc.yaml");
    std::fs::write(&recipe, CALC_RECIPE).unwrap();
    let src_arg = src.to_string_lossy().into_owned();
    build_test_rebuild(&w, &recipe, &["--source-dir", &src_arg]);

    let calc = w.pkginfo("calc-2.3-r1.apk");
    assert_eq!(
        sorted(&calc.provides),
        [
            "cmd:calc=2.3-r1",
            "so-ver:libcalc.so.2=2.3-r1",
            "so:libcalc.so.2=2"
        ]
    );
    assert_eq!(
        sorted(&calc.depends),
        ["so:ld-linux-x86-64.so.2", "so:libc.so.6"]
    );
    let dev = w.pkginfo("calc-dev-2.3-r1.apk");
    assert_eq!(dev.provides, ["pc:calc=2.3-r1"]);
    assert_eq!(sorted(&dev.depends), ["pc:libcrypt", "so:libcalc.so.2"]);
    let files = w.files("calc-dev-2.3-r1.apk");
    for p in [
        "usr/include/calc.h",
        "usr/lib/pkgconfig/calc.pc",
        "usr/lib/libcalc.so",
    ] {
        assert!(
            files.iter().any(|f| f == p),
            "calc-dev lacks {p}: {files:?}"
        );
    }
}

// --- Meson: meson/configure, meson/compile, meson/install from a source directory ---

const LOUD_FILES: &[(&str, &str)] = &[
    (
        "meson.build",
        "project('shout', 'c', version: '0.4.0')\n\
         lib = shared_library('loud', 'loud.c', version: '0.4.0', soversion: '0', install: true)\n\
         install_headers('loud.h')\n\
         executable('shout', 'main.c', link_with: lib, install: true)\n\
         pkg = import('pkgconfig')\n\
         pkg.generate(lib, description: 'Upper-cases text')\n",
    ),
    ("loud.h", "void loud_upcase(char *s);\n"),
    (
        "loud.c",
        "#include <ctype.h>\n#include \"loud.h\"\n\
         void loud_upcase(char *s) { for (; *s; s++) *s = (char)toupper((unsigned char)*s); }\n",
    ),
    (
        "main.c",
        "#include <stdio.h>\n#include \"loud.h\"\n\
         int main(int argc, char **argv) {\n  for (int i = 1; i < argc; i++) {\n\
         loud_upcase(argv[i]);\n    puts(argv[i]);\n  }\n  return 0;\n}\n",
    ),
];

// Debian's meson installs libraries into the multiarch directory (lib/x86_64-linux-gnu) unless
// told otherwise; melange's meson/configure leaves libdir to meson, so the recipe sets it.
const SHOUT_RECIPE: &str = r#"package:
  name: shout
  version: "0.4"
  epoch: 0
  description: shouts
  copyright:
    - license: MIT
pipeline:
  - uses: meson/configure
    with:
      opts: -Dlibdir=lib
  - uses: meson/compile
  - uses: meson/install
  - uses: strip
subpackages:
  - name: shout-dev
    description: shout development files
    pipeline:
      - uses: split/dev
test:
  pipeline:
    - runs: |
        test "$(shout hey)" = HEY
        test -e /usr/lib/libloud.so.0
"#;

#[test]
fn meson_library_and_program_sca_and_cached_rebuild() {
    let w = Work::new();
    let src = w.path().join("shout-src");
    write_tree(&src, LOUD_FILES);
    let recipe = w.path().join("shout.yaml");
    std::fs::write(&recipe, SHOUT_RECIPE).unwrap();
    let src_arg = src.to_string_lossy().into_owned();
    build_test_rebuild(&w, &recipe, &["--source-dir", &src_arg]);

    let shout = w.pkginfo("shout-0.4-r0.apk");
    assert_eq!(
        sorted(&shout.provides),
        [
            "cmd:shout=0.4-r0",
            "so-ver:libloud.so.0=0.4-r0",
            "so:libloud.so.0=0"
        ]
    );
    assert_eq!(
        sorted(&shout.depends),
        ["so:ld-linux-x86-64.so.2", "so:libc.so.6"]
    );
    let dev = w.pkginfo("shout-dev-0.4-r0.apk");
    assert_eq!(dev.provides, ["pc:loud=0.4-r0"]);
    assert_eq!(dev.depends, ["so:libloud.so.0"]);
}
