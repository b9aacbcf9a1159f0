//! End-to-end tests of `melange2 compile|query|package-version|lint-config`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn melange2(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_melange2"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run melange2")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const RECIPE: &str = r#"package:
  name: hello
  version: "2.12"
  epoch: 1
environment:
  contents:
    packages: [busybox]
pipeline:
  - uses: fetch
    with:
      uri: https://example.invalid/hello-${{package.version}}.tar.gz
      expected-sha256: cf04af86dc085268c5f4470fbae49b18afbc221b78096aab842d934a76bad0ab
  - runs: echo ${{build.arch}} ${{vars.greeting}}
vars:
  greeting: hi
subpackages:
  - name: hello-doc
    pipeline:
      - uses: split/manpages
"#;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("hello.yaml");
    std::fs::write(&f, RECIPE).unwrap();
    (d, f)
}

#[test]
fn compile_prints_stable_json() {
    let (d, _) = setup();
    let a = melange2(&["compile", "hello.yaml", "--arch", "arm64"], d.path());
    assert!(a.status.success(), "{}", stderr(&a));
    let v: serde_json::Value = serde_json::from_str(&stdout(&a)).unwrap();
    assert_eq!(v["arch"], "aarch64");
    assert_eq!(v["package"]["full_version"], "2.12-r1");
    assert_eq!(v["pipeline"][1]["runs"], "echo aarch64 hi");
    let pk: Vec<&str> = v["environment"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(pk, ["busybox", "wget"]);
    let b = melange2(&["compile", "hello.yaml", "--arch", "aarch64"], d.path());
    assert_eq!(a.stdout, b.stdout, "same input, same bytes");

    // -o writes the same JSON to a file.
    let o = melange2(
        &[
            "compile",
            "hello.yaml",
            "--arch",
            "aarch64",
            "-o",
            "plan.json",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.path().join("plan.json")).unwrap(), a.stdout);
}

#[test]
fn compile_errors_name_file_line_column() {
    let (d, f) = setup();
    std::fs::write(&f, RECIPE.replace("  epoch: 1", "  epcho: 1")).unwrap();
    let o = melange2(&["compile", "hello.yaml", "--arch", "x86_64"], d.path());
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("hello.yaml:4:3: package.epcho: unknown key \"epcho\""),
        "{e}"
    );
    assert!(e.contains("(did you mean \"epoch\"?)"), "{e}");

    let o = melange2(&["compile", "hello.yaml", "--arch", "sparc"], d.path());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown architecture \"sparc\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn query_and_package_version() {
    let (d, _) = setup();
    let o = melange2(
        &[
            "query",
            "hello.yaml",
            "{{ .Package.Name }}-{{ .Package.Version }}",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello-2.12\n");
    let o = melange2(&["package-version", "hello.yaml"], d.path());
    assert_eq!(stdout(&o), "hello-2.12-r1\n");
}

#[test]
fn lint_config_exit_codes() {
    let (d, f) = setup();
    let ok = melange2(&["lint-config", "."], d.path());
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(
        stderr(&ok).contains("1 files checked: 0 errors, 0 warnings"),
        "{}",
        stderr(&ok)
    );

    std::fs::write(
        d.path().join("bg.yaml"),
        RECIPE.replace("echo ${{build.arch}}", "./daemon & echo"),
    )
    .unwrap();
    let warn = melange2(&["lint-config", "."], d.path());
    assert!(warn.status.success());
    assert!(
        stdout(&warn).contains("warning[background-process]"),
        "{}",
        stdout(&warn)
    );
    let strict = melange2(&["lint-config", "--strict", "."], d.path());
    assert!(!strict.status.success());

    std::fs::write(&f, RECIPE.replace("      expected-sha256: cf04af86dc085268c5f4470fbae49b18afbc221b78096aab842d934a76bad0ab\n", "")).unwrap();
    let bad = melange2(&["lint-config", "--json", "hello.yaml"], d.path());
    assert!(!bad.status.success());
    let first: serde_json::Value =
        serde_json::from_str(stdout(&bad).lines().next().unwrap()).unwrap();
    assert_eq!(first["rule"], "missing-checksum");
    assert_eq!(first["severity"], "error");
}

/// melange loads a file whose version is not an APK version and fails only when it
/// builds it: `compile`, `query` and `package-version` accept such a file, `build`
/// refuses it, naming the file and the version (before contacting any daemon).
#[test]
fn build_only_versions_compile_and_query_but_do_not_build() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("odd.yaml"),
        "package:\n  name: odd\n  version: 2024.01.01-beta\n  epoch: 3\npipeline:\n  - runs: echo ${{package.version}}\n",
    )
    .unwrap();
    let c = melange2(&["compile", "odd.yaml", "--arch", "x86_64"], d.path());
    assert!(c.status.success(), "{}", stderr(&c));
    let v: serde_json::Value = serde_json::from_str(&stdout(&c)).unwrap();
    assert_eq!(v["package"]["full_version"], "2024.01.01-beta-r3");
    assert_eq!(v["pipeline"][0]["runs"], "echo 2024.01.01-beta");

    let q = melange2(&["query", "odd.yaml", "{{ .Package.Version }}"], d.path());
    assert!(q.status.success(), "{}", stderr(&q));
    assert_eq!(stdout(&q), "2024.01.01-beta\n");
    let pv = melange2(&["package-version", "odd.yaml"], d.path());
    assert_eq!(stdout(&pv), "odd-2024.01.01-beta-r3\n", "{}", stderr(&pv));

    let b = Command::new(env!("CARGO_BIN_EXE_melange2"))
        .args(["build", "--dry-run", "--arch", "x86_64", "odd.yaml"])
        .env("BUILDKIT_HOST", "unix:///nonexistent/melange2-test.sock")
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(!b.status.success());
    let e = stderr(&b);
    assert!(
        e.contains("odd.yaml:3:12: package.version: invalid version \"2024.01.01-beta\""),
        "{e}"
    );
    assert!(e.contains("not built"), "{e}");
}

