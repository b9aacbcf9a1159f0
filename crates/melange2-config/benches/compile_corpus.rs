//! Compile 1,000 build files generated from the test corpus and the recipe collection and
//! report files per second (parse + compile for x86_64, files read from disk).
//!
//! Run: `cargo bench -p melange2-config --bench compile_corpus`

use std::path::{Path, PathBuf};
use std::time::Instant;

use melange2_config::{Arch, CompileOptions, ParseOptions, PipelineRegistry, compile, load_file};

const FILES: usize = 1000;

fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut v: Vec<(PathBuf, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .filter_map(|p| {
                    let t = std::fs::read_to_string(&p).ok()?;
                    // Files that need side inputs or local pipelines are skipped.
                    (!t.contains("# pipeline-dir:")
                        && !t.contains("# vars-file:")
                        && !t.contains("# build-option:"))
                    .then_some((p, t))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = sources(&root.join("tests/corpus"));
    inputs.extend(sources(&root.join("tests/recipes")));
    assert!(!inputs.is_empty(), "no corpus files found");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut files = Vec::with_capacity(FILES);
    for i in 0..FILES {
        let (_, text) = &inputs[i % inputs.len()];
        // A distinct trailer per copy so that no two generated files are identical.
        let text = format!("{text}\n# generated copy {i}\n");
        let p = tmp.path().join(format!("gen-{i:04}.yaml"));
        std::fs::write(&p, text).expect("write generated file");
        files.push(p);
    }
    // Check once that every generated file compiles.
    let reg = PipelineRegistry::new(Vec::new());
    let opts = CompileOptions::new(Arch::X86_64);
    let mut bytes = 0usize;
    for f in &files {
        bytes += std::fs::metadata(f).map(|m| m.len() as usize).unwrap_or(0);
        let cfg = load_file(f, &ParseOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        compile(&cfg, &reg, &opts).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut best = f64::MAX;
    let rounds = 5;
    for _ in 0..rounds {
        let reg = PipelineRegistry::new(Vec::new());
        let t = Instant::now();
        let mut steps = 0usize;
        for f in &files {
            let cfg = load_file(f, &ParseOptions::default()).expect("parse");
            let plan = compile(&cfg, &reg, &opts).expect("compile");
            steps += plan.pipeline.len();
        }
        std::hint::black_box(steps);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "compile_corpus: {FILES} files ({} distinct sources, {:.1} KiB avg), best of {rounds}: {:.3} s = {:.0} files/s (single thread, parse + compile x86_64)",
        inputs.len(),
        bytes as f64 / FILES as f64 / 1024.0,
        best,
        FILES as f64 / best
    );
    // Parse phase alone.
    let t = Instant::now();
    for f in &files {
        std::hint::black_box(load_file(f, &ParseOptions::default()).expect("parse"));
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "compile_corpus: parse phase only: {:.3} s = {:.0} files/s",
        s,
        FILES as f64 / s
    );
    // lint-config over the same files (parallel, every rule including a compile).
    let t = Instant::now();
    let report = melange2_config::lint::lint_files(
        &[tmp.path().to_path_buf()],
        &PipelineRegistry::new(Vec::new()),
    );
    let s = t.elapsed().as_secs_f64();
    println!(
        "compile_corpus: lint-config: {} files in {:.3} s = {:.0} files/s ({} findings)",
        report.files,
        s,
        report.files as f64 / s,
        report.findings.len()
    );
    // Both architectures, as a multi-arch build compiles each file twice.
    let t = Instant::now();
    let reg = PipelineRegistry::new(Vec::new());
    let arm = CompileOptions::new(Arch::Aarch64);
    for f in &files {
        let cfg = load_file(f, &ParseOptions::default()).expect("parse");
        compile(&cfg, &reg, &opts).expect("compile");
        compile(&cfg, &reg, &arm).expect("compile");
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "compile_corpus: x86_64 + aarch64 per file: {:.3} s = {:.0} files/s",
        s,
        FILES as f64 / s
    );
}
