//! `melange2 compile` on hostile and odd build files, through the real binary
//! (docs/config.md, "Limits"): every case fails fast with one clear message naming the
//! file, line and field, inside a 1 GiB address space and a time bound; and the `if:`
//! conditions that decide what a plan holds.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Address space the compiler runs in: the hostile files used to take gigabytes.
const MEMORY_KIB: u64 = 1 << 20;
/// Wall time any case may take (a debug binary on a busy machine; the quadratic paths took
/// minutes, the unbounded ones ran until memory ran out).
const TIME: Duration = Duration::from_secs(60);

/// Run `melange2 compile FILE ARGS…` in `dir` under [`MEMORY_KIB`] of address space; the
/// output and how long it took.
fn compile_with(dir: &Path, file: &str, args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_KIB} && exec timeout {} \"$0\" compile \"$@\"",
            TIME.as_secs() + 5
        ))
        .arg(env!("CARGO_BIN_EXE_melange2"))
        .arg(file)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run melange2");
    (out, start.elapsed())
}

fn compile(dir: &Path, file: &str) -> (Output, Duration) {
    compile_with(dir, file, &[])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Compile `file`, expect exit status 1 within [`TIME`] and return stderr, which must be
/// one `Error:` line (no message repeated by its cause).
fn refused(dir: &Path, file: &str) -> String {
    let (o, took) = compile(dir, file);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{file}: {:?}: {err}", o.status);
    assert!(took < TIME, "{file}: took {took:?}: {err}");
    assert!(err.starts_with("Error: "), "{file}: {err}");
    assert_eq!(err.lines().count(), 1, "{file}: {err}");
    err
}

/// Compile `file`, expect success within [`TIME`] and return the plan.
fn compiled(dir: &Path, file: &str) -> serde_json::Value {
    let (o, took) = compile(dir, file);
    assert!(o.status.success(), "{file}: {}", stderr(&o));
    assert!(took < TIME, "{file}: took {took:?}");
    serde_json::from_slice(&o.stdout).expect("plan JSON")
}

const HEAD: &str = "package:\n  name: x\n  version: \"1\"\n  epoch: 0\n";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

#[test]
fn variables_that_double_stop_at_the_value_limit() {
    let d = tempfile::tempdir().unwrap();
    // v39 would be 16 B × 2^39 = 8 TiB; v18 is the first over 4 MiB.
    let mut f = format!(
        "{HEAD}pipeline:\n  - runs: echo ${{{{vars.v39}}}}\nvars:\n  v0: aaaaaaaaaaaaaaaa\n"
    );
    for i in 1..=39 {
        f.push_str(&format!(
            "  v{i}: ${{{{vars.v{}}}}}${{{{vars.v{}}}}}\n",
            i - 1,
            i - 1
        ));
    }
    write(d.path(), "double.yaml", &f);
    let err = refused(d.path(), "double.yaml");
    assert!(
        err.contains("double.yaml:")
            && err.contains(": vars.v")
            && err.contains("larger than 4 MiB"),
        "{err}"
    );
}

#[test]
fn a_var_transform_that_multiplies_stops_at_the_value_limit() {
    // An empty match at each of 2 MB positions, each replaced by 5000 bytes: 10 GB (this
    // was built before its size was checked).
    let d = tempfile::tempdir().unwrap();
    let f = format!(
        "{HEAD}pipeline:\n  - runs: echo ${{{{vars.out}}}}\nvars:\n  big: \"{}\"\nvar-transforms:\n  - from: ${{{{vars.big}}}}\n    match: \"\"\n    replace: \"{}\"\n    to: out\n",
        "a".repeat(2_000_000),
        "x".repeat(5000)
    );
    write(d.path(), "vt.yaml", &f);
    let err = refused(d.path(), "vt.yaml");
    assert!(
        err.contains(
            "vt.yaml:10:11: var-transforms[0].from: the substituted value is larger than 4 MiB"
        ),
        "{err}"
    );
}

#[test]
fn var_transforms_are_counted() {
    let d = tempfile::tempdir().unwrap();
    let mut f = format!("{HEAD}pipeline:\n  - runs: echo\nvars:\n  a: \"1.2\"\nvar-transforms:\n");
    for i in 0..20_000 {
        f.push_str(&format!(
            "  - from: ${{{{vars.a}}}}\n    match: \"(\\\\d+){i}?\"\n    replace: \"$1\"\n    to: t{i}\n"
        ));
    }
    write(d.path(), "vts.yaml", &f);
    let err = refused(d.path(), "vts.yaml");
    assert_eq!(
        err.trim_end(),
        "Error: vts.yaml:4010:5: var-transforms[1000]: more than 1000 var-transforms (each is a regular expression)"
    );
}

#[test]
fn a_plan_built_from_many_copies_stops_at_the_total_limit() {
    let d = tempfile::tempdir().unwrap();
    // v17 is 2 MiB, under the value limit; 200 steps use it (400 MiB in all).
    let mut f = format!("{HEAD}vars:\n  v0: aaaaaaaaaaaaaaaa\n");
    for i in 1..=17 {
        f.push_str(&format!(
            "  v{i}: ${{{{vars.v{}}}}}${{{{vars.v{}}}}}\n",
            i - 1,
            i - 1
        ));
    }
    f.push_str("pipeline:\n");
    for _ in 0..200 {
        f.push_str("  - runs: ${{vars.v17}}\n");
    }
    write(d.path(), "copies.yaml", &f);
    let err = refused(d.path(), "copies.yaml");
    assert!(
        err.contains("copies.yaml:") && err.contains("more than 256 MiB of text in total"),
        "{err}"
    );
}

#[test]
fn only_regular_files_of_bounded_size_are_read() {
    let d = tempfile::tempdir().unwrap();
    let err = refused(d.path(), "/dev/zero");
    assert_eq!(
        err.trim_end(),
        "Error: /dev/zero: a device, not a regular file (only regular files are read)"
    );

    let fifo = d.path().join("fifo.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let err = refused(d.path(), "fifo.yaml");
    assert!(
        err.contains("fifo.yaml: a FIFO, not a regular file"),
        "{err}"
    );

    let err = refused(d.path(), ".");
    assert!(err.contains(".: a directory, not a regular file"), "{err}");

    // Side files go through the same reader.
    write(d.path(), "ok.yaml", HEAD);
    for flag in ["--vars-file", "--env-file"] {
        let (o, took) = compile_with(d.path(), "ok.yaml", &[flag, "/dev/zero"]);
        assert_eq!(o.status.code(), Some(1), "{flag}");
        assert!(took < TIME, "{flag}: took {took:?}");
        assert_eq!(
            stderr(&o).trim_end(),
            "Error: /dev/zero: a device, not a regular file (only regular files are read)",
            "{flag}"
        );
    }

    // 17 MiB of comments: over the 16 MiB limit, refused before it is read.
    let big = format!("{HEAD}{}", "#".repeat(17 << 20));
    write(d.path(), "big.yaml", &big);
    let err = refused(d.path(), "big.yaml");
    assert_eq!(
        err.trim_end(),
        "Error: big.yaml: larger than the limit of 16 MiB"
    );
}

fn subpackages(n: usize, with_pipeline: bool) -> String {
    let mut f = format!("{HEAD}pipeline:\n  - runs: echo\nsubpackages:\n");
    for i in 0..n {
        f.push_str(&format!("  - name: s{i}\n"));
        if with_pipeline {
            f.push_str(
                "    pipeline:\n      - runs: echo ${{subpkg.name}} ${{targets.subpkgdir}}\n",
            );
        }
    }
    f
}

#[test]
fn subpackages_are_counted_and_compiled_in_linear_time() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "many.yaml", &subpackages(300_000, false));
    let err = refused(d.path(), "many.yaml");
    assert_eq!(
        err.trim_end(),
        "Error: many.yaml:20008:5: subpackages[20000]: more than 20000 subpackages (the limit of a build file)"
    );

    // Just under the limit, each with a step: compiles (10 000 took 40 s when every
    // subpackage copied the whole variable map).
    write(d.path(), "under.yaml", &subpackages(19_000, true));
    let plan = compiled(d.path(), "under.yaml");
    let subs = plan["subpackages"].as_array().expect("subpackages");
    assert_eq!(subs.len(), 19_000);
    assert_eq!(
        subs[18_999]["pipeline"][0]["runs"],
        "echo s18999 /home/build/melange-out/s18999"
    );
}

