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
