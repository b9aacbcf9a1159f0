//! End-to-end tests of `melange2 resolve` against a signed local repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use melange2_apk::{PackageTree, PkgInfo, RepoBuilder, SigningKey};

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
    fn key(&self) -> PathBuf {
        self.repo().join("cli.rsa.pub")
    }
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
}

fn pkg(name: &str, version: &str, deps: &[&str]) -> (PkgInfo, PackageTree) {
    let mut info = PkgInfo::new(name, version, "x86_64");
    info.depends = deps.iter().map(|d| d.to_string()).collect();
    let mut t = PackageTree::new();
    t.add_file(&format!("usr/share/{name}/README"), 0o644, name)
        .unwrap();
    (info, t)
}

fn setup() -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("cli.rsa");
    let st = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&private)
        .arg("2048")
        .output()
        .unwrap();
    assert!(st.status.success());
    let key = SigningKey::load(&private).unwrap();
    let mut rb = RepoBuilder::new(dir.path().join("repo")).signer(key);
    for (info, tree) in [
        pkg("lib", "1.0-r0", &[]),
        pkg("lib", "2.0-r0", &[]),
        pkg("app", "3.1-r2", &["lib>=2"]),
        pkg("broken", "1-r0", &["app", "so:libnope.so.1"]),
    ] {
        rb.add(&info, &tree).unwrap();
    }
    rb.finish().unwrap();
    Repo { dir }
}

fn resolve(r: &Repo, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_melange2"))
        .arg("resolve")
        .args(["--arch", "amd64", "--apk-cache-dir"])
        .arg(r.cache())
        .args(extra)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo_args(r: &Repo) -> Vec<String> {
    vec![
        "-r".into(),
        r.repo().display().to_string(),
        "-k".into(),
        r.key().display().to_string(),
    ]
}

#[test]
fn prints_the_lock_in_install_order() {
    let r = setup();
    let mut args = repo_args(&r);
    args.push("app".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = resolve(&r, &args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(&lines[0][..3], ["lib", "2.0-r0", "x86_64"]);
    assert_eq!(&lines[1][..3], ["app", "3.1-r2", "x86_64"]);
    for l in &lines {
        assert!(l[3].starts_with("Q1"));
        assert_eq!(l[4], r.repo().display().to_string());
    }
    assert!(
        text(&o.stderr).contains("resolved 2 packages for x86_64 (2 fetched, 0 from the cache"),
        "{}",
        text(&o.stderr)
    );
    // JSON, and the second run only uses the cache
    let mut json_args = args.clone();
    json_args.insert(0, "--json");
    let o = resolve(&r, &json_args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["arch"], "x86_64");
    assert_eq!(v["packages"][0]["name"], "lib");
    assert_eq!(v["packages"][1]["version"], "3.1-r2");
    assert_eq!(v["packages"][1]["checksum"], lines[1][3]);
    assert!(text(&o.stderr).contains("(0 fetched, 2 from the cache, 0 bytes downloaded)"));
}

#[test]
fn resolves_a_build_file_environment() {
    let r = setup();
    let file = r.dir.path().join("pkg.yaml");
    std::fs::write(
        &file,
        format!(
            "package:\n  name: demo\n  version: \"1\"\n  epoch: 0\nenvironment:\n  contents:\n    repositories: [{}]\n    keyring: [{}]\n    packages: [app]\npipeline:\n  - runs: \"true\"\n",
            r.repo().display(),
            r.key().display()
        ),
    )
    .unwrap();
    let o = resolve(&r, &["--json", "--config", file.to_str().unwrap(), "lib<2"]);
    // app needs lib>=2, the command line adds lib<2
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("Error: cannot resolve: app → lib>=2: no suitable provider"),
        "{}",
        text(&o.stderr)
    );
    let o = resolve(&r, &["--json", "--config", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lib", "app"]);
}

#[test]
fn errors_exit_non_zero_with_the_chain() {
    let r = setup();
    let mut args = repo_args(&r);
    args.push("broken".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = resolve(&r, &args);
    assert!(!o.status.success());
    assert_eq!(
        text(&o.stderr).trim(),
        "Error: cannot resolve: broken → so:libnope.so.1: no provider"
    );
    assert!(o.stdout.is_empty());
    // unknown key
    let o = resolve(
        &r,
        &[
            "-r",
            r.repo().to_str().unwrap(),
            "-k",
            Path::new("/nonexistent/k.pub").to_str().unwrap(),
            "app",
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("/nonexistent/k.pub does not exist"));
    // nothing requested
    let o = resolve(
        &r,
        &repo_args(&r).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("nothing to resolve"));
}

/// Every message of a failed `resolve` is said once: an unsigned index used to print
/// `…: verification failed: not signed: …: verification failed: not signed`.
#[test]
fn errors_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("unsigned");
    let mut rb = RepoBuilder::new(&repo);
    let (info, tree) = pkg("app", "1-r0", &[]);
    rb.add(&info, &tree).unwrap();
    rb.finish().unwrap();
    let signed = setup();
    let o = resolve(
        &signed,
        &[
            "-r",
            repo.to_str().unwrap(),
            "-k",
            signed.key().to_str().unwrap(),
            "app",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr).trim_end(),
        format!(
            "Error: {}: verification failed: not signed",
            repo.join("x86_64/APKINDEX.tar.gz").display()
        )
    );

    // An I/O error names the file and says the cause once.
    let o = resolve(
        &signed,
        &[
            "--config",
            "/nonexistent/build.yaml",
            "-r",
            "/nonexistent/repo",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr).trim_end(),
        "Error: /nonexistent/build.yaml: No such file or directory (os error 2)"
    );
}

/// The newest version wins as apk-tools ranks it: a post-release suffix (`_git…`, `_p1`)
/// is newer than the plain version and than any pre-release (`_rc9`) of it.
#[test]
fn post_release_versions_are_newest() {
    let signed = setup();
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::load(&signed.dir.path().join("cli.rsa")).unwrap();
    for (name, versions, want) in [
        (
            "tool",
            ["1.0_rc9-r9", "1.0-r5", "1.0_git20240101-r0"],
            "1.0_git20240101-r0",
        ),
        ("util", ["2.0_p1-r0", "2.0-r7", "2.0_cvs3-r1"], "2.0_p1-r0"),
    ] {
        let repo = dir.path().join(name);
        let mut rb = RepoBuilder::new(&repo).signer(key.clone());
        for v in versions {
            let (info, tree) = pkg(name, v, &[]);
            rb.add(&info, &tree).unwrap();
        }
        rb.finish().unwrap();
        let o = resolve(
            &signed,
            &[
                "-r",
                repo.to_str().unwrap(),
                "-k",
                signed.key().to_str().unwrap(),
                name,
            ],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let out = text(&o.stdout);
        let fields: Vec<&str> = out.split(' ').take(2).collect();
        assert_eq!(fields, [name, want], "{out}");
    }
}
