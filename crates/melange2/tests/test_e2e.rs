//! `melange2 test` end to end: the real binary, the real buildkitd of `make test`, signed
//! repositories made by the test (busybox from Debian's busybox-static, packages under test
//! written with our own writer or built with `melange2 build`).

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use common::{daemon, melange2, vertices};
use melange2_apk::{PackageTree, PkgInfo, RepoBuilder, generate_key};

struct Fixture {
    dir: tempfile::TempDir,
    repo: PathBuf,
    pubkey: PathBuf,
}

fn script(text: &str) -> Vec<u8> {
    format!("#!/bin/sh\n{text}\n").into_bytes()
}

/// A signed repository: busybox (with its applet list), wolfi-base, extra-tool, and the
/// packages the recipes below test.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_key(2048, "repo.rsa").unwrap();
    let pubkey = dir.path().join("repo.rsa.pub");
    std::fs::write(&pubkey, key.public_key_pem().unwrap()).unwrap();
    let mut repo = RepoBuilder::new(dir.path().join("repo")).signer(key);

    common::add_busybox(&mut repo);

    let mut info = PkgInfo::new("wolfi-base", "1-r0", "x86_64");
    info.depends.push("busybox".into());
    let mut t = PackageTree::new();
    t.add_dir("etc", 0o755).unwrap();
    t.add_file("etc/wolfi-base", 0o644, "base\n").unwrap();
    repo.add(&info, &t).unwrap();

    let bin = |name: &str, body: &str| {
        let mut t = PackageTree::new();
        t.add_dir("usr", 0o755).unwrap();
        t.add_dir("usr/bin", 0o755).unwrap();
        t.add_file(&format!("usr/bin/{name}"), 0o755, script(body))
            .unwrap();
        t
    };
    repo.add(
        &PkgInfo::new("extra-tool", "1.0-r0", "x86_64"),
        &bin("extra-tool", "echo extra tool here"),
    )
    .unwrap();
    repo.add(
        &PkgInfo::new("hello", "2.0-r1", "x86_64"),
        &bin("hello", "echo \"Hello from hello 2.0\""),
    )
    .unwrap();
    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/include", 0o755).unwrap();
    t.add_file("usr/include/hello.h", 0o644, "int hello(void);\n")
        .unwrap();
    repo.add(&PkgInfo::new("hello-dev", "2.0-r1", "x86_64"), &t)
        .unwrap();
    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/share", 0o755).unwrap();
    t.add_file("usr/share/hello.txt", 0o644, "docs\n").unwrap();
    repo.add(&PkgInfo::new("hello-doc", "2.0-r1", "x86_64"), &t)
        .unwrap();

    repo.add(
        &PkgInfo::new("quiet", "1.0-r0", "x86_64"),
        &bin("quiet", "true"),
    )
    .unwrap();
    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/share", 0o755).unwrap();
    t.add_file("usr/share/quiet.txt", 0o644, "shh\n").unwrap();
    repo.add(&PkgInfo::new("quiet-doc", "1.0-r0", "x86_64"), &t)
        .unwrap();
    let mut info = PkgInfo::new("broken", "1.0-r0", "x86_64");
    info.depends.push("does-not-exist".into());
    repo.add(&info, &bin("broken", "true")).unwrap();
    repo.finish().unwrap();

    Fixture {
        repo: dir.path().join("repo"),
        dir,
        pubkey,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Run `melange2 test` against the fixture repository; progress as rawjson.
fn run_test(f: &Fixture, recipe: &Path, extra: &[&str]) -> Output {
    melange2()
        .arg("test")
        .arg(recipe)
        .args(["--arch", "x86_64", "--progress", "rawjson"])
        .arg("-r")
        .arg(&f.repo)
        .arg("-k")
        .arg(&f.pubkey)
        .arg("--apk-cache-dir")
        .arg(f.dir.path().join("apk-cache"))
        .args(["--buildkit-addr", &daemon()])
        .args(extra)
        .current_dir(f.dir.path())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> &Output {
    assert!(
        o.status.success(),
        "melange2 test failed:\n{}\n{}",
        stdout(o),
        stderr(o)
    );
    o
}

/// The summary row of `package` (columns split on whitespace).
fn row(o: &Output, package: &str) -> Vec<String> {
    stdout(o)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|c| c.first().map(String::as_str) == Some(package))
        .unwrap_or_else(|| panic!("no summary row for {package}:\n{}", stdout(o)))
}

const HELLO: &str = r#"
package:
  name: hello
  version: "2.0"
  epoch: 1
test:
  environment:
    contents:
      packages: [busybox]
    environment:
      GREETING: Hello
  pipeline:
    - name: greeting
      runs: hello | grep "$GREETING from hello 2.0"
    - name: only the main test environment
      runs: |
        [ ! -e /usr/bin/extra-tool ]
        [ ! -e /usr/include/hello.h ]
    - uses: python/test
      with:
        command: grep -qx wolfi-base /etc/apk/world && test -f /etc/wolfi-base
    - uses: local/has-file
      with:
        path: /usr/bin/hello
    - name: source dir and env file
      runs: |
        grep -q from-the-source-dir /home/build/data.txt
        [ "$FROM_ENV_FILE" = "yes it is" ]
subpackages:
  - name: hello-dev
    test:
      environment:
        contents:
          packages: [busybox, extra-tool]
      pipeline:
        - runs: |
            extra-tool | grep "extra tool here"
            [ -e /usr/include/hello.h ]
            [ ! -e /usr/bin/hello ]
            [ "${GREETING:-unset}" = unset ]
  - name: hello-doc
"#;

const HAS_FILE: &str = r#"
name: Check that a file exists
inputs:
  path:
    description: the file
    required: true
pipeline:
  - runs: |
      test -e "${{inputs.path}}"
"#;

#[test]
fn passing_tests_each_in_its_own_environment() {
    let f = fixture();
    let d = f.dir.path();
    let recipe = write(d, "hello.yaml", HELLO);
    std::fs::create_dir_all(d.join("pipelines/local")).unwrap();
    write(&d.join("pipelines/local"), "has-file.yaml", HAS_FILE);
    std::fs::create_dir_all(d.join("src")).unwrap();
    write(&d.join("src"), "data.txt", "from-the-source-dir\n");
    write(d, "test.env", "FROM_ENV_FILE=\"yes it is\"\n");
    let args = [
        "--pipeline-dir",
        "pipelines",
        "--source-dir",
        "src",
        "--env-file",
        "test.env",
    ];
    let o = run_test(&f, &recipe, &args);
    ok(&o);
    let r = row(&o, "hello");
    assert_eq!(r[1..4], ["x86_64", "pipeline", "pass"]);
    assert!(r[4].ends_with('s'), "duration: {r:?}");
    assert_eq!(r[5..], ["5", "steps"]);
    assert_eq!(row(&o, "hello-dev")[2..4], ["pipeline", "pass"]);
    // The subpackage without a test block is installed.
    assert_eq!(row(&o, "hello-doc")[2..4], ["install", "pass"]);
    assert!(stdout(&o).contains("3 passed, 0 failed"), "{}", stdout(&o));
    let v = vertices(&o);
    // hello-doc's environment has no shell: its check solves the installed layers.
    for name in [
        "test hello",
        "test hello-dev",
        "hello-doc: prepare test workspace",
    ] {
        assert_eq!(v.get(name), Some(&false), "{name} did not run: {v:?}");
    }

    // Tests run again by default; --cache-results lets BuildKit answer from its cache.
    let again = run_test(&f, &recipe, &args);
    ok(&again);
    assert_eq!(vertices(&again).get("test hello"), Some(&false));
    let cached = run_test(&f, &recipe, &[&args[..], &["--cache-results"]].concat());
    ok(&cached);
    let cached_v = vertices(&cached);
    assert!(
        cached_v.get("test hello") == Some(&true),
        "expected a cache hit: {cached_v:?}"
    );
}

#[test]
fn a_failing_step_names_package_step_exit_code_and_its_output() {
    let f = fixture();
    let recipe = write(
        f.dir.path(),
        "hello.yaml",
        r#"
package: {name: hello, version: "2.0", epoch: 1}
test:
  environment:
    contents:
      packages: [busybox]
  pipeline:
    - name: first
      runs: echo first-step-ok
    - name: compare versions
      runs: |
        echo "checking the version"
        echo "expected 3.0, got 2.0" >&2
        exit 3
    - name: never
      runs: echo this-never-runs
subpackages:
  - name: hello-dev
    test:
      environment:
        contents:
          packages: [busybox]
      pipeline:
        - runs: test -e /usr/include/hello.h
"#,
    );
    let o = run_test(&f, &recipe, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(
            "FAIL hello (pipeline test, x86_64): step 2/3 \"compare versions\" failed with exit code 3\n\
             --- last 2 lines of step \"compare versions\" ---\n\
             checking the version\n\
             expected 3.0, got 2.0\n---\n"
        ),
        "{err}"
    );
    assert!(!err.contains("this-never-runs"), "{err}");
    assert!(
        err.contains("Error: 1 of 2 tests failed: hello (step 2/3 \"compare versions\""),
        "{err}"
    );
    // The other test still ran.
    assert_eq!(row(&o, "hello")[3], "FAIL");
    assert_eq!(row(&o, "hello-dev")[3], "pass");
}

#[test]
fn a_background_service_outlives_its_step_but_variables_do_not() {
    let f = fixture();
    let port = 20000 + (std::process::id() % 20000);
    let recipe = write(
        f.dir.path(),
        "svc.yaml",
        &format!(
            r#"
package: {{name: hello, version: "2.0", epoch: 1}}
test:
  environment:
    contents:
      packages: [busybox]
  pipeline:
    - name: start a server
      runs: |
        mkdir -p /srv/www
        echo served-content > /srv/www/index.html
        busybox httpd -p 127.0.0.1:{port} -h /srv/www
        export LEAKED=yes
        LOCAL_ONLY=1
        cd /tmp
    - name: query it
      environment:
        ONLY_HERE: x
      runs: |
        [ -z "${{LEAKED:-}}" ]
        [ -z "${{LOCAL_ONLY:-}}" ]
        [ "$ONLY_HERE" = x ]
        [ "$PWD" = /home/build ]
        for i in 1 2 3 4 5 6 7 8 9 10; do
          wget -q -O /tmp/got http://127.0.0.1:{port}/index.html && break
          sleep 0.3
        done
        grep served-content /tmp/got
    - name: step variables are gone
      runs: |
        [ -z "${{ONLY_HERE:-}}" ]
        wget -q -O- http://127.0.0.1:{port}/index.html | grep -q served-content
"#
        ),
    );
    let o = run_test(&f, &recipe, &[]);
    ok(&o);
    let r = row(&o, "hello");
    assert_eq!(r[3], "pass");
    assert_eq!(r[5..], ["3", "steps"]);

    // Control: a variable exported by step 1 is not seen by step 2, so this fails in step 2.
    let leak = write(
        f.dir.path(),
        "leak.yaml",
        r#"
package: {name: hello, version: "2.0", epoch: 1}
test:
  environment:
    contents:
      packages: [busybox]
  pipeline:
    - runs: export FOO=set-in-step-one
    - name: wants FOO
      runs: |
        echo "FOO is '${FOO:-}'"
        [ -n "${FOO:-}" ]
"#,
    );
    let o = run_test(&f, &leak, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("step 2/2 \"wants FOO\" failed with exit code 1\n--- last 1 lines of step \"wants FOO\" ---\nFOO is ''\n"),
        "{err}"
    );
}

#[test]
fn packages_without_tests_get_an_install_check() {
    let f = fixture();
    let quiet = write(
        f.dir.path(),
        "quiet.yaml",
        "package: {name: quiet, version: '1.0', epoch: 0}\nsubpackages:\n  - name: quiet-doc\n",
    );
    // With a shell in the environment, the check runs it.
    let o = run_test(&f, &quiet, &["--test-package-append", "busybox"]);
    ok(&o);
    let r = row(&o, "quiet,");
    assert_eq!(r[1], "quiet-doc");
    assert_eq!(r[3..5], ["install", "pass"]);
    assert_eq!(
        vertices(&o).get("install check quiet, quiet-doc"),
        Some(&false)
    );
    // Without one, the packages are still installed (the layers are solved).
    let o = run_test(&f, &quiet, &[]);
    ok(&o);
    assert!(
        stdout(&o).contains("installed; no /bin/sh in the environment to run"),
        "{}",
        stdout(&o)
    );
    assert!(
        vertices(&o).contains_key("quiet, quiet-doc: prepare test workspace"),
        "{:?}",
        vertices(&o)
    );

    // A package that cannot be installed fails its check, naming what is missing.
    let broken = write(
        f.dir.path(),
        "broken.yaml",
        "package: {name: broken, version: '1.0', epoch: 0}\n",
    );
    let o = run_test(&f, &broken, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("FAIL broken (install test, x86_64): resolving the test environment:"),
        "{err}"
    );
    assert!(err.contains("does-not-exist"), "{err}");
    assert_eq!(row(&o, "broken")[2..4], ["install", "FAIL"]);
}

#[test]
fn a_test_environment_without_a_shell_says_so() {
    let f = fixture();
    let recipe = write(
        f.dir.path(),
        "hello.yaml",
        "package: {name: hello, version: '2.0', epoch: 1}\ntest:\n  pipeline:\n    - runs: hello\n",
    );
    let o = run_test(&f, &recipe, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("the test environment has no /bin/sh"), "{err}");
    assert!(err.contains("--test-package-append busybox"), "{err}");
}

#[test]
fn packages_built_by_melange2_build_are_tested() {
    let f = fixture();
    let d = f.dir.path();
    let key = d.join("melange.rsa");
    let o = melange2()
        .args(["keygen", "--key-size", "2048"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let recipe = write(
        d,
        "greet.yaml",
        r#"
package:
  name: greet
  version: 0.1.0
  epoch: 0
environment:
  contents:
    packages: [busybox]
pipeline:
  - runs: |
      mkdir -p ${{targets.destdir}}/usr/bin ${{targets.destdir}}/usr/share/greet
      printf '#!/bin/sh\necho "greetings, $1"\n' > ${{targets.destdir}}/usr/bin/greet
      chmod 755 ${{targets.destdir}}/usr/bin/greet
      echo manual > ${{targets.destdir}}/usr/share/greet/README
subpackages:
  - name: greet-doc
    pipeline:
      - runs: |
          mkdir -p ${{targets.subpkgdir}}/usr/share
          mv ${{targets.destdir}}/usr/share/greet ${{targets.subpkgdir}}/usr/share/
    test:
      environment:
        contents:
          packages: [busybox]
      pipeline:
        - runs: grep -q manual /usr/share/greet/README
test:
  environment:
    contents:
      packages: [busybox]
  pipeline:
    - runs: |
        greet world | grep -q "greetings, world"
        [ ! -e /usr/share/greet/README ]
"#,
    );
    let built = melange2()
        .arg("build")
        .arg(&recipe)
        .args(["--arch", "x86_64", "--progress", "quiet"])
        .arg("--out-dir")
        .arg(d.join("packages"))
        .arg("--signing-key")
        .arg(&key)
        .arg("-r")
        .arg(&f.repo)
        .arg("-k")
        .arg(&f.pubkey)
        .arg("--apk-cache-dir")
        .arg(d.join("apk-cache"))
        .args(["--buildkit-addr", &daemon()])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", stderr(&built));
    let o = run_test(&f, &recipe, &["-r", "./packages", "-k", "melange.rsa.pub"]);
    ok(&o);
    assert_eq!(row(&o, "greet")[2..4], ["pipeline", "pass"]);
    assert_eq!(row(&o, "greet-doc")[2..4], ["pipeline", "pass"]);
}
