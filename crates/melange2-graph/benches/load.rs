//! Discover, load and link 500 generated recipes (`cargo bench -p melange2-graph --bench load`).

use std::path::Path;
use std::time::Instant;

use melange2_graph::{LoadOptions, build, discover, load};

fn write_tree(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/make.yaml"),
        "name: make\nneeds:\n  packages:\n    - make\ninputs:\n  opts:\n    default: -j2\npipeline:\n  - runs: make ${{inputs.opts}}\n",
    )
    .unwrap();
    for i in 0..n {
        let mut needs = String::new();
        for d in [i / 2, i / 3, i.saturating_sub(1)] {
            if d < i {
                needs.push_str(&format!("      - pkg{d:04}-dev\n"));
            }
        }
        let text = format!(
            "package:\n  name: pkg{i:04}\n  version: 1.{i}.0\n  epoch: 0\n  description: generated\n  copyright:\n    - license: MIT\n  dependencies:\n    provides:\n      - virt{i:04}=${{{{package.full-version}}}}\nenvironment:\n  contents:\n    packages:\n      - busybox\n{needs}pipeline:\n  - uses: make\n  - runs: echo ${{{{package.name}}}}\nsubpackages:\n  - name: pkg{i:04}-dev\n    pipeline:\n      - uses: split/dev\n"
        );
        std::fs::write(dir.join(format!("pkg{i:04}.yaml")), text).unwrap();
    }
}

fn main() {
    let n = 500;
    let t = tempfile::tempdir().unwrap();
    write_tree(t.path(), n);
    let opts = LoadOptions {
        archs: vec!["x86_64".to_string()],
        ..LoadOptions::default()
    };
    let mut best = f64::MAX;
    for round in 0..5 {
        let t0 = Instant::now();
        let d = discover(&[t.path().to_path_buf()]).unwrap();
        let t1 = Instant::now();
        let loaded = load(&d, &opts);
        let t2 = Instant::now();
        assert!(loaded.failures.is_empty(), "{:?}", loaded.failures);
        assert_eq!(loaded.nodes.len(), n);
        let g = build(loaded.nodes, &|_, _| melange2_graph::Offered::No);
        let t3 = Instant::now();
        assert_eq!(g.order.len(), n);
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        let total = ms(t0, t3);
        best = best.min(total);
        println!(
            "round {round}: {n} recipes: discover {:.1} ms, load {:.1} ms, build {:.1} ms, total {total:.1} ms ({} edges)",
            ms(t0, t1),
            ms(t1, t2),
            ms(t2, t3),
            g.edges.len()
        );
    }
    println!("best total: {best:.1} ms");
}
