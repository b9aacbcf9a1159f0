//! Debugging a failed build end to end (docs/debug.md): the real binary and buildkitd, a
//! signed busybox repository made by the test, and a recipe whose step leaves files behind
//! and fails. `--interactive` is driven through a pty (util-linux `script`);
//! `--export-on-failure` writes the step's root filesystem.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::{SignedRepo, daemon, melange2, signed_repo};

/// A recipe whose step writes `left-behind.txt` (`left behind 42 <nonce>`, a text its
/// script does not hold, so error messages quoting the script cannot be mistaken for it) and a file under
/// melange-out in the workspace, then fails with exit code 7.
fn failing_recipe(dir: &Path, nonce: &str) -> PathBuf {
    let text = format!(
        "package:\n  name: broken\n  version: 1.0.0\n  epoch: 0\n  description: fails\n  \
         copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\n\
         pipeline:\n  - name: leave files and fail\n    runs: |\n      \
         echo \"left behind $((6*7)) {nonce}\" > left-behind.txt\n      \
         mkdir -p ${{{{targets.destdir}}}}/usr\n      \
         echo half > ${{{{targets.destdir}}}}/usr/half-built\n      exit 7\n"
    );
    let p = dir.join("broken.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The arguments of `melange2 build` for `recipe` against the repository.
fn build_args(dir: &Path, repo: &SignedRepo, recipe: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["build".into(), recipe.display().to_string()];
    a.extend(["--arch", "x86_64", "--out-dir"].map(String::from));
    a.push(dir.join("out").display().to_string());
    a.push("-r".into());
    a.push(repo.repo.display().to_string());
    a.push("-k".into());
    a.push(repo.pubkey.display().to_string());
    a.push("--signing-key".into());
    a.push(repo.signing_key.display().to_string());
    a.push("--apk-cache-dir".into());
    a.push(dir.join("apk-cache").display().to_string());
    a.push("--buildkit-addr".into());
    a.push(daemon());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn setup() -> (tempfile::TempDir, SignedRepo, String) {
    let dir = tempfile::tempdir().unwrap();
    let repo = signed_repo(dir.path(), &[]);
    let nonce = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    (dir, repo, nonce)
}

#[test]
fn interactive_without_a_terminal_is_refused() {
    let (dir, repo, nonce) = setup();
    let recipe = failing_recipe(dir.path(), &nonce);
    let o = melange2()
        .args(build_args(dir.path(), &repo, &recipe, &["--interactive"]))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--interactive needs a terminal"), "{err}");
    // refused before anything was built
    assert!(!err.contains("leave files and fail"), "{err}");
}

#[test]
fn export_on_failure_tarball_holds_what_the_failed_step_left() {
    let (dir, repo, nonce) = setup();
    let recipe = failing_recipe(dir.path(), &nonce);
    let tarball = dir.path().join("failed.tar");
    let t = tarball.display().to_string();
    let extra = [
        "--export-on-failure",
        "tarball",
        "--export-ref",
        &t,
        "--progress",
        "plain",
    ];
    let o = melange2()
        .args(build_args(dir.path(), &repo, &recipe, &extra))
        .output()
        .unwrap();
    assert!(!o.status.success(), "the build must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exit code 7"), "{err}");
    assert!(err.contains(&format!("docker import {t}")), "{err}");
    // the owners were read from the container (busybox find and stat)
    assert!(!err.contains("could not read the owners"), "{err}");
    let mut ar = tar::Archive::new(std::fs::File::open(&tarball).expect("tarball written"));
    let mut files = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut data = String::new();
        if e.header().entry_type().is_file() {
            e.read_to_string(&mut data).unwrap_or_default();
        }
        files.insert(path, data);
    }
    assert_eq!(
        files["home/build/left-behind.txt"],
        format!("left behind 42 {nonce}\n")
    );
    assert_eq!(
        files["home/build/melange-out/broken/usr/half-built"],
        "half\n"
    );
    assert!(
        files.contains_key("bin/busybox"),
        "the environment is there"
    );
    // nothing was packaged
    assert!(
        !dir.path()
            .join("out/x86_64")
            .join("broken-1.0.0-r0.apk")
            .exists()
    );
}

#[test]
fn export_on_failure_dir_can_be_entered_with_chroot() {
    let (dir, repo, nonce) = setup();
    let recipe = failing_recipe(dir.path(), &nonce);
    let root = dir.path().join("failed-root");
    let r = root.display().to_string();
    let extra = ["--export-on-failure", "dir", "--export-ref", &r];
    let o = melange2()
        .args(build_args(dir.path(), &repo, &recipe, &extra))
        .output()
        .unwrap();
    assert!(!o.status.success(), "the build must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("sudo chroot {r} /bin/sh")), "{err}");
    // enter it as the message says (the tests run as root)
    let o = Command::new("chroot")
        .arg(&root)
        .args(["/bin/sh", "-c", "cd /home/build && cat left-behind.txt"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("left behind 42 {nonce}\n"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Everything the pty shows, read on a thread.
fn collect(mut out: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            s.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    seen
}

fn wait_for(seen: &Mutex<Vec<u8>>, what: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        if text.contains(what) {
            return text;
        }
        assert!(
            start.elapsed() < limit,
            "waited {limit:?} for {what:?}; the terminal shows:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn interactive_shell_opens_in_the_failed_step_on_a_terminal() {
    let (dir, repo, nonce) = setup();
    let recipe = failing_recipe(dir.path(), &nonce);
    let bin = env!("CARGO_BIN_EXE_melange2");
    let secret = ["--secret", "id=tok,env=DEBUG_E2E_TOKEN,as-env=TOKEN"];
    let args = build_args(
        dir.path(),
        &repo,
        &recipe,
        &["--interactive", secret[0], secret[1]],
    );
    let cmd = std::iter::once(bin.to_string())
        .chain(args)
        .map(|a| sh_quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    // a pty of 33 rows and 101 columns, as a terminal window would have
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("stty rows 33 cols 101; exec {cmd}"),
            "/dev/null",
        ])
        .env("DEBUG_E2E_TOKEN", format!("tok-{nonce}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script is installed");
    let seen = collect(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    wait_for(&seen, "opening /bin/sh", Duration::from_secs(300));
    stdin
        .write_all(b"cat left-behind.txt; echo \"at=$(pwd) uid=$(id -u)\"; stty size; echo size=$(stty size </dev/tty)\n")
        .unwrap();
    let shown = wait_for(&seen, "size=33 101", Duration::from_secs(60));
    // the step's secret is mounted again and its secret variable set
    stdin
        .write_all(b"echo \"secret=$(cat /run/secrets/tok) var=$TOKEN\"\n")
        .unwrap();
    let with_secret = format!("secret=tok-{nonce} var=tok-{nonce}");
    wait_for(&seen, &with_secret, Duration::from_secs(15));
    // Ctrl-C reaches the process in the shell, not melange2: the sleep ends, the shell stays
    stdin.write_all(b"sleep 30; echo NOT-$((2+3))\n").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    stdin.write_all(b"\x03").unwrap();
    stdin.write_all(b"echo still-$((1+1))\n").unwrap();
    let after = wait_for(&seen, "still-2", Duration::from_secs(15));
    assert!(
        !after.contains("NOT-5"),
        "Ctrl-C did not stop the sleep:\n{after}"
    );
    // Ctrl-D reaches the shell, which ends; the build then fails with the step's failure
    stdin.write_all(b"\x04").unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the build did not end after the shell; the terminal shows:\n{}",
            String::from_utf8_lossy(&seen.lock().unwrap())
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(stdin);
    let all = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(
        shown.contains(&format!("left behind 42 {nonce}")),
        "the shell shows the file the step wrote:\n{shown}"
    );
    assert!(shown.contains("at=/home/build uid=0"), "{shown}");
    // the pty's window size reached the shell's terminal
    assert!(shown.contains("size=33 101"), "{shown}");
    assert!(!status.success(), "the build must fail:\n{all}");
    assert!(all.contains("exit code 7"), "{all}");
}
