//! Graph tests over real build files in a temporary directory.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use melange2_graph::{
    Discovery, Graph, GraphError, LoadOptions, Loaded, Node, NodeId, Offered, ProvidedKind, build,
    discover, load,
};

/// A build file: `needs` go to `environment.contents.packages`, `pkg` is appended to the
/// `package:` block (indented by two), `rest` at the top level.
fn recipe(name: &str, version: &str, needs: &[&str], pkg: &str, rest: &str) -> String {
    let mut s = format!(
        "package:\n  name: {name}\n  version: {version}\n  epoch: 0\n  description: {name} for tests\n  copyright:\n    - license: MIT\n"
    );
    for l in pkg.lines() {
        s.push_str("  ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("environment:\n  contents:\n    packages:\n      - busybox\n");
    for n in needs {
        s.push_str(&format!("      - \"{n}\"\n"));
    }
    s.push_str("pipeline:\n  - runs: echo building\n");
    s.push_str(rest);
    s
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let p = dir.join(file);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&p, text).unwrap();
    p
}

fn opts(archs: &[&str]) -> LoadOptions {
    LoadOptions {
        archs: archs.iter().map(|s| s.to_string()).collect(),
        ..LoadOptions::default()
    }
}

fn load_dir(dir: &Path, o: &LoadOptions) -> Loaded {
    let d = discover(&[dir.to_path_buf()]).unwrap();
    let l = load(&d, o);
    assert!(l.failures.is_empty(), "failures: {:?}", l.failures);
    l
}

fn graph_of(dir: &Path) -> Graph {
    graph_ext(dir, &|_, _| false)
}

fn graph_ext(dir: &Path, ext: &dyn Fn(&Node, &str) -> bool) -> Graph {
    let offered = |n: &Node, need: &str| {
        if ext(n, need) {
            Offered::ByRepository
        } else {
            Offered::No
        }
    };
    build(load_dir(dir, &opts(&["x86_64"])).nodes, &offered)
}

fn id(g: &Graph, name: &str) -> NodeId {
    g.nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
        .id
}

fn order(g: &Graph) -> Vec<&str> {
    g.order.iter().map(|i| g.nodes[i.0].name.as_str()).collect()
}

fn deps(g: &Graph, name: &str) -> Vec<String> {
    let mut v: Vec<String> = g
        .deps(id(g, name))
        .map(|i| g.nodes[i.0].name.clone())
        .collect();
    v.sort();
    v
}

fn edge_via(g: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let (f, t) = (id(g, from), id(g, to));
    g.edges
        .iter()
        .find(|e| e.from == f && e.to == t)
        .map(|e| e.via.clone())
}

#[test]
fn discovery_lists_skips_once_ignores_hidden_and_dedupes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("tree");
    write(&d, "b.yaml", &recipe("b", "1", &[], "", ""));
    write(&d, "a.yml", &recipe("a", "1", &[], "", ""));
    write(&d, "README.md", "# tree\npackage: not yaml\n");
    write(&d, "notes.yaml", "# not a recipe\nfoo:\n  package: x\n");
    write(&d, ".hidden.yaml", &recipe("hidden", "1", &[], "", ""));
    write(&d, "sub/c.yaml", &recipe("c", "1", &[], "", ""));
    write(&d, "pipelines/p.yaml", "pipeline:\n  - runs: true\n");

    let disc = discover(&[d.clone(), d.join("b.yaml"), d.clone()]).unwrap();
    let files: Vec<String> = disc.recipes.iter().map(|r| r.file_name()).collect();
    assert_eq!(files, ["a.yml", "b.yaml"]);
    assert_eq!(disc.recipes[0].path, d.join("a.yml"));
    assert_eq!(disc.recipes[0].root, d);
    let skipped: Vec<(String, &str)> = disc
        .skipped
        .iter()
        .map(|s| {
            (
                s.path.file_name().unwrap().to_string_lossy().into_owned(),
                s.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            ("README.md".to_string(), "not a .yaml file"),
            (
                "notes.yaml".to_string(),
                "not a melange build file (no top-level package:)"
            ),
        ]
    );

    // A FILE argument is a recipe whatever its name; its root is its parent.
    let odd = write(t.path(), "odd.txt", &recipe("odd", "1", &[], "", ""));
    let disc = discover(std::slice::from_ref(&odd)).unwrap();
    assert_eq!(disc.recipes.len(), 1);
    assert_eq!(disc.recipes[0].root, t.path());
    assert!(disc.skipped.is_empty());

    // A relative file with no parent has root ".".
    let r = melange2_graph::RecipeFile::from_file(Path::new("x.yaml"));
    assert_eq!(r.root, PathBuf::from("."));
}

#[test]
fn discovery_errors() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("nope.yaml");
    match discover(std::slice::from_ref(&missing)) {
        Err(GraphError::Input(m)) => assert!(m.contains("nope.yaml"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(discover(&[]), Err(GraphError::Input(_))));
}

#[test]
fn pipeline_dir_default_nested_needs_and_source_dir() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(
        d,
        "pipelines/outer.yaml",
        "name: outer\nneeds:\n  packages:\n    - make\npipeline:\n  - uses: inner/step\n  - runs: echo outer\n",
    );
    write(
        d,
        "pipelines/inner/step.yaml",
        "name: inner\nneeds:\n  packages:\n    - autoconf\npipeline:\n  - runs: echo inner\n",
    );
    let rest = "subpackages:\n  - name: tool-doc\n    pipeline:\n      - uses: outer\n";
    let file = write(d, "tool.yaml", &recipe("tool", "1.0", &[], "", rest));
    write(d, "make.yaml", &recipe("make", "4.4", &[], "", ""));
    write(d, "autoconf.yaml", &recipe("autoconf", "2.72", &[], "", ""));
    fs::create_dir_all(d.join("tool")).unwrap();

    let disc = discover(&[d.to_path_buf()]).unwrap();
    assert!(
        disc.recipes
            .iter()
            .all(|r| r.pipeline_dir.as_deref() == Some(&d.join("pipelines")))
    );
    // A single FILE also finds the pipelines/ beside it.
    let single = discover(std::slice::from_ref(&file)).unwrap();
    assert_eq!(single.recipes[0].pipeline_dir, Some(d.join("pipelines")));

    let l = load(&disc, &opts(&["x86_64"]));
    assert!(l.failures.is_empty(), "{:?}", l.failures);
    let tool = l.nodes.iter().find(|n| n.name == "tool").unwrap();
    assert_eq!(tool.pipeline_dirs, vec![d.join("pipelines")]);
    assert_eq!(tool.source_dir, Some(d.join("tool")));
    assert_eq!(tool.needs, ["autoconf", "busybox", "make"]);
    let make = l.nodes.iter().find(|n| n.name == "make").unwrap();
    assert_eq!(make.source_dir, None);

    let g = build(l.nodes, &|_, _| Offered::No);
    assert_eq!(deps(&g, "tool"), ["autoconf", "make"]);

    // An explicit --pipeline-dir replaces the default: outer is not found anywhere.
    let empty = t.path().join("nothing-here");
    fs::create_dir_all(&empty).unwrap();
    let o = LoadOptions {
        pipeline_dirs: vec![empty.clone()],
        ..opts(&["x86_64"])
    };
    let l = load(&single, &o);
    assert_eq!(l.failures.len(), 1, "{:?}", l.failures);
    assert!(
        l.failures[0].error.contains("tool.yaml"),
        "{}",
        l.failures[0].error
    );
}

#[test]
fn chain_and_diamond() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "c.yaml", &recipe("c", "1", &[], "", ""));
    write(d, "b.yaml", &recipe("b", "1", &["c"], "", ""));
    write(d, "a.yaml", &recipe("a", "1", &["b"], "", ""));
    let g = graph_of(d);
    assert_eq!(order(&g), ["c", "b", "a"]);
    assert_eq!(deps(&g, "a"), ["b"]);
    assert_eq!(edge_via(&g, "b", "c"), Some(vec!["c".to_string()]));
    assert!(g.cycles.is_empty());

    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "base.yaml", &recipe("base", "1", &[], "", ""));
    write(d, "right.yaml", &recipe("right", "1", &["base"], "", ""));
    write(d, "left.yaml", &recipe("left", "1", &["base"], "", ""));
    write(
        d,
        "top.yaml",
        &recipe("top", "1", &["right", "left", "busybox"], "", ""),
    );
    let g = graph_of(d);
    assert_eq!(order(&g), ["base", "left", "right", "top"]);
    assert_eq!(deps(&g, "top"), ["left", "right"]);
    let mut dependents: Vec<&str> = g
        .dependents(id(&g, "base"))
        .map(|i| g.nodes[i.0].name.as_str())
        .collect();
    dependents.sort();
    assert_eq!(dependents, ["left", "right"]);
    assert_eq!(g.edges.len(), 4);
}

