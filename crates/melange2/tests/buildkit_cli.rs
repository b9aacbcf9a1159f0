//! `melange2 buildkit info` through the real binary, against the daemon of `make test`.

use std::path::PathBuf;
use std::process::Command;

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
