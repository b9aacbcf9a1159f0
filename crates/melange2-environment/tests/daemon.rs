//! Environments assembled in the real buildkitd of `make test` (BUILDKIT_HOST), from a signed
//! repository the test builds with our own APK writer (busybox from Debian's busybox-static).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use melange2_apk::{PackageTree, PkgInfo, RepoBuilder, WrittenPackage, generate_key};
use melange2_buildkit::llb::{Exec, Mount, OpOptions, State};
use melange2_buildkit::progress::VertexSummary;
use melange2_buildkit::{Address, Client, Exporter, SolveOptions, TlsFiles};
use melange2_environment::{EnvironmentRequest, Group, PackageFile, User, assemble};

const APPLETS: &[&str] = &[
    "/bin/sh",
    "/bin/ls",
    "/bin/cat",
    "/bin/id",
    "/bin/readlink",
    "/bin/stat",
    "/bin/grep",
    "/usr/bin/env",
    "/usr/bin/find",
    "/bin/echo",
    "/bin/mkdir",
];

struct Fixture {
    _dir: tempfile::TempDir,
    keyfile: PathBuf,
    packages: BTreeMap<String, WrittenPackage>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_key(2048, "env-test.rsa").unwrap();
    let keyfile = dir.path().join("env-test.rsa.pub");
    std::fs::write(&keyfile, key.public_key_pem().unwrap()).unwrap();
    let mut repo = RepoBuilder::new(dir.path().join("repo")).signer(key);
    let mut packages = BTreeMap::new();

    // A usrmerged base layout: /lib and /bin are symlinks into /usr.
    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/lib", 0o755).unwrap();
    t.add_dir("usr/bin", 0o755).unwrap();
    t.add_dir("etc", 0o755).unwrap();
    t.add_symlink("lib", "usr/lib").unwrap();
    t.add_symlink("bin", "usr/bin").unwrap();
    t.add_file(
        "etc/passwd",
        0o644,
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
    )
    .unwrap();
    t.add_file("etc/os-release", 0o644, "ID=melange2-test\n")
        .unwrap();
    let info = PkgInfo::new("baselayout", "1.0-r0", "x86_64");
    packages.insert("baselayout".into(), repo.add(&info, &t).unwrap());

    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/bin", 0o755).unwrap();
    t.add_file(
        "usr/bin/busybox",
        0o755,
        std::fs::read("/bin/busybox").unwrap(),
    )
    .unwrap();
    t.add_dir("etc", 0o755).unwrap();
    t.add_dir("etc/busybox-paths.d", 0o755).unwrap();
    t.add_file(
        "etc/busybox-paths.d/busybox",
        0o644,
        APPLETS.join("\n") + "\n",
    )
    .unwrap();
    let mut info = PkgInfo::new("busybox", "1.36.1-r0", "x86_64");
    info.depends.push("baselayout".into());
    packages.insert("busybox".into(), repo.add(&info, &t).unwrap());

    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/bin", 0o755).unwrap();
    t.add_file(
        "usr/bin/hello",
        0o755,
        "#!/bin/sh\necho hello from the environment\n",
    )
    .unwrap();
    t.add_file("usr/bin/suid-tool", 0o4755, "#!/bin/sh\n")
        .unwrap();
    t.add_dir("usr/share", 0o755).unwrap();
    t.add_dir("usr/share/hello", 0o755).unwrap();
    let e = t
        .add_file("usr/share/hello/owned", 0o640, "data\n")
        .unwrap();
    // Not 1000: the writer maps the build user to root, as melange does.
    e.uid = 1234;
    e.gid = 1235;
    let mut info = PkgInfo::new("hello", "2.0-r1", "x86_64");
    info.depends.push("busybox".into());
    packages.insert("hello".into(), repo.add(&info, &t).unwrap());

    for (name, size) in [("extra", 3000usize), ("another", 5000usize)] {
        let mut t = PackageTree::new();
        t.add_dir("usr", 0o755).unwrap();
        t.add_dir("usr/share", 0o755).unwrap();
        t.add_file(&format!("usr/share/{name}.dat"), 0o644, vec![b'x'; size])
            .unwrap();
        let info = PkgInfo::new(name, "1.0-r0", "x86_64");
        packages.insert(name.into(), repo.add(&info, &t).unwrap());
    }
    // Content no daemon has seen before: this run's time and pid.
    let nonce = format!(
        "{:?} {}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH),
        std::process::id()
    );
    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/share", 0o755).unwrap();
    t.add_file("usr/share/fresh.dat", 0o644, nonce.repeat(1000))
        .unwrap();
    let info = PkgInfo::new("fresh", "1.0-r0", "x86_64");
    packages.insert("fresh".into(), repo.add(&info, &t).unwrap());
    repo.finish().unwrap();
    Fixture {
        _dir: dir,
        keyfile,
        packages,
    }
}