#[test]
fn virtual_and_versioned_provides() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let provides = "dependencies:\n  provides:\n    - mta\n    - postfix-compat=${{package.full-version}}\n    - sendmail=8.1\n";
    write(
        d,
        "postfix.yaml",
        &recipe("postfix", "3.9.0", &[], provides, ""),
    );
    write(d, "mailer.yaml", &recipe("mailer", "1", &["mta"], "", ""));
    write(
        d,
        "strict.yaml",
        &recipe("strict", "1", &["mta>=1"], "", ""),
    );
    write(
        d,
        "compat.yaml",
        &recipe("compat", "1", &["postfix-compat>=3.9"], "", ""),
    );
    write(
        d,
        "oldsend.yaml",
        &recipe("oldsend", "1", &["sendmail<9"], "", ""),
    );
    write(
        d,
        "newsend.yaml",
        &recipe("newsend", "1", &["sendmail>=9"], "", ""),
    );
    let g = graph_of(d);
    let pf = &g.nodes[id(&g, "postfix").0];
    let pv: Vec<(&str, Option<&str>, ProvidedKind)> = pf
        .provides
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_deref(), p.kind))
        .collect();
    assert_eq!(
        pv,
        [
            ("postfix", Some("3.9.0-r0"), ProvidedKind::Package),
            ("mta", None, ProvidedKind::Provide),
            ("postfix-compat", Some("3.9.0-r0"), ProvidedKind::Provide),
            ("sendmail", Some("8.1"), ProvidedKind::Provide),
        ]
    );
    assert_eq!(deps(&g, "mailer"), ["postfix"]);
    assert!(
        deps(&g, "strict").is_empty(),
        "versioned need vs virtual provide"
    );
    assert_eq!(deps(&g, "compat"), ["postfix"]);
    assert_eq!(deps(&g, "oldsend"), ["postfix"]);
    assert!(
        deps(&g, "newsend").is_empty(),
        "sendmail>=9 not satisfied by 8.1"
    );
}

