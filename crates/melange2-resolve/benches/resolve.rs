//! Resolver and repository benchmark (prints numbers; no assertions).
//!
//! `cargo bench -p melange2-resolve --bench resolve`
//!
//! 1. Solve on a synthetic universe the size of a large distribution index
//!    (`NAMES` names × `VERSIONS` versions, `so:`/`cmd:` provides, virtuals).
//! 2. Load that universe from a signed `APKINDEX.tar.gz` (read + verify +
//!    name map).
//! 3. Resolve + fetch + verify `PKGS` packages of `PKG_KB` KiB over HTTP on
//!    127.0.0.1: cold cache, then warm cache.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use melange2_apk::{ApkIndex, IndexEntry, PackageTree, PkgInfo, RepoBuilder, SignatureAlgorithm};
use melange2_resolve::{Candidate, Options, Repositories, Universe};

const NAMES: usize = 12_000;
const VERSIONS: usize = 4;
const PKGS: usize = 50;
const PKG_KB: usize = 1024;

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn synthetic_entries() -> Vec<IndexEntry> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(NAMES * VERSIONS);
    for n in 0..NAMES {
        for v in 0..VERSIONS {
            let mut depends = Vec::new();
            // dependencies only on lower-numbered names: a DAG, with depth
            if n > 0 {
                for _ in 0..rng.below(6) {
                    let d = rng.below(n);
                    depends.push(match rng.below(3) {
                        0 => format!("so:libp{d}.so.1"),
                        1 => format!("cmd:p{d}"),
                        _ => format!("p{d}"),
                    });
                }
            }
            let mut provides = vec![
                format!("so:libp{n}.so.1=1.{v}"),
                format!("cmd:p{n}=1.{v}.0-r{v}"),
            ];
            if n % 50 == 0 {
                provides.push(format!("virtual{}", n % 7));
            }
            out.push(IndexEntry {
                checksum: melange2_apk::q1_checksum(&[(n % 251) as u8; 20]),
                name: format!("p{n}"),
                version: format!("1.{v}.0-r{v}"),
                arch: "x86_64".into(),
                size: 1000,
                installed_size: 4000,
                description: "synthetic".into(),
                origin: format!("p{n}"),
                depends,
                provides,
                provider_priority: (n % 50 == 0).then_some(n as u64),
                ..IndexEntry::default()
            });
        }
    }
    out
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let entries = synthetic_entries();
    let provides: usize = entries.iter().map(|e| e.provides.len()).sum();
    println!(
        "universe: {} packages ({} names × {} versions), {} provides",
        entries.len(),
        NAMES,
        VERSIONS,
        provides
    );

    // 1. solve
    let t = Instant::now();
    let u = Universe::new(
        entries
            .iter()
            .cloned()
            .map(|entry| Candidate {
                entry,
                repository: 0,
                tag: None,
            })
            .collect(),
    );
    println!("build name map: {:.1} ms", ms(t));
    for request in [
        vec![format!("p{}", NAMES - 1)],
        (0..50)
            .map(|i| format!("p{}", NAMES - 1 - i * 97))
            .collect::<Vec<_>>(),
        vec!["virtual3".to_string(), format!("cmd:p{}", NAMES / 2)],
    ] {
        let t = Instant::now();
        let s = u.solve(&request).expect("solvable");
        let first = ms(t);
        let t = Instant::now();
        for _ in 0..5 {
            let _ = u.solve(&request);
        }
        println!(
            "solve {} roots: {} packages selected in {:.1} ms (mean of 5 more: {:.1} ms)",
            request.len(),
            s.order.len(),
            first,
            ms(t) / 5.0
        );
    }

    // 2. load a signed index of that size
    let dir = tempfile::tempdir().expect("tempdir");
    let key = melange2_apk::generate_key(2048, "bench.rsa").expect("key");
    let pubkey = dir.path().join("bench.rsa.pub");
    std::fs::write(&pubkey, key.public_key_pem().expect("pem")).expect("write key");
    let repo = dir.path().join("big");
    std::fs::create_dir_all(repo.join("x86_64")).expect("mkdir");
    let index = ApkIndex {
        entries,
        description: "bench".into(),
    };
    let bytes = index
        .to_bytes(Some(&key), &[SignatureAlgorithm::RsaSha256])
        .expect("index");
    std::fs::write(repo.join("x86_64/APKINDEX.tar.gz"), &bytes).expect("write index");
    let opts = Options {
        arch: "x86_64".into(),
        repositories: vec![repo.display().to_string()],
        keyring: vec![pubkey.display().to_string()],
        cache_dir: Some(dir.path().join("cache")),
        ..Options::default()
    };
    let rt = common::rt();
    let t = Instant::now();
    let loaded = rt.block_on(Repositories::load(&opts)).expect("load");
    println!(
        "load + verify a {:.1} MiB signed index ({} records): {:.1} ms",
        bytes.len() as f64 / 1048576.0,
        loaded.universe().len(),
        ms(t)
    );

    // 3. cold and warm fetch over loopback HTTP
    let pkgdir = tempfile::tempdir().expect("tempdir");
    let mut rb = RepoBuilder::new(pkgdir.path().join("os")).signer(key.clone());
    let mut rng = Rng(42);
    for i in 0..PKGS {
        let mut info = PkgInfo::new(format!("blob{i}"), "1.0-r0", "x86_64");
        if i > 0 {
            info.depends.push(format!("blob{}", i - 1));
        }
        let data: Vec<u8> = (0..PKG_KB * 1024).map(|_| rng.next() as u8).collect();
        let mut t = PackageTree::new();
        t.add_file(&format!("usr/share/blob{i}"), 0o644, data)
            .expect("tree");
        rb.add(&info, &t).expect("package");
    }
    rb.finish().expect("index");
    let server = common::Server::start(pkgdir.path());
    let cache = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        arch: "x86_64".into(),
        repositories: vec![format!("{}/os", server.base)],
        keyring: vec![pubkey.display().to_string()],
        cache_dir: Some(cache.path().to_path_buf()),
        ..Options::default()
    };
    let top = [format!("blob{}", PKGS - 1)];
    let t = Instant::now();
    let cold = rt
        .block_on(melange2_resolve::resolve(&opts, &top))
        .expect("cold");
    let cold_ms = ms(t);
    println!(
        "cold: {} packages, {:.1} MiB downloaded and verified in {:.0} ms ({:.0} MiB/s)",
        cold.packages.len(),
        cold.stats.bytes_downloaded as f64 / 1048576.0,
        cold_ms,
        cold.stats.bytes_downloaded as f64 / 1048576.0 / (cold_ms / 1000.0)
    );
    server.clear();
    let t = Instant::now();
    let warm = rt
        .block_on(melange2_resolve::resolve(&opts, &top))
        .expect("warm");
    println!(
        "warm: {} packages from the cache in {:.0} ms; {} bytes downloaded, {} HTTP requests (all 304: {})",
        warm.stats.packages_cached,
        ms(t),
        warm.stats.bytes_downloaded,
        server.hits().len(),
        server.hits().iter().all(|h| h.status == 304)
    );
}