fn request(f: &Fixture, names: &[&str]) -> EnvironmentRequest {
    EnvironmentRequest {
        base: None,
        packages: names
            .iter()
            .map(|n| {
                let w = &f.packages[*n];
                PackageFile {
                    entry: w.index_entry(),
                    file: w.path.clone().unwrap(),
                }
            })
            .collect(),
        world: names.iter().map(|s| s.to_string()).collect(),
        repositories: vec!["https://packages.example/os".into()],
        keys: vec![f.keyfile.clone()],
        users: vec![User {
            username: "build".into(),
            uid: 1000,
            gid: 1000,
            home: None,
            shell: None,
        }],
        groups: vec![Group {
            groupname: "build".into(),
            gid: 1000,
            members: vec!["build".into()],
        }],
        arch: "x86_64".into(),
        source_date_epoch: 0,
    }
}

async fn client() -> Client {
    let host = std::env::var("BUILDKIT_HOST")
        .expect("BUILDKIT_HOST is not set: run with `make test`, which starts buildkitd");
    Client::connect(&Address::parse(&host).unwrap(), &TlsFiles::default())
        .await
        .unwrap()
}

async fn solve(
    c: &Client,
    state: &State,
    local_dirs: &BTreeMap<String, PathBuf>,
    export: Option<&Path>,
) -> Vec<VertexSummary> {
    let mut exporters = vec![];
    if let Some(p) = export {
        let f = tokio::fs::File::create(p).await.unwrap();
        exporters.push(Exporter::tar(Box::new(f)));
    }
    let def = state.marshal().unwrap();
    c.solve(
        &def,
        SolveOptions {
            local_dirs: local_dirs.clone(),
            exporters,
            ..Default::default()
        },
        &mut |_| {},
    )
    .await
    .unwrap()
    .vertices
}

