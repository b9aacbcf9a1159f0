//! Tests against the real buildkitd that `make test` starts (BUILDKIT_HOST).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use melange2_buildkit::llb::{
    CacheSharing, ChownOpt, CopyOptions, Exec, FileActions, Mount, NetMode, OpOptions, State,
};
use melange2_buildkit::{BuildkitError, SolveOptions};

fn nonce() -> String {
    uuid_like()
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{t:x}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_and_file_ops_export_modes_owners_links() {
    let c = client().await;
    let bb = busybox_dir();
    let rootfs = rootfs_from_local("rootfs", bb.path());
    let script = "set -e
mkdir -p /out/sub
echo hello > /out/sub/file
chmod 4755 /out/sub/file
echo owned > /out/owned
chown 1000:1001 /out/owned
ln -s file /out/sub/link
ln /out/sub/file /out/sub/hard";
    let exec = Exec::shell(rootfs, script)
        .env("PATH", "/bin")
        .mount(Mount::bind("/out", State::scratch()))
        .network(NetMode::None)
        .options(OpOptions::named("run: populate /out"))
        .build()
        .unwrap();
    let out = exec.output("/out").unwrap();
    let extra = State::scratch()
        .file(
            FileActions::new().mkfile("/tool", 0o755, b"#!/bin/sh\n".to_vec()),
            OpOptions::default(),
        )
        .unwrap();
    let result = out
        .file(
            FileActions::new()
                .mkdir("/etc/conf.d", 0o750)
                .mkfile_with(
                    "/etc/conf.d/x.conf",
                    0o640,
                    b"k=v\n".to_vec(),
                    Some(ChownOpt::Ids(1000, 1000)),
                    Some(0),
                )
                .symlink("/etc/conf.d/x.conf", "/x.conf")
                .copy(
                    &extra,
                    "/tool",
                    "/usr/bin/tool",
                    CopyOptions {
                        mode: Some(0o4755),
                        ..Default::default()
                    },
                )
                .rm("/owned-not-there"),
            OpOptions::named("file ops"),
        )
        .unwrap();
    let (_, tar) = solve_to_tar(
        &c,
        &result,
        SolveOptions {
            local_dirs: local_dirs(&[("rootfs", bb.path())]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e = tar_entries(&tar);
    let (h, data) = &e["sub/file"];
    assert_eq!(data, b"hello\n");
    assert_eq!(h.mode().unwrap() & 0o7777, 0o4755, "setuid kept");
    let (h, _) = &e["owned"];
    assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (1000, 1001));
    let (h, _) = &e["sub/link"];
    assert_eq!(h.entry_type(), tar::EntryType::Symlink);
    assert_eq!(h.link_name().unwrap().unwrap().to_str(), Some("file"));
    let (h, _) = &e["sub/hard"];
    assert!(
        h.entry_type() == tar::EntryType::Link || e["sub/hard"].1 == b"hello\n",
        "hardlink or copy of the same content"
    );
    let (h, data) = &e["etc/conf.d/x.conf"];
    assert_eq!(data, b"k=v\n");
    assert_eq!(h.mode().unwrap() & 0o7777, 0o640);
    assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (1000, 1000));
    assert_eq!(h.mtime().unwrap(), 0);
    assert_eq!(e["etc/conf.d"].0.mode().unwrap() & 0o777, 0o750);
    let (h, _) = &e["x.conf"];
    assert_eq!(
        h.link_name().unwrap().unwrap().to_str(),
        Some("/etc/conf.d/x.conf")
    );
    let (h, _) = &e["usr/bin/tool"];
    assert_eq!(h.mode().unwrap() & 0o7777, 0o4755, "copy mode with setuid");
}

#[tokio::test(flavor = "multi_thread")]
async fn second_solve_is_fully_cached_and_digests_match_the_daemon() {
    let c = client().await;
    let marker = nonce();
    let exec = Exec::shell(
        rootfs_inline(),
        format!("echo {marker} > /out/marker && ls /bin > /out/bins"),
    )
    .env("PATH", "/bin")
    .mount(Mount::bind("/out", State::scratch()))
    .options(OpOptions::named("run: write marker"))
    .build()
    .unwrap();
    let layer = exec
        .output("/out")
        .unwrap()
        .file(
            FileActions::new().mkfile("/done", 0o644, marker.clone().into_bytes()),
            OpOptions::default(),
        )
        .unwrap();
    let def = layer.marshal().unwrap();
    let ours: BTreeSet<String> = def.vertex_digests.iter().cloned().collect();

    let first = solve(&c, &layer, SolveOptions::default()).await.unwrap();
    let theirs: BTreeSet<String> = first.vertices.iter().map(|v| v.digest.clone()).collect();
    for d in &ours {
        assert!(
            theirs.contains(d),
            "our digest {d} not reported by the daemon: {theirs:?}"
        );
    }
    let exec_vertex = first
        .vertices
        .iter()
        .find(|v| v.name == "run: write marker")
        .expect("exec vertex reported under its custom name");
    assert!(
        !exec_vertex.cached,
        "a fresh marker must run the first time"
    );

    let second = solve(&c, &layer, SolveOptions::default()).await.unwrap();
    let ours_reported: Vec<_> = second
        .vertices
        .iter()
        .filter(|v| ours.contains(&v.digest))
        .collect();
    assert_eq!(ours_reported.len(), ours.len());
    // Vertices without inputs only get their cache key computed (reported as a short uncached
    // run by the daemon); every op that depends on others must be a cache hit.
    let with_inputs: Vec<_> = ours_reported
        .iter()
        .filter(|v| !v.inputs.is_empty())
        .collect();
    assert_eq!(
        with_inputs.len(),
        2,
        "the exec and the file op after it: {with_inputs:?}"
    );
    for v in with_inputs {
        assert!(
            v.cached,
            "vertex {} ({}) not cached on the second run",
            v.name, v.digest
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn local_rootfs_is_reused_across_sessions() {
    let c = client().await;
    let bb = busybox_dir();
    let marker = nonce();
    let state = Exec::shell(
        rootfs_from_local("rootfs", bb.path()),
        format!("echo {marker} > /out/m"),
    )
    .env("PATH", "/bin")
    .mount(Mount::bind("/out", State::scratch()))
    .build()
    .unwrap()
    .output("/out")
    .unwrap();
    let opts = || SolveOptions {
        local_dirs: local_dirs(&[("rootfs", bb.path())]),
        ..Default::default()
    };
    let first = solve(&c, &state, opts()).await.unwrap();
    let second = solve(&c, &state, opts()).await.unwrap();
    // A stable shared key: the daemon keeps what it received, the second session sends nothing.
    assert!(
        first.local_bytes_sent > 1_000_000,
        "busybox was sent: {}",
        first.local_bytes_sent
    );
    assert_eq!(
        second.local_bytes_sent, 0,
        "unchanged files are not sent again"
    );
    // The local source itself is per session; everything built from its content is cached.
    let dependent: Vec<_> = second
        .vertices
        .iter()
        .filter(|v| !v.inputs.is_empty())
        .collect();
    assert_eq!(
        dependent.len(),
        2,
        "copy rootfs and the exec: {dependent:?}"
    );
    for v in dependent {
        assert!(v.cached, "{} not cached on the second run", v.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_layers_and_see_them_at_run_time() {
    let c = client().await;
    let a = State::scratch()
        .file(
            FileActions::new()
                .mkfile("/a", 0o644, b"from a\n".to_vec())
                .mkfile("/shared", 0o644, b"a\n".to_vec()),
            OpOptions::default(),
        )
        .unwrap();
    let b = State::scratch()
        .file(
            FileActions::new()
                .mkfile("/b", 0o644, b"from b\n".to_vec())
                .mkfile("/shared", 0o644, b"b\n".to_vec()),
            OpOptions::default(),
        )
        .unwrap();
    let merged = State::merge(&[a.clone(), b.clone()], OpOptions::named("merge a b"));
    let (_, tar) = solve_to_tar(&c, &merged, SolveOptions::default())
        .await
        .unwrap();
    let e = tar_entries(&tar);
    assert_eq!(e["a"].1, b"from a\n");
    assert_eq!(e["b"].1, b"from b\n");
    assert_eq!(e["shared"].1, b"b\n", "later layers win");

    let with_root = State::merge(&[rootfs_inline(), a, b], OpOptions::default());
    let seen = Exec::shell(with_root, "cat /a /b /shared > /out/seen")
        .env("PATH", "/bin")
        .mount(Mount::bind("/out", State::scratch()))
        .build()
        .unwrap()
        .output("/out")
        .unwrap();
    let (_, tar) = solve_to_tar(&c, &seen, SolveOptions::default())
        .await
        .unwrap();
    assert_eq!(tar_entries(&tar)["seen"].1, b"from a\nfrom b\nb\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_extracts_only_the_changes() {
    let c = client().await;
    let base = rootfs_inline();
    let after = Exec::shell(
        base.clone(),
        "mkdir -p /usr/share && echo x > /usr/share/new",
    )
    .env("PATH", "/bin")
    .build()
    .unwrap()
    .root();
    let diff = State::diff(&base, &after, OpOptions::named("diff"));
    let (_, tar) = solve_to_tar(&c, &diff, SolveOptions::default())
        .await
        .unwrap();
    let e = tar_entries(&tar);
    assert_eq!(e["usr/share/new"].1, b"x\n");
    assert!(
        !e.contains_key("bin/busybox"),
        "base files are not in the diff"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_mount_persists_between_solves() {
    let c = client().await;
    let id = format!("melange2-test-{}", nonce());
    let value = nonce();
    let write = Exec::shell(rootfs_inline(), format!("echo {value} > /cache/v"))
        .env("PATH", "/bin")
        .mount(Mount::cache("/cache", id.clone(), CacheSharing::Locked))
        .build()
        .unwrap()
        .root();
    solve(&c, &write, SolveOptions::default()).await.unwrap();
    let read = Exec::shell(rootfs_inline(), "cp /cache/v /out/v")
        .env("PATH", "/bin")
        .env("READ", value.clone())
        .mount(Mount::cache("/cache", id, CacheSharing::Locked))
        .mount(Mount::bind("/out", State::scratch()))
        .build()
        .unwrap()
        .output("/out")
        .unwrap();
    let (_, tar) = solve_to_tar(&c, &read, SolveOptions::default())
        .await
        .unwrap();
    assert_eq!(tar_entries(&tar)["v"].1, format!("{value}\n").into_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_visible_in_the_step_and_absent_from_the_output() {
    let c = client().await;
    let secret = format!("s3cret-{}", nonce());
    let state = Exec::shell(
        rootfs_inline(),
        format!(
            "set -e; test \"$(cat /run/secrets/token)\" = \"{secret}\"; \
             test \"$TOKEN\" = \"{secret}\"; echo ok > /proof"
        ),
    )
    .env("PATH", "/bin")
    .mount(Mount::secret("/run/secrets/token", "token"))
    .secret_env("TOKEN", "token")
    .build()
    .unwrap()
    .root();
    let (_, tar) = solve_to_tar(
        &c,
        &state,
        SolveOptions {
            secrets: BTreeMap::from([("token".to_string(), secret.clone().into_bytes())]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e = tar_entries(&tar);
    assert_eq!(e["proof"].1, b"ok\n");
    assert!(
        !e.contains_key("run/secrets/token"),
        "no secret file in the output"
    );
    for (path, (_, data)) in &e {
        assert!(
            !data.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret leaked into {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_step_reports_exit_code_name_and_log_tail() {
    let c = client().await;
    let state = Exec::shell(
        rootfs_inline(),
        format!(
            "echo starting {}; echo 'something broke' >&2; exit 3",
            nonce()
        ),
    )
    .env("PATH", "/bin")
    .options(OpOptions::named("run: failing step"))
    .build()
    .unwrap()
    .root();
    let err = solve(&c, &state, SolveOptions::default())
        .await
        .expect_err("the step exits 3");
    let BuildkitError::Solve(e) = err else {
        panic!("expected a solve error, got {err}");
    };
    assert_eq!(e.exit_code, Some(3), "{e}");
    assert_eq!(e.step.as_deref(), Some("run: failing step"), "{e}");
    assert!(
        e.log_tail.iter().any(|l| l.contains("something broke")),
        "{:?}",
        e.log_tail
    );
    let shown = e.to_string();
    assert!(
        shown.contains("exit code 3") && shown.contains("something broke"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_local_dir_is_a_clear_error() {
    let c = client().await;
    let bb = busybox_dir();
    let state = rootfs_from_local("not-served", bb.path());
    let err = solve(&c, &state, SolveOptions::default())
        .await
        .expect_err("the session does not serve that directory")
        .to_string();
    assert!(err.contains("not-served"), "{err}");
}

/// Serve `body` for every request on 127.0.0.1 (HEAD gets the headers only).
fn serve_http(body: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hello.txt", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        for conn in listener.incoming().take(8) {
            let Ok(mut s) = conn else { break };
            let mut req = [0u8; 4096];
            let n = s.read(&mut req).unwrap_or(0);
            let head = String::from_utf8_lossy(&req[..n]).starts_with("HEAD");
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if !head {
                let _ = s.write_all(&body);
            }
        }
    });
    (url, h)
}

#[tokio::test(flavor = "multi_thread")]
async fn http_source_with_checksum() {
    use melange2_buildkit::llb::HttpSource;
    use sha2::Digest;
    let c = client().await;
    let body = format!("payload {}\n", nonce()).into_bytes();
    let sum = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)));
    let (url, _server) = serve_http(body.clone());
    let src = HttpSource::new(url.clone())
        .checksum(sum)
        .filename("payload.txt")
        .perm(0o600)
        .build();
    let (_, tar) = solve_to_tar(&c, &src, SolveOptions::default())
        .await
        .unwrap();
    let e = tar_entries(&tar);
    assert_eq!(e["payload.txt"].1, body);
    assert_eq!(e["payload.txt"].0.mode().unwrap() & 0o777, 0o600);

    // A wrong checksum is refused by the daemon.
    let (url, _server) = serve_http(b"other content".to_vec());
    let bad = HttpSource::new(url)
        .checksum(format!("sha256:{}", "0".repeat(64)))
        .build();
    let err = solve(&c, &bad, SolveOptions::default())
        .await
        .expect_err("checksum mismatch")
        .to_string();
    assert!(
        err.contains("digest mismatch") || err.contains("checksum"),
        "{err}"
    );
}
