//! Build provenance (`--generate-provenance`): an in-toto Statement v1 with
//! a SLSA Provenance v1 predicate for every APK, written next to it as
//! `<name>-<version>-r<epoch>.attest.tar.gz`.
//!
//! The archive (gzip tar, deterministic: mtime `SOURCE_DATE_EPOCH`, root
//! owner) holds `<name>-<version>-r<epoch>.attestation`, the statement
//! JSON, and — when packages are signed — first a
//! `.SIGN.RSA256.<key>.rsa.pub` entry: the RSA PKCS#1 v1.5 SHA-256
//! signature of the statement bytes, checkable with
//! `openssl dgst -sha256 -verify <key>.rsa.pub -signature sig statement`.
//!
//! The statement's subject is the APK file (name and SHA-256). The
//! predicate records the build file (path and SHA-256), the architecture,
//! the environment lock (every package of the build environment with its
//! version, checksum and repository, also as `resolvedDependencies`), the
//! BuildKit daemon's version and the digest of the final LLB state.
//! Nothing in it depends on the clock or the machine, so the same build
//! gives the same bytes.

use melange2_apk::{SignatureAlgorithm, SigningKey};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{PackageError, Result};

/// `buildType` of the predicate.
pub const BUILD_TYPE: &str = "urn:melange2:buildtype:apk:v1";
/// `builder.id` of the predicate.
pub const BUILDER_ID: &str = "urn:melange2:builder:buildkit";

/// What a build knows about how it ran, for the provenance statements.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Provenance {
    /// The build file as given to the build.
    pub build_file: String,
    /// SHA-256 (hex) of the build file's bytes.
    pub build_file_sha256: String,
    /// The environment lock (`melange2_resolve::Lock` as JSON, or a note
    /// about the bootstrap root filesystem).
    pub environment_lock: Value,
    /// BuildKit daemon: Go package (`github.com/moby/buildkit`).
    pub buildkit_package: String,
    /// BuildKit daemon version (`v0.32.2`).
    pub buildkit_version: String,
    /// BuildKit daemon VCS revision.
    pub buildkit_revision: String,
    /// Digest of the op producing the final state of the LLB graph
    /// (`sha256:…`).
    pub llb_digest: String,
}

/// `resolvedDependencies` from a lock (`{"packages": [{name, version,
/// arch, checksum, repository}]}`).
fn resolved_dependencies(lock: &Value, namespace: &str) -> Vec<Value> {
    let Some(pkgs) = lock.get("packages").and_then(Value::as_array) else {
        return Vec::new();
    };
    pkgs.iter()
        .filter_map(|p| {
            let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
            if s("name").is_empty() {
                return None;
            }
            Some(json!({
                "uri": format!("pkg:apk/{namespace}/{}@{}?arch={}", s("name"), s("version"), s("arch")),
                "name": s("name"),
                "annotations": {
                    "checksum": s("checksum"),
                    "repository": s("repository"),
                    "version": s("version"),
                },
            }))
        })
        .collect()
}

/// The APK a statement is about.
pub(crate) struct Subject<'a> {
    pub apk_file_name: &'a str,
    pub apk_sha256: &'a str,
    pub package: &'a str,
    pub version: &'a str,
    pub arch: &'a str,
    pub namespace: &'a str,
    pub source_date_epoch: u64,
}

/// The statement JSON (2-space indented, trailing newline).
pub(crate) fn statement(p: &Provenance, s: &Subject<'_>) -> Vec<u8> {
    let Subject {
        apk_file_name,
        apk_sha256,
        package,
        version,
        arch,
        namespace,
        source_date_epoch,
    } = *s;
    let v = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": apk_file_name, "digest": {"sha256": apk_sha256}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "buildFile": {"path": p.build_file, "digest": {"sha256": p.build_file_sha256}},
                    "package": package,
                    "version": version,
                    "arch": arch,
                    "namespace": namespace,
                },
                "internalParameters": {
                    "sourceDateEpoch": source_date_epoch,
                    "environmentLock": p.environment_lock,
                    "llbDigest": p.llb_digest,
                },
                "resolvedDependencies": resolved_dependencies(&p.environment_lock, namespace),
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {
                        "melange2": env!("CARGO_PKG_VERSION"),
                        "buildkit": p.buildkit_version,
                    },
                    "builderDependencies": [{
                        "uri": format!("pkg:golang/{}@{}", p.buildkit_package, p.buildkit_version),
                        "annotations": {"revision": p.buildkit_revision},
                    }],
                },
                "metadata": {"invocationId": p.llb_digest},
            },
        },
    });
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The `.attest.tar.gz` bytes for one statement.
pub(crate) fn archive(
    statement: &[u8],
    entry_name: &str,
    key: Option<&SigningKey>,
    source_date_epoch: u64,
) -> Result<Vec<u8>> {
    let err = |e: std::io::Error| PackageError::Io {
        context: format!("writing provenance {entry_name}"),
        source: e,
    };
    let gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    let mut b = tar::Builder::new(gz);
    let add = |b: &mut tar::Builder<_>, name: &str, data: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name)?;
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_username("root")?;
        h.set_groupname("root")?;
        h.set_mtime(source_date_epoch);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, data)
    };
    if let Some(k) = key {
        let alg = SignatureAlgorithm::RsaSha256;
        let sig = k.sign(alg, statement)?;
        add(&mut b, &k.signature_entry_name(alg), &sig).map_err(err)?;
    }
    add(&mut b, entry_name, statement).map_err(err)?;
    let gz = b.into_inner().map_err(err)?;
    gz.finish().map_err(err)
}
