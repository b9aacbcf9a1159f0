//! Packaging benchmark: builds a generated tree (default 1 GiB: a few large
//! files plus many small ones, mixed compressibility), packages it with one
//! compression thread and with all cores, and reports throughput, peak RSS,
//! the parallel speed-up and whether both outputs are byte-identical.
//!
//! Run: `cargo bench -p melange2-apk --bench pack`
//! Env: `MELANGE2_BENCH_MB` (tree size, default 1024),
//!      `MELANGE2_BENCH_DIR` (where to put the tree, default the system temp dir).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use melange2_apk::gzip::GzOptions;
use melange2_apk::{ControlFiles, PackageTree, PkgInfo, WriteOptions, write_package};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Text-like data (compresses ~3-4x) interleaved with incompressible runs.
fn fill(rng: &mut Rng, words: &[Vec<u8>], out: &mut Vec<u8>, len: usize, random_share: u64) {
    out.clear();
    while out.len() < len {
        if rng.next() % 100 < random_share {
            for _ in 0..64 {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            for _ in 0..64 {
                let w = &words[(rng.next() % words.len() as u64) as usize];
                out.extend_from_slice(w);
                out.push(if rng.next().is_multiple_of(12) {
                    b'\n'
                } else {
                    b' '
                });
            }
        }
    }
    out.truncate(len);
}

fn generate(root: &Path, total: u64) -> u64 {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let words: Vec<Vec<u8>> = (0..512)
        .map(|_| {
            let n = 2 + (rng.next() % 9) as usize;
            (0..n).map(|_| b'a' + (rng.next() % 26) as u8).collect()
        })
        .collect();
    let mut buf = Vec::new();
    let mut written = 0u64;
    // half in 8 large files
    let large = total / 2 / 8;
    std::fs::create_dir_all(root.join("usr/lib/big")).unwrap();
    for i in 0..8 {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(root.join(format!("usr/lib/big/blob{i}.bin"))).unwrap(),
        );
        let mut left = large;
        while left > 0 {
            let n = left.min(4 << 20) as usize;
            fill(&mut rng, &words, &mut buf, n, 30);
            f.write_all(&buf).unwrap();
            left -= n as u64;
        }
        written += large;
    }
    // the rest in small files (1 KiB .. 64 KiB) spread over directories
    let mut i = 0u64;
    while written < total {
        let dir = root.join(format!("usr/share/data/d{:03}", i % 500));
        if i < 500 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let n = (1024 + rng.next() % (63 * 1024)).min(total - written) as usize;
        fill(&mut rng, &words, &mut buf, n, 10);
        std::fs::write(dir.join(format!("f{i}.txt")), &buf).unwrap();
        written += n as u64;
        i += 1;
    }
    written
}

fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// user+system CPU seconds of this process (all threads).
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the ")" of the command name; utime/stime are 14th/15th overall
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn child(tree: &Path, out: &Path, threads: usize) {
    let t = PackageTree::from_dir(tree).unwrap();
    let info = PkgInfo::new("bench", "1.0-r0", "x86_64");
    let opts = WriteOptions {
        source_date_epoch: 1_700_000_000,
        gzip: GzOptions {
            threads,
            ..GzOptions::default()
        },
        ..WriteOptions::default()
    };
    let cpu0 = cpu_secs();
    let start = Instant::now();
    let w = write_package(&t, &info, &ControlFiles::default(), None, &opts, out).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{secs} {} {} {} {}",
        peak_rss_kib(),
        w.file_size,
        cpu_secs() - cpu0,
        w.checksum
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(
            Path::new(&args[i + 1]),
            Path::new(&args[i + 2]),
            args[i + 3].parse().unwrap(),
        );
        return;
    }
    let mb: u64 = std::env::var("MELANGE2_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let base = std::env::var("MELANGE2_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let work = tempfile::tempdir_in(&base).unwrap();
    let tree = work.path().join("tree");
    let t0 = Instant::now();
    let bytes = generate(&tree, mb << 20);
    println!(
        "generated {:.0} MiB tree in {:.1}s",
        bytes as f64 / 1048576.0,
        t0.elapsed().as_secs_f64()
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let exe = std::env::current_exe().unwrap();
    let rounds: usize = std::env::var("MELANGE2_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average before runs: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut results = Vec::new();
    for threads in [1, cores] {
        // best of `rounds` (the machine is shared)
        let mut best: Option<(f64, u64, u64, f64)> = None;
        let out = work.path().join(format!("out-{threads}.apk"));
        for _ in 0..rounds {
            let o = Command::new(&exe)
                .arg("--child")
                .arg(&tree)
                .arg(&out)
                .arg(threads.to_string())
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let f: Vec<&str> = line.split_whitespace().collect();
            let run = (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            );
            if best.is_none_or(|b| run.0 < b.0) {
                best = Some(run);
            }
        }
        let (secs, rss, size, cpu) = best.unwrap();
        println!(
            "threads={threads}: {secs:.2}s wall, {cpu:.2}s CPU, {:.1} MB/s (input), peak RSS {:.1} MiB, apk {:.1} MiB",
            bytes as f64 / 1e6 / secs,
            rss as f64 / 1024.0,
            size as f64 / 1048576.0
        );
        results.push((secs, rss, std::fs::read(&out).map(|b| sha256(&b)).unwrap()));
        std::fs::remove_file(&out).ok();
    }
    let speedup = results[0].0 / results[1].0;
    let identical = results[0].2 == results[1].2;
    println!("speed-up {cores} threads vs 1: {speedup:.2}x");
    println!("identical bytes for 1 and {cores} threads: {identical}");
    println!(
        "targets: speed-up >= 1.7x: {}, peak RSS <= 150 MiB: {}",
        if speedup >= 1.7 { "met" } else { "NOT met" },
        if results.iter().all(|r| r.1 <= 150 * 1024) {
            "met"
        } else {
            "NOT met"
        }
    );
    if !identical {
        std::process::exit(1);
    }
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}
