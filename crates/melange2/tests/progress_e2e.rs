//! Progress of `melange2 build` through the real binary and the daemon of `make test`: the
//! packaging step with its bytes and duration in `plain`, `rawjson` and the per-package log,
//! and in `tty` mode (under a pseudo-terminal made by `script`) the last lines of a running
//! step's output under its line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{SignedRepo, daemon, melange2, signed_repo};

/// Bytes of the file the recipe writes: more than the 1 MiB pipe between the export and the
/// packager, so the packager reads while the export runs.
const BIG: u64 = 6_000_000;

fn recipe(dir: &Path, name: &str, runs: &str) -> PathBuf {
    let text = format!(
        "package:\n  name: {name}\n  version: 1.0.0\n  epoch: 0\n  description: progress\n  \
         copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - \
         busybox\npipeline:\n  - name: produce\n    runs: |\n{}\n",
        runs.lines()
            .map(|l| format!("      {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn build_args(cmd: &mut Command, r: &SignedRepo, dir: &Path, file: &Path, out: &Path) {
    cmd.arg("build")
        .arg(file)
        .args(["--arch", "x86_64", "--out-dir"])
        .arg(out)
        .arg("-r")
        .arg(&r.repo)
        .arg("-k")
        .arg(&r.pubkey)
        .arg("--signing-key")
        .arg(&r.signing_key)
        .arg("--apk-cache-dir")
        .arg(dir.join("apk-cache"))
        .args(["--buildkit-addr", &daemon()]);
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

fn big_recipe(dir: &Path, name: &str) -> PathBuf {
    recipe(
        dir,
        name,
        &format!(
            "mkdir -p ${{{{targets.destdir}}}}/usr/share\n\
             head -c {BIG} /dev/urandom > ${{{{targets.destdir}}}}/usr/share/big"
        ),
    )
}

#[test]
fn packaging_is_a_step_with_bytes_and_duration_in_rawjson() {
    let d = tempfile::tempdir().unwrap();
    let r = signed_repo(d.path(), &[]);
    let file = big_recipe(d.path(), "bigjson");
    let out = d.path().join("out");
    let mut cmd = melange2();
    build_args(&mut cmd, &r, d.path(), &file, &out);
    let err = ok(&cmd.args(["--progress", "rawjson"]).output().unwrap());
    let events: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "client-step")
        .collect();
    let states: Vec<&str> = events.iter().filter_map(|e| e["state"].as_str()).collect();
    assert_eq!(states.first(), Some(&"started"), "{events:?}");
    assert_eq!(states.last(), Some(&"done"), "{events:?}");
    let done = events.last().unwrap();
    assert_eq!(done["package"], "bigjson");
    assert_eq!(done["arch"], "x86_64");
    assert_eq!(done["step"], "package bigjson");
    let total = done["bytes"].as_u64().unwrap();
    assert!(total > BIG, "{done}");
    assert!(done["duration"].as_f64().unwrap() > 0.0, "{done}");
    let apk = std::fs::metadata(out.join("x86_64/bigjson-1.0.0-r0.apk"))
        .unwrap()
        .len();
    assert_eq!(
        done["output"][0],
        format!("bigjson-1.0.0-r0.apk {} ({apk} bytes)", human(apk)),
        "{done}"
    );
    // bytes read so far, before the end
    let read_so_far: Vec<u64> = events
        .iter()
        .filter(|e| e["state"] == "progress")
        .filter_map(|e| e["bytes"].as_u64())
        .collect();
    assert!(!read_so_far.is_empty(), "{events:?}");
    assert!(
        read_so_far.iter().all(|b| *b > 0 && *b <= total),
        "{read_so_far:?}"
    );
    // a client step is not a BuildKit vertex of the status messages
    assert!(!err.contains("melange2-client:"), "{err}");
}

/// `human_bytes` of the progress renderer, for the expected line.
fn human(n: u64) -> String {
    melange2_buildkit::progress::human_bytes(i64::try_from(n).unwrap())
}

#[test]
fn packaging_shows_in_plain_progress_and_the_package_log() {
    let d = tempfile::tempdir().unwrap();
    let r = signed_repo(d.path(), &[]);
    let file = big_recipe(d.path(), "bigplain");
    let out = d.path().join("out");
    let mut cmd = melange2();
    build_args(&mut cmd, &r, d.path(), &file, &out);
    let err = ok(&cmd.args(["--progress", "plain"]).output().unwrap());
    let log = std::fs::read_to_string(out.join("logs/x86_64/bigplain.log")).unwrap();
    let apk = std::fs::metadata(out.join("x86_64/bigplain-1.0.0-r0.apk"))
        .unwrap()
        .len();
    for (what, text, prefix) in [("stderr", &err, "[bigplain] "), ("log", &log, "")] {
        let lines: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .collect();
        let header = lines
            .iter()
            .find(|l| l.ends_with(" package bigplain"))
            .unwrap_or_else(|| panic!("{what}: no packaging step\n{text}"));
        let n = header.split(' ').next().unwrap();
        let mine: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(n).and_then(|l| l.strip_prefix(' ')))
            .collect();
        let read = mine
            .iter()
            .find(|l| l.starts_with("read ") && l.ends_with(" done"))
            .unwrap_or_else(|| panic!("{what}: no bytes read\n{text}"));
        let mb: f64 = read
            .trim_start_matches("read ")
            .trim_end_matches(" done")
            .trim_end_matches("MB")
            .parse()
            .unwrap_or_else(|_| panic!("{what}: {read}"));
        // two decimals: within 0.01MB
        assert!((mb + 0.01) * 1024.0 * 1024.0 > BIG as f64, "{what}: {read}");
        let size = format!("bigplain-1.0.0-r0.apk {} ({apk} bytes)", human(apk));
        assert!(mine.iter().any(|l| l.ends_with(&size)), "{what}: {mine:?}");
        assert!(
            mine.iter().any(|l| l.starts_with("DONE ")),
            "{what}: no duration {mine:?}"
        );
    }
}

#[test]
fn tty_shows_the_last_lines_of_a_running_step() {
    let d = tempfile::tempdir().unwrap();
    let r = signed_repo(d.path(), &[]);
    // the lines stay on screen while the step sleeps; in tty mode a step's output is
    // otherwise only printed when it fails
    let file = recipe(
        d.path(),
        "ttytail",
        "for i in 1 2 3 4 5 6 7 8; do echo \"tail-line-$i of make\"; done\nsleep 3\n\
         mkdir -p ${{targets.destdir}}/usr/share\necho ok > ${{targets.destdir}}/usr/share/ok",
    );
    let out = d.path().join("out");
    let mut inner = Command::new(env!("CARGO_BIN_EXE_melange2"));
    build_args(&mut inner, &r, d.path(), &file, &out);
    inner.args(["--progress", "tty"]);
    let line = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    // `script` runs the build on a pseudo-terminal and copies what it draws to stdout
    let o = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("COLUMNS", "120")
        .output()
        .expect("script (util-linux) is installed");
    let screen = String::from_utf8_lossy(&o.stdout).into_owned();
    if let Ok(p) = std::env::var("PROGRESS_E2E_SCREEN") {
        std::fs::write(p, &screen).unwrap();
    }
    assert!(o.status.success(), "{screen}");
    let plain = console::strip_ansi_codes(&screen).into_owned();
    // the last six lines were shown under the step
    for i in 3..=8 {
        assert!(
            plain.contains(&format!("│ tail-line-{i} of make")),
            "line {i} not shown:\n{plain}"
        );
    }
    assert!(out.join("x86_64/ttytail-1.0.0-r0.apk").exists());
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
