//! Fixtures: ELF files compiled with the system C compiler, trees, plans.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use melange2_apk::PackageTree;
use melange2_lint::{
    Finding, LintReport, LintTarget, PackageFiles, Policy, Severity, lint_package,
};

pub struct Elves {
    /// executable compiled with `-g`: DWARF `.debug_*` sections and `.symtab`
    pub debug: Vec<u8>,
    /// the same after `strip -g` (what `uses: strip` does): `.symtab` stays,
    /// the debug sections are gone
    pub debug_stripped: Vec<u8>,
    /// executable as cc writes it without `-g` (with .symtab, no debug sections)
    pub unstripped: Vec<u8>,
    /// the same after `strip`: no symbol table, no debug sections
    pub stripped: Vec<u8>,
    /// stripped shared library, SONAME libfoo.so.1
    pub shlib: Vec<u8>,
    /// a relocatable object (.o)
    pub object: Vec<u8>,
}

fn run(dir: &Path, prog: &str, args: &[&str]) {
    let out = Command::new(prog)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn elves() -> &'static Elves {
    static E: OnceLock<Elves> = OnceLock::new();
    E.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let d = dir.path();
        std::fs::write(d.join("main.c"), "int main(void) { return 0; }\n").unwrap();
        std::fs::write(d.join("foo.c"), "int foo(void) { return 42; }\n").unwrap();
        run(d, "cc", &["-O1", "-g", "-o", "main-debug", "main.c"]);
        run(
            d,
            "cc",
            &["-O1", "-g", "-o", "main-debug-stripped", "main.c"],
        );
        run(d, "strip", &["-g", "main-debug-stripped"]);
        run(d, "cc", &["-O1", "-o", "main", "main.c"]);
        run(d, "cc", &["-O1", "-o", "main-stripped", "main.c"]);
        run(d, "strip", &["main-stripped"]);
        run(
            d,
            "cc",
            &[
                "-shared",
                "-fPIC",
                "-Wl,-soname,libfoo.so.1",
                "-o",
                "libfoo.so.1.0",
                "foo.c",
            ],
        );
        run(d, "strip", &["libfoo.so.1.0"]);
        run(d, "cc", &["-c", "-o", "foo.o", "foo.c"]);
        let read = |n: &str| std::fs::read(d.join(n)).unwrap();
        Elves {
            debug: read("main-debug"),
            debug_stripped: read("main-debug-stripped"),
            unstripped: read("main"),
            stripped: read("main-stripped"),
            shlib: read("libfoo.so.1.0"),
            object: read("foo.o"),
        }
    })
}

/// A 64-byte ELF64 little-endian header for `machine` (an executable).
pub fn elf_header(machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // 64-bit
    h[5] = 1; // little endian
    h[6] = 1;
    h[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h
}

/// Lint a tree as package `name` (test pipeline known and empty).
pub fn lint_tree(name: &str, tree: &PackageTree) -> LintReport {
    lint_with(name, tree, &Policy::defaults(), |_| {})
}

pub fn lint_with(
    name: &str,
    tree: &PackageTree,
    policy: &Policy,
    edit: impl FnOnce(&mut LintTarget),
) -> LintReport {
    let files = PackageFiles::from_tree(tree);
    let mut target = LintTarget::new(name);
    target.test_uses = Some(BTreeSet::new());
    edit(&mut target);
    lint_package(&files, &target, policy)
}

pub fn finding<'a>(r: &'a LintReport, linter: &str) -> Option<&'a Finding> {
    r.findings.iter().find(|f| f.linter == linter)
}

/// The finding of `linter`, which must exist, with its severity.
pub fn expect<'a>(r: &'a LintReport, linter: &str, severity: Severity) -> &'a Finding {
    let f =
        finding(r, linter).unwrap_or_else(|| panic!("{linter} did not fire: {:#?}", r.findings));
    assert_eq!(f.severity, severity, "{f}");
    assert_eq!(f.package, r.package);
    f
}
