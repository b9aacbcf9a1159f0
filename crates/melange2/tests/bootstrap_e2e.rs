//! Bootstrap builds and tests end to end (`--bootstrap-rootfs`): the real binary and the
//! buildkitd of `make test`, a root filesystem made of Debian's busybox-static, and a signed
//! repository written by the test.
//!
//! What they drive: the recipe's packages (environment, `needs`, `--package-append`) layered
//! over the rootfs, packages its apk database lists counting as present, a clear error listing
//! every package nothing can serve, the build user and group, repository errors in every mode,
//! the rootfs recorded by content (not path), one transfer of a directory rootfs per run, and
//! `melange2 test --bootstrap-rootfs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{daemon, extract, melange2};
use melange2_apk::{PackageTree, PkgInfo, RepoBuilder, generate_key};

struct Fixture {
    dir: tempfile::TempDir,
    rootfs: PathBuf,
    repo: PathBuf,
    pubkey: PathBuf,
    signing_key: PathBuf,
}

/// A package with one shell script `usr/bin/<name>` printing `<name> <version>`.
fn add_tool(repo: &mut RepoBuilder, name: &str, version: &str) {
    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/bin", 0o755).unwrap();
    let script = format!("#!/bin/sh\necho {name} {version}\n");
    t.add_file(&format!("usr/bin/{name}"), 0o755, script.into_bytes())
        .unwrap();
    repo.add(&PkgInfo::new(name, version, "x86_64"), &t)
        .unwrap();
}

