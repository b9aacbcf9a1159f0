//! Embeds every `pipelines/**/*.yaml` file as a sorted `(name, text)` table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = root.join("pipelines");
    println!("cargo:rerun-if-changed=pipelines");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let mut entries: Vec<(String, PathBuf)> = files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&dir).ok()?.to_str()?.replace('\\', "/");
            let name = rel.strip_suffix(".yaml")?.to_string();
            Some((name, p))
        })
        .collect();
    entries.sort();
    let mut code = String::from(
        "/// Embedded pipelines: (name, YAML text), sorted by name.\npub(crate) static EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_pipelines.rs");
    std::fs::write(out, code).expect("write embedded_pipelines.rs");
}
