//! `melange2 buildkit info` through the real binary, against the daemon of `make test`; the
//! local daemon `melange2 build` starts when none answers, and `melange2 buildkit stop`.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn daemon() -> String {
    std::env::var("BUILDKIT_HOST")
        .expect("BUILDKIT_HOST is not set: run with `make test`, which starts buildkitd")
}

fn melange2() -> Command {
    Command::new(env!("CARGO_BIN_EXE_melange2"))
}

fn buildctl() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("buildctl"))
        .find(|p| p.is_file());
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = std::env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{home}/.cache"));
    let tools =
        std::env::var("MELANGE2_TOOLS_DIR").unwrap_or_else(|_| format!("{cache}/melange2/tools"));
    on_path
        .or_else(|| {
            let p = PathBuf::from(tools).join("buildkit-v0.32.2/bin/buildctl");
            p.is_file().then_some(p)
        })
        .expect("buildctl is installed by scripts/buildkit.sh")
}

#[test]
fn info_prints_version_and_platforms() {
    let out = melange2()
        .args(["buildkit", "info", "--buildkit-addr", &daemon()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("BuildKit:  github.com/moby/buildkit v"),
        "{text}"
    );
    assert!(text.contains("Platforms:"), "{text}");
}

#[test]
fn info_json_via_env() {
    let out = melange2()
        .args(["buildkit", "info", "--json"])
        .env("BUILDKIT_HOST", daemon())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["version"].as_str().unwrap().starts_with('v'));
    assert!(!v["workers"][0]["platforms"].as_array().unwrap().is_empty());
}

#[test]
fn docker_container_address_uses_dial_stdio() {
    let d = tempfile::tempdir().unwrap();
    let fake = d.path().join("docker");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         # Stand-in for `docker exec -i NAME buildctl dial-stdio`.\n\
         if [ \"$1 $2 $3 $4 $5\" != \"exec -i fakebk buildctl dial-stdio\" ]; then\n\
           echo \"fake docker: unexpected arguments: $*\" >&2; exit 2; fi\n\
         exec \"$FAKE_BUILDCTL\" --addr \"$FAKE_BUILDKIT_HOST\" dial-stdio\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        d.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = melange2()
        .args([
            "buildkit",
            "info",
            "--buildkit-addr",
            "docker-container://fakebk",
        ])
        .env("PATH", path)
        .env("FAKE_BUILDCTL", buildctl())
        .env("FAKE_BUILDKIT_HOST", daemon())
        .env_remove("BUILDKIT_HOST")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Address:   docker-container://fakebk"),
        "{text}"
    );
    assert!(text.contains("Platforms:"), "{text}");
}

/// A `docker` on PATH that writes its arguments to `$FAKE_DOCKER_ARGS`, then behaves as
/// `script` says (a shell fragment).
fn fake_docker(dir: &Path, script: &str) -> String {
    let fake = dir.join("docker");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$*\" > \"$FAKE_DOCKER_ARGS\"\n{script}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `?context=CTX` becomes docker's global `--context=CTX`, before `exec` (as buildctl runs it).
#[test]
fn docker_container_context_is_passed_to_docker() {
    let d = tempfile::tempdir().unwrap();
    let args = d.path().join("args");
    let path = fake_docker(
        d.path(),
        "exec \"$FAKE_BUILDCTL\" --addr \"$FAKE_BUILDKIT_HOST\" dial-stdio",
    );
    let out = melange2()
        .args([
            "buildkit",
            "info",
            "--buildkit-addr",
            "docker-container://fakebk?context=remote-ctx",
        ])
        .env("PATH", path)
        .env("FAKE_DOCKER_ARGS", &args)
        .env("FAKE_BUILDCTL", buildctl())
        .env("FAKE_BUILDKIT_HOST", daemon())
        .env_remove("BUILDKIT_HOST")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        std::fs::read_to_string(&args).unwrap().trim(),
        "--context=remote-ctx exec -i fakebk buildctl dial-stdio"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Address:   docker-container://fakebk?context=remote-ctx"),
        "{text}"
    );
}