/// Every problem of a file is printed, one per line, each with file:line:column.
#[test]
fn compile_reports_every_problem() {
    let (d, f) = setup();
    std::fs::write(
        &f,
        RECIPE
            .replace("  epoch: 1", "  epcho: 1")
            .replace("  - runs: echo", "  - rnus: echo"),
    )
    .unwrap();
    let o = melange2(&["compile", "hello.yaml", "--arch", "x86_64"], d.path());
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("hello.yaml:4:3: package.epcho: unknown key"),
        "{e}"
    );
    assert!(
        e.contains("\nhello.yaml:13:5: pipeline[1].rnus: unknown key \"rnus\""),
        "{e}"
    );
}

/// Unknown keys of a pipeline file are notes: reported once, never a failure.
#[test]
fn lint_config_notes_unknown_pipeline_keys_without_failing() {
    let (d, _) = setup();
    std::fs::create_dir_all(d.path().join("pipelines/my")).unwrap();
    std::fs::write(
        d.path().join("pipelines/my/step.yaml"),
        "name: My step\ndescription: what it does\npipeline:\n  - runs: echo my\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.path().join("recipes")).unwrap();
    std::fs::write(
        d.path().join("recipes/uses-my.yaml"),
        RECIPE.replace(
            "  - runs: echo ${{build.arch}} ${{vars.greeting}}",
            "  - uses: my/step\n  - runs: echo ${{vars.greeting}}",
        ),
    )
    .unwrap();
    let o = melange2(
        &[
            "lint-config",
            "--strict",
            "--pipeline-dir",
            "pipelines",
            "recipes",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("pipelines/my/step.yaml:2:1: note[pipeline-unknown-key]: description: unknown key \"description\" ignored"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("1 files checked: 0 errors, 0 warnings, 1 note"),
        "{}",
        stderr(&o)
    );
    let c = melange2(
        &[
            "compile",
            "recipes/uses-my.yaml",
            "--pipeline-dir",
            "pipelines",
            "--arch",
            "x86_64",
        ],
        d.path(),
    );
    assert!(c.status.success(), "{}", stderr(&c));
}
