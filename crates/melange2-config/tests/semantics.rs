//! Focused semantic tests of the public API: pipeline files, input resolution, errors in
//! pipeline files, plan stability, scripts and queries.

use std::path::Path;

use melange2_config::plan::exec_steps;
use melange2_config::{
    Arch, CompileOptions, ParseOptions, PipelineRegistry, Plan, compile, parse_str, query,
};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn plan_with(dir: &Path, recipe: &str) -> Result<Plan, melange2_config::Error> {
    let reg = PipelineRegistry::new(vec![dir.to_path_buf()]);
    let cfg = parse_str("recipe.yaml", recipe, &ParseOptions::default())?;
    compile(&cfg, &reg, &CompileOptions::new(Arch::X86_64))
}

const HEAD: &str = "package:\n  name: t\n  version: \"1\"\n  epoch: 0\n";

#[test]
fn forwarding_and_inputs_referencing_inputs() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "outer.yaml",
        "inputs:\n  x:\n    description: x\n    default: outer-default\n  y:\n    description: y\n    default: ${{inputs.x}}-y\npipeline:\n  - uses: inner\n    with:\n      x: ${{inputs.x}}\n",
    );
    write(
        d.path(),
        "inner.yaml",
        "inputs:\n  x:\n    description: x\n    required: true\npipeline:\n  - runs: echo ${{inputs.x}} ${{inputs.y}}\n",
    );
    let p = plan_with(
        d.path(),
        &format!("{HEAD}pipeline:\n  - uses: outer\n    with:\n      x: given\n"),
    )
    .unwrap();
    let outer = &p.pipeline[0];
    assert_eq!(outer.with["x"], "given");
    assert_eq!(outer.with["y"], "given-y");
    let inner = &outer.pipeline[0];
    assert_eq!(inner.with["x"], "given");
    // The inner pipeline still sees the outer scope's other inputs.
    assert_eq!(
        inner.pipeline[0].runs.as_deref(),
        Some("echo given given-y")
    );
}

/// A problem inside a pipeline file is reported at the build file's step that uses it,
/// with the pipeline file's own position as the cause.
#[test]
fn errors_inside_pipeline_files_name_the_recipe_and_that_file() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "broken.yaml",
        "inputs:\n  a:\n    description: a\npipeline:\n  - runs: |\n      echo ${{inputs.a}}\n      echo ${{vars.nope}}\n",
    );
    let e = plan_with(
        d.path(),
        &format!("{HEAD}pipeline:\n  - runs: one\n  - uses: broken\n"),
    )
    .unwrap_err()
    .to_string();
    let file = d.path().join("broken.yaml").display().to_string();
    assert_eq!(
        e,
        format!(
            "recipe.yaml:7:11: pipeline[1]: uses: broken: {file}:6:7: pipeline[0].runs: variable \"${{{{vars.nope}}}}\" is not defined"
        )
    );

    // A pipeline file that does not decode (a wrong type), used from a subpackage.
    write(
        d.path(),
        "nested/badtype.yaml",
        "inputs:\n  a:\n    description: a\n    default: [1, 2]\n",
    );
    let e = plan_with(
        d.path(),
        &format!(
            "{HEAD}subpackages:\n  - name: t-sub\n    pipeline:\n      - uses: nested/badtype\n"
        ),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        format!(
            "recipe.yaml:8:15: subpackages[0].pipeline[0]: uses: nested/badtype: {}:4:14: inputs.a.default: invalid type: sequence, expected a string",
            d.path().join("nested/badtype.yaml").display()
        )
    );

    // Through a pipeline that uses another one: the recipe's step, then the innermost
    // file where the problem is.
    write(
        d.path(),
        "baddefault.yaml",
        "inputs:\n  a:\n    description: a\n    default: ${{build.nope}}\npipeline:\n  - runs: echo ${{inputs.a}}\n",
    );
    write(d.path(), "outer.yaml", "pipeline:\n  - uses: baddefault\n");
    let e = plan_with(d.path(), &format!("{HEAD}pipeline:\n  - uses: outer\n"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "recipe.yaml:6:11: pipeline[0]: uses: outer: {}:4:14: inputs.a.default: variable \"${{{{build.nope}}}}\" is not defined",
            d.path().join("baddefault.yaml").display()
        )
    );

    // Problems of the step itself stay where they are.
    let e = plan_with(
        d.path(),
        &format!("{HEAD}pipeline:\n  - uses: outer\n    with:\n      nope: 1\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("recipe.yaml:8:7: pipeline[0].with.nope: undefined input \"nope\""),
        "{e}"
    );
}

