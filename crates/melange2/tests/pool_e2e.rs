//! `melange2 build` over a pool of BuildKit daemons and a shared registry cache: extra
//! buildkitd started by `scripts/buildkit.sh NAME`, a registry by `scripts/registry.sh`
//! (Debian's docker-registry), both on this machine and stopped when the test ends.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
#[path = "../../melange2-buildkit/tests/support/mod.rs"]
mod support;

use common::{SignedRepo, apks, melange2, signed_repo};
use support::{Daemon, Registry};

/// Independent recipes that sleep (so two daemons both get work) and one that needs p1.
fn tree(dir: &Path, sleep: u32, nonce: &str) -> PathBuf {
    let t = dir.join("tree");
    std::fs::create_dir_all(&t).unwrap();
    for (name, needs) in [("p1", ""), ("p2", ""), ("p3", ""), ("p4", ""), ("p5", "p1")] {
        let need = if needs.is_empty() {
            String::new()
        } else {
            format!("      - {needs}\n")
        };
        let text = format!(
            "package:\n  name: {name}\n  version: 1.0.0\n  epoch: 0\n  description: {name}\n  \
             copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      \
             - busybox\n{need}pipeline:\n  - name: work {name}\n    runs: |\n      \
             : {nonce}\n      sleep {sleep}\n      mkdir -p ${{{{targets.destdir}}}}/usr/share/{name}\n      \
             echo {name} > ${{{{targets.destdir}}}}/usr/share/{name}/id\n"
        );
        std::fs::write(t.join(format!("{name}.yaml")), text).unwrap();
    }
    t
}

fn build_cmd(r: &SignedRepo, dir: &Path, tree: &Path, out: &str, daemons: &[&str]) -> Command {
    let mut c = melange2();
    c.arg("build")
        .arg(tree)
        .args(["--arch", "x86_64", "--progress", "rawjson", "--jobs", "1"])
        .arg("--out-dir")
        .arg(dir.join(out))
        .arg("-r")
        .arg(&r.repo)
        .arg("-k")
        .arg(&r.pubkey)
        .arg("--signing-key")
        .arg(&r.signing_key)
        .arg("--apk-cache-dir")
        .arg(dir.join("apk-cache"))
        .arg("--buildkit-addr")
        .arg(daemons.join(","))
        .env_remove("BUILDKIT_HOST")
        .current_dir(dir);
    c
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "melange2 build failed:\n{err}");
    err
}

/// rawjson node events of one kind: package → the event.
fn events(stderr: &str, kind: &str) -> BTreeMap<String, serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == kind)
        .map(|v| (v["package"].as_str().unwrap_or("").to_string(), v))
        .collect()
}

fn index_names(r: &SignedRepo, out: &Path) -> BTreeSet<String> {
    let mut kr = melange2_apk::Keyring::new();
    kr.add_file(&r.signing_key.with_extension("rsa.pub"))
        .unwrap();
    melange2_apk::ApkIndex::read_verified(&out.join("x86_64/APKINDEX.tar.gz"), &kr)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.name.clone())
        .collect()
}

const ALL: [&str; 5] = ["p1", "p2", "p3", "p4", "p5"];

#[test]
fn a_pool_of_two_uses_both_and_builds_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let r = signed_repo(dir.path(), &[]);
    let t = tree(dir.path(), 2, "pool-two");
    let (a, b) = (Daemon::start("pool-a"), Daemon::start("pool-b"));
    let err = ok(&build_cmd(&r, dir.path(), &t, "out", &[&a.addr, &b.addr])
        .output()
        .unwrap());
    let finished = events(&err, "finished");
    let used: BTreeSet<&str> = finished
        .values()
        .filter_map(|v| v["daemon"].as_str())
        .collect();
    assert_eq!(
        used,
        BTreeSet::from([a.addr.as_str(), b.addr.as_str()]),
        "{err}"
    );
    for p in ALL {
        assert_eq!(finished[p]["result"], "built", "{p}: {err}");
    }
    // The same tree on one daemon gives the same bytes.
    ok(&build_cmd(&r, dir.path(), &t, "out-one", &[&b.addr])
        .output()
        .unwrap());
    let (pool, one) = (
        apks(&dir.path().join("out")),
        apks(&dir.path().join("out-one")),
    );
    assert_eq!(pool.len(), 6, "{:?}", pool.keys());
    let diff = common::differing(&pool, &one);
    assert!(
        diff.is_empty(),
        "a pool build differs from a one-daemon build: {diff:?}"
    );
    // `buildkit info` takes the same flags and prints each daemon.
    let info = melange2()
        .args(["buildkit", "info", "--buildkit-addr"])
        .arg(format!("{},{}", a.addr, b.addr))
        .env_remove("BUILDKIT_HOST")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{text}");
    assert!(text.contains(&a.addr) && text.contains(&b.addr), "{text}");
    assert!(
        text.contains("BuildKit v0.32.2, native ") && text.contains("x86_64"),
        "{text}"
    );
}

