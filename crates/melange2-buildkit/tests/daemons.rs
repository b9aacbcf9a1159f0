//! Several buildkitd daemons on one machine (scripts/buildkit.sh start NAME): they run side by
//! side with their own state, and `stop NAME` takes down a daemon with its build containers.

mod common;
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use melange2_buildkit::SolveOptions;
use melange2_buildkit::llb::{Exec, Mount, OpOptions, State};
use support::{Daemon, processes_mentioning};

fn nonce() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{t:x}-{}", std::process::id())
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn named_daemons_run_side_by_side_and_stop_cleanly() {
    let tag = std::process::id();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Daemon::start(&format!("pool-a-{tag}")));
        let b = s.spawn(|| Daemon::start(&format!("pool-b-{tag}")));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.addr, b.addr);
    let (ca, cb, cd) = (a.client().await, b.client().await, client().await);

    // Three daemons (the usual one included), three workers with their own ids.
    let mut ids = BTreeSet::new();
    for c in [&ca, &cb, &cd] {
        let w = c.workers().await.unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        ids.insert(w[0].id.clone());
    }
    assert_eq!(ids.len(), 3, "worker ids {ids:?}");

    // Both extra daemons build at the same time.
    let who = |name: &str| {
        Exec::shell(
            rootfs_inline(),
            format!("sleep 1; echo {name} {} > /out/who", nonce()),
        )
        .env("PATH", "/bin")
        .mount(Mount::bind("/out", State::scratch()))
        .build()
        .unwrap()
        .output("/out")
        .unwrap()
    };
    let (sa, sb) = (who("a"), who("b"));
    let (ra, rb) = tokio::join!(
        solve_to_tar(&ca, &sa, SolveOptions::default()),
        solve_to_tar(&cb, &sb, SolveOptions::default())
    );
    assert!(tar_entries(&ra.unwrap().1)["who"].1.starts_with(b"a "));
    assert!(tar_entries(&rb.unwrap().1)["who"].1.starts_with(b"b "));

    // A long step on `a`: its container runs under a's own runc state dir.
    let marker = format!("long-step-{}", nonce());
    let long = Exec::shell(
        rootfs_inline(),
        format!("echo started; sleep 600; echo {marker}"),
    )
    .env("PATH", "/bin")
    .options(OpOptions::named("run: sleep"))
    .build()
    .unwrap()
    .root();
    let ca2 = ca.clone();
    let running = tokio::spawn(async move { solve(&ca2, &long, SolveOptions::default()).await });
    wait_for("the long step's shell", || {
        !processes_mentioning(&marker).is_empty()
    })
    .await;
    let runc_root = a.state_dir().join("runc");
    let containers: Vec<String> = std::fs::read_dir(&runc_root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        containers.len(),
        1,
        "one container in {}",
        runc_root.display()
    );
    assert!(
        !std::path::Path::new("/run/runc")
            .join(&containers[0])
            .exists(),
        "the container is not in the shared /run/runc"
    );
    let state = a.state_dir().to_string_lossy().into_owned();
    assert!(
        processes_mentioning(&state)
            .iter()
            .any(|(_, cmd)| cmd.contains("runc") && cmd.contains("run")),
        "runc runs with a's root: {:?}",
        processes_mentioning(&state)
    );

    // Stopping `a` takes down the daemon, runc and the step's processes, and waits for them.
    let pid = a.pid().expect("a runs");
    a.stop();
    assert_eq!(a.pid(), None);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "buildkitd {pid} is gone"
    );
    assert_eq!(
        processes_mentioning(&marker),
        vec![],
        "the step's shell is gone"
    );
    assert_eq!(processes_mentioning(&state), vec![], "nothing of a is left");
    let err = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the solve ends when its daemon goes")
        .unwrap()
        .expect_err("its daemon was stopped");
    assert!(!err.to_string().is_empty());

    // `b` and the usual daemon are untouched.
    cb.workers().await.unwrap();
    cd.workers().await.unwrap();
    b.stop();
    assert_eq!(b.pid(), None);
}
