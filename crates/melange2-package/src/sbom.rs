//! The SPDX 2.3 SBOM written into every package (spec part G), at
//! `var/lib/db/sbom/<name>-<version>-r<epoch>.spdx.json`.
//!
//! One document per package: the operating system (the namespace), the
//! APK itself (licence from the main package's `copyright`, purl
//! `pkg:apk/<namespace>/<name>@<version>?arch=…&distro=…`, CPE when set),
//! the build configuration (purl `pkg:github/<org>/<repo>@<commit>#<path>`)
//! and one package per upstream source: every `fetch` and `git-checkout`
//! step of the main pipeline (in every package's SBOM) and of the
//! subpackage's own pipeline, with checksums. Relationships: the APK is
//! `DESCRIBED_BY` the build configuration and `GENERATED_FROM` each source.
//!
//! Deterministic: no clock, no random identifiers; `created` is
//! `SOURCE_DATE_EPOCH`, the output is 2-space indented JSON with fields in
//! a fixed order and a trailing newline.
//!
//! Deliberate differences from melange: `creators` names melange2 (not
//! melange and Chainguard); a `git-checkout` from a host other than GitHub
//! gets the SPDX VCS location `git+<repository>@<ref>` as
//! `downloadLocation` (melange names a Chainguard tarball mirror); licence
//! expressions containing `OR` are parenthesised before being joined with
//! ` AND `.

use std::path::Path;

use melange2_config::plan::{PackageInfo, Plan, Step};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Directory of the SBOM inside a package.
pub const SBOM_DIR: &str = "var/lib/db/sbom";
/// `licenseListVersion` written in every document.
pub const LICENSE_LIST_VERSION: &str = "3.22";
/// `NOASSERTION`.
const NOASSERTION: &str = "NOASSERTION";

/// Where the build file comes from (the SBOM's build-configuration
/// package; melange's `--git-repo-url`, `--git-commit`, `--license`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildConfig {
    /// Path of the build file as recorded (relative to its repository).
    pub path: String,
    /// Repository of the build file (`https://github.com/<org>/<repo>`).
    pub repository_url: String,
    /// Commit of the build file (empty: the package's `commit`).
    pub commit: String,
    /// Licence of the build file (`NOASSERTION` when unknown).
    pub license: String,
}

impl BuildConfig {
    /// melange's defaults for a build file path: repository
    /// `https://unknown/unknown/unknown`, the package's commit, licence
    /// `NOASSERTION`.
    pub fn new(path: impl Into<String>) -> Self {
        BuildConfig {
            path: path.into(),
            repository_url: "https://unknown/unknown/unknown".to_string(),
            commit: String::new(),
            license: NOASSERTION.to_string(),
        }
    }
}

/// Inputs shared by every document of one packaging run.
pub(crate) struct SbomContext<'a> {
    pub plan: &'a Plan,
    pub namespace: &'a str,
    pub source_date_epoch: u64,
    pub build_config: &'a BuildConfig,
    /// Directory `license-path` files are read from.
    pub license_dir: Option<&'a Path>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    spdx_version: &'static str,
    creation_info: CreationInfo,
    data_license: &'static str,
    document_namespace: String,
    document_describes: Vec<String>,
    packages: Vec<SpdxPackage>,
    relationships: Vec<Relationship>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<ExtractedLicense>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
    license_list_version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    files_analyzed: bool,
    license_concluded: String,
    license_declared: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    download_location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    originator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplier: Option<String>,
    copyright_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksums: Option<Vec<Checksum>>,
    external_refs: Vec<ExternalRef>,
    primary_package_purpose: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_locator: String,
    reference_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtractedLicense {
    license_id: String,
    extracted_text: String,
}

/// FNV-1a, 128 bits.
pub(crate) fn fnv1a_128(data: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    data.iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME))
}

