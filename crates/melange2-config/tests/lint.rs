//! `lint-config` rules and speed-independent behaviour.

use std::path::PathBuf;

use melange2_config::PipelineRegistry;
use melange2_config::lint::{Severity, lint_files, lint_text};

const BAD: &str = r#"package:
  name: lintme
  version: "1.0"
  epoch: 0
vars:
  used: a
  unused: b
var-transforms:
  - from: ${{package.version}}
    match: \.
    replace: _
    to: never-read
environment:
  contents:
    packages: [busybox]
pipeline:
  - uses: fetch
    with:
      uri: https://example.com/lintme-${{vars.used}}.tar.gz
  - uses: git-checkout
    with:
      repository: https://example.com/lintme.git
      tag: v1
  - runs: |
      ./server &
      ./quiet > /tmp/log 2>&1 &
      make && make check
"#;

#[test]
fn rules_fire_with_positions() {
    let reg = PipelineRegistry::new(Vec::new());
    let f = lint_text("lintme.yaml", BAD, &reg);
    let show: Vec<String> = f.iter().map(ToString::to_string).collect();
    let has = |rule: &str, line: usize, sev: Severity| {
        f.iter()
            .any(|x| x.rule == rule && x.line == line && x.severity == sev)
    };
    assert!(has("unused-var", 7, Severity::Warning), "{show:#?}");
    assert!(has("unused-var", 12, Severity::Warning), "{show:#?}");
    assert!(has("missing-checksum", 17, Severity::Error), "{show:#?}");
    assert!(has("missing-checksum", 20, Severity::Warning), "{show:#?}");
    assert!(
        has("background-process", 25, Severity::Warning),
        "{show:#?}"
    );
    // Only the unredirected background job is reported, and `vars.used` is not.
    assert_eq!(
        f.iter().filter(|x| x.rule == "background-process").count(),
        1,
        "{show:#?}"
    );
    assert!(
        !f.iter().any(|x| x.message.contains("\"used\"")),
        "{show:#?}"
    );
    // fetch without a checksum also fails compilation? No: the checksum inputs are optional
    // to the compiler, so the compile rule stays silent.
    assert!(!f.iter().any(|x| x.rule == "compile"), "{show:#?}");
}

#[test]
fn unknown_keys_are_parse_errors_with_suggestion() {
    let reg = PipelineRegistry::new(Vec::new());
    let f = lint_text(
        "typo.yaml",
        "package:\n  name: t\n  version: \"1\"\n  epcho: 0\n",
        &reg,
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "parse");
    assert_eq!((f[0].line, f[0].column), (4, 3));
    assert!(f[0].message.contains("did you mean \"epoch\""), "{}", f[0]);
}

#[test]
fn clean_file_has_no_findings() {
    let reg = PipelineRegistry::new(Vec::new());
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/hello.yaml"),
    )
    .unwrap();
    assert!(lint_text("hello.yaml", &text, &reg).is_empty());
}

#[test]
fn directories_are_expanded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..50 {
        let body = if i % 10 == 0 {
            "package:\n  name: x\n  version: \"1\"\n  epoch: 0\n  bogus: 1\n".to_string()
        } else {
            format!(
                "package:\n  name: p{i}\n  version: \"1\"\n  epoch: 0\npipeline:\n  - runs: echo {i}\n"
            )
        };
        std::fs::write(dir.path().join(format!("p{i:02}.yaml")), body).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
    let reg = PipelineRegistry::new(Vec::new());
    let r = lint_files(&[dir.path().to_path_buf()], &reg);
    assert_eq!(r.files, 50);
    assert_eq!(r.errors(), 5);
    assert_eq!(r.warnings(), 0);
    // Findings come in file order.
    let files: Vec<&str> = r.findings.iter().map(|f| f.file.as_str()).collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
}