/// No docker on PATH, and a docker that fails: the error says which, with the command.
#[test]
fn docker_container_without_docker_or_container_fails_clearly() {
    let info = |path: &str| {
        let out = melange2()
            .args([
                "buildkit",
                "info",
                "--buildkit-addr",
                "docker-container://gone?context=ctx",
            ])
            .env("PATH", path)
            .env("FAKE_DOCKER_ARGS", "/dev/null")
            .env_remove("BUILDKIT_HOST")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let cmd = "`docker --context=ctx exec -i gone buildctl dial-stdio`";
    let empty = tempfile::tempdir().unwrap();
    let err = info(&empty.path().display().to_string());
    assert!(
        err.contains("cannot connect to buildkitd at docker-container://gone?context=ctx"),
        "{err}"
    );
    assert!(
        err.contains("docker is not installed (no `docker` on PATH)"),
        "{err}"
    );
    assert!(err.contains(cmd), "{err}");

    let d = tempfile::tempdir().unwrap();
    let path = fake_docker(
        d.path(),
        "echo \"Error response from daemon: No such container: gone\" >&2; exit 1",
    );
    let err = info(&path);
    assert!(
        err.contains(&format!(
            "{cmd} failed (exit status: 1): Error response from daemon: No such container: gone"
        )),
        "{err}"
    );
}

#[test]
fn bad_addresses_fail_with_a_clear_message() {
    for (addr, needle) in [
        ("foo://x", "unsupported scheme \"foo\""),
        (
            "unix:///nonexistent/buildkitd.sock",
            "cannot connect to buildkitd at unix:///nonexistent/buildkitd.sock",
        ),
    ] {
        let out = melange2()
            .args(["buildkit", "info", "--buildkit-addr", addr])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{addr}: {err}");
    }
}

/// Stops the local daemon of a state dir when a test ends, however it ends.
struct StopLocal(PathBuf);

impl Drop for StopLocal {
    fn drop(&mut self) {
        let _ = melange2()
            .args(["buildkit", "stop"])
            .env("MELANGE2_BUILDKIT_STATE", &self.0)
            .output();
    }
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

/// `melange2 build` with no address and no daemon on the default socket starts a local
/// buildkitd in its state dir and builds on it; the next build reuses it; `melange2 buildkit
/// stop` stops it, and says so when there is nothing to stop.
#[test]
fn build_starts_a_local_daemon_that_the_next_build_reuses_and_stop_stops() {
    assert!(
        !Path::new("/run/buildkit/buildkitd.sock").exists(),
        "a daemon listens on the default socket, so melange2 would use it and start none"
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("bk");
    let _guard = StopLocal(state.clone());
    let r = common::signed_repo(dir.path(), &[]);
    let recipe = dir.path().join("local.yaml");
    std::fs::write(
        &recipe,
        "package:\n  name: local\n  version: 1.0.0\n  epoch: 0\n  description: local\n  \
         copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      \
         - busybox\npipeline:\n  - runs: |\n      \
         mkdir -p ${{targets.destdir}}/usr/share/local\n      \
         echo local > ${{targets.destdir}}/usr/share/local/id\n",
    )
    .unwrap();
    let build = |extra: &[&str]| {
        let o = melange2()
            .arg("build")
            .arg(&recipe)
            .args(["--arch", "x86_64"])
            .args(extra)
            .arg("--out-dir")
            .arg(dir.path().join("out"))
            .arg("-r")
            .arg(&r.repo)
            .arg("-k")
            .arg(&r.pubkey)
            .arg("--signing-key")
            .arg(&r.signing_key)
            .arg("--apk-cache-dir")
            .arg(dir.path().join("apk-cache"))
            .env_remove("BUILDKIT_HOST")
            .env("MELANGE2_BUILDKIT_STATE", &state)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err
    };
    let pid_of = || {
        std::fs::read_to_string(state.join("buildkitd.pid"))
            .unwrap_or_else(|e| panic!("no pid file in {}: {e}", state.display()))
            .trim()
            .to_string()
    };

    let err = build(&[]);
    assert!(
        err.contains("no BuildKit daemon answers; starting"),
        "{err}"
    );
    assert!(err.contains(&state.display().to_string()), "{err}");
    assert!(
        dir.path().join("out/x86_64/local-1.0.0-r0.apk").is_file(),
        "{err}"
    );
    let pid = pid_of();
    assert!(alive(&pid), "the local daemon {pid} is not running");
    assert!(state.join("buildkitd.sock").exists());

    // The next run finds it: nothing started, same process.
    let err = build(&["--force"]);
    assert!(!err.contains("starting"), "{err}");
    assert_eq!(pid_of(), pid);

    let stop = || {
        let o = melange2()
            .args(["buildkit", "stop"])
            .env("MELANGE2_BUILDKIT_STATE", &state)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let said = stop();
    assert!(said.contains("stopped the local buildkitd"), "{said}");
    assert!(!alive(&pid), "buildkit stop left {pid} running");
    let said = stop();
    assert!(said.contains("no local buildkitd is running"), "{said}");
}