/// RFC 3339 (UTC, seconds) of a Unix time.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // civil from days (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// SPDX identifier from components: joined with `-`, `:` and `/` become
/// `-`, `[A-Za-z0-9.-]` are kept, any other character becomes
/// `C<decimal code point>`.
pub(crate) fn spdx_id(components: &[&str]) -> String {
    let joined = components
        .iter()
        .filter(|c| !c.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("-");
    let mut out = String::from("SPDXRef-");
    for c in joined.chars() {
        match c {
            ':' | '/' => out.push('-'),
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => out.push(c),
            c => out.push_str(&format!("C{}", c as u32)),
        }
    }
    out
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A purl: `pkg:<type>/<namespace…>/<name>@<version>?<sorted qualifiers>#<subpath>`.
fn purl(
    kind: &str,
    namespace: &[&str],
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
    subpath: &str,
) -> String {
    let mut s = format!("pkg:{kind}/");
    for n in namespace.iter().filter(|n| !n.is_empty()) {
        s.push_str(&pct(n));
        s.push('/');
    }
    s.push_str(&pct(name));
    if !version.is_empty() {
        s.push('@');
        s.push_str(&pct(version));
    }
    let mut q: Vec<&(&str, &str)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    q.sort();
    for (i, (k, v)) in q.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&pct(v));
    }
    if !subpath.is_empty() {
        s.push('#');
        let segs: Vec<String> = subpath
            .split('/')
            .filter(|p| !p.is_empty() && *p != "." && *p != "..")
            .map(pct)
            .collect();
        s.push_str(&segs.join("/"));
    }
    s
}

fn titlecase(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `LicenseRef-` + the licence with spaces and `_` as `-`, other
/// characters outside `[A-Za-z0-9.-]` removed.
pub(crate) fn license_ref(license: &str) -> String {
    let body = license.strip_prefix("LicenseRef-").unwrap_or(license);
    let clean: String = body
        .chars()
        .filter_map(|c| match c {
            ' ' | '_' => Some('-'),
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => Some(c),
            _ => None,
        })
        .collect();
    format!("LicenseRef-{clean}")
}

/// True when `license` is a valid SPDX licence expression.
pub(crate) fn is_valid_spdx(license: &str) -> bool {
    !license.trim().is_empty() && spdx::Expression::parse(license).is_ok()
}

/// The declared licence expression of a package and the licences whose
/// text goes into `hasExtractedLicensingInfos`.
fn licenses(
    info: &PackageInfo,
    ctx: &SbomContext<'_>,
    warnings: &mut Vec<String>,
) -> (String, Vec<ExtractedLicense>) {
    let mut parts = Vec::new();
    let mut extracted: Vec<ExtractedLicense> = Vec::new();
    for c in &info.copyright {
        let lic = c.license.trim();
        if lic.is_empty() {
            continue;
        }
        if c.license_path.is_empty() && is_valid_spdx(lic) {
            if lic.contains(" OR ") || lic.contains(" or ") {
                parts.push(format!("({lic})"));
            } else {
                parts.push(lic.to_string());
            }
            continue;
        }
        let id = license_ref(lic);
        let text = if c.license_path.is_empty() {
            format!("Non-SPDX License: {lic}")
        } else {
            let read = ctx
                .license_dir
                .map(|d| d.join(&c.license_path))
                .and_then(|p| std::fs::read_to_string(p).ok());
            match read {
                Some(t) => t,
                None => {
                    warnings.push(format!(
                        "package {}: copyright license-path {:?} cannot be read (no source directory, or no such file); the SBOM records the licence name only",
                        info.name, c.license_path
                    ));
                    format!("Non-SPDX License: {lic}")
                }
            }
        };
        if !extracted.iter().any(|e| e.license_id == id) {
            extracted.push(ExtractedLicense {
                license_id: id.clone(),
                extracted_text: text,
            });
        }
        parts.push(id);
    }
    parts.dedup();
    let expr = if parts.is_empty() {
        NOASSERTION.to_string()
    } else {
        parts.join(" AND ")
    };
    (expr, extracted)
}

/// `org` and `repo` of a repository URL (the last two path segments).
fn org_repo(url: &str) -> (String, String) {
    let path = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = path.split_once('/').map(|(_, p)| p).unwrap_or("");
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.strip_suffix(".git").unwrap_or(s))
        .collect();
    match segs.as_slice() {
        [] => ("unknown".into(), "unknown".into()),
        [r] => ("unknown".into(), (*r).to_string()),
        [.., o, r] => ((*o).to_string(), (*r).to_string()),
    }
}