fn write(dir: &std::path::Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

const HEAD: &str = "package:\n  name: t\n  version: \"1\"\n  epoch: 0\n";

/// Here-document bodies are data, and an `&` that is not a background operator (`&&`,
/// `2>&1`, `&>`, `&card`) is no background job; `cmd &` and `cmd & other` are.
#[test]
fn background_process_ignores_heredocs_and_other_ampersands() {
    let reg = PipelineRegistry::new(Vec::new());
    let text = format!(
        "{HEAD}pipeline:\n  - runs: |\n      cat > card.c <<'EOF'\n      #include \"card.h\"\n      int main(void) {{ struct card c; return use(&card) & 1; }}\n      EOF\n      make && make check\n      make check 2>&1 | tee log\n      ./a.out &> run.log\n      ./server &\n      ./worker & echo started\n"
    );
    let f = lint_text("bg.yaml", &text, &reg);
    let bg: Vec<(usize, usize)> = f
        .iter()
        .filter(|x| x.rule == "background-process")
        .map(|x| (x.line, x.column))
        .collect();
    // lines 14 and 15 of the file: `./server &` and `./worker & echo started`
    assert_eq!(bg, [(14, 1), (15, 1)], "{f:#?}");
    assert!(f.iter().all(|x| x.severity == Severity::Warning), "{f:#?}");
}

/// Every problem of a build file is a finding of its own, at its own position.
#[test]
fn every_parse_problem_is_a_finding() {
    let reg = PipelineRegistry::new(Vec::new());
    let f = lint_text(
        "many.yaml",
        "package:\n  name: many\n  version: \"1\"\n  epcho: 0\npipeline:\n  - nmae: x\n  - runs: make\n    with:\n      a: b\nsubpackages:\n  - name: many\n",
        &reg,
    );
    let parse: Vec<(usize, usize)> = f
        .iter()
        .filter(|x| x.rule == "parse")
        .map(|x| (x.line, x.column))
        .collect();
    assert_eq!(parse, [(4, 3), (6, 5), (8, 5), (11, 11)], "{f:#?}");
}

/// A pipeline file's unknown keys are skipped (melange ignores them) and noted once, at
/// the key in the pipeline file; a note never counts as an error or a warning.
#[test]
fn unknown_keys_in_pipeline_files_are_notes() {
    let d = tempfile::tempdir().unwrap();
    let pdir = d.path().join("pipelines");
    let pfile = write(
        &pdir,
        "foo/bar.yaml",
        "name: Bar\ndescription: Does bar\npipeline:\n  - runs: echo bar\n    description: the step\n",
    );
    let a = write(
        d.path(),
        "a.yaml",
        &format!("{HEAD}pipeline:\n  - uses: foo/bar\n"),
    );
    let b = write(
        d.path(),
        "b.yaml",
        &format!("{HEAD}subpackages:\n  - name: t-sub\n    pipeline:\n      - uses: foo/bar\n"),
    );
    let reg = PipelineRegistry::new(vec![pdir.clone()]);
    let f = lint_text("a.yaml", &std::fs::read_to_string(&a).unwrap(), &reg);
    let notes: Vec<(String, usize, usize, serde_json::Value)> = f
        .iter()
        .map(|x| {
            (
                x.file.clone(),
                x.line,
                x.column,
                serde_json::to_value(x).unwrap()["severity"].clone(),
            )
        })
        .collect();
    let pf = pfile.display().to_string();
    assert_eq!(
        notes,
        [
            (pf.clone(), 2, 1, "note".into()),
            (pf.clone(), 5, 5, "note".into())
        ],
        "{f:#?}"
    );
    assert!(f.iter().all(|x| x.rule == "pipeline-unknown-key"), "{f:#?}");
    assert!(f[0].message.contains("\"description\""), "{}", f[0]);

    let r = lint_files(&[a, b], &PipelineRegistry::new(vec![pdir]));
    assert_eq!((r.errors(), r.warnings()), (0, 0), "{:#?}", r.findings);
    // noted once for the two build files that use it
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);
}

/// A problem inside a pipeline file is reported against the build file's step that uses
/// it, with the pipeline file's position in the message.
#[test]
fn pipeline_file_errors_are_reported_against_the_recipe() {
    let d = tempfile::tempdir().unwrap();
    let pdir = d.path().join("pipelines");
    let pfile = write(
        &pdir,
        "foo/bar.yaml",
        "inputs:\n  x:\n    description: x\npipeline:\n  - runs: echo ${{inputs.x}}\n  - runs: echo ${{vars.missing}}\n",
    );
    let reg = PipelineRegistry::new(vec![pdir]);
    let f = lint_text(
        "recipe.yaml",
        &format!("{HEAD}pipeline:\n  - runs: make\n  - uses: foo/bar\n"),
        &reg,
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].file.as_str(), f[0].line, f[0].column, f[0].rule),
        ("recipe.yaml", 7, 11, "compile")
    );
    assert_eq!(
        f[0].message,
        format!(
            "pipeline[1]: uses: foo/bar: {}:6:11: pipeline[1].runs: variable \"${{{{vars.missing}}}}\" is not defined",
            pfile.display()
        )
    );
}

/// A version melange only refuses when building is its own finding.
#[test]
fn build_only_version_problems() {
    let reg = PipelineRegistry::new(Vec::new());
    let f = lint_text(
        "v.yaml",
        "package:\n  name: v\n  version: 1.0-beta\n  epoch: 0\n",
        &reg,
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!((f[0].rule, f[0].line, f[0].column), ("version", 3, 12));
    assert_eq!(f[0].severity, Severity::Error);
}
