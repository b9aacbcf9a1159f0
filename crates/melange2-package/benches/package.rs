//! Packaging throughput: `package_tar` on a synthetic build output made of
//! real ELF files from `/usr/bin` and `/usr/lib/x86_64-linux-gnu` (so the SCA
//! parses real binaries), many small text files and one large file, split
//! over a main package and two subpackages. Prints the median of several runs.
//!
//! Run: `cargo bench -p melange2-package --bench package`

use std::path::Path;
use std::time::{Duration, Instant};

use melange2_package::{PackageRequest, package_dir, package_tar};

const RUNS: usize = 5;

fn plan() -> melange2_config::plan::Plan {
    let yaml = "package:\n  name: bench\n  version: \"1.0\"\n  epoch: 0\n  copyright:\n    - license: MIT\npipeline:\n  - runs: x\nsubpackages:\n  - name: bench-libs\n    pipeline:\n      - runs: x\n  - name: bench-doc\n    pipeline:\n      - runs: x\n";
    let config = melange2_config::parse_str("bench.yaml", yaml, &Default::default())
        .expect("parse bench plan");
    let registry = melange2_config::PipelineRegistry::new(vec![]);
    let arch = melange2_config::Arch::parse("x86_64").expect("arch");
    melange2_config::compile(
        &config,
        &registry,
        &melange2_config::CompileOptions::new(arch),
    )
    .expect("compile bench plan")
}

fn elves(dir: &Path, limit: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if out.len() >= limit {
            break;
        }
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if !md.is_file() || md.len() > 8 << 20 {
            continue;
        }
        let Ok(data) = std::fs::read(&p) else {
            continue;
        };
        if data.starts_with(b"\x7fELF") {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            out.push((name, data));
        }
    }
    out
}

fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).expect("path");
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).expect("append");
}

fn build_tar() -> (Vec<u8>, usize, u64) {
    let mut b = tar::Builder::new(Vec::new());
    let mut files = 0;
    let mut bytes = 0u64;
    for (name, data) in elves(Path::new("/usr/bin"), 150) {
        add(&mut b, &format!("bench/usr/bin/{name}"), 0o755, &data);
        files += 1;
        bytes += data.len() as u64;
    }
    for (name, data) in elves(Path::new("/usr/lib/x86_64-linux-gnu"), 150) {
        add(&mut b, &format!("bench-libs/usr/lib/{name}"), 0o755, &data);
        files += 1;
        bytes += data.len() as u64;
    }
    for i in 0..5000 {
        let text = format!("documentation page {i}\n").repeat(40);
        add(
            &mut b,
            &format!("bench-doc/usr/share/doc/bench/{}/page-{i}.txt", i % 50),
            0o644,
            text.as_bytes(),
        );
        files += 1;
        bytes += text.len() as u64;
    }
    let big: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    add(&mut b, "bench/usr/share/bench/big.bin", 0o644, &big);
    files += 1;
    bytes += big.len() as u64;
    (b.into_inner().expect("tar"), files, bytes)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let plan = plan();
    let (tar, files, bytes) = build_tar();
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = melange2_apk::generate_key(2048, "bench.rsa").expect("key");
    println!(
        "input: {files} files, {:.1} MiB of content, tar stream {:.1} MiB; {} cores",
        bytes as f64 / (1 << 20) as f64,
        tar.len() as f64 / (1 << 20) as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for signed in [false, true] {
        let mut times = Vec::new();
        for i in 0..RUNS {
            let out = tmp.path().join(format!("out-{signed}-{i}"));
            let mut req = PackageRequest::new(&plan, &out);
            req.source_date_epoch = 1_700_000_000;
            if signed {
                req.signing_key = Some(&key);
            }
            let t = Instant::now();
            let res = package_tar(&req, &tar[..]).expect("package_tar");
            times.push(t.elapsed());
            assert_eq!(res.packages.len(), 3);
            if i == RUNS - 1 {
                println!("  phases of the last run: {:?}", res.timings);
            }
        }
        let m = median(times);
        println!(
            "package_tar ({}): median {:.3} s over {RUNS} runs, {:.1} MiB/s",
            if signed { "signed" } else { "unsigned" },
            m.as_secs_f64(),
            bytes as f64 / (1 << 20) as f64 / m.as_secs_f64()
        );
    }
    // the same output from an extracted directory
    let dir = tmp.path().join("melange-out");
    std::fs::create_dir(&dir).expect("mkdir");
    tar::Archive::new(&tar[..]).unpack(&dir).expect("unpack");
    let mut times = Vec::new();
    for i in 0..RUNS {
        let out = tmp.path().join(format!("dir-{i}"));
        let mut req = PackageRequest::new(&plan, &out);
        req.signing_key = Some(&key);
        let t = Instant::now();
        package_dir(&req, &dir).expect("package_dir");
        times.push(t.elapsed());
    }
    let m = median(times);
    println!(
        "package_dir (signed): median {:.3} s over {RUNS} runs, {:.1} MiB/s",
        m.as_secs_f64(),
        bytes as f64 / (1 << 20) as f64 / m.as_secs_f64()
    );
}
