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
    // the packaging step, with its bytes and duration (`3.00kB 0.2s`)
    let mark = "✓ [ttytail] package ttytail ";
    let after = plain
        .split_once(mark)
        .map(|(_, a)| a.split_whitespace().take(2).collect::<Vec<_>>())
        .unwrap_or_else(|| panic!("no packaging step:\n{plain}"));
    assert!(
        after.len() == 2
            && after[0].ends_with("kB")
            && after[1]
                .strip_suffix('s')
                .is_some_and(|t| t.parse::<f64>().is_ok()),
        "{after:?}"
    );
    assert!(out.join("x86_64/ttytail-1.0.0-r0.apk").exists());
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `shell_line` under a pseudo-terminal (`script`), with `envs`; returns what the
/// terminal showed.
fn on_a_terminal(shell_line: &str, envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", shell_line, "/dev/null"])
        .env("COLUMNS", "120")
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("script (util-linux) is installed");
    let screen = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{shell_line}\n{screen}");
    screen
}

/// The command line of a build of `file` into `out`, quoted for a shell.
fn build_line(r: &SignedRepo, dir: &Path, file: &Path, out: &Path, extra: &[&str]) -> String {
    let mut inner = Command::new(env!("CARGO_BIN_EXE_melange2"));
    build_args(&mut inner, r, dir, file, out);
    inner.args(extra);
    std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// ANSI colour sequences (SGR: `ESC [ … m`), not cursor movement.
fn colour_codes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("\x1b[") {
        rest = &rest[i + 2..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(rest.len());
        if rest[end..].starts_with('m') {
            out.push(format!("ESC[{}m", &rest[..end]));
        }
    }
    out
}

#[test]
fn colour_follows_stderr_and_no_color() {
    let d = tempfile::tempdir().unwrap();
    let r = signed_repo(d.path(), &[]);
    let file = recipe(
        d.path(),
        "colour",
        "mkdir -p ${{targets.destdir}}/usr/share\necho ok > ${{targets.destdir}}/usr/share/ok",
    );
    let quoted = |p: PathBuf| shell_quote(&p.to_string_lossy());
    // stderr on a terminal, stdout (the package paths) into a file: colour on the terminal,
    // none in the file
    let line = build_line(
        &r,
        d.path(),
        &file,
        &d.path().join("o1"),
        &["--progress", "tty"],
    );
    let stdout = d.path().join("stdout.txt");
    let shown = on_a_terminal(&format!("{line} >{}", quoted(stdout.clone())), &[]);
    // the result line's mark is green (colour follows stderr, not stdout)
    assert!(
        shown.contains("\x1b[32m✓\x1b[0m colour built in"),
        "no colour on a terminal: {:?}\n{shown}",
        colour_codes(&shown)
    );
    let paths = std::fs::read_to_string(&stdout).unwrap();
    assert!(
        paths.contains("colour-1.0.0-r0.apk") && !paths.contains('\x1b'),
        "{paths:?}"
    );
    // stdout on a terminal, stderr into a file: no colour in the file (tracing included) and
    // the progress is there, also with tty forced
    for (i, mode) in ["auto", "tty", "plain"].into_iter().enumerate() {
        let extra = ["--progress", mode, "--log-level", "melange2_build=debug"];
        let line = build_line(&r, d.path(), &file, &d.path().join(format!("r{i}")), &extra);
        let err = d.path().join(format!("err{i}.log"));
        on_a_terminal(&format!("{line} 2>{}", quoted(err.clone())), &[]);
        let text = std::fs::read_to_string(&err).unwrap();
        assert!(
            text.contains("local files sent to the daemon"),
            "{mode}: no tracing\n{text}"
        );
        assert!(
            text.contains("[built] colour built in"),
            "{mode}: no result\n{text}"
        );
        assert!(
            !text.contains('\x1b'),
            "{mode}: {:?}\n{text}",
            colour_codes(&text)
        );
    }
    // NO_COLOR on a terminal: no colour at all, tracing included
    let extra = ["--progress", "tty", "--log-level", "melange2_build=debug"];
    let line = build_line(&r, d.path(), &file, &d.path().join("o2"), &extra);
    let shown = on_a_terminal(&line, &[("NO_COLOR", "1")]);
    assert!(
        shown.contains("local files sent to the daemon"),
        "no tracing:\n{shown}"
    );
    assert_eq!(colour_codes(&shown), Vec::<String>::new(), "{shown}");
}

/// Bytes of the source directory's file: sending it takes well over a second, so `plain`
/// prints the bytes sent so far at least once before the end.
const SOURCE: u64 = 256 << 20;

#[test]
fn a_large_source_shows_its_bytes_as_they_go() {
    let d = tempfile::tempdir().unwrap();
    let r = signed_repo(d.path(), &[]);
    let file = recipe(
        d.path(),
        "bigsrc",
        "test -s big.bin\nmkdir -p ${{targets.destdir}}/usr/share\n\
         echo ok > ${{targets.destdir}}/usr/share/ok",
    );
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // zeros in a sparse file: cheap to make, every byte still goes through FileSync
    let f = std::fs::File::create(src.join("big.bin")).unwrap();
    f.set_len(SOURCE).unwrap();
    drop(f);
    let out = d.path().join("out");
    let mut cmd = melange2();
    build_args(&mut cmd, &r, d.path(), &file, &out);
    cmd.arg("--source-dir").arg(&src);
    let err = ok(&cmd.args(["--progress", "plain"]).output().unwrap());
    if let Ok(p) = std::env::var("PROGRESS_E2E_SOURCE") {
        std::fs::write(p, &err).unwrap();
    }
    let counters: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("[bigsrc] #"))
        .filter(|l| l.contains(" transferring source-"))
        .collect();
    let done = counters
        .iter()
        .position(|l| l.ends_with(" done"))
        .unwrap_or_else(|| panic!("no finished transfer of the source\n{err}"));
    let mb: f64 = counters[done]
        .rsplit(' ')
        .nth(1)
        .and_then(|a| a.strip_suffix("MB"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{}", counters[done]));
    assert!(mb * 1024.0 * 1024.0 >= SOURCE as f64, "{}", counters[done]);
    // before the end: at least one line with the bytes sent so far
    assert!(
        counters[..done].iter().any(|l| l.ends_with("MB")),
        "no bytes before the end: {counters:?}"
    );
}

#[test]
fn colour_codes_of_step_output_only_reach_a_colour_terminal() {
    let d = tempfile::tempdir().unwrap();
    let r = signed_repo(d.path(), &[]);
    let runs = "printf '\\033[31mred-output\\033[0m\\n'\nmkdir -p ${{targets.destdir}}/usr/share\n\
                echo ok > ${{targets.destdir}}/usr/share/ok";
    let file = recipe(d.path(), "tools", runs);
    // plain into a pipe, and the package's log: the text without its colour codes
    let out = d.path().join("out");
    let mut cmd = melange2();
    build_args(&mut cmd, &r, d.path(), &file, &out);
    let err = ok(&cmd.args(["--progress", "plain"]).output().unwrap());
    let log = std::fs::read_to_string(out.join("logs/x86_64/tools.log")).unwrap();
    for (what, text) in [("stderr", &err), ("log", &log)] {
        assert!(text.contains(" red-output\n"), "{what}:\n{text}");
        assert!(!text.contains('\x1b'), "{what}:\n{text}");
    }
    // tty with --debug shows every line: with its colour on a colour terminal, without it
    // under NO_COLOR
    for (i, (envs, coloured)) in [(vec![], true), (vec![("NO_COLOR", "1")], false)]
        .into_iter()
        .enumerate()
    {
        // a recipe of its own, so that the step runs (its output is not cached)
        let file = recipe(d.path(), &format!("tools{i}"), runs);
        let extra = ["--progress", "tty", "--debug"];
        let line = build_line(&r, d.path(), &file, &d.path().join(format!("t{i}")), &extra);
        let shown = on_a_terminal(&line, &envs);
        assert!(shown.contains("red-output"), "{envs:?}:\n{shown}");
        assert_eq!(
            shown.contains("\x1b[31mred-output"),
            coloured,
            "{envs:?}:\n{shown}"
        );
    }
    // a failing step's last lines in the error: without colour codes
    let failing = recipe(
        d.path(),
        "failing",
        "printf '\\033[31mred-failure\\033[0m\\n'\nexit 3",
    );
    let mut cmd = melange2();
    build_args(&mut cmd, &r, d.path(), &failing, &d.path().join("f"));
    let o = cmd.args(["--progress", "plain"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("red-failure"), "{err}");
    assert!(!err.contains('\x1b'), "{err}");
}