/// melange decodes pipeline files leniently: keys it does not know (`description:` at the
/// top and on steps, as distributions write them) are ignored. Build files stay strict.
#[test]
fn pipeline_files_ignore_unknown_keys() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "foo/bar.yaml",
        "name: Bar\ndescription: Does bar things\ninputs:\n  x:\n    description: x\n    default: dx\n    type: string\nneeds:\n  packages: [busybox]\n  capabilities: [CAP_NET_ADMIN]\npipeline:\n  - name: step one\n    description: the first step\n    runs: echo ${{inputs.x}}\n    pipeline:\n      - runs: echo nested\n        comment: nested key\n",
    );
    let p = plan_with(d.path(), &format!("{HEAD}pipeline:\n  - uses: foo/bar\n")).unwrap();
    let step = &p.pipeline[0];
    assert_eq!(step.with["x"], "dx");
    assert_eq!(step.needs, ["busybox"]);
    assert_eq!(step.pipeline[0].runs.as_deref(), Some("echo dx"));
    assert_eq!(
        step.pipeline[0].pipeline[0].runs.as_deref(),
        Some("echo nested")
    );

    // The same keys in a build file are still errors.
    let e = plan_with(
        d.path(),
        &format!("{HEAD}pipeline:\n  - uses: foo/bar\n    description: nope\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("recipe.yaml:7:5: pipeline[0].description: unknown key \"description\""),
        "{e}"
    );
}

#[test]
fn uses_cycles_are_reported() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.yaml", "pipeline:\n  - uses: b\n");
    write(d.path(), "b.yaml", "pipeline:\n  - uses: a\n");
    let e = plan_with(d.path(), &format!("{HEAD}pipeline:\n  - uses: a\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested too deeply"), "{e}");
}

#[test]
fn pipeline_dirs_are_searched_in_order_before_builtins() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    write(d1.path(), "fetch.yaml", "pipeline:\n  - runs: echo first\n");
    write(
        d2.path(),
        "fetch.yaml",
        "pipeline:\n  - runs: echo second\n",
    );
    write(d2.path(), "only2.yaml", "pipeline:\n  - runs: echo only2\n");
    let reg = PipelineRegistry::new(vec![d1.path().to_path_buf(), d2.path().to_path_buf()]);
    let cfg = parse_str(
        "r.yaml",
        &format!("{HEAD}pipeline:\n  - uses: fetch\n  - uses: only2\n  - uses: strip\n"),
        &ParseOptions::default(),
    )
    .unwrap();
    let p = compile(&cfg, &reg, &CompileOptions::new(Arch::X86_64)).unwrap();
    let runs: Vec<&str> = exec_steps(&p.pipeline)
        .iter()
        .filter_map(|s| s.step.runs.as_deref())
        .collect();
    assert_eq!(&runs[..2], &["echo first", "echo only2"]);
    assert_eq!(
        p.pipeline[2].uses_origin.as_deref(),
        Some("builtin:pipelines/strip.yaml")
    );
}

#[test]
fn plans_are_stable_and_round_trip() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/range-subpackages.yaml"),
    )
    .unwrap();
    let reg = PipelineRegistry::new(Vec::new());
    let cfg = parse_str("r.yaml", &text, &ParseOptions::default()).unwrap();
    let a = compile(&cfg, &reg, &CompileOptions::new(Arch::Aarch64)).unwrap();
    let b = compile(&cfg, &reg, &CompileOptions::new(Arch::Aarch64)).unwrap();
    assert_eq!(a.to_json(), b.to_json());
    let back: Plan = serde_json::from_str(&a.to_json()).unwrap();
    assert_eq!(back, a);
    assert_eq!(a.package_names()[0], "py3-requests");
}

#[test]
fn step_script_wraps_runs_like_melange() {
    let d = tempfile::tempdir().unwrap();
    let p = plan_with(
        d.path(),
        &format!("{HEAD}pipeline:\n  - working-directory: it's\n    runs: make\n"),
    )
    .unwrap();
    let s = &p.pipeline[0];
    assert_eq!(s.workdir, "/home/build/it's");
    assert_eq!(
        s.script(false),
        "set -e\n[ -d '/home/build/it'\\''s' ] || mkdir -p '/home/build/it'\\''s'\ncd '/home/build/it'\\''s'\nmake\nexit 0"
    );
    assert!(s.script(true).starts_with("set -ex\n"));
    assert_eq!(s.env["PATH"], melange2_config::plan::STEP_PATH);
}

#[test]
fn query_templates() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/package-fields.yaml"),
    )
    .unwrap();
    let cfg = parse_str("q.yaml", &text, &ParseOptions::default()).unwrap();
    assert_eq!(
        query(
            &cfg,
            "{{ .Package.Name }}-{{ .Package.Version }}-r{{ .Package.Epoch }}"
        )
        .unwrap(),
        "fullpkg-1.4.2-r3"
    );
    assert_eq!(
        query(&cfg, "{{ .Package.TargetArchitecture }}").unwrap(),
        "[x86_64 arm64]"
    );
    assert_eq!(
        query(
            &cfg,
            "{{- range .Package.Copyright }}{{ .License }};{{ end -}}"
        )
        .unwrap(),
        "Apache-2.0;LicenseRef-custom;"
    );
    assert_eq!(query(&cfg, "{{ .Package.Missing }}").unwrap(), "");
    assert!(query(&cfg, "{{ range .Package.Copyright }}").is_err());
}

