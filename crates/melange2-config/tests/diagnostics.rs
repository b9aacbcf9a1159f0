//! Error reporting: every problem of a build file at once, positions of missing fields,
//! and versions melange accepts when loading a file but refuses when building it.

use melange2_config::{
    Arch, CompileOptions, ParseOptions, PipelineRegistry, Strictness, compile, parse_str, query,
};

const MULTI: &str = r#"package:
  name: multi
  version: "1.0"
  epoch: latest
  descripton: typo
  dependencies:
    provider-priority: x
environment:
  contents:
    pakages: [busybox]
pipeline:
  - runs: echo one
    with:
      a: b
  - nmae: typo
    runs: echo two
  - just a string
subpackages:
  - name: "bad name!"
  - name: multi-ranged
    range: nope
  - name: multi-doc
    dependencies:
      runtime: [ok, [not, a, string]]
vars:
  v: [1]
update:
  enabled: maybe
"#;

/// Unknown keys, wrong types and bad values of one file are all reported, each with its
/// own file:line:column, in file order.
#[test]
fn every_problem_of_a_build_file_is_reported() {
    let e = parse_str("multi.yaml", MULTI, &ParseOptions::default()).unwrap_err();
    let lines: Vec<String> = e.to_string().lines().map(str::to_string).collect();
    let want = [
        r#"multi.yaml:4:10: package.epoch: invalid type: string "latest", expected u64"#,
        r#"multi.yaml:5:3: package.descripton: unknown key "descripton" (valid keys: name, version, epoch, description, url, commit, target-architecture, copyright, dependencies, options, scriptlets, checks, cpe, setcap, timeout, resources, test-resources, annotations) (did you mean "description"?)"#,
        r#"multi.yaml:7:24: package.dependencies.provider-priority: provider-priority "x" is not an integer"#,
        r#"multi.yaml:10:5: environment.contents.pakages: unknown key "pakages" (valid keys: repositories, build_repositories, runtime_repositories, keyring, runtime_keyring, packages, baseimage) (did you mean "packages"?)"#,
        r#"multi.yaml:13:5: pipeline[0].with: `with` is only valid together with `uses`"#,
        r#"multi.yaml:15:5: pipeline[1].nmae: unknown key "nmae" (valid keys: name, uses, with, runs, pipeline, inputs, needs, label, if, assertions, working-directory, environment, retry) (did you mean "name"?)"#,
        r#"multi.yaml:17:5: pipeline[2]: invalid type: string "just a string", expected struct Pipeline"#,
        r#"multi.yaml:19:11: subpackages[0].name: invalid subpackage name "bad name!" (must match ^[a-zA-Z\d][a-zA-Z\d+_.-]*$)"#,
        r#"multi.yaml:21:12: subpackages[1].range: range "nope" is not defined in `data`"#,
        r#"multi.yaml:24:21: subpackages[2].dependencies.runtime[1]: invalid type: sequence, expected a string"#,
        r#"multi.yaml:26:6: vars.v: invalid type: sequence, expected a string"#,
        r#"multi.yaml:28:3: update: invalid boolean "maybe" (use true or false)"#,
    ];
    assert_eq!(lines, want, "\n{e}");
    // The same, one diagnostic each.
    assert_eq!(e.diagnostics().len(), want.len());
    assert_eq!(e.diagnostic().unwrap().line, 4);
}

/// Checks that follow decoding do not complain about what could not be decoded: a `name`
/// of the wrong type is one error, not also "name is required".
#[test]
fn undecodable_values_are_reported_once() {
    let e = parse_str(
        "t.yaml",
        "package:\n  name: [a, b]\n  version: '1'\n  epoch: 0\n  bogus: 1\n",
        &ParseOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e.lines().collect::<Vec<_>>(),
        [
            "t.yaml:2:9: package.name: invalid type: sequence, expected a string",
            "t.yaml:5:3: package.bogus: unknown key \"bogus\" (valid keys: name, version, epoch, description, url, commit, target-architecture, copyright, dependencies, options, scriptlets, checks, cpe, setcap, timeout, resources, test-resources, annotations)",
        ]
    );
}

