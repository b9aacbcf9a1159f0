//! `melange2 build` end to end for the SCA, SBOM and provenance wiring: a binary linking a
//! library the repository provides and one nothing provides, built on the real buildkitd with
//! `--generate-provenance` and `--dependency-log`.

use std::path::Path;
use std::process::Command;

use melange2_apk::{PackageTree, PkgInfo, RepoBuilder, generate_key};
use sha2::Digest;

fn melange2() -> Command {
    Command::new(env!("CARGO_BIN_EXE_melange2"))
}

fn cc(dir: &Path, args: &[&str]) {
    let out = Command::new("cc")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unresolved_so_depends_sbom_provenance_and_dependency_log() {
    let daemon = std::env::var("BUILDKIT_HOST")
        .expect("BUILDKIT_HOST is not set: run with `make test`, which starts buildkitd");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

    // a binary needing libbar.so.1 (in the repository) and libmissing.so.1 (nowhere)
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("bar.c"), "int bar(void) { return 1; }\n").unwrap();
    std::fs::write(src.join("miss.c"), "int miss(void) { return 2; }\n").unwrap();
    std::fs::write(
        src.join("app.c"),
        "int bar(void); int miss(void);\nint main(void) { return bar() + miss(); }\n",
    )
    .unwrap();
    cc(
        &src,
        &[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libbar.so.1",
            "-o",
            "libbar.so.1",
            "bar.c",
        ],
    );
    cc(
        &src,
        &[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libmissing.so.1",
            "-o",
            "libmissing.so.1",
            "miss.c",
        ],
    );
    cc(
        &src,
        &[
            "-o",
            "app",
            "app.c",
            "-Wl,--no-as-needed",
            "./libbar.so.1",
            "./libmissing.so.1",
        ],
    );

    // the repository: busybox (also answering for the C library) and libbar
    let repo_key = generate_key(2048, "repo.rsa").unwrap();
    let pubkey = d.join("repo.rsa.pub");
    std::fs::write(&pubkey, repo_key.public_key_pem().unwrap()).unwrap();
    let mut repo = RepoBuilder::new(d.join("repo")).signer(repo_key);
    let mut t = PackageTree::new();
    t.add_file("bin/busybox", 0o755, std::fs::read("/bin/busybox").unwrap())
        .unwrap();
    t.add_symlink("bin/sh", "busybox").unwrap();
    for applet in ["mkdir", "cp", "chmod"] {
        t.add_symlink(&format!("bin/{applet}"), "busybox").unwrap();
    }
    let mut info = PkgInfo::new("busybox", "1.35.0-r0", "x86_64");
    info.provides = vec!["so:libc.so.6=6".into(), "so:ld-linux-x86-64.so.2=2".into()];
    repo.add(&info, &t).unwrap();
    let mut t = PackageTree::new();
    t.add_file(
        "usr/lib/libbar.so.1",
        0o755,
        std::fs::read(src.join("libbar.so.1")).unwrap(),
    )
    .unwrap();
    let mut info = PkgInfo::new("libbar", "1.0-r0", "x86_64");
    info.provides = vec!["so:libbar.so.1=1".into()];
    repo.add(&info, &t).unwrap();
    repo.finish().unwrap();

    let recipe = d.join("app.yaml");
    std::fs::write(
        &recipe,
        "package:\n  name: app\n  version: \"1\"\n  epoch: 0\n  description: app\n  copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\npipeline:\n  - runs: |\n      mkdir -p ${{targets.destdir}}/usr/bin\n      cp app ${{targets.destdir}}/usr/bin/app\n      chmod 755 ${{targets.destdir}}/usr/bin/app\n",
    )
    .unwrap();
    let signing_key = d.join("melange.rsa");
    let o = melange2()
        .args(["keygen", "--key-size", "2048"])
        .arg(&signing_key)
        .output()
        .unwrap();
    assert!(o.status.success());

    let out = d.join("packages");
    let log = d.join("deps.json");
    let o = melange2()
        .arg("build")
        .arg(&recipe)
        .args([
            "--arch",
            "x86_64",
            "--progress",
            "plain",
            "--namespace",
            "wolfi",
        ])
        .arg("--out-dir")
        .arg(&out)
        .arg("-r")
        .arg(d.join("repo"))
        .arg("-k")
        .arg(&pubkey)
        .arg("--signing-key")
        .arg(&signing_key)
        .arg("--source-dir")
        .arg(&src)
        .arg("--apk-cache-dir")
        .arg(d.join("apk-cache"))
        .args(["--buildkit-addr", &daemon])
        .arg("--generate-provenance")
        .arg("--dependency-log")
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // the unresolved library is a warning naming the file; the others resolve
    assert!(
        stderr.contains(
            "package app: depend so:libmissing.so.1 (needed by usr/bin/app) is provided by no package of this build or of its repositories"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("depend so:libbar.so.1 ("), "{stderr}");
    assert!(!stderr.contains("depend so:libc.so.6 ("), "{stderr}");

    let apk = out.join("x86_64/app-1-r0.apk");
    let kr = {
        let mut k = melange2_apk::Keyring::new();
        k.add_file(&signing_key.with_extension("rsa.pub")).unwrap();
        k
    };
    let c = melange2_apk::verify_package(&apk, &kr, None).unwrap();
    assert_eq!(
        c.pkginfo.depends,
        [
            "so:ld-linux-x86-64.so.2",
            "so:libbar.so.1",
            "so:libc.so.6",
            "so:libmissing.so.1"
        ]
    );
    assert!(
        c.data
            .entries
            .iter()
            .any(|e| e.path == "var/lib/db/sbom/app-1-r0.spdx.json")
    );

    // --dependency-log FILE → FILE.x86_64
    let deps: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("deps.json.x86_64")).unwrap()).unwrap();
    assert_eq!(deps[0]["package"], "app");
    assert_eq!(
        deps[0]["unresolved"],
        serde_json::json!({"so:libmissing.so.1": ["usr/bin/app"]})
    );

    // --generate-provenance: next to the APK, about the APK, the recipe and the daemon
    let attest = out.join("x86_64/app-1-r0.attest.tar.gz");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("app-1-r0.attest.tar.gz"), "{stdout}");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&attest).unwrap(),
    ));
    let mut statement = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == "app-1-r0.attestation" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            statement = Some(s);
        }
    }
    let v: serde_json::Value = serde_json::from_str(&statement.expect("statement")).unwrap();
    let apk_sum = hex::encode(sha2::Sha256::digest(std::fs::read(&apk).unwrap()));
    assert_eq!(v["subject"][0]["digest"]["sha256"], apk_sum.as_str());
    let bd = &v["predicate"]["buildDefinition"];
    assert_eq!(
        bd["externalParameters"]["buildFile"]["digest"]["sha256"],
        hex::encode(sha2::Sha256::digest(std::fs::read(&recipe).unwrap())).as_str()
    );
    let llb = bd["internalParameters"]["llbDigest"].as_str().unwrap();
    assert!(llb.starts_with("sha256:") && llb.len() == 71, "{llb}");
    let locked: Vec<&str> = bd["internalParameters"]["environmentLock"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(locked, ["busybox"]);
    let bk = v["predicate"]["runDetails"]["builder"]["version"]["buildkit"]
        .as_str()
        .unwrap();
    assert!(bk.starts_with('v'), "{bk}");
}