#[test]
fn subpackage_and_range_subpackage_needs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let lib_rest = "subpackages:\n  - name: libfoo-dev\n    pipeline:\n      - runs: echo dev\n";
    write(
        d,
        "libfoo.yaml",
        &recipe("libfoo", "2.0", &[], "", lib_rest),
    );
    let py_rest = "data:\n  - name: pys\n    items:\n      \"3.12\": \"312\"\n      \"3.11\": \"311\"\nsubpackages:\n  - range: pys\n    name: py${{range.key}}-bar\n    pipeline:\n      - runs: echo ${{range.value}}\n";
    write(
        d,
        "py3-bar.yaml",
        &recipe("py3-bar", "1.0", &[], "", py_rest),
    );
    write(
        d,
        "app.yaml",
        &recipe("app", "1", &["libfoo-dev>=2", "py3.12-bar"], "", ""),
    );
    // Needing one of its own subpackages is no edge.
    let own_rest = "subpackages:\n  - name: selfy-dev\n    pipeline:\n      - runs: echo dev\n";
    write(
        d,
        "selfy.yaml",
        &recipe("selfy", "1", &["selfy-dev"], "", own_rest),
    );
    let g = graph_of(d);
    let py = &g.nodes[id(&g, "py3-bar").0];
    assert!(py.provides.iter().any(|p| p.name == "py3.11-bar"
        && p.kind == ProvidedKind::Subpackage
        && p.version.as_deref() == Some("1.0-r0")));
    assert_eq!(deps(&g, "app"), ["libfoo", "py3-bar"]);
    assert_eq!(
        edge_via(&g, "app", "libfoo"),
        Some(vec!["libfoo-dev>=2".to_string()])
    );
    assert!(deps(&g, "selfy").is_empty());
}