/// A rootfs directory (static busybox and its applet links in `/bin`, an `/etc/passwd` with a
/// `daemon` account) and a signed repository with `tool`, `helper` and `extra`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8(list.stdout).unwrap().lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ndaemon:x:2:2:daemon:/sbin:/bin/false\n",
    )
    .unwrap();
    let key = generate_key(2048, "repo.rsa").unwrap();
    let pubkey = dir.path().join("repo.rsa.pub");
    std::fs::write(&pubkey, key.public_key_pem().unwrap()).unwrap();
    let repo = dir.path().join("repo");
    let mut r = RepoBuilder::new(&repo).signer(key);
    add_tool(&mut r, "tool", "1.0-r0");
    add_tool(&mut r, "helper", "1.0-r0");
    add_tool(&mut r, "extra", "1.0-r0");
    r.finish().unwrap();
    let signing_key = dir.path().join("melange.rsa");
    let o = melange2()
        .args(["keygen", "--key-size", "2048"])
        .arg(&signing_key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Fixture {
        dir,
        rootfs,
        repo,
        pubkey,
        signing_key,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A recipe asking for `packages`, a step needing `needs`, and a step writing what the
/// environment shows into the package.
fn recipe(f: &Fixture, name: &str, packages: &[&str], needs: &[&str], script: &str) -> PathBuf {
    let list = |v: &[&str]| {
        v.iter()
            .map(|p| format!("\n        - {p}"))
            .collect::<String>()
    };
    let body = script
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect::<String>();
    let text = format!(
        "package:\n  name: {name}\n  version: 1.0.0\n  epoch: 0\n  description: d\n  copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:{}\npipeline:\n  - name: needs step\n    needs:\n      packages:{}\n    runs: mkdir -p ${{{{targets.destdir}}}}/usr/share/{name}\n  - name: record\n    runs: |\n{body}",
        if packages.is_empty() {
            " []".to_string()
        } else {
            list(packages).replace("\n        ", "\n      ")
        },
        if needs.is_empty() {
            " []".to_string()
        } else {
            list(needs)
        },
    );
    write(f.dir.path(), &format!("{name}.yaml"), &text)
}

fn build(f: &Fixture, recipe: &Path, rootfs: &Path, out: &Path, extra: &[&str]) -> Output {
    melange2()
        .arg("build")
        .arg(recipe)
        .args(["--arch", "x86_64", "--progress", "plain"])
        .args(["--buildkit-addr", &daemon()])
        .arg("--bootstrap-rootfs")
        .arg(rootfs)
        .arg("--signing-key")
        .arg(&f.signing_key)
        .arg("--apk-cache-dir")
        .arg(f.dir.path().join("apk-cache"))
        .arg("--out-dir")
        .arg(out)
        .args(extra)
        .current_dir(f.dir.path())
        .output()
        .unwrap()
}

fn with_repo<'a>(f: &'a Fixture, extra: &[&'a str]) -> Vec<String> {
    let mut v = vec![
        "-r".to_string(),
        f.repo.display().to_string(),
        "-k".to_string(),
        f.pubkey.display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const RECORD: &str = "d=${{targets.destdir}}/usr/share/$(basename ${{targets.destdir}})\ntool > $d/tool\nhelper > $d/helper\nextra > $d/extra\ngrep -E '^(build|daemon):' /etc/passwd > $d/passwd\ngrep '^build:' /etc/group > $d/group";

#[test]
fn packages_are_layered_over_the_rootfs_with_the_build_user() {
    let f = fixture();
    let r = recipe(&f, "layered", &["tool"], &["helper"], RECORD);
    let out = f.dir.path().join("out");
    let args = with_repo(&f, &["--package-append", "extra"]);
    let o = build(&f, &r, &f.rootfs, &out, &strs(&args));
    ok(&o);
    let tree = extract(&out.join("x86_64/layered-1.0.0-r0.apk"), f.dir.path());
    let read = |n: &str| std::fs::read_to_string(tree.join("usr/share/layered").join(n)).unwrap();
    assert_eq!(read("tool"), "tool 1.0-r0\n");
    assert_eq!(read("helper"), "helper 1.0-r0\n");
    assert_eq!(read("extra"), "extra 1.0-r0\n");
    // The rootfs's accounts are kept and the build user is added, as in resolved builds.
    assert_eq!(
        read("passwd"),
        "daemon:x:2:2:daemon:/sbin:/bin/false\nbuild:x:1000:1000:build:/home/build:/bin/sh\n"
    );
    assert!(
        read("group").starts_with("build:x:1000:"),
        "{}",
        read("group")
    );
}

#[test]
fn the_build_user_exists_over_a_bare_rootfs() {
    let f = fixture();
    std::fs::remove_file(f.rootfs.join("etc/passwd")).unwrap();
    let r = recipe(
        &f,
        "accounts",
        &[],
        &[],
        "d=${{targets.destdir}}/usr/share/accounts\ncp /etc/passwd /etc/group $d/\n# nothing of apk is written into a rootfs that gets no package\ntest ! -e /lib/apk\ntest ! -e /etc/apk",
    );
    let out = f.dir.path().join("out");
    ok(&build(&f, &r, &f.rootfs, &out, &[]));
    let tree = extract(&out.join("x86_64/accounts-1.0.0-r0.apk"), f.dir.path());
    let passwd = std::fs::read_to_string(tree.join("usr/share/accounts/passwd")).unwrap();
    assert!(
        passwd.contains("build:x:1000:1000:build:/home/build:/bin/sh"),
        "{passwd}"
    );
    let group = std::fs::read_to_string(tree.join("usr/share/accounts/group")).unwrap();
    assert!(group.contains("build:x:1000:"), "{group}");
}

#[test]
fn missing_packages_fail_before_building_and_are_all_listed() {
    let f = fixture();
    let r = recipe(
        &f,
        "wants",
        &["tool", "ghost-env"],
        &["ghost-needs"],
        "true",
    );
    let out = f.dir.path().join("out");
    // No repository at all: every package is listed with who asked for it.
    let o = build(&f, &r, &f.rootfs, &out, &["--package-append", "ghost-flag"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    for want in [
        "recipe wants",
        "needs 4 package(s) the bootstrap rootfs does not have",
        "no repository is configured",
        "tool (environment.contents.packages)",
        "ghost-env (environment.contents.packages)",
        "ghost-needs (needs of step \"needs step\")",
        "ghost-flag (--package-append)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!out.exists(), "nothing is built or written");
    // With the repository, only what it cannot serve is listed.
    let args = with_repo(&f, &["--package-append", "ghost-flag"]);
    let o = build(&f, &r, &f.rootfs, &out, &strs(&args));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("needs 3 package(s)"), "{err}");
    assert!(err.contains(&f.repo.display().to_string()), "{err}");
    assert!(!err.contains("tool ("), "tool is served: {err}");
    assert!(!out.join("x86_64").exists(), "nothing is built");
}

#[test]
fn packages_the_rootfs_has_installed_count_as_present() {
    let f = fixture();
    // The rootfs's apk database lists `tool`, and ships it.
    std::fs::create_dir_all(f.rootfs.join("lib/apk/db")).unwrap();
    std::fs::create_dir_all(f.rootfs.join("usr/bin")).unwrap();
    std::fs::write(
        f.rootfs.join("lib/apk/db/installed"),
        "P:tool\nV:0.9-r0\nA:x86_64\np:cmd:tool=0.9-r0\n\n",
    )
    .unwrap();
    std::fs::write(
        f.rootfs.join("usr/bin/tool"),
        "#!/bin/sh\necho rootfs tool\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(f.rootfs.join("usr/bin/tool"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(f.rootfs.join("usr/bin/tool"), perms).unwrap();
    let script = "d=${{targets.destdir}}/usr/share/present\ntool > $d/tool\nhelper > $d/helper\ncp /lib/apk/db/installed $d/installed";
    let r = recipe(&f, "present", &["tool", "cmd:tool"], &["helper"], script);
    let out = f.dir.path().join("out");
    let o = build(&f, &r, &f.rootfs, &out, &strs(&with_repo(&f, &[])));
    ok(&o);
    let tree = extract(&out.join("x86_64/present-1.0.0-r0.apk"), f.dir.path());
    let read = |n: &str| std::fs::read_to_string(tree.join("usr/share/present").join(n)).unwrap();
    assert_eq!(read("tool"), "rootfs tool\n", "the rootfs's tool is kept");
    assert_eq!(read("helper"), "helper 1.0-r0\n");
    let db = read("installed");
    assert!(db.starts_with("P:tool\nV:0.9-r0\n"), "{db}");
    assert!(db.contains("P:helper\nV:1.0-r0\n"), "{db}");
    // A version the rootfs does not have is refused, naming the installed one.
    let r = recipe(&f, "newer", &["tool>=1.0"], &[], "true");
    let o = build(&f, &r, &f.rootfs, &out, &strs(&with_repo(&f, &[])));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("tool>=1.0 (environment.contents.packages: tool>=1.0: tool-0.9-r0"),
        "{err}"
    );
}

#[test]
fn the_environment_is_part_of_the_lock() {
    let f = fixture();
    let r = recipe(
        &f,
        "locked",
        &["tool"],
        &[],
        "d=${{targets.destdir}}/usr/share/locked\ntool > $d/tool",
    );
    let out = f.dir.path().join("out");
    ok(&build(&f, &r, &f.rootfs, &out, &strs(&with_repo(&f, &[]))));
    let o = build(&f, &r, &f.rootfs, &out, &strs(&with_repo(&f, &[])));
    ok(&o);
    assert!(
        stderr(&o).contains("0 built, 1 up to date"),
        "{}",
        stderr(&o)
    );
    // A new version of a package over the rootfs rebuilds.
    let repo2 = f.dir.path().join("repo2");
    let k2 = generate_key(2048, "repo2.rsa").unwrap();
    let pub2 = f.dir.path().join("repo2.rsa.pub");
    std::fs::write(&pub2, k2.public_key_pem().unwrap()).unwrap();
    let mut b = RepoBuilder::new(&repo2).signer(k2);
    add_tool(&mut b, "tool", "1.1-r0");
    b.finish().unwrap();
    let mut args = with_repo(&f, &[]);
    args.extend([
        "-r".into(),
        repo2.display().to_string(),
        "-k".into(),
        pub2.display().to_string(),
    ]);
    let o = build(&f, &r, &f.rootfs, &out, &strs(&args));
    ok(&o);
    assert!(stderr(&o).contains("1 built"), "{}", stderr(&o));
    let tree = extract(&out.join("x86_64/locked-1.0.0-r0.apk"), f.dir.path());
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/share/locked/tool")).unwrap(),
        "tool 1.1-r0\n"
    );
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/repo", l.local_addr().unwrap());
    drop(l);
    url
}

#[test]
fn a_repository_that_does_not_answer_is_an_error_in_every_mode() {
    let f = fixture();
    let r = recipe(&f, "norepo", &[], &[], "true");
    let test_recipe = write(
        f.dir.path(),
        "tested.yaml",
        "package: {name: tested, version: '1.0', epoch: 0}\ntest:\n  pipeline:\n    - runs: true\n",
    );
    for bad in ["/nonexistent/melange2-repo".to_string(), closed_port()] {
        let key = f.pubkey.display().to_string();
        let cache = f.dir.path().join(format!("cache-{}", bad.len()));
        let cache = cache.display().to_string();
        let common = [
            "-r",
            bad.as_str(),
            "-k",
            key.as_str(),
            "--apk-cache-dir",
            cache.as_str(),
        ];
        let out = f.dir.path().join("out");
        let runs: Vec<(&str, Output)> = vec![
            (
                "bootstrap build",
                build(&f, &r, &f.rootfs, &out, &common[..4]),
            ),
            (
                "resolved build",
                melange2()
                    .arg("build")
                    .arg(&r)
                    .args(["--arch", "x86_64", "--progress", "plain"])
                    .args(["--buildkit-addr", &daemon()])
                    .args(common)
                    .arg("--out-dir")
                    .arg(&out)
                    .output()
                    .unwrap(),
            ),
            (
                "test",
                melange2()
                    .arg("test")
                    .arg(&test_recipe)
                    .args(["--arch", "x86_64", "--progress", "plain"])
                    .args(["--buildkit-addr", &daemon()])
                    .args(common)
                    .output()
                    .unwrap(),
            ),
            (
                "bootstrap test",
                melange2()
                    .arg("test")
                    .arg(&test_recipe)
                    .args(["--arch", "x86_64", "--progress", "plain"])
                    .args(["--buildkit-addr", &daemon()])
                    .arg("--bootstrap-rootfs")
                    .arg(&f.rootfs)
                    .args(common)
                    .output()
                    .unwrap(),
            ),
            (
                "resolve",
                melange2()
                    .args(["resolve", "busybox", "--arch", "x86_64"])
                    .args(common)
                    .output()
                    .unwrap(),
            ),
        ];
        for (mode, o) in runs {
            let err = stderr(&o);
            assert!(!o.status.success(), "{mode} with {bad}: succeeded\n{err}");
            assert!(err.contains(&bad), "{mode}: the error names {bad}:\n{err}");
            assert!(
                !err.contains("Test summary")
                    && !String::from_utf8_lossy(&o.stdout).contains("pass"),
                "{mode}: nothing ran\n{err}"
            );
        }
        assert!(!out.exists(), "nothing was built");
    }
}

/// `cp -a` of a tree (same content, modes and times, another path).
fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Bytes of local files each solve sent, from the debug log, by recipe.
fn sent(o: &Output) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    for l in stderr(o)
        .lines()
        .filter(|l| l.contains("local files sent to the daemon"))
    {
        let field = |k: &str| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .map(|s| s.trim_matches('"').to_string())
        };
        if let (Some(r), Some(b)) = (field("recipe"), field("bytes")) {
            v.push((r, b.parse().unwrap()));
        }
    }
    v.sort();
    v
}

#[test]
fn the_rootfs_counts_by_content_and_a_directory_is_sent_once() {
    let f = fixture();
    let tree = f.dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    for name in ["one", "two"] {
        let text = format!(
            "package:\n  name: {name}\n  version: 1.0.0\n  epoch: 0\n  description: d\n  copyright:\n    - license: MIT\npipeline:\n  - runs: mkdir -p ${{{{targets.destdir}}}}/usr/share && echo {name} > ${{{{targets.destdir}}}}/usr/share/{name}\n"
        );
        write(&tree, &format!("{name}.yaml"), &text);
    }
    // A fresh rootfs content for this test, so the daemon has never seen it.
    std::fs::write(f.rootfs.join("etc/motd"), format!("{:?}", f.dir.path())).unwrap();
    let out = f.dir.path().join("out");
    let run = |rootfs: &Path| {
        melange2()
            .arg("build")
            .arg(&tree)
            .args(["--arch", "x86_64", "--progress", "plain", "--jobs", "1"])
            .args(["--buildkit-addr", &daemon()])
            .arg("--bootstrap-rootfs")
            .arg(rootfs)
            .arg("--signing-key")
            .arg(&f.signing_key)
            .arg("--out-dir")
            .arg(&out)
            .env("MELANGE2_LOG", "warn,melange2_build=debug")
            .env("NO_COLOR", "1")
            .current_dir(f.dir.path())
            .output()
            .unwrap()
    };
    let o = run(&f.rootfs);
    ok(&o);
    let s = sent(&o);
    assert_eq!(s.len(), 2, "{s:?}\n{}", stderr(&o));
    let total: u64 = s.iter().map(|(_, b)| b).sum();
    let busybox = std::fs::metadata("/bin/busybox").unwrap().len();
    assert!(
        total >= busybox && total < 2 * busybox,
        "the rootfs went to the daemon once for both recipes: {s:?}"
    );
    // The package's lock and the out-dir's records hold the rootfs's digest, not its path.
    let apk = melange2_apk::PackageReader::open(&out.join("x86_64/one-1.0.0-r0.apk")).unwrap();
    let yaml = String::from_utf8_lossy(&apk.control_files()[".melange.yaml"]).into_owned();
    assert!(yaml.contains(r#""bootstrap-rootfs": "sha256:"#), "{yaml}");
    let records = out.join("x86_64/.melange2-records");
    let mut texts = vec![yaml];
    for e in std::fs::read_dir(&records).unwrap() {
        texts.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    assert!(texts.len() >= 3, "two records: {}", records.display());
    let path = f.rootfs.display().to_string();
    assert!(
        texts.iter().all(|t| !t.contains(&path)),
        "the rootfs path {path} is recorded"
    );
    // The same tree at another path is the same input.
    let moved = f.dir.path().join("moved");
    copy_tree(&f.rootfs, &moved);
    let o = run(&moved);
    ok(&o);
    assert!(
        stderr(&o).contains("0 built, 2 up to date"),
        "{}",
        stderr(&o)
    );
    // A changed tree rebuilds, saying why.
    std::fs::write(moved.join("etc/motd"), "changed").unwrap();
    let o = run(&moved);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("2 built"), "{err}");
    assert!(err.contains("bootstrap rootfs content changed"), "{err}");
}

#[test]
fn melange2_test_runs_over_the_bootstrap_rootfs() {
    let f = fixture();
    let text = "package:\n  name: checked\n  version: 1.0.0\n  epoch: 0\n  description: d\n  copyright:\n    - license: MIT\npipeline:\n  - runs: mkdir -p ${{targets.destdir}}/usr/share/checked\ntest:\n  environment:\n    contents:\n      packages:\n        - tool\n  pipeline:\n    - runs: |\n        tool | grep 'tool 1.0-r0'\n        grep '^build:x:1000:1000:' /etc/passwd\n        grep '^daemon:' /etc/passwd\n";
    let r = write(f.dir.path(), "checked.yaml", text);
    let out = f.dir.path().join("out");
    ok(&build(&f, &r, &f.rootfs, &out, &[]));
    let test = |recipe: &Path, extra: &[&str]| {
        melange2()
            .arg("test")
            .arg(recipe)
            .args(["--arch", "x86_64", "--progress", "plain"])
            .args(["--buildkit-addr", &daemon()])
            .arg("--bootstrap-rootfs")
            .arg(&f.rootfs)
            .arg("-r")
            .arg(&out)
            .arg("-k")
            .arg(f.dir.path().join("melange.rsa.pub"))
            .arg("--apk-cache-dir")
            .arg(f.dir.path().join("apk-cache"))
            .args(extra)
            .current_dir(f.dir.path())
            .output()
            .unwrap()
    };
    let repo = f.repo.display().to_string();
    let key = f.pubkey.display().to_string();
    let o = test(&r, &["-r", &repo, "-k", &key]);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
    // Without the repository, the test fails and names what is missing.
    let o = test(&r, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("resolving the test environment: the test of checked")
            && err.contains("the bootstrap rootfs does not have")
            && err.contains("tool (the test environment)"),
        "{err}"
    );
}

#[test]
fn a_missing_rootfs_or_a_malformed_apk_database_is_named_before_building() {
    let f = fixture();
    let r = recipe(&f, "named", &[], &[], "true");
    let out = f.dir.path().join("out");
    let missing = f.dir.path().join("no-such-rootfs");
    let o = build(&f, &r, &missing, &out, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!("bootstrap rootfs {}", missing.display())),
        "{err}"
    );
    let o = melange2()
        .arg("test")
        .arg(&r)
        .args(["--arch", "x86_64", "--buildkit-addr", &daemon()])
        .arg("--bootstrap-rootfs")
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-rootfs"), "{}", stderr(&o));
    // A tar whose apk database is not one: the error names the tar and the file inside it.
    std::fs::create_dir_all(f.rootfs.join("lib/apk/db")).unwrap();
    std::fs::write(f.rootfs.join("lib/apk/db/installed"), "not a database\n").unwrap();
    let tar = f.dir.path().join("rootfs.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&tar)
        .arg("-C")
        .arg(&f.rootfs)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let o = build(&f, &r, &tar, &out, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("rootfs.tar.gz") && err.contains("lib/apk/db/installed"),
        "{err}"
    );
    assert!(!out.join("x86_64").exists(), "nothing is built");
}
