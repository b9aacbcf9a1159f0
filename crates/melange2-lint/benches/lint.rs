//! Linter throughput on real files: every linter (ignored ones included) over the trees of
//! `/usr/lib/x86_64-linux-gnu` and `/usr/bin` read from disk, and `melange2 lint`'s path
//! (read an .apk, spool its contents, lint) on an .apk of `/usr/bin`. Prints the median of
//! several runs; no assertion.
//!
//! cargo bench -p melange2-lint --bench lint

use std::path::Path;
use std::time::{Duration, Instant};

use melange2_apk::{ControlFiles, PackageTree, PkgInfo, WriteOptions, write_package};
use melange2_lint::{LintTarget, PackageFiles, Policy, lint_apks, lint_package};

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn all_linters() -> Policy {
    Policy::with_overrides::<&str>(&[], &["documentation", "empty"]).expect("known names")
}

fn bench_dir(dir: &Path) {
    if !dir.is_dir() {
        println!("{}: missing, skipped", dir.display());
        return;
    }
    let tree = PackageTree::from_dir(dir).expect("read tree");
    let bytes: u64 = tree
        .entries()
        .map(|e| match &e.kind {
            melange2_apk::tree::EntryKind::File { size, .. } => *size,
            _ => 0,
        })
        .sum();
    let policy = all_linters();
    let mut target = LintTarget::new("bench");
    target.test_uses = Some(Default::default());
    let mut times = Vec::new();
    let mut findings = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let files = PackageFiles::from_tree(&tree);
        let r = lint_package(&files, &target, &policy);
        times.push(t.elapsed());
        findings = r.findings.iter().map(|f| f.offenders.len()).sum();
    }
    let m = median(times);
    println!(
        "tree {}: {} entries, {} MiB: median {:.1} ms ({:.0} entries/s), {} offending paths",
        dir.display(),
        tree.len(),
        bytes >> 20,
        m.as_secs_f64() * 1e3,
        tree.len() as f64 / m.as_secs_f64(),
        findings
    );
}

fn bench_apk(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = PackageTree::from_dir(dir).expect("read tree");
    let apk = tmp.path().join("bench-1-r0.apk");
    write_package(
        &tree,
        &PkgInfo::new("bench", "1-r0", "x86_64"),
        &ControlFiles::default(),
        None,
        &WriteOptions::default(),
        &apk,
    )
    .expect("write apk");
    let size = std::fs::metadata(&apk).map(|m| m.len()).unwrap_or(0);
    let policy = all_linters();
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = lint_apks(std::slice::from_ref(&apk), &policy).expect("lint");
        times.push(t.elapsed());
        assert_eq!(r.len(), 1);
    }
    let m = median(times);
    println!(
        "apk of {} ({} MiB compressed, {} entries): read + lint median {:.0} ms",
        dir.display(),
        size >> 20,
        tree.len(),
        m.as_secs_f64() * 1e3
    );
}

fn main() {
    bench_dir(Path::new("/usr/lib/x86_64-linux-gnu"));
    bench_dir(Path::new("/usr/bin"));
    bench_apk(Path::new("/usr/bin"));
}
