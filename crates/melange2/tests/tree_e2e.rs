//! `melange2 build DIR`: a tree of recipes built as one dependency graph on the real daemon of
//! `make test`, against a signed repository the test writes (busybox from Debian's
//! busybox-static, and an older `cyc-x` that breaks a cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;

mod common;

use common::{daemon, extract, melange2};
use melange2_apk::{ApkIndex, Keyring};

struct Tree {
    dir: tempfile::TempDir,
    repo: PathBuf,
    pubkey: PathBuf,
    signing_key: PathBuf,
}

impl Tree {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn out(&self) -> PathBuf {
        self.path("out")
    }

    fn recipe(&self, name: &str, text: &str) {
        std::fs::write(self.path(&format!("tree/{name}.yaml")), text).unwrap();
    }
}

/// A recipe whose package records its name and copies what its needs installed.
fn recipe(name: &str, version: &str, needs: &[&str], extra: &str) -> String {
    let mut pkgs = String::from("      - busybox\n");
    for n in needs {
        pkgs.push_str(&format!("      - {n}\n"));
    }
    format!(
        "package:\n  name: {name}\n  version: {version}\n  epoch: 0\n  description: {name}\n  \
         copyright:\n    - license: MIT\n{extra}environment:\n  contents:\n    packages:\n{pkgs}\
         pipeline:\n  - name: install {name}\n    runs: |\n      \
         mkdir -p ${{{{targets.destdir}}}}/usr/share/{name}\n      \
         echo {name} > ${{{{targets.destdir}}}}/usr/share/{name}/id\n      \
         cat /usr/share/*/id /usr/share/base/stamp 2>/dev/null | sort > ${{{{targets.destdir}}}}/usr/share/{name}/seen || true\n"
    )
}

/// The tree: a chain (base → a → b → c), a diamond (d-top over d-left and d-right, both on
/// the subpackage base-dev), a virtual provide (user-virt needs what impl provides), a
/// versioned need (ver needs a>=1.2), a cycle the repository breaks (cyc-x ⇄ cyc-y, cyc-x in
/// the repository) and a file that is not a recipe.
fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let r = common::signed_repo(dir.path(), &[("cyc-x", "0.9-r0")]);
    let t = Tree {
        repo: r.repo,
        pubkey: r.pubkey,
        signing_key: r.signing_key,
        dir,
    };
    std::fs::create_dir_all(t.path("tree/base")).unwrap();
    std::fs::write(t.path("tree/base/stamp"), "stamp one\n").unwrap();
    std::fs::write(t.path("tree/base/notes.txt"), "not installed\n").unwrap();
    std::fs::write(t.path("tree/README.md"), "# a distribution\n").unwrap();
    let base = "package:\n  name: base\n  version: 1.0.0\n  epoch: 0\n  description: base\n  \
        copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\n\
        pipeline:\n  - name: install base\n    runs: |\n      \
        mkdir -p ${{targets.destdir}}/usr/share/base\n      \
        echo base > ${{targets.destdir}}/usr/share/base/id\n      \
        cp stamp ${{targets.destdir}}/usr/share/base/stamp\n\
        subpackages:\n  - name: base-dev\n    description: base headers\n    pipeline:\n      \
        - runs: |\n          mkdir -p ${{targets.subpkgdir}}/usr/include\n          \
        echo '#define BASE 1' > ${{targets.subpkgdir}}/usr/include/base.h\n";
    t.recipe("base", base);
    t.recipe("a", &recipe("a", "1.2.0", &["base"], ""));
    t.recipe("b", &recipe("b", "1.0.0", &["a"], ""));
    t.recipe("c", &recipe("c", "1.0.0", &["b"], ""));
    t.recipe("d-left", &recipe("d-left", "1.0.0", &["base-dev"], ""));
    t.recipe("d-right", &recipe("d-right", "1.0.0", &["base-dev"], ""));
    t.recipe(
        "d-top",
        &recipe("d-top", "1.0.0", &["d-left", "d-right"], ""),
    );
    let provides =
        "  dependencies:\n    provides:\n      - virt-shell\n    provider-priority: 10\n";
    t.recipe("impl", &recipe("impl", "1.0.0", &[], provides));
    t.recipe(
        "user-virt",
        &recipe("user-virt", "1.0.0", &["virt-shell"], ""),
    );
    t.recipe("ver", &recipe("ver", "1.0.0", &["a>=1.2"], ""));
    t.recipe("cyc-x", &recipe("cyc-x", "1.0.0", &["cyc-y"], ""));
    t.recipe("cyc-y", &recipe("cyc-y", "1.0.0", &["cyc-x"], ""));
    t
}

