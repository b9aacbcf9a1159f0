//! End-to-end: repositories over HTTP on 127.0.0.1, as directories and as
//! file:// URLs; keys from files, directories and URLs; signature and
//! checksum refusals; the download cache.

mod common;
mod fixture;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Server, build_repo, other_signer, p, rt, signer};
use melange2_apk::Keyring;
use melange2_resolve::{Error, Options, Repositories, Resolution, resolve, resolve_blocking};

fn opts(repos: Vec<String>, keys: Vec<String>, cache: &Path) -> Options {
    Options {
        arch: "x86_64".into(),
        repositories: repos,
        keyring: keys,
        cache_dir: Some(cache.to_path_buf()),
        ..Options::default()
    }
}

fn run(o: &Options, request: &[&str]) -> Result<Resolution, Error> {
    common::init_logging();
    rt().block_on(resolve(o, request))
}

fn ids(r: &Resolution) -> Vec<(String, String, String)> {
    r.packages
        .iter()
        .map(|p| {
            (
                p.entry.name.clone(),
                p.entry.version.clone(),
                p.entry.checksum.clone(),
            )
        })
        .collect()
}

/// A copy of the shared fixture that a test may modify.
fn fixture_copy() -> tempfile::TempDir {
    let src = fixture::shared().dir.path();
    let dst = tempfile::tempdir().unwrap();
    for e in walkdir::WalkDir::new(src) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(src).unwrap();
        let to = dst.path().join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
    dst
}

fn http_repos(base: &str) -> Vec<String> {
    vec![
        format!("{base}/main"),
        format!("{base}/third"),
        format!("@local {base}/local"),
    ]
}

fn apk_gets(s: &Server) -> usize {
    s.hits().iter().filter(|h| h.path.ends_with(".apk")).count()
}

#[test]
fn http_directory_and_file_url_resolve_alike() {
    common::init_logging();
    let f = fixture::shared();
    let server = Server::start(f.dir.path());
    let cache = tempfile::tempdir().unwrap();
    let request = ["build-base", "localonly@local", "coreutils", "busybox"];

    let key_url = format!("{}/main/test.rsa.pub", server.base);
    let over_http = run(
        &opts(
            http_repos(&server.base),
            vec![key_url.clone()],
            cache.path(),
        ),
        &request,
    )
    .unwrap();
    let dir_keys = vec![f.key().display().to_string()];
    let over_dir = run(
        &opts(f.repositories(), dir_keys.clone(), cache.path()),
        &request,
    )
    .unwrap();
    let file_urls = vec![
        format!("file://{}", f.main().display()),
        format!("file://{}", f.third().display()),
        format!("@local file://{}", f.local().display()),
    ];
    let over_file = run(
        &opts(
            file_urls.clone(),
            vec![format!("file://{}", f.key().display())],
            cache.path(),
        ),
        &request,
    )
    .unwrap();

    assert_eq!(ids(&over_http), ids(&over_dir));
    assert_eq!(ids(&over_http), ids(&over_file));
    assert_eq!(over_http.packages.len(), 11);
    assert_eq!(over_http.repositories, http_repos(&server.base));
    assert_eq!(over_file.repositories, file_urls);
    assert_eq!(over_http.arch, "x86_64");
    assert_eq!(
        over_http.world,
        ["build-base", "busybox", "coreutils", "localonly@local"]
    );
    // the key fetched over HTTP keeps its file name and content
    assert_eq!(over_http.keys.len(), 1);
    assert_eq!(over_http.keys[0].file_name().unwrap(), "test.rsa.pub");
    assert_eq!(
        std::fs::read(&over_http.keys[0]).unwrap(),
        std::fs::read(f.key()).unwrap()
    );
    assert_eq!(over_dir.keys, [f.key()]);
    // repositories as configured, pinned ones with their tag
    let local = over_http
        .packages
        .iter()
        .find(|p| p.entry.name == "localonly")
        .unwrap();
    assert_eq!(local.repository, format!("@local {}/local", server.base));
    // cached files: absolute, named with the checksum, verifiable
    let keyring = Keyring::from_files(&[f.key()]).unwrap();
    for p in &over_http.packages {
        assert!(p.file.is_absolute());
        assert!(p.file.starts_with(cache.path()));
        let sha1 = melange2_apk::decode_q1(&p.entry.checksum).unwrap();
        let name = p.file.file_name().unwrap().to_str().unwrap();
        assert!(name.contains(&hex::encode(sha1)), "{name}");
        melange2_apk::verify_package(&p.file, &keyring, Some(&p.entry.checksum)).unwrap();
    }
    // replaces comes from .PKGINFO (indexes do not carry it)
    let by = |n: &str| {
        over_http
            .packages
            .iter()
            .find(|p| p.entry.name == n)
            .unwrap()
            .entry
            .clone()
    };
    assert_eq!(by("coreutils").replaces, ["busybox"]);
    assert!(melange2_resolve::replaces(&by("coreutils"), &by("busybox")));
    assert!(!melange2_resolve::replaces(
        &by("busybox"),
        &by("coreutils")
    ));
    // the lock is stable JSON and round-trips
    let lock = over_http.lock();
    assert_eq!(lock.to_json(), over_http.lock().to_json());
    assert_eq!(
        melange2_resolve::Lock::from_json(&lock.to_json()).unwrap(),
        lock
    );
    assert!(lock.to_json().contains("\"checksum\": \"Q1"));
}