fn ranged(n: usize) -> String {
    let mut f = format!("{HEAD}pipeline:\n  - runs: echo\ndata:\n  - name: items\n    items:\n");
    for i in 0..n {
        f.push_str(&format!("      k{i}: v{i}\n"));
    }
    f.push_str(
        "subpackages:\n  - range: items\n    name: p-${{range.key}}\n    pipeline:\n      - runs: echo ${{range.value}}\n",
    );
    f
}

#[test]
fn range_expansion_is_counted_and_linear() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "range.yaml", &ranged(100_000));
    let err = refused(d.path(), "range.yaml");
    assert!(
        err.contains("range.yaml:100011:5: subpackages[0]: more than 20000 subpackages (after `range` expansion)"),
        "{err}"
    );
    write(d.path(), "under.yaml", &ranged(19_000));
    let plan = compiled(d.path(), "under.yaml");
    let subs = plan["subpackages"].as_array().expect("subpackages");
    assert_eq!(subs.len(), 19_000);
    let last = subs.iter().find(|s| s["package"]["name"] == "p-k18999");
    let last = last.expect("the last item is expanded");
    assert_eq!(last["pipeline"][0]["runs"], "echo v18999", "{last}");
}

#[test]
fn deep_nesting_fails_at_once_flow_or_block() {
    let d = tempfile::tempdir().unwrap();
    let depth = 100_000;
    write(
        d.path(),
        "flow.yaml",
        &format!(
            "{HEAD}vars:\n  a: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    );
    let err = refused(d.path(), "flow.yaml");
    assert!(
        err.contains("flow.yaml:6:")
            && err.contains("collections nested more than 128 levels deep"),
        "{err}"
    );
    write(
        d.path(),
        "flowmap.yaml",
        &format!(
            "{HEAD}vars:\n  a: {}{}\n",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        ),
    );
    let err = refused(d.path(), "flowmap.yaml");
    assert!(err.contains("nested more than 128 levels deep"), "{err}");

    // Indented block mappings: one level a line (this overflowed the stack).
    let mut block = format!("{HEAD}vars:\n");
    for i in 0..5_000 {
        block.push_str(&format!("{}a{i}:\n", " ".repeat(i + 1)));
    }
    write(d.path(), "block.yaml", &block);
    let err = refused(d.path(), "block.yaml");
    assert!(
        err.contains("block.yaml:") && err.contains("nested more than 128 levels deep"),
        "{err}"
    );
}

#[test]
fn pipelines_using_each_other_many_times_stop_at_the_step_limit() {
    // a uses b 100 times, b uses c 100 times, c has 100 steps: a million steps.
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("p")).expect("mkdir");
    for (name, child) in [("a", Some("b")), ("b", Some("c")), ("c", None)] {
        let mut p = format!("name: {name}\npipeline:\n");
        for i in 0..100 {
            match child {
                Some(c) => p.push_str(&format!("  - uses: {c}\n")),
                None => p.push_str(&format!("  - runs: echo {i}\n")),
            }
        }
        write(d.path(), &format!("p/{name}.yaml"), &p);
    }
    write(
        d.path(),
        "m.yaml",
        &format!("{HEAD}pipeline:\n  - uses: a\n"),
    );
    let (o, took) = compile_with(d.path(), "m.yaml", &["--pipeline-dir", "p"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(took < TIME, "took {took:?}");
    assert!(
        err.starts_with("Error: m.yaml:6:11: pipeline[0]: uses: a: ")
            && err.contains("the plan has more than 200000 steps"),
        "{err}"
    );
}

#[test]
fn long_chains_of_references_stop_at_the_depth_limit() {
    // v1 uses v0, v2 uses v1, … 100 000 deep (this overflowed the stack).
    let d = tempfile::tempdir().unwrap();
    let mut f = format!("{HEAD}pipeline:\n  - runs: echo ${{{{vars.v99999}}}}\nvars:\n  v0: a\n");
    for i in 1..100_000 {
        f.push_str(&format!("  v{i}: \"${{{{vars.v{}}}}}\"\n", i - 1));
    }
    write(d.path(), "vars.yaml", &f);
    let err = refused(d.path(), "vars.yaml");
    assert!(
        err.contains("more than 500 variables referring to each other in a chain"),
        "{err}"
    );
    // 500 deep is fine.
    let mut ok = format!("{HEAD}pipeline:\n  - runs: echo ${{{{vars.v499}}}}\nvars:\n  v0: a\n");
    for i in 1..500 {
        ok.push_str(&format!("  v{i}: \"${{{{vars.v{}}}}}\"\n", i - 1));
    }
    write(d.path(), "ok.yaml", &ok);
    assert_eq!(
        compiled(d.path(), "ok.yaml")["pipeline"][0]["runs"],
        "echo a"
    );

    // The same with the inputs of a pipeline.
    let mut p = String::from("name: ch\ninputs:\n  i0:\n    default: a\n");
    for i in 1..100_000 {
        p.push_str(&format!(
            "  i{i}:\n    default: \"${{{{inputs.i{}}}}}\"\n",
            i - 1
        ));
    }
    p.push_str("pipeline:\n  - runs: echo ${{inputs.i99999}}\n");
    std::fs::create_dir_all(d.path().join("p")).expect("mkdir");
    write(d.path(), "p/ch.yaml", &p);
    write(
        d.path(),
        "in.yaml",
        &format!("{HEAD}pipeline:\n  - uses: ch\n"),
    );
    let (o, took) = compile_with(d.path(), "in.yaml", &["--pipeline-dir", "p"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(took < TIME, "took {took:?}");
    assert!(
        err.starts_with("Error: in.yaml:6:11: pipeline[0]: uses: ch: ")
            && err.contains("more than 500 variables referring to each other in a chain"),
        "{err}"
    );
}

#[test]
fn lint_config_lists_the_first_unused_variables_and_counts_the_rest() {
    // 20 000 unused variables: each finding used to re-read the file (hours).
    let d = tempfile::tempdir().unwrap();
    let mut f = format!("{HEAD}pipeline:\n  - runs: echo ${{{{vars.used}}}}\nvars:\n  used: x\n");
    for i in 0..20_000 {
        f.push_str(&format!("  v{i}: \"${{{{package.name}}}}\"\n"));
    }
    write(d.path(), "vars.yaml", &f);
    let start = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_melange2"))
        .args(["lint-config", "vars.yaml"])
        .current_dir(d.path())
        .output()
        .expect("run melange2");
    assert!(start.elapsed() < TIME, "took {:?}", start.elapsed());
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    let listed = out.lines().filter(|l| l.contains("is never used")).count();
    assert_eq!(listed, 100, "{out}");
    assert!(
        out.contains("vars: and 19900 more variables never used (not listed)"),
        "{out}"
    );
    assert!(!out.contains("\"used\""), "{out}");
    assert!(out.contains("0 errors, 101 warnings"), "{out}");
}

#[test]
fn alias_bombs_fail_before_they_expand() {
    // Nine aliases of nine aliases, nine levels: 9^9 strings (this took all memory).
    let d = tempfile::tempdir().unwrap();
    let mut f = format!(
        "{HEAD}pipeline:\n  - runs: echo\nvars:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    );
    let mut prev = 'a';
    for n in "bcdefghi".chars() {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        f.push_str(&format!("  {n}: &{n} [{refs}]\n"));
        prev = n;
    }
    write(d.path(), "bomb.yaml", &f);
    let err = refused(d.path(), "bomb.yaml");
    assert!(
        err.starts_with("Error: bomb.yaml:")
            && err.contains("aliases add more than 4 MiB to the document once expanded"),
        "{err}"
    );
}

#[test]
fn a_large_file_with_many_problems_stops_looking() {
    // 8 MiB of variables and 400 unknown keys: each problem found re-reads the file, so
    // finding all of them would take an hour; the search stops after 64 MiB re-read.
    let d = tempfile::tempdir().unwrap();
    let mut f = format!("{HEAD}pipeline:\n  - runs: echo\nvars:\n");
    let value = "x".repeat(100);
    for i in 0..80_000 {
        f.push_str(&format!("  v{i}: \"{value}\"\n"));
    }
    for i in 0..400 {
        f.push_str(&format!("x-{i}: 1\n"));
    }
    write(d.path(), "large.yaml", &f);
    let (o, took) = compile(d.path(), "large.yaml");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(took < TIME, "took {took:?}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.len() > 2 && lines.len() < 400,
        "{} lines",
        lines.len()
    );
    assert!(
        lines[0].starts_with("Error: large.yaml:80008:1: x-0: unknown key \"x-0\""),
        "{}",
        lines[0]
    );
    let last = lines[lines.len() - 1];
    assert!(
        last.starts_with("large.yaml:") && last.contains("stopped looking for more problems"),
        "{last}"
    );
}

const PLAIN: &str = "package:\n  name: bom\n  version: \"1.0\"\n  epoch: 0\npipeline:\n  - runs: echo ${{package.name}}\n";

#[test]
fn a_byte_order_mark_is_accepted_and_positions_count_after_it() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "plain.yaml", PLAIN);
    write(d.path(), "bom.yaml", &format!("\u{feff}{PLAIN}"));
    let a = compiled(d.path(), "plain.yaml");
    let mut b = compiled(d.path(), "bom.yaml");
    b["file"] = a["file"].clone();
    assert_eq!(a, b, "the BOM changes nothing in the plan");

    // An error's column is counted from the first character after the mark.
    write(
        d.path(),
        "bomerr.yaml",
        &format!("\u{feff}{}", PLAIN.replace("epoch: 0", "epoch: zero")),
    );
    let err = refused(d.path(), "bomerr.yaml");
    assert!(
        err.starts_with("Error: bomerr.yaml:4:10: package.epoch:"),
        "{err}"
    );
}

#[test]
fn a_duplicate_key_points_at_the_second_key() {
    let d = tempfile::tempdir().unwrap();
    let text =
        format!("{PLAIN}subpackages:\n  - name: doc\n    description: one\n    description: two\n");
    write(d.path(), "dup.yaml", &text);
    let err = refused(d.path(), "dup.yaml");
    assert_eq!(
        err.trim_end(),
        "Error: dup.yaml:10:5: subpackages[0].description: duplicate key \"description\""
    );
}

#[test]
fn an_unknown_target_architecture_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let text = PLAIN.replace(
        "epoch: 0\n",
        "epoch: 0\n  target-architecture: [x86_64, bogus]\n",
    );
    write(d.path(), "arch.yaml", &text);
    let err = refused(d.path(), "arch.yaml");
    assert!(
        err.starts_with(
            "Error: arch.yaml:5:33: package.target-architecture[1]: unknown architecture \"bogus\" (known: all, aarch64,"
        ),
        "{err}"
    );
    // Known names in either spelling still compile.
    let ok = PLAIN.replace(
        "epoch: 0\n",
        "epoch: 0\n  target-architecture: [amd64, aarch64]\n",
    );
    write(d.path(), "ok.yaml", &ok);
    assert_eq!(compiled(d.path(), "ok.yaml")["enabled"], true);
}

/// Compile a build file whose step uses a pipeline (in `pipelines/`) with the input `v`
/// set to `value` (written inside a YAML double-quoted string), the pipeline's step `i`
/// running `echo s<i>` when `conds[i]` holds; the `echo`s of the plan.
fn conditional(dir: &Path, value: &str, conds: &[&str]) -> Vec<String> {
    let mut p = String::from("name: check\ninputs:\n  v:\n    default: \"\"\npipeline:\n");
    for (i, c) in conds.iter().enumerate() {
        let c = c.replace('\'', "''");
        p.push_str(&format!("  - if: '{c}'\n    runs: echo s{i}\n"));
    }
    std::fs::create_dir_all(dir.join("pipelines")).expect("mkdir");
    write(dir, "pipelines/check.yaml", &p);
    let f = format!("{PLAIN}  - uses: check\n    with:\n      v: \"{value}\"\n");
    write(dir, "cond.yaml", &f);
    let (o, _) = compile_with(dir, "cond.yaml", &["--pipeline-dir", "pipelines"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("plan JSON");
    let mut echoes = Vec::new();
    runs_of(&plan["pipeline"], &mut echoes);
    echoes.retain(|r| r.starts_with("echo s"));
    echoes
}

/// Every `runs` of `steps` and their nested steps, in order.
fn runs_of(steps: &serde_json::Value, out: &mut Vec<String>) {
    for s in steps.as_array().into_iter().flatten() {
        if let Some(r) = s["runs"].as_str() {
            out.push(r.to_string());
        }
        runs_of(&s["pipeline"], out);
    }
}

#[test]
fn substituted_values_are_quoted_inside_conditions() {
    let d = tempfile::tempdir().unwrap();
    // The value holds both quotes, a backslash and what would close the string and add
    // an `||` if it were pasted in as it is.
    let value = r#"a\\b \" ' || 'x' == 'x"#;
    let conds = [
        // s0: equal to itself, spelt with the escapes of a literal.
        r#"${{inputs.v}} == 'a\\b " \' || \'x\' == \'x'"#,
        // s1: only an unquoted paste would make this true.
        r#"${{inputs.v}} == 'nothing'"#,
        // s2: inequality holds.
        r#"${{inputs.v}} != 'a'"#,
        // s3: two substitutions compare equal.
        r#"${{inputs.v}} == ${{inputs.v}}"#,
    ];
    assert_eq!(
        conditional(d.path(), value, &conds),
        ["echo s0", "echo s2", "echo s3"]
    );
}

#[test]
fn string_escapes_in_conditions() {
    let d = tempfile::tempdir().unwrap();
    // The input is: tab, newline, backslash, both quotes.
    let value = r#"\t\n\\\"'"#;
    let conds = [
        // s0: the escapes \t \n \\ \" \' in single quotes.
        r#"${{inputs.v}} == '\t\n\\"\''"#,
        // s1: the same in double quotes.
        r#"${{inputs.v}} == "\t\n\\\"'""#,
        // s2: \t is a tab, not a 't'.
        r#"'\t' == 't'"#,
        // s3: an unknown escape keeps its backslash.
        r#"'\q' == "\\q""#,
        // s4: \\ is one backslash: not two.
        r#"'\\' == "\\\\""#,
        // s5: a quote of the other kind needs no escape.
        r#"'"' == "\"""#,
        // s6: \\ then q is the same text as the kept unknown escape \q.
        r#"'\\q' == '\q'"#,
        // s7: an escaped single quote.
        r#"'\'' == "'""#,
    ];
    assert_eq!(
        conditional(d.path(), value, &conds),
        [
            "echo s0", "echo s1", "echo s3", "echo s5", "echo s6", "echo s7"
        ]
    );

    // A carriage return (the language has no escape for it) inserted from an input equals
    // a literal one, not a backslash and an `r`. (The conditions are YAML-quoted here, so
    // the CR reaches them as a character.)
    let e = tempfile::tempdir().unwrap();
    let cr = conditional(e.path(), r"a\rb", &[]);
    assert!(cr.is_empty());
    // s2, s3: the escapes \n and \t equal a newline and a tab written as they are.
    let p = "name: check\ninputs:\n  v:\n    default: \"\"\npipeline:\n  - if: \"${{inputs.v}} == 'a\\rb'\"\n    runs: echo s0\n  - if: \"${{inputs.v}} == 'a\\\\rb'\"\n    runs: echo s1\n  - if: \"'\\\\n' == '\\n'\"\n    runs: echo s2\n  - if: \"'\\\\t' == '\\t'\"\n    runs: echo s3\n";
    write(e.path(), "pipelines/check.yaml", p);
    let (o, _) = compile_with(e.path(), "cond.yaml", &["--pipeline-dir", "pipelines"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("plan JSON");
    let mut echoes = Vec::new();
    runs_of(&plan["pipeline"], &mut echoes);
    echoes.retain(|r| r.starts_with("echo s"));
    assert_eq!(echoes, ["echo s0", "echo s2", "echo s3"]);
}

#[test]
fn parse_phase_variables_are_inserted_as_written() {
    // As melange does: `vars.*`, `package.*` and `range.*` are replaced before conditions
    // are read, so a recipe quotes them itself (`"${{range.key}}" == "x86_64"`).
    let d = tempfile::tempdir().unwrap();
    let f = format!(
        "{PLAIN}vars:\n  arch: x86_64\nsubpackages:\n  - name: quoted\n    if: '\"${{{{vars.arch}}}}\" == \"x86_64\"'\n  - name: other\n    if: '\"${{{{vars.arch}}}}\" == \"aarch64\"'\n"
    );
    write(d.path(), "vars.yaml", &f);
    let plan = compiled(d.path(), "vars.yaml");
    let names: Vec<&str> = plan["subpackages"]
        .as_array()
        .expect("subpackages")
        .iter()
        .filter_map(|s| s["package"]["name"].as_str())
        .collect();
    assert_eq!(names, ["quoted"]);
    let bare = f.replace(
        "'\"${{vars.arch}}\" == \"x86_64\"'",
        "${{vars.arch}} == 'x86_64'",
    );
    write(d.path(), "bare.yaml", &bare);
    let err = refused(d.path(), "bare.yaml");
    assert!(
        err.contains("subpackages[0].if: invalid condition: expected a quoted string"),
        "{err}"
    );
}
