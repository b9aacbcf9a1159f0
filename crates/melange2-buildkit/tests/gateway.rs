//! The gateway against the real buildkitd (BUILDKIT_HOST): a failed step's container, reopened
//! on its mounts as they were at the failure.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use futures::FutureExt;
use melange2_buildkit::debug::{ExportFormat, OnFailure, failure_hook};
use melange2_buildkit::llb::{Exec, NetMode, OpOptions};
use melange2_buildkit::{BuildkitError, FailedStep, ProcessSpec, SolveOptions};

/// What the hook saw, for the test to check after the solve.
#[derive(Default, Debug)]
struct Seen {
    step: Option<String>,
    marker: String,
    process: String,
    listing: Vec<String>,
    file: Vec<u8>,
    exit_codes: Vec<u32>,
}

async fn inspect(step: &FailedStep, seen: &Mutex<Seen>) -> Result<(), BuildkitError> {
    let meta = step
        .process()
        .cloned()
        .expect("the failed step ran a process");
    let spec = |args: &[&str]| ProcessSpec {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: meta.env.clone(),
        cwd: meta.cwd.clone(),
        user: meta.user.clone(),
        tty: false,
        secret_env: vec![],
    };
    // The first process of a container is its init: the container lives as long as it does,
    // so each process here gets a container of its own (each on the same failed mounts).
    let ctr = step.container().await?;
    let (code, out) = ctr
        .start(spec(&["/bin/cat", "/tmp/marker"]))
        .await?
        .wait_output()
        .await?;
    let marker = String::from_utf8_lossy(out.get(&1).map_or(&[][..], |v| v)).into_owned();
    // files are readable once the process has ended too
    let listing = ctr
        .read_dir("/tmp")
        .await?
        .into_iter()
        .map(|s| s.path)
        .collect();
    let file = ctr.read_file("/tmp/marker", 0).await?;
    ctr.release().await?;
    // stdin reaches the process; its exit code comes back
    let ctr = step.container().await?;
    let p = ctr
        .start(spec(&[
            "/bin/sh",
            "-c",
            "read line; echo \"$line FOO=$FOO cwd=$(pwd) uid=$(/bin/busybox id -u)\"; exit 4",
        ]))
        .await?;
    let input = p.input();
    input.stdin(b"hello from stdin\n".to_vec()).await?;
    input.close_stdin().await?;
    let (code2, out2) = p.wait_output().await?;
    let process = String::from_utf8_lossy(out2.get(&1).map_or(&[][..], |v| v)).into_owned();
    ctr.release().await?;
    let mut s = seen.lock().unwrap();
    s.step = step.error.step.clone();
    s.marker = marker;
    s.process = process;
    s.listing = listing;
    s.file = file;
    s.exit_codes = vec![code, code2];
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_step_container_has_the_files_env_and_cwd_of_the_failure() {
    let c = client().await;
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let script = format!("echo 'left behind {nonce}' > marker && echo failing && exit 3");
    let failing = Exec::shell(rootfs_inline(), &script)
        .env("PATH", "/bin")
        .env("FOO", "bar")
        .cwd("/tmp")
        .user("1000:1000")
        .network(NetMode::None)
        .options(OpOptions::named("run: leave a marker and fail"))
        .build()
        .unwrap();
    let def = failing.root().marshal().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let hook_seen = seen.clone();
    let hook_error = Arc::new(Mutex::new(None));
    let hook_err = hook_error.clone();
    let opts = SolveOptions {
        on_failure: Some(Box::new(move |step: &FailedStep| {
            async move {
                if let Err(e) = inspect(step, &hook_seen).await {
                    *hook_err.lock().unwrap() = Some(e.to_string());
                }
            }
            .boxed()
        })),
        ..Default::default()
    };
    let err = c
        .solve(&def, opts, &mut |_| {})
        .await
        .expect_err("the step fails");
    assert_eq!(*hook_error.lock().unwrap(), None);
    let BuildkitError::Solve(e) = err else {
        panic!("not a step failure: {err}");
    };
    assert_eq!(e.exit_code, Some(3), "{e}");
    assert_eq!(e.step.as_deref(), Some("run: leave a marker and fail"));
    let s = seen.lock().unwrap();
    assert_eq!(s.step.as_deref(), Some("run: leave a marker and fail"));
    assert_eq!(s.marker, format!("left behind {nonce}\n"));
    assert_eq!(s.file, format!("left behind {nonce}\n").into_bytes());
    assert_eq!(s.listing, vec!["marker".to_string()]);
    assert_eq!(s.process, "hello from stdin FOO=bar cwd=/tmp uid=1000\n");
    assert_eq!(s.exit_codes, vec![0, 4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_build_that_succeeds_exports_as_usual() {
    let c = client().await;
    let ok = Exec::shell(rootfs_inline(), "echo done > /done")
        .env("PATH", "/bin")
        .network(NetMode::None)
        .options(OpOptions::named("run: succeed"))
        .build()
        .unwrap();
    let called = Arc::new(Mutex::new(false));
    let flag = called.clone();
    let opts = SolveOptions {
        on_failure: Some(Box::new(move |_: &FailedStep| {
            async move {
                *flag.lock().unwrap() = true;
            }
            .boxed()
        })),
        ..Default::default()
    };
    let (_, tar) = solve_to_tar(&c, &ok.root(), opts).await.unwrap();
    let entries = tar_entries(&tar);
    assert_eq!(entries["done"].1, b"done\n");
    assert!(entries.contains_key("bin/busybox"));
    assert!(!*called.lock().unwrap());
}

/// A step that leaves files behind (a regular file, a symlink, a setuid file, a directory
/// given to 1000, whose owner the export reads from the container: the daemon's ReadDir
/// reports none) and fails, run with `on_failure` doing `action`.
async fn fail_with(action: OnFailure, nonce: &str) -> BuildkitError {
    let c = client().await;
    let script = format!(
        "mkdir -p /work/out && echo 'left behind {nonce}' > /work/out/marker && \
         ln -s out/marker /work/link && echo x > /work/suid && chmod 4755 /work/suid && \
         chown 1000:1000 /work/out && exit 7"
    );
    let failing = Exec::shell(rootfs_inline(), &script)
        .env("PATH", "/bin")
        .network(NetMode::None)
        .options(OpOptions::named("run: write and fail"))
        .build()
        .unwrap();
    let def = failing.root().marshal().unwrap();
    let opts = SolveOptions {
        on_failure: Some(failure_hook(action, "test/x86_64".into())),
        ..Default::default()
    };
    c.solve(&def, opts, &mut |_| {})
        .await
        .expect_err("the step fails")
}

#[tokio::test(flavor = "multi_thread")]
async fn export_on_failure_writes_the_failed_root_filesystem_as_a_tarball() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("failed.tar");
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let action = OnFailure::Export {
        format: ExportFormat::Tarball,
        path: path.clone(),
    };
    let err = fail_with(action, &nonce).await;
    let BuildkitError::Solve(e) = err else {
        panic!("not a step failure: {err}");
    };
    assert_eq!(e.exit_code, Some(7));
    let mut ar = tar::Archive::new(std::fs::File::open(&path).expect("the tarball is written"));
    let mut seen = std::collections::BTreeMap::new();
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let p = entry.path().unwrap().display().to_string();
        let h = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        seen.insert(p, (h, data));
    }
    let (_, marker) = &seen["work/out/marker"];
    assert_eq!(marker, format!("left behind {nonce}\n").as_bytes());
    let (link, _) = &seen["work/link"];
    assert_eq!(link.entry_type(), tar::EntryType::Symlink);
    assert_eq!(
        link.link_name().unwrap().unwrap().to_str(),
        Some("out/marker")
    );
    assert_eq!(seen["work/suid"].0.mode().unwrap(), 0o4755);
    let (out, _) = &seen["work/out"];
    assert_eq!(out.entry_type(), tar::EntryType::Directory);
    assert_eq!(out.mode().unwrap(), 0o755);
    assert_eq!((out.uid().unwrap(), out.gid().unwrap()), (1000, 1000));
    let (marker_h, _) = &seen["work/out/marker"];
    assert_eq!((marker_h.uid().unwrap(), marker_h.gid().unwrap()), (0, 0));
    assert_eq!(
        seen["bin/busybox"].1,
        std::fs::read("/bin/busybox").unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn export_on_failure_writes_the_failed_root_filesystem_as_a_directory() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rootfs");
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let action = OnFailure::Export {
        format: ExportFormat::Dir,
        path: path.clone(),
    };
    fail_with(action, &nonce).await;
    assert_eq!(
        std::fs::read_to_string(path.join("work/out/marker")).unwrap(),
        format!("left behind {nonce}\n")
    );
    assert_eq!(
        std::fs::read_link(path.join("work/link")).unwrap(),
        std::path::PathBuf::from("out/marker")
    );
    let suid = std::fs::metadata(path.join("work/suid")).unwrap();
    assert_eq!(suid.permissions().mode() & 0o7777, 0o4755);
    let out = std::fs::metadata(path.join("work/out")).unwrap();
    assert_eq!((out.uid(), out.gid()), (1000, 1000));

    // a second failure does not write into a directory that is not empty
    let again = OnFailure::Export {
        format: ExportFormat::Dir,
        path: path.clone(),
    };
    fail_with(again, "second").await;
    assert_eq!(
        std::fs::read_to_string(path.join("work/out/marker")).unwrap(),
        format!("left behind {nonce}\n")
    );
}