#[test]
fn second_resolve_downloads_nothing() {
    let f = fixture::shared();
    let server = Server::start(f.dir.path());
    let cache = tempfile::tempdir().unwrap();
    let o = opts(
        http_repos(&server.base),
        vec![format!("{}/main/test.rsa.pub", server.base)],
        cache.path(),
    );
    let first = run(&o, &["build-base"]).unwrap();
    assert_eq!(apk_gets(&server), 8);
    assert_eq!(first.stats.packages_fetched, 8);
    assert_eq!(first.stats.packages_cached, 0);
    assert!(first.stats.bytes_downloaded > 0);

    server.clear();
    let second = run(&o, &["build-base"]).unwrap();
    let hits = server.hits();
    assert_eq!(apk_gets(&server), 0, "{hits:?}");
    // indexes and the key are only revalidated
    assert!(
        hits.iter().all(|h| h.status == 304 && h.bytes == 0),
        "{hits:?}"
    );
    assert_eq!(hits.len(), 4);
    assert_eq!(second.stats.packages_fetched, 0);
    assert_eq!(second.stats.packages_cached, 8);
    assert_eq!(second.stats.bytes_downloaded, 0);
    assert_eq!(second.stats.not_modified, 4);
    assert_eq!(first.lock(), second.lock());
    assert_eq!(
        first.packages.iter().map(|p| &p.file).collect::<Vec<_>>(),
        second.packages.iter().map(|p| &p.file).collect::<Vec<_>>()
    );
}

#[test]
fn offline_resolution_uses_the_cached_indexes() {
    let f = fixture::shared();
    let cache = tempfile::tempdir().unwrap();
    let base = {
        let server = Server::start(f.dir.path());
        let o = opts(
            http_repos(&server.base),
            vec![f.key().display().to_string()],
            cache.path(),
        );
        run(&o, &["make"]).unwrap();
        server.base.clone()
    };
    // the server is gone: connection errors fall back to the cached indexes,
    // and the package is in the cache
    let o = opts(
        http_repos(&base),
        vec![f.key().display().to_string()],
        cache.path(),
    );
    let r = run(&o, &["make"]).unwrap();
    assert_eq!(r.stats.packages_cached, 1);
    // a package that was never downloaded cannot be had
    let e = run(&o, &["foo"]).unwrap_err().to_string();
    assert!(
        e.contains(&format!("GET {base}/main/x86_64/foo-2.0-r0.apk")),
        "{e}"
    );
}

