//! Benchmark: a fully cached solve of a 10-op graph, end to end, client start included
//! (new runtime, connect + version check, session, solve, status drain).
//!
//! Run with `make bench` or `BUILDKIT_HOST=unix://… cargo bench -p melange2-buildkit`.
//! Prints min, median and p90 over 21 runs. Target: median ≤ 100 ms.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use melange2_buildkit::SolveOptions;
use melange2_buildkit::llb::{Exec, FileActions, Mount, OpOptions, State};

fn graph(bb: &std::path::Path) -> State {
    // 2 ops: local source + copy into a layer.
    let root = common::rootfs_from_local("bench-rootfs", bb);
    // 3 execs in a chain.
    let mut s = root;
    for i in 0..3 {
        s = Exec::shell(s, format!("echo step {i} >> /log"))
            .env("PATH", "/bin")
            .options(OpOptions::named(format!("bench step {i}")))
            .build()
            .expect("exec")
            .root();
    }
    // 2 file ops, 1 diff, 1 merge, 1 exec with an output mount.
    let a = State::scratch()
        .file(
            FileActions::new().mkfile("/a", 0o644, b"a".to_vec()),
            OpOptions::default(),
        )
        .expect("file");
    let b = s
        .file(
            FileActions::new().mkdir("/etc/x", 0o755),
            OpOptions::default(),
        )
        .expect("file");
    let d = State::diff(&s, &b, OpOptions::default());
    let m = State::merge(&[b, a, d], OpOptions::default());
    Exec::shell(m, "cat /log > /out/log")
        .env("PATH", "/bin")
        .mount(Mount::bind("/out", State::scratch()))
        .build()
        .expect("exec")
        .output("/out")
        .expect("out")
}

fn run_once(bb: &std::path::Path) -> (Duration, usize, usize) {
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (ops, cached) = rt.block_on(async {
        let c = common::client().await;
        let state = graph(bb);
        let def = state.marshal().expect("marshal");
        let res = c
            .solve(
                &def,
                SolveOptions {
                    local_dirs: common::local_dirs(&[("bench-rootfs", bb)]),
                    ..Default::default()
                },
                &mut |_| {},
            )
            .await
            .expect("solve");
        (
            def.vertex_digests.len(),
            res.vertices.iter().filter(|v| v.cached).count(),
        )
    });
    drop(rt);
    (started.elapsed(), ops, cached)
}

fn main() {
    if std::env::var("BUILDKIT_HOST").is_err() {
        eprintln!("cached_solve: BUILDKIT_HOST is not set (use `make bench`); skipping");
        return;
    }
    let bb = common::busybox_dir();
    let (_, ops, _) = run_once(bb.path()); // warm the cache
    let mut times = Vec::new();
    let mut cached = 0;
    for _ in 0..21 {
        let (t, _, c) = run_once(bb.path());
        times.push(t);
        cached = c;
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "cached_solve: {ops} ops ({cached} reported cached), 21 runs: min {:.1} ms, median {:.1} ms, p90 {:.1} ms (target: median <= 100 ms)",
        ms(times[0]),
        ms(times[10]),
        ms(times[18])
    );
}