#[test]
fn provider_preference_and_merged_via() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // `jdk` as a package name beats a declared provide, even a higher one.
    write(d, "jdk.yaml", &recipe("jdk", "17", &[], "", ""));
    write(
        d,
        "zulu.yaml",
        &recipe(
            "zulu",
            "21",
            &[],
            "dependencies:\n  provides:\n    - jdk=99\n",
            "",
        ),
    );
    // Among declared provides: the highest version, then the lowest recipe name.
    let p = |v: &str| format!("dependencies:\n  provides:\n    - cc={v}\n");
    write(d, "gcc.yaml", &recipe("gcc", "1", &[], &p("14"), ""));
    write(d, "clang.yaml", &recipe("clang", "1", &[], &p("18"), ""));
    write(d, "tcc.yaml", &recipe("tcc", "1", &[], &p("18"), ""));
    write(
        d,
        "user.yaml",
        &recipe(
            "user",
            "1",
            &["jdk", "cc", "cc>=10", "cc<15", "!zulu"],
            "",
            "",
        ),
    );
    let g = graph_of(d);
    assert_eq!(deps(&g, "user"), ["clang", "gcc", "jdk"]);
    assert_eq!(
        edge_via(&g, "user", "clang"),
        Some(vec!["cc".to_string(), "cc>=10".to_string()])
    );
    assert_eq!(edge_via(&g, "user", "gcc"), Some(vec!["cc<15".to_string()]));
    assert_eq!(edge_via(&g, "user", "zulu"), None);
}

#[test]
fn a_repository_breaks_a_cycle_before_the_out_dir_does() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "a.yaml", &recipe("a", "1", &["b"], "", ""));
    write(d, "b.yaml", &recipe("b", "1", &["a"], "", ""));
    // The out-dir offers b (an earlier build), a repository offers a: b→a goes, although
    // a→b comes first by name; the choice stays the same once the out-dir holds both.
    let offered = |n: &Node, need: &str| match (n.name.as_str(), need) {
        ("a", "b") => Offered::ByOutDir,
        ("b", "a") => Offered::ByRepository,
        _ => Offered::No,
    };
    let g = build(load_dir(d, &opts(&["x86_64"])).nodes, &offered);
    assert_eq!(g.cycles[0].broken, Some((id(&g, "b"), id(&g, "a"))));
    let only_out_dir = |n: &Node, need: &str| match (n.name.as_str(), need) {
        ("a", "b") => Offered::ByOutDir,
        _ => Offered::No,
    };
    let g = build(load_dir(d, &opts(&["x86_64"])).nodes, &only_out_dir);
    assert_eq!(g.cycles[0].broken, Some((id(&g, "a"), id(&g, "b"))));
}

#[test]
fn cycle_broken_by_external() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "a.yaml", &recipe("a", "1", &["b"], "", ""));
    write(d, "b.yaml", &recipe("b", "1", &["a"], "", ""));
    write(d, "c.yaml", &recipe("c", "1", &["a"], "", ""));
    // Only b→a's need is in the repositories: the walk (by dependent name) skips a→b.
    let g = graph_ext(d, &|n, need| n.name == "b" && need == "a");
    assert_eq!(g.cycles.len(), 1);
    let c = &g.cycles[0];
    assert_eq!(g.cycle_text(c), "a → b → a");
    assert_eq!(c.broken, Some((id(&g, "b"), id(&g, "a"))));
    assert!(g.unbreakable().is_empty());
    assert_eq!(g.dropped.len(), 1);
    assert_eq!(g.dropped[0].via, ["a"]);
    assert_eq!(order(&g), ["b", "a", "c"]);

    // Everything external: the first edge by dependent name goes.
    let g = graph_ext(d, &|_, _| true);
    assert_eq!(g.cycles[0].broken, Some((id(&g, "a"), id(&g, "b"))));
    assert_eq!(order(&g), ["a", "b", "c"]);
}