#[test]
fn http_404_names_url_and_status() {
    let f = fixture_copy();
    let server = Server::start(f.path());
    let cache = tempfile::tempdir().unwrap();
    let key = vec![f.path().join("main/test.rsa.pub").display().to_string()];
    // missing index
    let o = opts(
        vec![format!("{}/nothing-here", server.base)],
        key.clone(),
        cache.path(),
    );
    let e = run(&o, &["make"]).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "GET {}/nothing-here/x86_64/APKINDEX.tar.gz: HTTP 404 Not Found",
            server.base
        )
    );
    // missing package
    std::fs::remove_file(f.path().join("main/x86_64/make-4.4.1-r0.apk")).unwrap();
    let o = opts(
        vec![format!("{}/main", server.base)],
        key.clone(),
        cache.path(),
    );
    let e = run(&o, &["make"]).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "GET {}/main/x86_64/make-4.4.1-r0.apk: HTTP 404 Not Found",
            server.base
        )
    );
    // missing key URL
    let o = opts(
        vec![format!("{}/main", server.base)],
        vec![format!("{}/keys/nope.rsa.pub", server.base)],
        cache.path(),
    );
    let e = run(&o, &["busybox"]).unwrap_err().to_string();
    assert!(e.contains("keys/nope.rsa.pub: HTTP 404 Not Found"), "{e}");
    // nothing listening
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let o = opts(vec![format!("http://{dead}/os")], key, cache.path());
    let e = run(&o, &["make"]).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("GET http://{dead}/os/x86_64/APKINDEX.tar.gz: ")),
        "{e}"
    );
}

#[test]
fn unsigned_index_refused_unless_signatures_ignored() {
    let dir = tempfile::tempdir().unwrap();
    build_repo(
        dir.path(),
        "x86_64",
        &[p("hello", "1-r0").deps(&["world"]), p("world", "2-r0")],
        None,
    );
    let cache = tempfile::tempdir().unwrap();
    let key = vec![common::key().public.display().to_string()];
    let mut o = opts(vec![dir.path().display().to_string()], key, cache.path());
    let e = run(&o, &["hello"]).unwrap_err();
    assert!(e.is_verification());
    assert_eq!(
        e.to_string(),
        format!(
            "{}: verification failed: not signed",
            dir.path().join("x86_64/APKINDEX.tar.gz").display()
        )
    );
    o.ignore_signatures = true;
    let r = run(&o, &["hello"]).unwrap();
    assert_eq!(
        r.packages
            .iter()
            .map(|p| p.entry.name.as_str())
            .collect::<Vec<_>>(),
        ["world", "hello"]
    );
    // without keys at all, the request is refused up front
    o.ignore_signatures = false;
    o.keyring.clear();
    let e = run(&o, &["hello"]).unwrap_err().to_string();
    assert!(e.starts_with("keyring: no keys configured"), "{e}");
}