fn tar_map(path: &Path) -> BTreeMap<String, (tar::Header, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let f = std::fs::File::open(path).unwrap();
    let mut ar = tar::Archive::new(f);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let h = e.header().clone();
        let mut d = Vec::new();
        e.read_to_end(&mut d).unwrap();
        out.insert(p, (h, d));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_has_exactly_the_expected_files_and_db() {
    let f = fixture();
    let env = assemble(&request(&f, &["baselayout", "busybox", "hello"])).unwrap();
    let c = client().await;
    let out = tempfile::tempdir().unwrap();
    let tar_path = out.path().join("rootfs.tar");
    solve(&c, &env.rootfs, &env.local_dirs, Some(&tar_path)).await;
    let t = tar_map(&tar_path);

    // Package files with their modes and owners; no control entries.
    assert_eq!(t["usr/bin/hello"].0.mode().unwrap() & 0o7777, 0o755);
    assert_eq!(t["usr/bin/suid-tool"].0.mode().unwrap() & 0o7777, 0o4755);
    let (h, d) = &t["usr/share/hello/owned"];
    assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (1234, 1235));
    assert_eq!(h.mode().unwrap() & 0o777, 0o640);
    assert_eq!(d, b"data\n");
    for k in t.keys() {
        assert!(
            !k.starts_with(".PKGINFO") && !k.starts_with(".SIGN."),
            "control entry {k}"
        );
    }
    // usrmerge kept: /lib and /bin are still symlinks, the db went behind them.
    assert_eq!(t["lib"].0.entry_type(), tar::EntryType::Symlink);
    assert_eq!(t["bin"].0.entry_type(), tar::EntryType::Symlink);
    let installed = String::from_utf8(t["usr/lib/apk/db/installed"].1.clone()).unwrap();
    for p in [
        "P:baselayout",
        "P:busybox",
        "P:hello",
        "V:2.0-r1",
        "R:hello",
        "R:suid-tool",
    ] {
        assert!(
            installed.contains(p),
            "{p} missing from installed db:\n{installed}"
        );
    }
    let hello_sum = f.packages["hello"].checksum.clone();
    assert!(installed.contains(&format!("C:{hello_sum}")));
    assert_eq!(t["etc/apk/world"].1, b"baselayout\nbusybox\nhello\n");
    assert_eq!(t["etc/apk/arch"].1, b"x86_64\n");
    assert_eq!(
        t["etc/apk/repositories"].1,
        b"https://packages.example/os\n"
    );
    assert!(t.contains_key("etc/apk/keys/env-test.rsa.pub"));
    let passwd = String::from_utf8(t["etc/passwd"].1.clone()).unwrap();
    assert!(
        passwd.contains("nobody:x:65534"),
        "shipped entries kept: {passwd}"
    );
    assert!(
        passwd.contains("build:x:1000:1000:build:/home/build:/bin/sh"),
        "{passwd}"
    );
    assert_eq!(t["etc/group"].1, b"root:x:0:root\nbuild:x:1000:build\n");
    // Busybox applet links, resolved behind /bin → usr/bin.
    let (h, _) = &t["usr/bin/ls"];
    assert_eq!(h.entry_type(), tar::EntryType::Symlink);
    assert_eq!(
        h.link_name().unwrap().unwrap().to_str(),
        Some("/bin/busybox")
    );
    assert_eq!(
        t["usr/bin/hello"].0.entry_type(),
        tar::EntryType::Regular,
        "no link over files"
    );
    assert_eq!(t["usr/bin"].0.mode().unwrap() & 0o777, 0o755);

    // And it runs: the shell, the applets, the accounts.
    let check = Exec::shell(
        env.rootfs.clone(),
        "set -e; hello > /out/hello; id -u build > /out/uid; ls /usr/share/hello > /out/ls; \
         readlink /bin/sh > /out/sh; cat /etc/os-release > /out/os",
    )
    .env("PATH", "/usr/bin:/bin")
    .mount(Mount::bind("/out", State::scratch()))
    .options(OpOptions::named("run in environment"))
    .build()
    .unwrap()
    .output("/out")
    .unwrap();
    let tar2 = out.path().join("out.tar");
    solve(&c, &check, &env.local_dirs, Some(&tar2)).await;
    let o = tar_map(&tar2);
    assert_eq!(o["hello"].1, b"hello from the environment\n");
    assert_eq!(o["uid"].1, b"1000\n");
    assert_eq!(o["ls"].1, b"owned\n");
    assert_eq!(o["sh"].1, b"/bin/busybox\n");
    assert_eq!(o["os"].1, b"ID=melange2-test\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_a_package_keeps_every_other_layer_cached() {
    let f = fixture();
    let c = client().await;
    let before = assemble(&request(&f, &["baselayout", "busybox", "extra"])).unwrap();
    solve(&c, &before.rootfs, &before.local_dirs, None).await;
    // Same graph again: same digests.
    let again = assemble(&request(&f, &["baselayout", "busybox", "extra"])).unwrap();
    assert_eq!(
        again.rootfs.marshal().unwrap().vertex_digests,
        before.rootfs.marshal().unwrap().vertex_digests
    );

    let after = assemble(&request(&f, &["baselayout", "busybox", "extra", "another"])).unwrap();
    let vertices = solve(&c, &after.rootfs, &after.local_dirs, None).await;
    let by_name: BTreeMap<&str, &VertexSummary> =
        vertices.iter().map(|v| (v.name.as_str(), v)).collect();
    for old in ["baselayout-1.0-r0", "busybox-1.36.1-r0", "extra-1.0-r0"] {
        let v = by_name
            .get(format!("install {old}").as_str())
            .unwrap_or_else(|| panic!("no vertex for {old}: {:?}", by_name.keys()));
        assert!(v.cached, "layer of {old} was rebuilt");
    }
    let new = by_name["install another-1.0-r0"];
    assert!(!new.cached, "the new package's layer must be built");
}

/// The same environment assembled again and solved in a new session (a new client, as a
/// new `melange2 build` is): the daemon has every layer and not one byte of package content is
/// sent. The first solve, with a package no daemon has seen, does send.
#[tokio::test(flavor = "multi_thread")]
async fn a_warm_environment_sends_no_bytes() {
    let f = fixture();
    let names = ["baselayout", "busybox", "fresh"];
    let mut sent = Vec::new();
    // per run: the vertices with inputs that ran (not from the cache)
    let mut ran_per_run = Vec::new();
    for _ in 0..2 {
        let c = client().await;
        let env = assemble(&request(&f, &names)).unwrap();
        let r = c
            .solve(
                &env.rootfs.marshal().unwrap(),
                SolveOptions {
                    local_dirs: env.local_dirs.clone(),
                    ..Default::default()
                },
                &mut |_| {},
            )
            .await
            .unwrap();
        sent.push(r.local_bytes_sent);
        let ran: Vec<String> = r
            .vertices
            .iter()
            // sources are reported run even when all that uses them is cached
            .filter(|v| !v.cached && !v.inputs.is_empty())
            .map(|v| v.name.clone())
            .collect();
        ran_per_run.push(ran);
    }
    let fresh = f.packages["fresh"].file_size;
    assert!(
        sent[0] > 0 && sent[0] >= fresh,
        "cold: {} bytes sent, the fresh package alone is {fresh}",
        sent[0]
    );
    assert!(
        ran_per_run[0].iter().any(|n| n.contains("fresh-1.0-r0")),
        "cold: the fresh package's layer did not run: {:?}",
        ran_per_run[0]
    );
    assert_eq!(sent[1], 0, "warm: bytes sent");
    assert_eq!(
        ran_per_run[1],
        Vec::<String>::new(),
        "warm: vertices ran again"
    );
}

#[tokio::test]
async fn tampered_package_is_refused_before_solving() {
    let f = fixture();
    let mut req = request(&f, &["baselayout", "busybox"]);
    // Point busybox's entry at another package's file: checksums disagree.
    req.packages[1].file = f.packages["extra"].path.clone().unwrap();
    let err = assemble(&req).unwrap_err().to_string();
    assert!(err.contains("busybox-1.36.1-r0"), "{err}");
    assert!(err.contains("does not match the index"), "{err}");
}