#[test]
fn unbreakable_cycle_full_path() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "a.yaml", &recipe("a", "1", &["b"], "", ""));
    write(d, "b.yaml", &recipe("b", "1", &["c"], "", ""));
    write(d, "c.yaml", &recipe("c", "1", &["a"], "", ""));
    write(d, "d.yaml", &recipe("d", "1", &[], "", ""));
    write(d, "e.yaml", &recipe("e", "1", &["a"], "", ""));
    let g = graph_of(d);
    let u = g.unbreakable();
    assert_eq!(u.len(), 1);
    assert_eq!(g.cycle_text(u[0]), "a → b → c → a");
    assert_eq!(u[0].path.first(), u[0].path.last());
    assert!(g.dropped.is_empty());
    assert_eq!(
        order(&g),
        ["d"],
        "cycle nodes and their dependents are left out"
    );
    let text = g.to_text();
    assert!(text.contains("a → b → c → a  (unbreakable)"), "{text}");
    let dot = g.to_dot();
    assert_eq!(dot.matches(", color=red").count(), 3, "{dot}");
    let j = g.to_json();
    assert_eq!(
        j["cycles"][0]["path"],
        serde_json::json!(["a", "b", "c", "a"])
    );
    assert_eq!(j["cycles"][0]["unbreakable"], true);
}

#[test]
fn two_cycles_in_one_component() {
    // a ⇄ b and b ⇄ c: breaking a→b leaves b ⇄ c, broken too.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "a.yaml", &recipe("a", "1", &["b"], "", ""));
    write(d, "b.yaml", &recipe("b", "1", &["a", "c"], "", ""));
    write(d, "c.yaml", &recipe("c", "1", &["b"], "", ""));
    let g = graph_ext(d, &|_, _| true);
    let texts: Vec<String> = g.cycles.iter().map(|c| g.cycle_text(c)).collect();
    assert_eq!(texts, ["a → b → a", "b → c → b"]);
    assert!(g.unbreakable().is_empty());
    assert_eq!(g.dropped.len(), 2);
    assert_eq!(order(&g), ["a", "b", "c"]);
}

#[test]
fn deterministic_order_and_outputs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for n in ["zeta", "mu", "alpha", "kappa"] {
        write(d, &format!("{n}.yaml"), &recipe(n, "1", &[], "", ""));
    }
    write(
        d,
        "omega.yaml",
        &recipe("omega", "1", &["zeta", "alpha"], "", ""),
    );
    let g1 = graph_of(d);
    let g2 = graph_of(d);
    assert_eq!(order(&g1), ["alpha", "kappa", "mu", "zeta", "omega"]);
    assert_eq!(g1.to_text(), g2.to_text());
    assert_eq!(g1.to_dot(), g2.to_dot());
    assert_eq!(g1.to_json(), g2.to_json());
    let text = g1.to_text();
    assert!(text.starts_with("1. alpha (x86_64)\n"), "{text}");
    assert!(
        text.contains("5. omega (x86_64)  <- alpha, zeta\n"),
        "{text}"
    );
}