#[test]
fn index_signed_by_unknown_key_refused() {
    let dir = tempfile::tempdir().unwrap();
    build_repo(
        dir.path(),
        "x86_64",
        &[p("hello", "1-r0")],
        Some(other_signer()),
    );
    let server = Server::start(dir.path());
    let cache = tempfile::tempdir().unwrap();
    let o = opts(
        vec![server.base.clone()],
        vec![common::key().public.display().to_string()],
        cache.path(),
    );
    let e = run(&o, &["hello"]).unwrap_err();
    assert!(e.is_verification());
    assert_eq!(
        e.to_string(),
        format!(
            "{}/x86_64/APKINDEX.tar.gz: verification failed: no signature by a trusted key \
             (signed by other.rsa.pub (RSA256); keyring has test.rsa.pub)",
            server.base
        )
    );
    // the refused index was not cached
    let cached: Vec<PathBuf> = walkdir::WalkDir::new(cache.path().join("indexes"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    assert!(cached.is_empty(), "{cached:?}");
}

#[test]
fn tampered_index_refused() {
    let dir = tempfile::tempdir().unwrap();
    build_repo(dir.path(), "x86_64", &[p("hello", "1-r0")], Some(signer()));
    let path = dir.path().join("x86_64/APKINDEX.tar.gz");
    let bytes = std::fs::read(&path).unwrap();
    let (mut index, _) = melange2_apk::read_index(&path, None).unwrap();
    let member = index.index_member().unwrap();
    assert!(bytes.ends_with(&member));
    let signature = &bytes[..bytes.len() - member.len()];
    // keep the signature, change the records
    index.entries[0].depends.push("evil".into());
    let mut tampered = signature.to_vec();
    tampered.extend(index.index_member().unwrap());
    std::fs::write(&path, tampered).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let o = opts(
        vec![dir.path().display().to_string()],
        vec![common::key().public.display().to_string()],
        cache.path(),
    );
    let e = run(&o, &["hello"]).unwrap_err();
    assert!(e.is_verification());
    assert_eq!(
        e.to_string(),
        format!(
            "{}: verification failed: signature by test.rsa.pub (RSA256) does not match \
             (wrong key or tampered content)",
            path.display()
        )
    );
}

/// Replace `<root>/x86_64/<name>-<version>.apk` by another build of the same
/// name-version (different content), signed by `key`.
fn swap_package(root: &Path, pkg: common::P, key: melange2_apk::SigningKey) {
    let scratch = tempfile::tempdir().unwrap();
    build_repo(
        scratch.path(),
        "x86_64",
        std::slice::from_ref(&pkg),
        Some(key),
    );
    let name = pkg.info.file_name();
    std::fs::copy(
        scratch.path().join("x86_64").join(&name),
        root.join("x86_64").join(&name),
    )
    .unwrap();
}

/// Replace `<root>/x86_64/make-4.4.1-r0.apk` by a build with other file
/// content that is no larger than the original (so it passes the declared
/// size and is caught by the checksum).
fn swap_make_same_size(root: &Path) {
    let info = melange2_apk::PkgInfo::new("make", "4.4.1-r0", "x86_64");
    let name = info.file_name();
    let to = root.join("x86_64").join(&name);
    let declared = std::fs::metadata(&to).unwrap().len();
    // the fixture's content is "make 4.4.1-r0 \n": change one byte at a time
    let original = b"make 4.4.1-r0 \n";
    for i in 0..original.len() - 1 {
        for c in [b'x', b'0', b'M', b'.'] {
            let mut content = original.to_vec();
            if content[i] == c {
                continue;
            }
            content[i] = c;
            let scratch = tempfile::tempdir().unwrap();
            let mut tree = melange2_apk::PackageTree::new();
            tree.add_file("usr/share/make/4.4.1-r0", 0o644, content)
                .unwrap();
            let mut rb = melange2_apk::RepoBuilder::new(scratch.path()).signer(signer());
            rb.add(&info, &tree).unwrap();
            rb.finish().unwrap();
            let from = scratch.path().join("x86_64").join(&name);
            if std::fs::metadata(&from).unwrap().len() <= declared {
                std::fs::copy(from, to).unwrap();
                return;
            }
        }
    }
    panic!("no tampered build of make fits its declared size");
}

#[test]
fn package_larger_than_declared_is_refused_while_downloading() {
    let f = fixture_copy();
    swap_package(
        &f.path().join("main"),
        p("make", "4.4.1-r0").salt("evil"),
        signer(),
    );
    let server = Server::start(f.path());
    let key = vec![f.path().join("main/test.rsa.pub").display().to_string()];
    let cache = tempfile::tempdir().unwrap();
    let o = opts(vec![format!("{}/main", server.base)], key, cache.path());
    let e = run(&o, &["make"]).unwrap_err();
    assert!(matches!(e, Error::Refused { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "GET {}/main/x86_64/make-4.4.1-r0.apk: the body is larger than the size the index declares (",
            server.base
        )),
        "{msg}"
    );
    let left: Vec<_> = std::fs::read_dir(cache.path().join("packages"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn tampered_package_refused_over_http_and_directory() {
    let f = fixture_copy();
    swap_make_same_size(&f.path().join("main"));
    let server = Server::start(f.path());
    let key = vec![f.path().join("main/test.rsa.pub").display().to_string()];
    for (repo, shown) in [
        (
            format!("{}/main", server.base),
            format!("{}/main/x86_64/make-4.4.1-r0.apk", server.base),
        ),
        (
            f.path().join("main").display().to_string(),
            f.path()
                .join("main/x86_64/make-4.4.1-r0.apk")
                .display()
                .to_string(),
        ),
    ] {
        let cache = tempfile::tempdir().unwrap();
        let e = run(&opts(vec![repo], key.clone(), cache.path()), &["make"]).unwrap_err();
        assert!(e.is_verification(), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "{shown}: verification failed: control checksum Q1"
            )),
            "{msg}"
        );
        assert!(
            msg.contains("does not match the index checksum Q1"),
            "{msg}"
        );
        // nothing was left in the cache
        let left: Vec<_> = std::fs::read_dir(cache.path().join("packages"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn package_signed_by_unknown_key_refused() {
    let dir = tempfile::tempdir().unwrap();
    build_repo(dir.path(), "x86_64", &[p("hello", "1-r0")], Some(signer()));
    // re-sign the package with another key and re-index it with the trusted one
    let apk = dir.path().join("x86_64/hello-1-r0.apk");
    melange2_apk::sign_package_file(
        &apk,
        &other_signer(),
        &[melange2_apk::SignatureAlgorithm::RsaSha256],
    )
    .unwrap();
    melange2_apk::index_packages(
        std::slice::from_ref(&apk),
        &dir.path().join("x86_64/APKINDEX.tar.gz"),
        None,
        None,
        Some(&signer()),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut o = opts(
        vec![dir.path().display().to_string()],
        vec![common::key().public.display().to_string()],
        cache.path(),
    );
    let e = run(&o, &["hello"]).unwrap_err();
    assert!(e.is_verification());
    assert_eq!(
        e.to_string(),
        format!(
            "{}: verification failed: no signature by a trusted key (signed by other.rsa.pub (RSA256); keyring has test.rsa.pub)",
            apk.display()
        )
    );
    // trusting both keys (a directory of keys) accepts it
    let keys = tempfile::tempdir().unwrap();
    std::fs::copy(&common::key().public, keys.path().join("test.rsa.pub")).unwrap();
    std::fs::copy(
        &common::other_key().public,
        keys.path().join("other.rsa.pub"),
    )
    .unwrap();
    o.keyring = vec![keys.path().display().to_string()];
    let r = run(&o, &["hello"]).unwrap();
    assert_eq!(r.packages.len(), 1);
    assert_eq!(
        r.keys,
        [
            keys.path().join("other.rsa.pub"),
            keys.path().join("test.rsa.pub")
        ]
    );
}

#[test]
fn same_name_and_version_with_different_contents_do_not_collide() {
    let f = fixture::shared();
    let cache = tempfile::tempdir().unwrap();
    let key = vec![f.key().display().to_string()];
    let main_first = run(
        &opts(
            vec![
                f.main().display().to_string(),
                f.third().display().to_string(),
            ],
            key.clone(),
            cache.path(),
        ),
        &["dup"],
    )
    .unwrap();
    let third_first = run(
        &opts(
            vec![
                f.third().display().to_string(),
                f.main().display().to_string(),
            ],
            key,
            cache.path(),
        ),
        &["dup"],
    )
    .unwrap();
    let (a, b) = (&main_first.packages[0], &third_first.packages[0]);
    assert_eq!(
        (a.entry.name.as_str(), a.entry.version.as_str()),
        ("dup", "1.0-r0")
    );
    assert_eq!(
        (b.entry.name.as_str(), b.entry.version.as_str()),
        ("dup", "1.0-r0")
    );
    assert_ne!(a.entry.checksum, b.entry.checksum);
    assert_ne!(a.file, b.file);
    assert!(a.file.exists() && b.file.exists());
    assert_eq!(b.repository, f.third().display().to_string());
    assert_eq!(third_first.stats.packages_fetched, 1);
}

#[test]
fn damaged_cache_entry_is_fetched_again() {
    let f = fixture::shared();
    let cache = tempfile::tempdir().unwrap();
    let o = opts(
        vec![f.main().display().to_string()],
        vec![f.key().display().to_string()],
        cache.path(),
    );
    let first = run(&o, &["make"]).unwrap();
    std::fs::write(&first.packages[0].file, b"garbage").unwrap();
    let again = run(&o, &["make"]).unwrap();
    assert_eq!(again.stats.packages_fetched, 1);
    assert_eq!(again.stats.packages_cached, 0);
    let keyring = Keyring::from_files(&[f.key()]).unwrap();
    melange2_apk::verify_package(
        &again.packages[0].file,
        &keyring,
        Some(&again.packages[0].entry.checksum),
    )
    .unwrap();
}

#[test]
fn downloads_run_in_parallel_within_the_bound() {
    let f = fixture::shared();
    let server = Server::start_with_delay(f.dir.path(), Duration::from_millis(150));
    let key = vec![f.key().display().to_string()];
    for (bound, expect_at_most) in [(2usize, 2usize), (8, 8)] {
        let cache = tempfile::tempdir().unwrap();
        let mut o = opts(http_repos(&server.base), key.clone(), cache.path());
        o.parallel_downloads = bound;
        server.clear();
        let r = run(&o, &["build-base"]).unwrap();
        assert_eq!(r.packages.len(), 8);
        let max = server.max_inflight();
        assert!(max <= expect_at_most, "bound {bound}: {max} at once");
        assert!(
            max >= 2,
            "bound {bound}: downloads were not concurrent ({max})"
        );
    }
}

#[test]
fn bad_configuration_is_reported() {
    let f = fixture::shared();
    let cache = tempfile::tempdir().unwrap();
    let key = vec![f.key().display().to_string()];
    let e = run(
        &opts(
            vec!["ftp://example.invalid/os".into()],
            key.clone(),
            cache.path(),
        ),
        &["x"],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "repository \"ftp://example.invalid/os\": unsupported URL scheme \"ftp\" (use https://, http://, file:// or a path)"
    );
    let missing = f.dir.path().join("no-such-repo");
    let e = run(
        &opts(
            vec![missing.display().to_string()],
            key.clone(),
            cache.path(),
        ),
        &["x"],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no-such-repo/x86_64/APKINDEX.tar.gz not found"),
        "{e}"
    );
    let e = run(
        &opts(
            vec![f.main().display().to_string()],
            vec!["/no/such/key.pub".into()],
            cache.path(),
        ),
        &["x"],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "keyring entry \"/no/such/key.pub\": /no/such/key.pub does not exist"
    );
    let mut o = opts(vec![f.main().display().to_string()], key, cache.path());
    o.arch = "x86 64".into();
    let e = run(&o, &["x"]).unwrap_err().to_string();
    assert_eq!(e, "architecture: invalid architecture \"x86 64\"");
}

#[test]
fn repositories_resolve_many_requests_and_blocking_api_refuses_nesting() {
    let f = fixture::shared();
    let cache = tempfile::tempdir().unwrap();
    let o = opts(
        f.repositories(),
        vec![f.key().display().to_string()],
        cache.path(),
    );
    let runtime = rt();
    let repos = runtime.block_on(Repositories::load(&o)).unwrap();
    let a = runtime.block_on(repos.resolve(&["make"])).unwrap();
    let b = runtime.block_on(repos.resolve(&["make", "foo"])).unwrap();
    assert_eq!(a.packages[0].file, b.packages[1].file);
    assert_eq!(b.stats.packages_cached, 1);
    // the lock without downloading matches
    assert_eq!(repos.lock(&["make", "foo"]).unwrap(), b.lock());
    // resolve_blocking works outside a runtime, refuses inside one
    let outside = resolve_blocking(&o, &["make"]).unwrap();
    assert_eq!(outside.lock(), a.lock());
    let inside = runtime.block_on(async { resolve_blocking(&o, &["make"]) });
    assert!(
        inside
            .unwrap_err()
            .to_string()
            .contains("inside an async runtime")
    );
}
