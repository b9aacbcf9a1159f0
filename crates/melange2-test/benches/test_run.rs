//! Benchmark: `melange2 test` of a recipe with three test blocks (main package, two
//! subpackages with environments of their own, four steps in all) against a signed repository.
//!
//! Reports the whole run (resolve, assemble, one solve per test) for a cold run (packages the
//! daemon has never seen, an empty download cache) and the median of warm runs (same packages:
//! only the test steps execute, the layers come from the cache).
//! Run with `make bench` (or BUILDKIT_HOST=… cargo bench -p melange2-test).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use melange2_apk::{PackageTree, PkgInfo, RepoBuilder, generate_key};
use melange2_buildkit::progress::ProgressMode;
use melange2_test::{TestOptions, TestReport};

const WARM_RUNS: usize = 7;

const RECIPE: &str = r#"
package: {name: hello, version: "1.0", epoch: 0}
test:
  environment:
    contents:
      packages: [busybox]
  pipeline:
    - runs: hello | grep -q Hello
    - runs: test -x /usr/bin/hello
subpackages:
  - name: hello-dev
    test:
      environment:
        contents:
          packages: [busybox]
      pipeline:
        - runs: test -e /usr/include/hello.h
  - name: hello-doc
    test:
      environment:
        contents:
          packages: [busybox]
      pipeline:
        - runs: grep -q docs /usr/share/doc/hello/README
"#;

fn repository(dir: &Path) {
    let key = generate_key(2048, "bench.rsa").unwrap();
    std::fs::write(dir.join("bench.rsa.pub"), key.public_key_pem().unwrap()).unwrap();
    let mut repo = RepoBuilder::new(dir.join("repo")).signer(key);
    let applets = Command::new("/bin/busybox")
        .arg("--list-full")
        .output()
        .unwrap();
    let list: Vec<String> = String::from_utf8(applets.stdout)
        .unwrap()
        .lines()
        .map(|l| format!("/{l}"))
        .collect();
    let mut t = PackageTree::new();
    t.add_dir("bin", 0o755).unwrap();
    t.add_file("bin/busybox", 0o755, std::fs::read("/bin/busybox").unwrap())
        .unwrap();
    t.add_dir("etc", 0o755).unwrap();
    t.add_dir("etc/busybox-paths.d", 0o755).unwrap();
    t.add_file("etc/busybox-paths.d/busybox", 0o644, list.join("\n") + "\n")
        .unwrap();
    repo.add(&PkgInfo::new("busybox", "1.35.0-r0", "x86_64"), &t)
        .unwrap();
    let mut t = PackageTree::new();
    for d in ["usr", "usr/bin"] {
        t.add_dir(d, 0o755).unwrap();
    }
    t.add_file("usr/bin/hello", 0o755, "#!/bin/sh\necho Hello\n")
        .unwrap();
    repo.add(&PkgInfo::new("hello", "1.0-r0", "x86_64"), &t)
        .unwrap();
    let mut t = PackageTree::new();
    for d in ["usr", "usr/include"] {
        t.add_dir(d, 0o755).unwrap();
    }
    t.add_file("usr/include/hello.h", 0o644, "int hello(void);\n")
        .unwrap();
    repo.add(&PkgInfo::new("hello-dev", "1.0-r0", "x86_64"), &t)
        .unwrap();
    let mut t = PackageTree::new();
    for d in ["usr", "usr/share", "usr/share/doc", "usr/share/doc/hello"] {
        t.add_dir(d, 0o755).unwrap();
    }
    t.add_file("usr/share/doc/hello/README", 0o644, "docs\n")
        .unwrap();
    repo.add(&PkgInfo::new("hello-doc", "1.0-r0", "x86_64"), &t)
        .unwrap();
    repo.finish().unwrap();
}

fn run(rt: &tokio::runtime::Runtime, opts: &TestOptions) -> (Duration, TestReport) {
    let t = Instant::now();
    let report = rt.block_on(melange2_test::test(opts)).unwrap();
    let d = t.elapsed();
    assert_eq!(report.results.len(), 3);
    assert!(report.failures().is_empty(), "{report}");
    (d, report)
}

fn main() {
    let Ok(addr) = std::env::var("BUILDKIT_HOST") else {
        eprintln!("BUILDKIT_HOST is not set: start a daemon with scripts/buildkit.sh start");
        std::process::exit(2);
    };
    let dir = tempfile::tempdir().unwrap();
    repository(dir.path());
    let recipe = dir.path().join("hello.yaml");
    std::fs::write(&recipe, RECIPE).unwrap();
    let opts = TestOptions {
        config: Some(recipe),
        archs: vec!["x86_64".into()],
        repository_append: vec![dir.path().join("repo").display().to_string()],
        keyring_append: vec![dir.path().join("bench.rsa.pub").display().to_string()],
        apk_cache_dir: Some(dir.path().join("apk-cache")),
        progress: ProgressMode::Quiet,
        buildkit_addr: Some(addr),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (cold, _) = run(&rt, &opts);
    let mut warm: Vec<Duration> = (0..WARM_RUNS).map(|_| run(&rt, &opts).0).collect();
    warm.sort();
    let median = warm[WARM_RUNS / 2];
    println!("melange2 test, 3 test blocks / 4 steps, each in its own environment:");
    println!("  cold (new packages, empty download cache): {cold:.2?}");
    println!(
        "  warm (layers cached, steps run), median of {WARM_RUNS}: {median:.2?} \
         ({:.2?} per test)",
        median / 3
    );
}