#[test]
fn select_closure_and_unknown_names() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let sub = "subpackages:\n  - name: base-dev\n    pipeline:\n      - runs: echo dev\n";
    write(d, "base.yaml", &recipe("base", "1", &[], "", sub));
    write(d, "left.yaml", &recipe("left", "1", &["base-dev"], "", ""));
    write(d, "right.yaml", &recipe("right", "1", &["base"], "", ""));
    write(
        d,
        "top.yaml",
        &recipe("top", "1", &["left", "right"], "", ""),
    );
    write(d, "other.yaml", &recipe("other", "1", &[], "", ""));
    let g = graph_of(d);
    let names = |s: &BTreeSet<NodeId>| -> Vec<String> {
        let mut v: Vec<String> = s.iter().map(|i| g.nodes[i.0].name.clone()).collect();
        v.sort();
        v
    };
    let s = g.select(&["top".to_string()]).unwrap();
    assert_eq!(names(&s), ["base", "left", "right", "top"]);
    let s = g
        .select(&["base-dev".to_string(), "other".to_string()])
        .unwrap();
    assert_eq!(names(&s), ["base", "other"]);
    match g.select(&["lefty".to_string(), "top".to_string()]) {
        Err(GraphError::UnknownSelection(m)) => {
            assert!(m.contains("\"lefty\""), "{m}");
            assert!(m.contains("left"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn dot_and_json_sanity() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "a.yaml", &recipe("a", "1", &["b>=1"], "", ""));
    write(d, "b.yaml", &recipe("b", "1", &["a"], "", ""));
    let g = graph_ext(d, &|n, _| n.name == "b");
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph melange {"), "{dot}");
    assert!(dot.contains("[label=\"a\\nx86_64\"]"), "{dot}");
    assert!(dot.contains("n0 -> n1 [label=\"b>=1\"];"), "{dot}");
    assert!(
        dot.contains("n1 -> n0 [label=\"a\", style=dashed];"),
        "{dot}"
    );
    assert!(dot.trim_end().ends_with('}'));

    let j = g.to_json();
    assert_eq!(j["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(j["nodes"][0]["name"], "a");
    assert_eq!(j["nodes"][0]["arch"], "x86_64");
    assert!(j["nodes"][0]["file"].as_str().unwrap().ends_with("a.yaml"));
    assert_eq!(
        j["nodes"][0]["needs"],
        serde_json::json!(["b>=1", "busybox"])
    );
    assert_eq!(j["nodes"][0]["provides"][0]["kind"], "package");
    assert_eq!(
        j["edges"],
        serde_json::json!([{"from": "a", "to": "b", "arch": "x86_64", "via": ["b>=1"]}])
    );
    assert_eq!(j["dropped"][0]["from"], "b");
    assert_eq!(
        j["cycles"][0]["broken"],
        serde_json::json!({"from": "b", "to": "a"})
    );
    assert_eq!(j["cycles"][0]["unbreakable"], false);
    assert_eq!(j["order"], serde_json::json!(["b", "a"]));
    let text = g.to_text();
    assert!(text.contains("dropped edges"), "{text}");
    assert!(text.contains("b (x86_64) -> a  via a"), "{text}");
}

#[test]
fn name_collision_fails_the_later_file() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "alpha.yaml", &recipe("dup", "1", &[], "", ""));
    let sub = "subpackages:\n  - name: dup\n    pipeline:\n      - runs: echo\n";
    write(d, "beta.yaml", &recipe("beta", "1", &[], "", sub));
    write(d, "gamma.yaml", &recipe("gamma", "1", &["dup"], "", ""));
    let l = load(&discover(&[d.to_path_buf()]).unwrap(), &opts(&["x86_64"]));
    assert_eq!(l.failures.len(), 1, "{:?}", l.failures);
    let f = &l.failures[0];
    assert!(f.recipe.path.ends_with("beta.yaml"));
    assert!(
        f.error.contains("alpha.yaml") && f.error.contains("beta.yaml"),
        "{}",
        f.error
    );
    let names: Vec<&str> = l.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["dup", "gamma"]);
    assert!(l.nodes.iter().enumerate().all(|(i, n)| n.id == NodeId(i)));
}

#[test]
fn compile_errors_name_the_file() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "ok.yaml", &recipe("ok", "1", &[], "", ""));
    write(
        d,
        "bad.yaml",
        "package:\n  name: bad\n  version: 1\n  epoch: 0\n  bogus: 1\n",
    );
    let l = load(&discover(&[d.to_path_buf()]).unwrap(), &opts(&["x86_64"]));
    assert_eq!(l.nodes.len(), 1);
    assert_eq!(l.failures.len(), 1);
    assert!(
        l.failures[0].error.contains("bad.yaml"),
        "{}",
        l.failures[0].error
    );
}

#[test]
fn multi_arch_nodes_and_disabled() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "lib.yaml", &recipe("lib", "1", &[], "", ""));
    write(d, "app.yaml", &recipe("app", "1", &["lib"], "", ""));
    write(
        d,
        "x86only.yaml",
        &recipe(
            "x86only",
            "1",
            &["lib"],
            "target-architecture:\n  - x86_64\n",
            "",
        ),
    );
    let l = load_dir(d, &opts(&["x86_64", "arm64"]));
    let labels: Vec<String> = l.nodes.iter().map(|n| n.label()).collect();
    assert_eq!(
        labels,
        [
            "app (x86_64)",
            "app (aarch64)",
            "lib (x86_64)",
            "lib (aarch64)",
            "x86only (x86_64)"
        ]
    );
    assert_eq!(l.disabled.len(), 1);
    assert_eq!(l.disabled[0].1, "x86only");
    assert_eq!(l.disabled[0].2, "aarch64");
    let g = build(l.nodes, &|_, _| Offered::No);
    assert_eq!(g.edges.len(), 3);
    for e in &g.edges {
        assert_eq!(g.nodes[e.from.0].arch, g.nodes[e.to.0].arch);
    }
    let order: Vec<String> = g.order.iter().map(|&i| g.display_name(i)).collect();
    assert_eq!(
        order,
        [
            "lib (aarch64)",
            "app (aarch64)",
            "lib (x86_64)",
            "app (x86_64)",
            "x86only (x86_64)"
        ]
    );
    // select spans every architecture.
    assert_eq!(g.select(&["app".to_string()]).unwrap().len(), 4);
}