#[test]
fn a_daemon_killed_mid_build_is_left_out_and_its_job_retried() {
    let dir = tempfile::tempdir().unwrap();
    let r = signed_repo(dir.path(), &[]);
    let t = tree(dir.path(), 6, "pool-kill");
    let (victim, other) = (Daemon::start("pool-victim"), Daemon::start("pool-other"));
    let mut child = build_cmd(&r, dir.path(), &t, "out", &[&victim.addr, &other.addr])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = Vec::new();
    let mut killed = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if killed.is_none()
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["event"] == "started"
            && v["daemon"] == victim.addr.as_str()
        {
            // Give the step time to start running, then kill the daemon outright.
            std::thread::sleep(std::time::Duration::from_secs(2));
            let pid = victim.pid().expect("the victim daemon runs");
            let k = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap();
            assert!(k.success());
            killed = Some(v["package"].as_str().unwrap_or("").to_string());
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let err = lines.join("\n");
    assert!(status.success(), "{err}");
    let package = killed.expect("a build started on the victim daemon");
    let finished = events(&err, "finished");
    let f = &finished[&package];
    assert_eq!(f["result"], "built", "{err}");
    assert_eq!(f["daemon"], other.addr.as_str(), "{err}");
    let retries = f["retries"].as_array().cloned().unwrap_or_default();
    assert_eq!(retries.len(), 1, "{err}");
    assert!(
        retries[0].as_str().unwrap_or("").contains(&victim.addr),
        "{err}"
    );
    assert!(err.contains("went away"), "{err}");
    for p in ALL {
        assert_eq!(finished[p]["result"], "built", "{p}: {err}");
    }
    let names = index_names(&r, &dir.path().join("out"));
    assert_eq!(names, ALL.iter().map(|s| s.to_string()).collect());
}

#[test]
fn a_fresh_daemon_takes_every_step_from_the_registry_cache() {
    let dir = tempfile::tempdir().unwrap();
    let r = signed_repo(dir.path(), &[]);
    let nonce = format!("cache-{}", std::process::id());
    let t = tree(dir.path(), 1, &nonce);
    let reg = Registry::start();
    let cache = |extra: &str| {
        format!(
            "type=registry,ref={}/melange2-cache:t{extra},registry.insecure=true",
            reg.addr
        )
    };
    let first = Daemon::start("pool-first");
    ok(&build_cmd(&r, dir.path(), &t, "out", &[&first.addr])
        .arg("--cache-to")
        .arg(cache(",mode=max"))
        .output()
        .unwrap());
    // One tag per recipe and architecture.
    let tags: BTreeSet<String> = reg.tags("melange2-cache").into_iter().collect();
    for p in ALL {
        assert!(tags.contains(&format!("t-{p}-x86_64")), "{tags:?}");
    }
    let fresh = Daemon::start("pool-fresh");
    let err = ok(&build_cmd(&r, dir.path(), &t, "out-fresh", &[&fresh.addr])
        .arg("--cache-from")
        .arg(cache(""))
        .output()
        .unwrap());
    // No exec step ran: every `work` step came from the registry.
    let mut steps = BTreeMap::new();
    for line in err.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for vx in v["vertexes"].as_array().into_iter().flatten() {
            let name = vx["name"].as_str().unwrap_or("");
            if name.starts_with("work ") && !vx["completed"].is_null() {
                steps.insert(name.to_string(), vx["cached"].as_bool().unwrap_or(false));
            }
        }
    }
    assert_eq!(steps.len(), 5, "{err}");
    assert!(
        steps.values().all(|c| *c),
        "steps ran on the fresh daemon: {steps:?}"
    );
    assert_eq!(
        apks(&dir.path().join("out")),
        apks(&dir.path().join("out-fresh"))
    );
}

#[test]
fn an_architecture_no_daemon_runs_fails_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let r = signed_repo(dir.path(), &[]);
    let t = tree(dir.path(), 0, "arch");
    let a = Daemon::start("pool-arch");
    let o = build_cmd(&r, dir.path(), &t, "out", &[&a.addr])
        .args(["--arch", "x86_64,riscv64"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no daemon runs riscv64"), "{err}");
    assert!(err.contains("nothing was built"), "{err}");
    assert!(
        !dir.path().join("out/x86_64").exists(),
        "something was built: {err}"
    );
    // An unreachable daemon next to a live one is reported and left out.
    let o = build_cmd(
        &r,
        dir.path(),
        &t,
        "out2",
        &[&a.addr, "unix:///nonexistent/bk.sock"],
    )
    .output()
    .unwrap();
    let err = ok(&o);
    assert!(
        err.contains("unix:///nonexistent/bk.sock is left out"),
        "{err}"
    );
}