fn build(t: &Tree, extra: &[&str]) -> Output {
    melange2()
        .arg("build")
        .arg(t.path("tree"))
        .args(["--arch", "x86_64", "--progress", "rawjson"])
        .args(if extra.contains(&"--jobs") {
            &[][..]
        } else {
            &["--jobs", "3"][..]
        })
        .arg("--out-dir")
        .arg(t.out())
        .arg("-r")
        .arg(&t.repo)
        .arg("-k")
        .arg(&t.pubkey)
        .arg("--signing-key")
        .arg(&t.signing_key)
        .arg("--apk-cache-dir")
        .arg(t.path("apk-cache"))
        .args(extra)
        .args(if extra.contains(&"--buildkit-addr") {
            vec![]
        } else {
            vec!["--buildkit-addr".to_string(), daemon()]
        })
        .current_dir(t.dir.path())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> &Output {
    assert!(o.status.success(), "melange2 build failed:\n{}", stderr(o));
    o
}

/// rawjson node events: (event, package) in order, with the `finished` events' results.
fn events(o: &Output) -> Vec<(String, String, String)> {
    stderr(o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"].is_string())
        .map(|v| {
            (
                v["event"].as_str().unwrap_or("").to_string(),
                v["package"].as_str().unwrap_or("").to_string(),
                v["result"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn results(o: &Output) -> BTreeMap<String, String> {
    events(o)
        .into_iter()
        .filter(|(e, ..)| e == "finished")
        .map(|(_, p, r)| (p, r))
        .collect()
}

/// rawjson `finished` reasons of each package.
fn reasons(o: &Output) -> BTreeMap<String, Vec<String>> {
    stderr(o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "finished")
        .map(|v| {
            let r = v["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect();
            (v["package"].as_str().unwrap_or("").to_string(), r)
        })
        .collect()
}

/// The packages a run built.
fn built(res: &BTreeMap<String, String>) -> BTreeSet<&str> {
    res.iter()
        .filter(|(_, r)| *r == "built")
        .map(|(p, _)| p.as_str())
        .collect()
}

fn index_names(t: &Tree) -> BTreeSet<String> {
    let mut kr = Keyring::new();
    kr.add_file(&t.signing_key.with_extension("rsa.pub"))
        .unwrap();
    let idx = ApkIndex::read_verified(&t.out().join("x86_64/APKINDEX.tar.gz"), &kr).unwrap();
    idx.entries.iter().map(|e| e.name.clone()).collect()
}

fn apks(t: &Tree) -> BTreeMap<String, Vec<u8>> {
    common::apks(&t.out())
}

fn file_in(t: &Tree, apk: &str, path: &str) -> String {
    let dir = extract(&t.out().join("x86_64").join(apk), t.dir.path());
    std::fs::read_to_string(dir.join(path)).unwrap_or_default()
}

const ALL: [&str; 12] = [
    "a",
    "b",
    "base",
    "c",
    "cyc-x",
    "cyc-y",
    "d-left",
    "d-right",
    "d-top",
    "impl",
    "user-virt",
    "ver",
];

#[test]
fn a_tree_builds_in_order_and_reruns_for_free() {
    let t = tree();
    let o = build(&t, &[]);
    ok(&o);
    let err = stderr(&o);
    // The README is listed once as skipped; the cycle is broken with a warning naming it.
    assert_eq!(err.matches("README.md").count(), 1, "{err}");
    assert!(
        err.contains("cyc-x → cyc-y → cyc-x") || err.contains("cyc-y → cyc-x → cyc-y"),
        "{err}"
    );
    assert!(err.contains("from the repositories"), "{err}");
    let res = results(&o);
    for n in ALL {
        assert_eq!(res.get(n).map(String::as_str), Some("built"), "{n}: {err}");
    }
    // Order: every dependency finished before its dependent started.
    let ev = events(&o);
    let at = |e: &str, p: &str| ev.iter().position(|(x, y, _)| x == e && y == p).unwrap();
    let edges = [
        ("a", "base"),
        ("b", "a"),
        ("c", "b"),
        ("d-left", "base"),
        ("d-right", "base"),
        ("d-top", "d-left"),
        ("d-top", "d-right"),
        ("user-virt", "impl"),
        ("ver", "a"),
        ("cyc-x", "cyc-y"),
    ];
    for (dependent, dep) in edges {
        assert!(
            at("finished", dep) < at("started", dependent),
            "{dep} must finish before {dependent} starts"
        );
    }
    // Fresh files of a dependency are in the dependent's environment.
    assert!(file_in(&t, "a-1.2.0-r0.apk", "usr/share/a/seen").contains("stamp one"));
    let seen = file_in(&t, "d-top-1.0.0-r0.apk", "usr/share/d-top/seen");
    assert!(
        seen.contains("d-left") && seen.contains("d-right"),
        "{seen}"
    );
    assert!(file_in(&t, "user-virt-1.0.0-r0.apk", "usr/share/user-virt/seen").contains("impl"));
    // cyc-y was built on the repository's cyc-x (no id file), cyc-x on the fresh cyc-y.
    assert!(file_in(&t, "cyc-x-1.0.0-r0.apk", "usr/share/cyc-x/seen").contains("cyc-y"));
    // The index lists every package of the tree.
    let mut want: BTreeSet<String> = ALL.iter().map(|s| s.to_string()).collect();
    want.insert("base-dev".into());
    assert_eq!(index_names(&t), want);
    // Each build has its log.
    assert!(t.out().join("logs/x86_64/d-top.log").is_file());

    // Re-run with no daemon at all: nothing is solved, everything is up to date.
    let before = apks(&t);
    let o = build(
        &t,
        &["--buildkit-addr", "unix:///nonexistent/buildkitd.sock"],
    );
    ok(&o);
    let res = results(&o);
    for n in ALL {
        assert_eq!(res.get(n).map(String::as_str), Some("up to date"), "{n}");
    }
    assert!(!stderr(&o).contains("\"vertexes\""), "a solve ran");
    assert_eq!(apks(&t), before, "packages or index changed");

    // A changed step: --dry-run names it, the build rebuilds it and its dependents only.
    let a = std::fs::read_to_string(t.path("tree/a.yaml")).unwrap();
    t.recipe("a", &a.replace("echo a >", "echo a-changed >"));
    let o = build(
        &t,
        &[
            "--dry-run",
            "--buildkit-addr",
            "unix:///nonexistent/buildkitd.sock",
        ],
    );
    ok(&o);
    let r = reasons(&o);
    assert!(
        r["a"]
            .iter()
            .any(|x| x.contains("step 001 (install a) changed")),
        "{r:?}"
    );
    assert!(
        r["b"].iter().any(|x| x == "dependency a is rebuilt"),
        "{r:?}"
    );
    assert!(
        r["c"].iter().any(|x| x == "dependency b is rebuilt"),
        "{r:?}"
    );
    let res = results(&o);
    assert_eq!(res["base"], "up to date");
    assert_eq!(res["c"], "would build");
    assert_eq!(apks(&t), before, "--dry-run wrote something");
    let o = build(&t, &[]);
    ok(&o);
    let res = results(&o);
    let rebuilt = built(&res);
    assert_eq!(rebuilt, BTreeSet::from(["a", "b", "c", "ver"]), "{res:?}");
    let r = reasons(&o);
    assert!(
        r["b"]
            .iter()
            .any(|x| x.starts_with("dependency a has new bytes")),
        "{r:?}"
    );

    // A source file the package does not install: base rebuilds to identical bytes, so
    // nothing that depends on it rebuilds.
    let before = apks(&t);
    std::fs::write(t.path("tree/base/notes.txt"), "still not installed\n").unwrap();
    let o = build(&t, &[]);
    ok(&o);
    let res = results(&o);
    assert_eq!(res["base"], "built");
    assert!(
        reasons(&o)["base"]
            .iter()
            .any(|x| x == "source file notes.txt changed")
    );
    for n in ALL.iter().filter(|n| **n != "base") {
        assert_eq!(res[*n], "up to date", "{n}: {res:?}");
    }
    assert_eq!(apks(&t), before);

    // A source file it installs: base and everything on its main package rebuild, with the
    // new file; the d-* recipes need only base-dev, whose bytes did not change.
    std::fs::write(t.path("tree/base/stamp"), "stamp two\n").unwrap();
    let o = build(&t, &[]);
    ok(&o);
    let res = results(&o);
    let rebuilt = built(&res);
    assert_eq!(
        rebuilt,
        BTreeSet::from(["a", "b", "base", "c", "ver"]),
        "{res:?}"
    );
    assert!(file_in(&t, "a-1.2.0-r0.apk", "usr/share/a/seen").contains("stamp two"));
}

#[test]
fn a_failing_recipe_skips_only_its_dependents() {
    let t = tree();
    let left = std::fs::read_to_string(t.path("tree/d-left.yaml")).unwrap();
    t.recipe(
        "d-left",
        &left.replace("echo d-left >", "echo broken >&2; exit 3; echo >"),
    );
    let o = build(&t, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    let res = results(&o);
    assert_eq!(res["d-left"], "failed", "{err}");
    assert_eq!(res["d-top"], "skipped: d-left failed", "{err}");
    for n in ALL.iter().filter(|n| !["d-left", "d-top"].contains(n)) {
        assert_eq!(res[*n], "built", "{n}: {err}");
    }
    assert!(
        err.contains("install d-left") && err.contains("exit code 3"),
        "{err}"
    );
    assert!(err.contains("1 of 12 builds failed, 1 skipped"), "{err}");
    // The index verifies and lists exactly the built packages.
    let names = index_names(&t);
    assert!(!names.contains("d-left") && !names.contains("d-top"));
    assert_eq!(names.len(), 11, "{names:?}");
    // The failed build's log is kept.
    let log = std::fs::read_to_string(t.out().join("logs/x86_64/d-left.log")).unwrap();
    assert!(log.contains("broken") && log.contains("FAILED"), "{log}");
}

#[test]
fn an_unbreakable_cycle_fails_before_building() {
    let t = tree();
    t.recipe("u1", &recipe("u1", "1.0.0", &["u2"], ""));
    t.recipe("u2", &recipe("u2", "1.0.0", &["u3"], ""));
    t.recipe("u3", &recipe("u3", "1.0.0", &["u1"], ""));
    let o = build(&t, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("u1 → u2 → u3 → u1"), "{err}");
    assert!(err.contains("nothing was built"), "{err}");
    assert!(!t.out().exists(), "the out-dir was written");
    // `melange2 graph` shows the same cycle.
    let g = melange2()
        .arg("graph")
        .arg(t.path("tree"))
        .args(["--arch", "x86_64", "-r"])
        .arg(&t.repo)
        .arg("-k")
        .arg(&t.pubkey)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&g.stdout);
    assert!(text.contains("u1 → u2 → u3 → u1"), "{text}");
    assert!(!g.status.success());
}

#[test]
fn select_builds_a_recipe_and_what_it_needs() {
    let t = tree();
    let o = build(&t, &["--select", "c"]);
    ok(&o);
    let res = results(&o);
    let built: BTreeSet<&str> = res.keys().map(String::as_str).collect();
    assert_eq!(built, BTreeSet::from(["a", "b", "base", "c"]), "{res:?}");
    let o = build(&t, &["--select", "nope"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
}

#[test]
fn fail_fast_stops_at_the_first_failure() {
    let t = tree();
    let base = std::fs::read_to_string(t.path("tree/base.yaml")).unwrap();
    t.recipe("base", &base.replace("echo base >", "exit 4; echo >"));
    // One build at a time. Another root (impl, cyc-y) may be built before base fails,
    // depending on which check ends first; after the failure nothing starts.
    let o = build(&t, &["--fail-fast", "--jobs", "1"]);
    assert!(!o.status.success());
    let res = results(&o);
    assert_eq!(res["base"], "failed", "{}", stderr(&o));
    let ev = events(&o);
    let failed_at = ev
        .iter()
        .position(|(e, p, _)| e == "finished" && p == "base")
        .unwrap();
    assert!(
        !ev[failed_at..].iter().any(|(e, ..)| e == "started"),
        "a build started after the failure: {ev:?}"
    );
    for n in [
        "a",
        "b",
        "c",
        "d-left",
        "d-right",
        "d-top",
        "ver",
        "user-virt",
    ] {
        assert!(res[n].starts_with("skipped: "), "{n}: {}", res[n]);
    }
    for n in ALL.iter().filter(|n| **n != "base") {
        let r = &res[*n];
        assert!(
            r == "built" || r.contains("--fail-fast") || r.contains("base failed"),
            "{n}: {r}"
        );
    }
    assert!(res.values().any(|r| r.contains("--fail-fast")), "{res:?}");
}