#[test]
fn multi_arch_cycle_text_names_the_arch() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "a.yaml", &recipe("a", "1", &["b"], "", ""));
    write(d, "b.yaml", &recipe("b", "1", &["a"], "", ""));
    let l = load_dir(d, &opts(&["x86_64", "aarch64"]));
    let g = build(l.nodes, &|_, _| Offered::No);
    let texts: Vec<String> = g.unbreakable().iter().map(|c| g.cycle_text(c)).collect();
    assert_eq!(
        texts,
        [
            "a (aarch64) → b (aarch64) → a (aarch64)",
            "a (x86_64) → b (x86_64) → a (x86_64)"
        ]
    );
    assert!(g.order.is_empty());
}

#[test]
fn package_append_adds_needs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "toolchain.yaml", &recipe("toolchain", "1", &[], "", ""));
    write(d, "app.yaml", &recipe("app", "1", &["busybox"], "", ""));
    let o = LoadOptions {
        package_append: vec!["toolchain".to_string(), "busybox".to_string()],
        ..opts(&["x86_64"])
    };
    let l = load_dir(d, &o);
    let app = l.nodes.iter().find(|n| n.name == "app").unwrap();
    assert_eq!(app.needs, ["busybox", "toolchain"]);
    let g = build(l.nodes, &|_, _| Offered::No);
    assert_eq!(deps(&g, "app"), ["toolchain"]);
    assert!(deps(&g, "toolchain").is_empty(), "no self edge");
}

#[test]
fn unparsable_need_is_no_edge() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "b.yaml", &recipe("b", "1", &[], "", ""));
    write(d, "a.yaml", &recipe("a", "1", &["b>>1", "b@edge"], "", ""));
    let g = graph_of(d);
    // `b>>1` is reported and ignored; the pinned `b@edge` still links.
    assert_eq!(edge_via(&g, "a", "b"), Some(vec!["b@edge".to_string()]));
}

#[test]
fn empty_discovery_loads_nothing() {
    let l = load(&Discovery::default(), &opts(&["x86_64"]));
    assert!(l.nodes.is_empty() && l.failures.is_empty());
    let g = build(l.nodes, &|_, _| Offered::No);
    assert!(g.order.is_empty());
    assert_eq!(g.to_text(), "");
}

#[test]
fn large_graphs_need_no_recursion() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "seed.yaml", &recipe("seed", "1", &[], "", ""));
    let seed = load_dir(t.path(), &opts(&["x86_64"])).nodes.remove(0);
    let n = 20_000;
    let mk = |i: usize, need: usize| {
        let mut node = seed.clone();
        node.name = format!("p{i:05}");
        node.provides[0].name = node.name.clone();
        node.provides[0].package = node.name.clone();
        node.needs = vec![format!("p{need:05}")];
        node
    };
    // One ring through every node: unbreakable, then broken by the repositories.
    let ring: Vec<Node> = (0..n).map(|i| mk(i, (i + 1) % n)).collect();
    let g = build(ring.clone(), &|_, _| Offered::No);
    assert_eq!(g.unbreakable().len(), 1);
    assert_eq!(g.cycles[0].path.len(), n + 1);
    assert!(g.order.is_empty());
    let g = build(ring, &|_, _| Offered::ByRepository);
    assert_eq!(g.dropped.len(), 1);
    assert_eq!(g.order.len(), n);
    assert_eq!(g.nodes[g.order[0].0].name, "p00000");
    assert_eq!(g.select(&["p00001".to_string()]).unwrap().len(), n);
}
