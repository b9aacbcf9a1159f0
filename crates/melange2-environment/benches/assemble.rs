//! Benchmark: environment assembly in BuildKit for 50 synthetic packages (~200 MB).
//!
//! Reports the time to a ready state (an exec ran in the environment) for a cold run (content
//! the daemon has never seen), a warm run (same environment, new session), and a run with one
//! package added, plus the bytes sent to the daemon on the warm run.
//! Targets: warm bytes sent = 0; one package added ≤ 20% of cold.
//! Run with `make bench` (or BUILDKIT_HOST=… cargo bench -p melange2-environment).

use std::time::{Duration, Instant};

use melange2_apk::{PackageTree, PkgInfo, RepoBuilder, WrittenPackage, generate_key};
use melange2_buildkit::llb::{Exec, Mount, OpOptions, State};
use melange2_buildkit::{Address, Client, SolveOptions, TlsFiles};
use melange2_environment::{EnvironmentRequest, PackageFile, assemble};

const PACKAGES: usize = 50;
const PACKAGE_BYTES: usize = 4 << 20;

/// Incompressible bytes from a seed (xorshift64*).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn package(repo: &mut RepoBuilder, name: &str, seed: u64) -> WrittenPackage {
    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/share", 0o755).unwrap();
    t.add_dir(&format!("usr/share/{name}"), 0o755).unwrap();
    // A big file and a few small ones.
    t.add_file(
        &format!("usr/share/{name}/big.bin"),
        0o644,
        noise(seed, PACKAGE_BYTES - 8192),
    )
    .unwrap();
    for i in 0..8 {
        t.add_file(
            &format!("usr/share/{name}/small{i}"),
            0o644,
            noise(seed + i, 1024),
        )
        .unwrap();
    }
    repo.add(&PkgInfo::new(name, "1.0-r0", "x86_64"), &t)
        .unwrap()
}

fn request(pkgs: &[WrittenPackage]) -> EnvironmentRequest {
    EnvironmentRequest {
        base: None,
        packages: pkgs
            .iter()
            .map(|w| PackageFile {
                entry: w.index_entry(),
                file: w.path.clone().unwrap(),
            })
            .collect(),
        world: pkgs.iter().map(|w| w.info.name.clone()).collect(),
        arch: "x86_64".into(),
        ..Default::default()
    }
}

async fn ready(c: &Client, pkgs: &[WrittenPackage], shell: &State) -> (Duration, u64) {
    let t = Instant::now();
    let env = assemble(&request(pkgs)).unwrap();
    let t_assemble = t.elapsed();
    // A ready state: a process ran in the environment (as its root filesystem, as a build step
    // does; busybox comes from a small read-only side mount).
    let check = Exec::new(
        env.rootfs.clone(),
        [
            "/.bb/bin/busybox",
            "sh",
            "-c",
            "/.bb/bin/busybox ls /usr/share > /out/list",
        ],
    )
    .mount(Mount::bind("/.bb", shell.clone()).readonly())
    .mount(Mount::bind("/out", State::scratch()))
    .options(OpOptions::named("use environment"))
    .build()
    .unwrap()
    .output("/out")
    .unwrap();
    let def = check.marshal().unwrap();
    let res = c
        .solve(
            &def,
            SolveOptions {
                local_dirs: env.local_dirs.clone(),
                ..Default::default()
            },
            &mut |_| {},
        )
        .await
        .unwrap();
    eprintln!(
        "  assemble {:.3}s, solve {:.3}s; slowest: {:?}",
        t_assemble.as_secs_f64(),
        res.duration.as_secs_f64(),
        {
            let mut v: Vec<_> = res
                .vertices
                .iter()
                .filter(|v| !v.cached)
                .filter_map(|v| {
                    v.duration
                        .map(|d| (format!("{:.3}", d.as_secs_f64()), v.name.clone()))
                })
                .collect();
            v.sort();
            v.into_iter().rev().take(4).collect::<Vec<_>>()
        }
    );
    (t.elapsed(), res.local_bytes_sent)
}

fn main() {
    let Ok(host) = std::env::var("BUILDKIT_HOST") else {
        eprintln!("assemble: BUILDKIT_HOST is not set (use `make bench`); skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let t = Instant::now();
    let mut repo =
        RepoBuilder::new(dir.path().join("repo")).signer(generate_key(2048, "b.rsa").unwrap());
    let mut pkgs: Vec<WrittenPackage> = (0..=PACKAGES)
        .map(|i| {
            package(
                &mut repo,
                &format!("pkg{i:02}"),
                seed.wrapping_add(i as u64 * 7919),
            )
        })
        .collect();
    let extra = pkgs.pop().unwrap();
    let total: u64 = pkgs.iter().map(|p| p.file_size).sum();
    eprintln!(
        "assemble: wrote {PACKAGES} packages ({:.0} MB) in {:.1}s",
        total as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = Client::connect(&Address::parse(&host).unwrap(), &TlsFiles::default()).await.unwrap();
        // A static busybox to run the check with.
        let shell = State::scratch()
            .file(
                melange2_buildkit::llb::FileActions::new()
                    .mkdir("/bin", 0o755)
                    .mkfile("/bin/busybox", 0o755, std::fs::read("/bin/busybox").unwrap()),
                OpOptions::named("busybox"),
            )
            .unwrap();
        let (cold, cold_bytes) = ready(&c, &pkgs, &shell).await;
        let (warm, warm_bytes) = ready(&c, &pkgs, &shell).await;
        let mut plus = pkgs.clone();
        plus.push(extra);
        let (added, added_bytes) = ready(&c, &plus, &shell).await;
        println!(
            "assemble: {PACKAGES} packages, {:.0} MB: cold {:.2}s ({:.0} MB sent), warm {:.2}s ({} bytes sent; target 0), one added {:.2}s = {:.0}% of cold ({:.1} MB sent; target <= 20%)",
            total as f64 / 1e6,
            cold.as_secs_f64(),
            cold_bytes as f64 / 1e6,
            warm.as_secs_f64(),
            warm_bytes,
            added.as_secs_f64(),
            100.0 * added.as_secs_f64() / cold.as_secs_f64(),
            added_bytes as f64 / 1e6,
        );
    });
}