/// Upstream-source packages of `fetch` and `git-checkout` steps (top-level
/// steps of `steps`, index = position in the list).
fn sources(
    steps: &[Step],
    main: &PackageInfo,
    license: &str,
    out: &mut Vec<SpdxPackage>,
    warnings: &mut Vec<String>,
) {
    for (i, step) in steps.iter().enumerate() {
        let idx = i.to_string();
        let with = |k: &str| step.with.get(k).map(String::as_str).unwrap_or("").trim();
        match step.uses.as_deref() {
            Some("fetch") => {
                let uri = with("uri");
                if uri.is_empty() {
                    continue;
                }
                let name = match with("purl-name") {
                    "" => main.name.as_str(),
                    n => n,
                };
                let version = match with("purl-version") {
                    "" => main.version.as_str(),
                    v => v,
                };
                let (alg, sum) = if !with("expected-sha256").is_empty() {
                    ("SHA256", with("expected-sha256").to_ascii_lowercase())
                } else if !with("expected-sha512").is_empty() {
                    ("SHA512", with("expected-sha512").to_ascii_lowercase())
                } else {
                    ("", String::new())
                };
                let checksum_q = if alg.is_empty() {
                    String::new()
                } else {
                    format!("{}:{sum}", alg.to_ascii_lowercase())
                };
                let locator = purl(
                    "generic",
                    &[],
                    name,
                    version,
                    &[("checksum", &checksum_q), ("download_url", uri)],
                    "",
                );
                out.push(SpdxPackage {
                    spdx_id: spdx_id(&["Package", "Source", name, version, &idx]),
                    name: name.to_string(),
                    version_info: Some(version.to_string()),
                    files_analyzed: false,
                    license_concluded: NOASSERTION.into(),
                    license_declared: NOASSERTION.into(),
                    description: None,
                    download_location: uri.to_string(),
                    originator: None,
                    supplier: None,
                    copyright_text: NOASSERTION.into(),
                    checksums: Some(if alg.is_empty() {
                        vec![]
                    } else {
                        vec![Checksum {
                            algorithm: alg,
                            checksum_value: sum,
                        }]
                    }),
                    external_refs: vec![ExternalRef {
                        reference_category: "PACKAGE-MANAGER",
                        reference_locator: locator,
                        reference_type: "purl",
                    }],
                    primary_package_purpose: "SOURCE",
                });
            }
            Some("git-checkout") => {
                let repo = with("repository");
                let (branch, tag, commit) = (with("branch"), with("tag"), with("expected-commit"));
                if repo.is_empty() {
                    continue;
                }
                if tag.is_empty() && commit.is_empty() {
                    warnings.push(format!(
                        "package {}: git-checkout of {repo} has neither tag nor expected-commit; it is not recorded in the SBOM",
                        main.name
                    ));
                    continue;
                }
                let git_ref = if tag.is_empty() { commit } else { tag };
                let no_scheme = repo.split_once("://").map(|(_, r)| r).unwrap_or(repo);
                let no_scheme = no_scheme.strip_suffix(".git").unwrap_or(no_scheme);
                let (host, path) = no_scheme.split_once('/').unwrap_or((no_scheme, ""));
                let path = path.trim_matches('/');
                let (org, name) = org_repo(repo);
                let (locator, download) = if host.eq_ignore_ascii_case("github.com") {
                    (
                        purl("github", &[&org], &name, git_ref, &[], ""),
                        format!("https://github.com/{org}/{name}/archive/{git_ref}.tar.gz"),
                    )
                } else {
                    let vcs = format!(
                        "git+{repo}@{}",
                        if commit.is_empty() { git_ref } else { commit }
                    );
                    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
                    let (ns, last) = match segs.split_last() {
                        Some((l, ns)) => (ns.to_vec(), *l),
                        None => (vec![], host),
                    };
                    (
                        purl("generic", &ns, last, git_ref, &[("vcs_url", &vcs)], ""),
                        format!("git+{repo}@{git_ref}"),
                    )
                };
                out.push(SpdxPackage {
                    spdx_id: spdx_id(&["Package", "Source", no_scheme, branch, tag, commit, &idx]),
                    name,
                    version_info: Some(git_ref.to_string()),
                    files_analyzed: false,
                    license_concluded: NOASSERTION.into(),
                    license_declared: license.to_string(),
                    description: None,
                    download_location: download,
                    originator: None,
                    supplier: None,
                    copyright_text: NOASSERTION.into(),
                    checksums: None,
                    external_refs: vec![ExternalRef {
                        reference_category: "PACKAGE-MANAGER",
                        reference_locator: locator,
                        reference_type: "purl",
                    }],
                    primary_package_purpose: "SOURCE",
                });
            }
            _ => {}
        }
    }
}

