//! Sharing BuildKit's cache through a registry: export from the daemon of BUILDKIT_HOST into a
//! registry of our own (scripts/registry.sh), import into a second, fresh daemon
//! (scripts/buildkit.sh start NAME).

mod common;
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use melange2_buildkit::llb::{Exec, Mount, OpOptions, State};
use melange2_buildkit::progress::{Progress, ProgressMode, Summary};
use melange2_buildkit::{BuildkitError, CacheOption, Client, Exporter, SolveOptions, SolveResult};
use support::{Daemon, Registry};

fn nonce() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{t:x}-{}", std::process::id())
}

const STEP: &str = "run: make a random id";
const LOCAL_STEP: &str = "run: make a random id on a local rootfs";

/// A step whose output differs on every run: if a later solve yields the same output, it was
/// taken from the cache.
fn random_id_on(rootfs: State, name: &str, file: &str, marker: &str) -> State {
    Exec::shell(
        rootfs,
        format!("cat /proc/sys/kernel/random/uuid > /out/{file}; echo {marker} > /out/marker"),
    )
    .env("PATH", "/bin")
    .mount(Mount::bind("/out", State::scratch()))
    .options(OpOptions::named(name))
    .build()
    .unwrap()
    .output("/out")
    .unwrap()
}

fn random_id_step(marker: &str) -> State {
    random_id_on(rootfs_inline(), STEP, "id", marker)
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Solved {
    result: Result<SolveResult, BuildkitError>,
    tar: Vec<u8>,
    /// What the plain progress renderer printed.
    progress: String,
    summary: Summary,
}

/// Solve with a tar export and a plain progress renderer.
async fn solve_plain(c: &Client, state: &State, mut opts: SolveOptions) -> Solved {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tar");
    let file = tokio::fs::File::create(&path).await.unwrap();
    opts.exporters.push(Exporter::tar(Box::new(file)));
    let out = Shared::default();
    let mut progress = Progress::to_writer(ProgressMode::Plain, false, Box::new(out.clone()));
    let def = state.marshal().unwrap();
    let result = c.solve(&def, opts, &mut |s| progress.handle(s)).await;
    let summary = progress.finish();
    let progress = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
    Solved {
        result,
        tar: std::fs::read(&path).unwrap_or_default(),
        progress,
        summary,
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_cache_is_exported_and_imported_by_a_fresh_daemon() {
    let registry = Registry::start();
    let (code, _) = registry.get("/v2/");
    assert_eq!(code, 200, "the registry answers /v2/");

    // One step on an inline rootfs, one on a rootfs sent over the session (as melange2 sends
    // packages): the second daemon must match both.
    let marker = nonce();
    let bb = busybox_dir();
    let state = State::merge(
        &[
            random_id_step(&marker),
            random_id_on(
                rootfs_from_local("rootfs", bb.path()),
                LOCAL_STEP,
                "id2",
                &marker,
            ),
        ],
        OpOptions::default(),
    );
    let locals = || local_dirs(&[("rootfs", bb.path())]);
    let base = CacheOption::parse_export(&format!(
        "type=registry,ref={}/cache,mode=max,registry.insecure=true",
        registry.addr
    ))
    .unwrap();
    let export = base.with_tag("t1");
    assert_eq!(
        export.reference(),
        Some(format!("{}/cache:t1", registry.addr).as_str())
    );

    // 1. Build on the usual daemon and export the cache.
    let c = client().await;
    let first = solve_plain(
        &c,
        &state,
        SolveOptions {
            cache_exports: vec![export.clone()],
            local_dirs: locals(),
            ..Default::default()
        },
    )
    .await;
    let res = first
        .result
        .unwrap_or_else(|e| panic!("{e}\n{}", first.progress));
    for name in [STEP, LOCAL_STEP] {
        let step = res.vertices.iter().find(|v| v.name == name).unwrap();
        assert!(!step.cached, "a fresh marker runs the first time: {name}");
    }
    let exported = res
        .vertices
        .iter()
        .find(|v| v.name.starts_with("exporting cache"))
        .unwrap_or_else(|| panic!("no export vertex in {:?}", res.vertices));
    assert_eq!(exported.name, "exporting cache to registry");
    assert!(
        exported.error.is_none() && exported.duration.is_some(),
        "{exported:?}"
    );
    assert!(
        first.progress.contains("exporting cache to registry")
            && first.progress.contains("preparing build cache for export"),
        "the export shows in the progress:\n{}",
        first.progress
    );
    let ids = tar_entries(&first.tar);
    let (id, id2) = (ids["id"].1.clone(), ids["id2"].1.clone());
    assert_eq!(id.len(), 37, "a uuid and a newline: {id:?}");
    assert_ne!(id, id2);

    assert!(
        registry.tags("cache").contains(&"t1".to_string()),
        "the registry lists the tag: {:?}",
        registry.tags("cache")
    );

    // 2. A second, fresh daemon with nothing in its cache imports it.
    let fresh = Daemon::start(&format!("cache-import-{}", std::process::id()));
    let c2 = fresh.client().await;
    let import = CacheOption::parse_import(&format!(
        "type=registry,ref={}/cache:t1,registry.insecure=true",
        registry.addr
    ))
    .unwrap();
    let second = solve_plain(
        &c2,
        &state,
        SolveOptions {
            cache_imports: vec![import],
            local_dirs: locals(),
            ..Default::default()
        },
    )
    .await;
    let res2 = second
        .result
        .unwrap_or_else(|e| panic!("{e}\n{}", second.progress));
    for name in [STEP, LOCAL_STEP] {
        let step = res2.vertices.iter().find(|v| v.name == name).unwrap();
        assert!(
            step.cached,
            "{name} comes from the imported cache:\n{}",
            second.progress
        );
    }
    assert!(
        res2.vertices
            .iter()
            .any(|v| v.name.starts_with("importing cache manifest from") && v.error.is_none()),
        "{:?}",
        res2.vertices
    );
    let e = tar_entries(&second.tar);
    assert_eq!(
        e["id"].1, id,
        "the output is the first build's, pulled from the registry"
    );
    assert_eq!(e["id2"].1, id2);
    assert_eq!(e["marker"].1, format!("{marker}\n").into_bytes());
    fresh.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_export_failure_is_a_clear_error() {
    let c = client().await;
    let state = random_id_step(&nonce());
    let target = format!("127.0.0.1:{}/cache:unreachable", closed_port());
    let export = CacheOption::parse_export(&format!(
        "type=registry,ref={target},mode=max,registry.insecure=true"
    ))
    .unwrap();
    let solved = solve_plain(
        &c,
        &state,
        SolveOptions {
            cache_exports: vec![export.clone()],
            ..Default::default()
        },
    )
    .await;
    let err = solved
        .result
        .expect_err("nothing listens on the registry port");
    let BuildkitError::CacheExport { targets, message } = &err else {
        panic!("expected a cache export error, got {err}");
    };
    assert_eq!(targets, &target);
    assert!(!message.is_empty());
    let shown = err.to_string();
    assert!(
        shown.contains("the build succeeded")
            && shown.contains(&target)
            && shown.contains("ignore-error=true"),
        "{shown}"
    );
    assert!(
        solved.progress.contains("exporting cache to registry"),
        "{}",
        solved.progress
    );

    // With ignore-error=true the daemon goes on without the export.
    let solved = solve_plain(
        &c,
        &state,
        SolveOptions {
            cache_exports: vec![export.attr("ignore-error", "true")],
            ..Default::default()
        },
    )
    .await;
    solved
        .result
        .unwrap_or_else(|e| panic!("ignore-error=true: {e}\n{}", solved.progress));
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_cache_import_is_a_warning_not_an_error() {
    let c = client().await;
    let import = CacheOption::registry(format!("127.0.0.1:{}/cache:none", closed_port()))
        .attr("registry.insecure", "true");
    let solved = solve_plain(
        &c,
        &random_id_step(&nonce()),
        SolveOptions {
            cache_imports: vec![import],
            ..Default::default()
        },
    )
    .await;
    let res = solved
        .result
        .unwrap_or_else(|e| panic!("an unreachable cache must not fail the build: {e}"));
    assert!(
        res.vertices
            .iter()
            .any(|v| v.name.starts_with("importing cache manifest from") && v.error.is_some()),
        "{:?}",
        res.vertices
    );
    assert!(solved.progress.contains("WARNING:"), "{}", solved.progress);
    assert_eq!(solved.summary.errors, 0, "{}", solved.progress);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_cache_options_fail_before_the_solve() {
    let c = client().await;
    let state = random_id_step("x");
    let err = common::solve(
        &c,
        &state,
        SolveOptions {
            cache_exports: vec![CacheOption {
                kind: "local".into(),
                attrs: [("dest".to_string(), "/tmp/x".to_string())].into(),
            }],
            ..Default::default()
        },
    )
    .await
    .expect_err("local is refused")
    .to_string();
    assert!(
        err.starts_with("--cache-to") && err.contains("not supported"),
        "{err}"
    );
    let err = common::solve(
        &c,
        &state,
        SolveOptions {
            cache_imports: vec![CacheOption::parse("type=inline").unwrap()],
            ..Default::default()
        },
    )
    .await
    .expect_err("inline is no import")
    .to_string();
    assert!(err.starts_with("--cache-from"), "{err}");
}