/// Problems found while compiling are all reported too: every step is compiled.
#[test]
fn every_compile_problem_is_reported() {
    let text = "package:\n  name: c\n  version: '1'\n  epoch: 0\npipeline:\n  - uses: fetch\n    with:\n      uri: https://example.invalid/c.tar.gz\n      expected-sha256: abc\n  - runs: echo ${{vars.nope}}\n  - uses: no/such/pipeline\n";
    let cfg = parse_str("c.yaml", text, &ParseOptions::default()).unwrap();
    let e = compile(
        &cfg,
        &PipelineRegistry::new(Vec::new()),
        &CompileOptions::new(Arch::X86_64),
    )
    .unwrap_err();
    let lines: Vec<&str> = e.diagnostics().iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        lines,
        [
            "pipeline[0].with.expected-sha256",
            "pipeline[1].runs",
            "pipeline[2].uses"
        ],
        "{e}"
    );
}

/// A missing or null `package.name` (or version) points at its own line: the `name:` key
/// when it is written, else the `package:` mapping; never 1:1 when there is a package.
#[test]
fn missing_or_null_package_fields_point_at_their_line() {
    let pos = |text: &str| -> Vec<(usize, usize, String)> {
        parse_str("m.yaml", text, &ParseOptions::default())
            .unwrap_err()
            .diagnostics()
            .iter()
            .map(|d| (d.line, d.column, d.path.clone()))
            .collect()
    };
    let name = "package.name".to_string();
    // null name: at the key
    assert_eq!(
        pos("# comment\npackage:\n  name:\n  version: '1'\n  epoch: 0\n"),
        [(3, 3, name.clone())]
    );
    assert_eq!(
        pos("package:\n  name: ~\n  version: '1'\n"),
        [(2, 3, name.clone())]
    );
    // missing name: at the package mapping (its first key)
    assert_eq!(
        pos("package:\n  version: '1'\n  epoch: 0\n"),
        [(2, 3, name.clone())]
    );
    // both missing or null: one error each
    assert_eq!(
        pos("package:\n  epoch: 0\n  version: null\n"),
        [(2, 3, name), (3, 3, "package.version".to_string())]
    );
    let e = parse_str("m.yaml", "package:\n  name:\n", &ParseOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("m.yaml:2:3: package.name: is missing or null"),
        "{e}"
    );
}

/// melange checks `package.version` only when it builds ("unable to parse version"): such
/// files load, compile and answer queries as melange's do, and the build refuses them.
#[test]
fn versions_refused_only_when_building() {
    let reg = PipelineRegistry::new(Vec::new());
    for v in [
        "1.0-foo",
        "v1.2",
        "1.2.3+git",
        "2024.01.01-beta",
        "1.0-r1",
        "1.0_p1_rc1",
    ] {
        let text = format!(
            "package:\n  name: vv\n  version: {v}\n  epoch: 2\npipeline:\n  - runs: echo ${{{{package.version}}}}\n"
        );
        let cfg = parse_str("vv.yaml", &text, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(query(&cfg, "{{ .Package.Version }}").unwrap(), v);

        // the build's compile (the default) refuses, naming the file and the version
        let e = compile(&cfg, &reg, &CompileOptions::new(Arch::X86_64))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "vv.yaml:3:12: package.version: invalid version {v:?}"
            )),
            "{v}: {e}"
        );

        // `compile` as melange loads files accepts it
        let mut co = CompileOptions::new(Arch::X86_64);
        co.strictness = Strictness::Load;
        let p = compile(&cfg, &reg, &co).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(p.package.full_version, format!("{v}-r2"));
        assert_eq!(
            p.pipeline[0].runs.as_deref(),
            Some(format!("echo {v}").as_str())
        );
    }
    // an empty version is refused when loading, as melange does
    let e = parse_str(
        "vv.yaml",
        "package:\n  name: vv\n  version: ''\n",
        &ParseOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("package.version: is missing or null"), "{e}");
}