/// Path of a package's SBOM inside the package.
pub fn sbom_path(info: &PackageInfo) -> String {
    format!("{SBOM_DIR}/{}-{}.spdx.json", info.name, info.full_version)
}

/// The SPDX document of one package (`sub_pipeline`: the subpackage's own
/// steps, `None` for the main package). Returns the JSON bytes.
pub(crate) fn document(
    ctx: &SbomContext<'_>,
    info: &PackageInfo,
    sub_pipeline: Option<&[Step]>,
    warnings: &mut Vec<String>,
) -> Vec<u8> {
    let plan = ctx.plan;
    let main = &plan.package;
    let ns = ctx.namespace;
    let org = format!("Organization: {}", titlecase(ns));
    let (license, extracted) = licenses(main, ctx, warnings);
    let attestation: Vec<&str> = main
        .copyright
        .iter()
        .map(|c| c.attestation.trim_end())
        .filter(|a| !a.is_empty())
        .collect();
    let copyright_text = if attestation.is_empty() {
        NOASSERTION.to_string()
    } else {
        attestation.join("\n")
    };

    let os = SpdxPackage {
        spdx_id: "SPDXRef-OperatingSystem".into(),
        name: ns.to_string(),
        version_info: None,
        files_analyzed: false,
        license_concluded: NOASSERTION.into(),
        license_declared: NOASSERTION.into(),
        description: Some("Operating System".into()),
        download_location: NOASSERTION.into(),
        originator: Some(org.clone()),
        supplier: Some(org.clone()),
        copyright_text: NOASSERTION.into(),
        checksums: None,
        external_refs: vec![],
        primary_package_purpose: "OPERATING-SYSTEM",
    };

    let apk_id = spdx_id(&["Package", &info.name, &info.full_version]);
    let distro = if ns == "unknown" { "" } else { ns };
    let mut refs = vec![ExternalRef {
        reference_category: "PACKAGE-MANAGER",
        reference_locator: purl(
            "apk",
            &[ns],
            &info.name,
            &info.full_version,
            &[("arch", &plan.arch), ("distro", distro)],
            "",
        ),
        reference_type: "purl",
    }];
    if let Some(cpe) = main.cpe.as_deref().filter(|c| !c.is_empty()) {
        refs.push(ExternalRef {
            reference_category: "SECURITY",
            reference_locator: cpe.to_string(),
            reference_type: "cpe23Type",
        });
    }
    let apk = SpdxPackage {
        spdx_id: apk_id.clone(),
        name: info.name.clone(),
        version_info: Some(info.full_version.clone()),
        files_analyzed: false,
        license_concluded: NOASSERTION.into(),
        license_declared: license.clone(),
        description: (!info.description.is_empty()).then(|| info.description.clone()),
        download_location: NOASSERTION.into(),
        originator: Some(org.clone()),
        supplier: Some(org),
        copyright_text,
        checksums: Some(vec![]),
        external_refs: refs,
        primary_package_purpose: "APPLICATION",
    };

    let bc = ctx.build_config;
    let commit = if bc.commit.is_empty() {
        main.commit.as_str()
    } else {
        bc.commit.as_str()
    };
    let (corg, crepo) = org_repo(&bc.repository_url);
    let config_id = spdx_id(&["Package", "Melange", &bc.path, commit]);
    let config = SpdxPackage {
        spdx_id: config_id.clone(),
        name: bc.path.clone(),
        version_info: (!commit.is_empty()).then(|| commit.to_string()),
        files_analyzed: false,
        license_concluded: NOASSERTION.into(),
        license_declared: if bc.license.is_empty() {
            NOASSERTION.into()
        } else {
            bc.license.clone()
        },
        description: None,
        download_location: NOASSERTION.into(),
        originator: None,
        supplier: None,
        copyright_text: NOASSERTION.into(),
        checksums: None,
        external_refs: vec![ExternalRef {
            reference_category: "PACKAGE-MANAGER",
            reference_locator: purl("github", &[&corg], &crepo, commit, &[], &bc.path),
            reference_type: "purl",
        }],
        primary_package_purpose: "INSTALL",
    };

    let mut srcs = Vec::new();
    sources(&plan.pipeline, main, &license, &mut srcs, warnings);
    if let Some(steps) = sub_pipeline {
        sources(steps, main, &license, &mut srcs, warnings);
    }
    // the same source twice (same ID) is listed once
    let mut seen = std::collections::BTreeSet::new();
    srcs.retain(|p| seen.insert(p.spdx_id.clone()));

    let mut relationships = vec![Relationship {
        spdx_element_id: apk_id.clone(),
        relationship_type: "DESCRIBED_BY",
        related_spdx_element: config_id,
    }];
    for s in &srcs {
        relationships.push(Relationship {
            spdx_element_id: apk_id.clone(),
            relationship_type: "GENERATED_FROM",
            related_spdx_element: s.spdx_id.clone(),
        });
    }
    let mut packages = vec![os, apk, config];
    packages.extend(srcs);
    let hash = fnv1a_128(format!("apk-{ns}-{}", info.full_version).as_bytes());
    let doc = Document {
        spdx_id: "SPDXRef-DOCUMENT".into(),
        name: format!("apk-{}-{}", info.name, info.full_version),
        spdx_version: "SPDX-2.3",
        creation_info: CreationInfo {
            created: rfc3339(ctx.source_date_epoch),
            creators: vec![format!("Tool: melange2 ({})", env!("CARGO_PKG_VERSION"))],
            license_list_version: LICENSE_LIST_VERSION,
        },
        data_license: "CC0-1.0",
        document_namespace: format!("https://spdx.org/spdxdocs/chainguard/melange/{hash:032x}"),
        document_describes: vec![apk_id],
        packages,
        relationships,
        has_extracted_licensing_infos: extracted,
    };
    // serialising plain structs of strings cannot fail
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// SHA-256 hex of bytes (for tests and provenance).
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_and_time() {
        // FNV-1a 128 of the empty string is the offset basis
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn ids_and_purls() {
        assert_eq!(
            spdx_id(&["Package", "foo+bar", "1.0-r0"]),
            "SPDXRef-Package-fooC43bar-1.0-r0"
        );
        assert_eq!(
            spdx_id(&["Package", "Melange", "dir/x.yaml", ""]),
            "SPDXRef-Package-Melange-dir-x.yaml"
        );
        assert_eq!(
            purl(
                "apk",
                &["wolfi"],
                "g++",
                "1.0-r0",
                &[("distro", "wolfi"), ("arch", "x86_64")],
                ""
            ),
            "pkg:apk/wolfi/g%2B%2B@1.0-r0?arch=x86_64&distro=wolfi"
        );
        assert_eq!(
            purl("github", &["o"], "r", "abc", &[], "sub/x.yaml"),
            "pkg:github/o/r@abc#sub/x.yaml"
        );
        assert_eq!(license_ref("My License_v2!"), "LicenseRef-My-License-v2");
        assert!(is_valid_spdx("MIT"));
        assert!(is_valid_spdx("Apache-2.0 OR MIT"));
        assert!(!is_valid_spdx("My License"));
        assert_eq!(
            org_repo("https://github.com/wolfi-dev/os.git"),
            ("wolfi-dev".to_string(), "os".to_string())
        );
        assert_eq!(
            org_repo("https://unknown/unknown/unknown"),
            ("unknown".to_string(), "unknown".to_string())
        );
    }
}