#[test]
fn build_option_unknown_and_vars_override() {
    let d = tempfile::tempdir().unwrap();
    let recipe = format!(
        "{HEAD}vars:\n  v: base\noptions:\n  alt:\n    vars:\n      v: alt\npipeline:\n  - runs: echo ${{{{vars.v}}}}\n"
    );
    let reg = PipelineRegistry::new(vec![d.path().to_path_buf()]);
    let cfg = parse_str("o.yaml", &recipe, &ParseOptions::default()).unwrap();
    let mut co = CompileOptions::new(Arch::X86_64);
    co.build_options = vec!["alt".into()];
    let p = compile(&cfg, &reg, &co).unwrap();
    assert_eq!(p.pipeline[0].runs.as_deref(), Some("echo alt"));
    assert_eq!(p.build_options, vec!["alt".to_string()]);
    co.build_options = vec!["alternative".into()];
    let e = compile(&cfg, &reg, &co).unwrap_err().to_string();
    assert!(
        e.contains("build option \"alternative\" is not defined"),
        "{e}"
    );
}

/// The `xcover/*` pipelines declare melange's inputs (`package` everywhere, `wait-timeout`
/// for profile and wait, an optional `min-coverage` for ensure) and need the package named
/// by `package` (stop, like upstream, only busybox: profile installs xcover).
#[test]
fn xcover_pipelines_take_upstream_inputs() {
    let inputs = |name: &str| -> Vec<(String, bool)> {
        let text = melange2_config::pipelines::builtin(name).unwrap();
        let def: melange2_config::model::Pipeline = serde_norway::from_str(text).unwrap();
        def.inputs
            .iter()
            .map(|(k, i)| (k.clone(), i.required))
            .collect()
    };
    let opt = |k: &str| (k.to_string(), false);
    assert_eq!(
        inputs("xcover/profile"),
        [
            opt("exclude-functions"),
            ("executable-path".to_string(), true),
            opt("include-functions"),
            opt("log-level"),
            opt("package"),
            opt("scope"),
            opt("verbose"),
            opt("wait-timeout"),
        ]
    );
    assert_eq!(inputs("xcover/wait"), [opt("package"), opt("wait-timeout")]);
    assert_eq!(inputs("xcover/status"), [opt("package")]);
    assert_eq!(inputs("xcover/stop"), [opt("package")]);
    assert_eq!(
        inputs("xcover/ensure"),
        [opt("min-coverage"), opt("package")]
    );

    let d = tempfile::tempdir().unwrap();
    let p = plan_with(
        d.path(),
        &format!(
            "{HEAD}test:\n  pipeline:\n    - uses: xcover/profile\n      with:\n        executable-path: /usr/bin/t\n        package: xcover-nightly\n        wait-timeout: 5\n    - uses: xcover/wait\n      with:\n        package: xcover-nightly\n        wait-timeout: 7\n    - runs: t --selftest\n    - uses: xcover/status\n      with:\n        package: xcover-nightly\n    - uses: xcover/stop\n    - uses: xcover/ensure\n      with:\n        package: xcover-nightly\n    - uses: xcover/ensure\n      with:\n        min-coverage: 62.5\n"
        ),
    )
    .unwrap();
    let t = p.test.unwrap();
    let steps = &t.pipeline;
    assert_eq!(steps[0].needs, ["busybox", "xcover-nightly"]);
    assert_eq!(steps[0].with["wait-timeout"], "5");
    assert!(
        steps[0].pipeline[0]
            .runs
            .as_deref()
            .unwrap()
            .contains("xcover wait --timeout '5s'")
    );
    assert_eq!(steps[1].needs, ["busybox", "xcover-nightly"]);
    assert!(
        steps[1].pipeline[0]
            .runs
            .as_deref()
            .unwrap()
            .contains("xcover wait --timeout '7s'")
    );
    assert_eq!(steps[3].needs, ["busybox", "xcover-nightly"]);
    assert_eq!(steps[4].needs, ["busybox"]);
    assert_eq!(steps[5].needs, ["busybox", "jq", "xcover-nightly"]);
    assert_eq!(steps[5].with["min-coverage"], "");
    assert_eq!(steps[6].needs, ["busybox", "jq", "xcover"]);
    assert_eq!(steps[6].with["min-coverage"], "62.5");
    assert!(
        t.environment
            .packages
            .contains(&"xcover-nightly".to_string())
    );
}
